"""The HTTP service over real HTTP on loopback (uvicorn in a thread, real pipeline)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.service import Limits, create_app
from tests.service_server import running


@pytest.fixture(scope="module")
def pipeline(small_index_dir, embedder):
    from rex_search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(small_index_dir)
    yield SearchPipeline(backend, embedder, load_reranker("embedding-cosine", embedder))
    backend.close()


@pytest.fixture(scope="module")
def url(pipeline):
    with running(create_app(pipeline)) as base:
        yield base


def test_search_returns_explained_results(url):
    response = httpx.post(f"{url}/search", json={"query": "running shoes no nike", "size": 5})
    assert response.status_code == 200
    data = response.json()
    assert len(data["hits"]) == 5
    assert all((h["brand"] or "").lower() != "nike" for h in data["hits"])
    assert data["constraints"]["exclude_brands"] == ["Nike"]
    assert set(data["hits"][0]["explanation"]) >= {"retrieval", "rerank_score", "rules"}
    assert response.headers["x-request-id"]
    retrieval = httpx.post(f"{url}/search", json={"query": "running shoes", "rerank": False})
    assert retrieval.json()["reranker"] == "none (retrieval order)"
    assert retrieval.json()["reranked"] == 0


def test_budget_degrades_visibly(url):
    data = httpx.post(f"{url}/search", json={"query": "laptop bag", "budget_ms": 0.001}).json()
    assert data["degraded"] is True
    assert data["degraded_reason"].startswith("latency budget spent: reranked 0 of")
    assert len(data["hits"]) == 10  # still a full page, in fused order


def test_rerank_accepts_the_hosted_rerank_shape(url):
    body = {"query": "running shoes", "top_n": 2, "documents": [
        "cast iron skillet", {"id": "B1", "title": "Nike running shoe", "text": "mesh"},
        {"text": "trail running shoes for men"}]}
    response = httpx.post(f"{url}/rerank", json=body)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 2
    assert {r["index"] for r in results} == {1, 2}
    assert all(0 <= r["relevance_score"] <= 1 for r in results)
    assert results[0]["relevance_score"] >= results[1]["relevance_score"]
    assert [r.get("id") for r in results if r["index"] == 1] == ["B1"]


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/search", {"query": ""}, 422, "query must be a non-empty string"),
    ("/search", {"query": "x" * 600}, 422, "query is 600 characters; at most 512"),
    ("/search", {"query": "shoes", "size": 0}, 422, "size must be an integer in [1, 100]"),
    ("/search", {"query": "shoes", "filters": {"colour": "red"}}, 422, "unknown filter(s) colour"),
    ("/rerank", {"query": "q", "documents": []}, 422, "documents must be a non-empty list"),
    ("/rerank", {"query": "q", "documents": ["d"] * 1001}, 422, "at most 1000 documents"),
    ("/rerank", {"query": "q", "documents": [7]}, 422, "documents[0] must be a string"),
])
def test_bad_requests_get_clear_json_errors(url, path, body, status, message):
    response = httpx.post(url + path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"]
    assert "Traceback" not in response.text


def test_invalid_json_and_health_metrics_openapi(url):
    response = httpx.post(f"{url}/search", content=b"{not json", headers={
        "content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_json"
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ready" and health["documents"] > 800
    metrics = httpx.get(f"{url}/metrics").text
    assert 'rex_requests_total{path="/search",status="200"}' in metrics
    assert 'rex_stage_seconds_bucket{stage="rerank",le="+Inf"}' in metrics
    assert "rex_degraded_total" in metrics
    assert set(httpx.get(f"{url}/openapi.json").json()["paths"]) >= {"/search", "/rerank"}
    assert "<form id=\"search\">" in httpx.get(url + "/").text


def test_not_ready_until_loaded():
    with running(create_app(None)) as base:
        assert httpx.get(f"{base}/health").status_code == 503
        response = httpx.post(f"{base}/search", json={"query": "shoes"})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_internal_errors_do_not_leak(pipeline):
    class Broken:
        name, kind = "broken", "cross-encoder"

        def score(self, query, products, vectors=None):
            raise RuntimeError("secret internal detail")

    broken = SearchPipeline(pipeline.backend, pipeline.embedder, Broken())
    with running(create_app(broken)) as base:
        search = httpx.post(f"{base}/search", json={"query": "shoes"}).json()
        assert search["degraded"] and "fused order served" in search["degraded_reason"]
        rerank = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["d"]})
        assert rerank.status_code == 500
        assert "secret" not in rerank.text and rerank.json()["error"]["type"] == "internal"


def test_overload_gets_fast_503s(pipeline):
    gate = threading.Event()

    class Slow:
        name, kind = "slow", "cross-encoder"

        def score(self, query, products, vectors=None):
            gate.wait(5)
            return [0.5] * len(products)

    slow = SearchPipeline(pipeline.backend, pipeline.embedder, Slow())
    with running(create_app(slow, Limits(workers=1, queue=1))) as base:
        results: list[int] = []

        def call():
            results.append(httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["d"]},
                                      timeout=10).status_code)

        busy = [threading.Thread(target=call) for _ in range(2)]
        for t in busy:
            t.start()
        time.sleep(0.3)
        started = time.perf_counter()
        rejected = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["d"]})
        elapsed = time.perf_counter() - started
        gate.set()
        for t in busy:
            t.join()
    assert rejected.status_code == 503 and rejected.json()["error"]["type"] == "overloaded"
    assert elapsed < 1.0
    assert results == [200, 200]
