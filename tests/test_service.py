"""The HTTP service over real HTTP on loopback (uvicorn in a thread, real pipeline)."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.service import Limits, create_app
from tests.conftest import cosine_reranker
from tests.service_server import running


@pytest.fixture(scope="module")
def pipeline(small_index_dir, embedder):
    from rex_search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(small_index_dir)
    yield SearchPipeline(backend, embedder, cosine_reranker(backend, embedder))
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
    # What a results page shows, from the catalog (every sample product has an image).
    for hit in data["hits"]:
        assert hit["image"].startswith("https://")
        assert hit["category"] and (hit["rating"] is None or 0 <= hit["rating"] <= 5)
    # The page's views, and a facet selection narrowing the hits.
    page = httpx.post(f"{url}/search", json={"query": "running shoes no nike under $80",
                                             "views": True, "facets": {"price": ["under $25"]}})
    data = page.json()
    assert {v["value"] for v in data["facets"]["price"] if v["selected"]} == {"under $25"}
    assert all(h["price"] < 25 for h in data["hits"]) and data["matching"] >= len(data["hits"])
    assert {h["reason"] for h in data["hidden"]} >= {"have no price", "are Nike"}
    assert data["before"][0]["retrieval_rank"] == 1
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


DOCUMENTS = ["cast iron skillet", "trail running shoes for men", "wool socks",
             "Title: Nike Pegasus running shoe\nDescription: Brand: Nike. Mesh upper."]


def test_the_cohere_sdk_reranks_through_the_service(url):
    """A real client of the hosted rerank API, pointed at rex-search: /v2 and /v1."""
    import cohere

    expected = httpx.post(f"{url}/rerank", json={"query": "running shoes",
                                                 "documents": DOCUMENTS}).json()["results"]
    with httpx.Client() as http:  # closed here: the SDK's own client would leak its socket
        v2 = cohere.ClientV2(api_key="unused", base_url=url, httpx_client=http).rerank(
            model="rex-search", query="running shoes", documents=DOCUMENTS, top_n=2)
        v1 = cohere.Client(api_key="unused", base_url=url, httpx_client=http).rerank(
            model="rex-search", query="running shoes", documents=DOCUMENTS, top_n=50,
            return_documents=True)
    assert [r.index for r in v2.results] == [r["index"] for r in expected[:2]]
    assert [r.relevance_score for r in v2.results] == [r["relevance_score"]
                                                       for r in expected[:2]]
    assert v2.meta.api_version.version == "2"
    assert len(v1.results) == len(DOCUMENTS)  # top_n clamped, as the hosted APIs do
    assert [r.document.text for r in v1.results] == [DOCUMENTS[r["index"]] for r in expected]


def test_rerank_clamps_top_n_and_returns_documents_on_request(url):
    body = {"query": "running shoes", "documents": DOCUMENTS, "top_n": 99}
    plain = httpx.post(f"{url}/v2/rerank", json=body).json()
    assert len(plain["results"]) == 4 and "document" not in plain["results"][0]
    assert plain["id"] and plain["meta"]["api_version"] == {"version": "2"}
    shown = httpx.post(f"{url}/v1/rerank", json={**body, "return_documents": True}).json()
    assert shown["results"][0]["document"] == {"text": DOCUMENTS[shown["results"][0]["index"]]}
    bad = httpx.post(f"{url}/rerank", json={**body, "return_documents": "yes"})
    assert bad.status_code == 422


def test_an_api_key_guards_every_post_but_not_health(pipeline):
    with running(create_app(pipeline, api_key="s3cret-key")) as base:
        body = {"query": "running shoes", "documents": ["shoe"]}
        refused = httpx.post(f"{base}/v2/rerank", json=body)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["error"]["type"] == "unauthorized"
        wrong = httpx.post(f"{base}/search", json={"query": "shoes"},
                           headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = httpx.post(f"{base}/v2/rerank", json=body,
                             headers={"Authorization": "Bearer s3cret-key"})
        assert allowed.status_code == 200
        assert httpx.get(f"{base}/health").status_code == 200


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/search", {"query": ""}, 422, "query: the query must be a non-empty string"),
    ("/search", {"query": "x" * 600}, 422, "query is 600 characters; at most 512"),
    ("/search", {"query": "shoes", "size": 0}, 422,
     "size: Input should be greater than or equal to 1"),
    ("/search", {"query": "shoes", "size": 500}, 422, "size: at most 100"),
    ("/search", {"query": "shoes", "page": True}, 422, "page: Input should be a valid integer"),
    ("/search", {"query": "shoes", "filters": {"colour": "red"}}, 422,
     "filters.colour: Extra inputs are not permitted"),
    ("/search", {"query": "shoes", "filters": {"brands": "adidas"}}, 422,
     "filters.brands: Input should be a valid list"),
    ("/search", {"query": "shoes", "filters": {"min_price": "cheap"}}, 422,
     "filters.min_price: Input should be a valid number"),
    ("/search", {"query": "shoes", "filters": {"min_price": 50, "max_price": 10}}, 422,
     "min_price (50.0) is above max_price (10.0)"),
    ("/search", {"query": "shoes", "budget_ms": -1}, 422, "budget_ms: Input should be greater"),
    ("/search", {"query": "shoes", "budget_ms": 1e308}, 422,
     "budget_ms: Input should be less than or equal to 600000"),
    ("/search", {"query": "shoes", "facets": {"brand": "adidas"}}, 422,
     "facets.brand: Input should be a valid list"),
    ("/search", {"query": "shoes", "facets": {"colour": ["red"]}}, 422,
     "facets.colour: Extra inputs are not permitted"),
    ("/search", {"query": "shoes", "views": "yes"}, 422, "views: Input should be a valid boolean"),
    ("/search", {"query": "shoes", "facets": {"price": ["cheap"]}}, 422,
     "unknown price facet value(s) 'cheap'; valid: 'under $25'"),
    ("/rerank", {"query": "q", "documents": []}, 422, "documents: must be a non-empty list"),
    ("/rerank", {"query": "q", "documents": ["d"] * 1001}, 422, "at most 1000 documents"),
    ("/rerank", {"query": "q", "documents": [7]}, 422, "documents[0] must be a string"),
    ("/rerank", {"query": "q", "documents": ["d"], "top_n": 0}, 422, "top_n: Input should be"),
])
def test_bad_requests_get_clear_json_errors(url, path, body, status, message):
    response = httpx.post(url + path, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"]
    assert "Traceback" not in response.text


def test_embed_speaks_cohere_and_gives_the_indexed_vectors(url, pipeline):
    """What an ml-commons connector (Cohere blueprint) sends; the vectors equal the client
    side's: products as `rex-search index` embeds them, queries with the query instruction."""
    import numpy as np

    texts = ["Trail running shoe. Brand: Acme. Running Shoes. Mesh upper", "cast iron skillet"]
    embedder = pipeline.embedder
    documents = httpx.post(f"{url}/v1/embed", json={"texts": texts, "truncate": "END",
                                                    "input_type": "search_document"}).json()
    queries = httpx.post(f"{url}/v1/embed", json={"texts": texts[:1],
                                                  "input_type": "search_query"}).json()
    got = np.array(documents["embeddings"])
    assert got.shape == (2, embedder.dim) and documents["texts"] == texts
    assert documents["meta"]["model"] == embedder.model_id
    assert np.abs(got - embedder.encode(texts)).max() < 1e-5
    as_query = np.array(queries["embeddings"][0])
    assert np.abs(as_query - embedder.encode_queries(texts[:1])[0]).max() < 1e-5
    assert float(as_query @ got[0]) < 0.999  # the query instruction is applied
    for body, message in [({"texts": []}, "texts: must be a non-empty list"),
                          ({"texts": ["a"], "input_type": "image"}, "input_type"),
                          ({"texts": ["a"], "truncate": "START"}, "truncate"),
                          ({"texts": [1]}, "texts.0")]:
        response = httpx.post(f"{url}/v1/embed", json=body)
        assert response.status_code == 422, body
        assert message in response.json()["error"]["message"]


def test_invalid_json_and_health_metrics_openapi(url):
    response = httpx.post(f"{url}/search", content=b"{not json", headers={
        "content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_json"
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ready" and health["documents"] > 800
    assert httpx.post(f"{url}/search", json={"query": "shoes", "size": 1}).status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(
        httpx.get(f"{url}/metrics").text)}  # Prometheus' own parser reads it
    requests = {(s.labels["path"], s.labels["status"]) for s in families["rex_requests"].samples
                if s.name == "rex_requests_total"}
    assert ("/search", "200") in requests
    assert any(s.labels == {"stage": "rerank", "le": "+Inf"}
               for s in families["rex_stage_seconds"].samples)
    assert families["rex_degraded"].type == "counter"
    document = httpx.get(f"{url}/openapi.json").json()
    assert set(document["paths"]) >= {"/search", "/rerank", "/v1/rerank", "/v2/rerank",
                                      "/v1/embed"}
    # Generated from the request models and the result dataclasses: they cannot drift apart.
    from rex_search.service.models import RerankRequest, SearchRequest

    schemas = document["components"]["schemas"]
    assert set(schemas["SearchRequest"]["properties"]) == set(SearchRequest.model_fields)
    assert set(schemas["RerankRequest"]["properties"]) == set(RerankRequest.model_fields)
    assert {"hits", "degraded", "timings_ms"} <= set(schemas["SearchResult"]["properties"])
    assert {"image", "rating", "category"} <= set(schemas["Hit"]["properties"])
    assert "<form id=\"search\" role=\"search\">" in httpx.get(url + "/").text


def test_not_ready_until_loaded():
    with running(create_app(None)) as base:
        assert httpx.get(f"{base}/health").status_code == 503
        response = httpx.post(f"{base}/search", json={"query": "shoes"})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_internal_errors_do_not_leak(pipeline):
    class Broken:
        name, kind = "broken", "cross-encoder"

        def score(self, query, products):
            raise RuntimeError("secret internal detail")

    broken = SearchPipeline(pipeline.backend, pipeline.embedder, Broken())
    with running(create_app(broken)) as base:
        search = httpx.post(f"{base}/search", json={"query": "shoes"}).json()
        assert search["degraded"] and "fused order served" in search["degraded_reason"]
        assert "secret" not in search["degraded_reason"]  # the type, never the message
        rerank = httpx.post(f"{base}/rerank", json={"query": "q", "documents": ["d"]})
        assert rerank.status_code == 500
        assert "secret" not in rerank.text and rerank.json()["error"]["type"] == "internal"


def gated_pipeline(pipeline: SearchPipeline, gate: threading.Event) -> SearchPipeline:
    """The pipeline with a reranker that holds its worker until ``gate`` opens (5 s at most)."""

    class Gated:
        name, kind = "gated", "cross-encoder"

        def score(self, query, products):
            gate.wait(5)
            return [0.5] * len(products)

    return SearchPipeline(pipeline.backend, pipeline.embedder, Gated())


def test_overload_gets_fast_503s(pipeline):
    gate = threading.Event()
    slow = gated_pipeline(pipeline, gate)
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


def test_budget_ms_counts_the_time_spent_queued(pipeline):
    """With the only worker busy, a search with a 300 ms budget is answered 503 when its
    budget runs out -- not seconds later when the worker frees."""
    gate = threading.Event()
    slow = gated_pipeline(pipeline, gate)
    with running(create_app(slow, Limits(workers=1, queue=4))) as base:
        busy = threading.Thread(target=lambda: httpx.post(
            f"{base}/rerank", json={"query": "q", "documents": ["d"]}, timeout=10))
        busy.start()
        time.sleep(0.3)
        started = time.perf_counter()
        late = httpx.post(f"{base}/search", json={"query": "running shoes", "budget_ms": 300},
                          timeout=10)
        elapsed = time.perf_counter() - started
        gate.set()
        busy.join()
    assert late.status_code == 503 and late.json()["error"]["type"] == "budget_spent"
    assert 0.25 < elapsed < 1.5  # answered at its deadline, not when the worker freed (5 s)


def test_hostile_requests_are_refused_cheaply(url):
    form = httpx.post(f"{url}/rerank", content=b'{"query": "q", "documents": ["d"]}',
                      headers={"content-type": "text/plain"})
    assert form.status_code == 415  # a cross-site form post cannot start model work
    deep = httpx.post(f"{url}/search", content=b"[" * 100_000 + b"]" * 100_000,
                      headers={"content-type": "application/json"})
    assert deep.status_code in (400, 413) and deep.json()["error"]["type"] in (
        "invalid_json", "too_large")
    nested = httpx.post(f"{url}/search", content=b'{"q":' + b"[" * 50_000 + b"]" * 50_000
                        + b"}", headers={"content-type": "application/json"})
    assert nested.status_code == 400 and "nested too deeply" in nested.text
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:  # a 50 MB promise
        raw.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 52428800\r\n\r\n{}")
        assert raw.recv(200).startswith(b"HTTP/1.1 413")  # answered before any body is read
    surrogate = httpx.post(f"{url}/search", content=b'{"query": "shoes \\ud800"}',
                           headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and "not valid Unicode text" in surrogate.text
    pipe = httpx.post(f"{url}/search", json={"query": "1/0 inch pipe"})
    assert pipe.status_code == 200
    apostrophe = httpx.post(f"{url}/search", json={"query": "men's running shoes"})
    assert apostrophe.status_code == 200 and apostrophe.json()["hits"]


def test_headers_labels_and_unknown_paths(url):
    response = httpx.get(f"{url}/no/such%22path%0Ax", headers={"x-request-id": "a" * 5000})
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
    assert len(response.headers["x-request-id"]) <= 64
    assert response.json()["request_id"] == response.headers["x-request-id"]
    wrong_method = httpx.get(f"{url}/search", headers={"x-request-id": "trace-405"})
    assert wrong_method.json() == {"error": {"type": "method_not_allowed", "message":
                                             "GET /search: method_not_allowed"},
                                   "request_id": "trace-405"}
    page = httpx.get(url + "/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'path="other"' in metrics and "no/such" not in metrics
    assert "# TYPE rex_requests_total counter" in metrics
    assert "# HELP rex_request_seconds" in metrics


def test_serve_opens_its_port_while_loading(small_index_dir):
    import subprocess
    import sys

    from tests.service_server import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from rex_search.cli import main; main()", "serve", "--index",
         str(small_index_dir), "--port", str(port)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    seen: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            seen.append((response.status_code, response.json()["status"]))
            if response.status_code == 200:
                break
            time.sleep(0.2)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert seen[0] == (503, "loading"), seen  # the port answered before the models loaded
    assert seen[-1] == (200, "ready")
    # The start-up lines name the address, then the index, models and runtime.
    assert f"serving http://127.0.0.1:{port}" in stderr
    assert "reranker rex-reranker-bge-small" in stderr and "bge-small-en-v1.5 on onnx" in stderr


def test_an_infinite_budget_is_refused_not_turned_into_no_reranking(url):
    response = httpx.post(f"{url}/search", content=b'{"query": "shoes", "budget_ms": Infinity}',
                          headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "budget_ms: Input should be a finite number" in response.json()["error"]["message"]


def test_contradictory_prices_in_the_query_are_answered_not_a_500(url):
    response = httpx.post(f"{url}/search", json={"query": "shoes over $30 under $20"})
    assert response.status_code == 200, response.text
    understood = response.json()["constraints"]
    assert understood["max_price"] == 20.0 and "min_price" not in understood
    assert understood["notes"] == ["ignored the minimum price $30: it is above the maximum $20"]
    explicit = httpx.post(f"{url}/search", json={"query": "shoes under $20",
                                                 "filters": {"min_price": 50}})
    assert explicit.status_code == 200, explicit.text
