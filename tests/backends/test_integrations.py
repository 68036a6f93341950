from __future__ import annotations

import json
import re

import pytest

from rex_search.backends.base import Filters
from rex_search.backends.cluster_bodies import bm25_body, filter_clauses
from rex_search.backends.connection import parse_target
from rex_search.backends.elasticsearch import ElasticsearchBackend
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.errors import ConfigError
from rex_search.integrations.opensearch_pipeline import plan


def test_install_pipeline_plan_shapes():
    existing = "^https://api\\.cohere\\.ai/.*$"
    steps = plan("http://10.0.0.5:8080", "rex-rerank", trusted=[existing], api_key="k",
                 rrf_k=42)
    assert [(s.method, s.path) for s in steps] == [
        ("PUT", "/_cluster/settings"),
        ("POST", "/_plugins/_ml/connectors/_create"), ("POST", "/_plugins/_ml/models/_register"),
        ("POST", "/_plugins/_ml/models/<understand_model_id>/_deploy"),
        ("POST", "/_plugins/_ml/connectors/_create"), ("POST", "/_plugins/_ml/models/_register"),
        ("POST", "/_plugins/_ml/models/<rank_model_id>/_deploy"),
        ("PUT", "/_search/pipeline/rex-rerank")]
    settings, understand, understand_model, _, rank, rank_model, _, pipeline = \
        (s.body for s in steps)
    persistent = settings["persistent"]
    # Appended to what the cluster trusts, never overwriting it.
    assert persistent["plugins.ml_commons.trusted_connector_endpoints_regex"] == [
        existing, r"^http://10\.0\.0\.5:8080/.*$"]
    assert persistent["plugins.ml_commons.connector.private_ip_enabled"] is True  # 10.0.0.5
    public = plan("http://93.184.216.34:8080")[0].body["persistent"]
    assert "plugins.ml_commons.connector.private_ip_enabled" not in public
    assert understand["name"] == "rex-search understand (rex-rerank)"
    assert rank["name"] == "rex-search rank (rex-rerank)"
    for connector, path in ((understand, "/opensearch/understand"), (rank, "/opensearch/rank")):
        action = connector["actions"][0]
        assert connector["parameters"]["endpoint"] == "http://10.0.0.5:8080"
        assert connector["credential"] == {"api_key": "k"}
        assert action["headers"]["Authorization"] == "Bearer ${credential.api_key}"
        assert action["url"] == "${parameters.endpoint}" + path
        filled = re.sub(r"\$\{parameters\.(\w+)\}",
                        lambda m: "q" if m.group(1) == "query" else "1", action["request_body"])
        assert set(json.loads(filled)) >= {"query"}  # JSON once ml-commons fills it in
    assert understand_model["name"] == "rex-search-understand-rex-rerank"
    assert rank_model["connector_id"] == "<rank_connector_id>"
    request = pipeline["request_processors"]
    assert [next(iter(p)) for p in request] == ["oversample", "ml_inference"]
    assert request[1]["ml_inference"]["model_id"] == "<understand_model_id>"
    assert request[1]["ml_inference"]["input_map"] == [{"query": "query.multi_match.query"}]
    ranker = pipeline["phase_results_processors"][0]["score-ranker-processor"]
    assert ranker["combination"] == {"technique": "rrf", "rank_constant": 42}
    response = pipeline["response_processors"]
    assert [next(iter(p)) for p in response] == ["ml_inference", "rerank", "truncate_hits"]
    assert response[0]["ml_inference"]["input_map"][0]["stocks"] == "stock"
    assert response[1]["rerank"]["by_field"]["target_field"] == "rex_score"
    open_service = plan("http://10.0.0.5:8080")[1].body
    assert "Authorization" not in open_service["actions"][0]["headers"]
    assert "api_key" not in open_service["credential"]  # ml-commons needs one; no secret in it
    with pytest.raises(ConfigError, match="--service must be http"):
        plan("10.0.0.5:8080")


def test_the_local_model_pipeline_reranks_the_prepared_field_alone():
    from rex_search.integrations.opensearch_pipeline import rerank_pipeline_body

    processor = rerank_pipeline_body("M1")["response_processors"][0]["rerank"]
    assert processor["ml_opensearch"]["model_id"] == "M1"
    # One prepared field: the processor joins several fields with no separator.
    assert processor["context"]["document_fields"] == ["rerank_text"]


def test_rerank_accepts_the_prepared_product_text():
    from rex_search.catalog.prompt import parse_product_text, product_text
    from rex_search.catalog.schema import Product

    product = Product(parent_asin="B1", title="Trail <b>Shoe</b>", brand="Acme",
                      description="Light &amp; fast.", features=("Vibram sole",))
    text = product_text(product)
    title, description = parse_product_text(text)
    assert product_text(Product(parent_asin="x", title=title, description=description)) == text
    assert parse_product_text("Trail shoe") is None  # a plain string stays a title


def test_filter_clauses_cover_every_filter():
    keep, drop = filter_clauses(Filters(brands=("Nike",), exclude_brands=("HP Inc.",),
                                        categories=("Shoes",), min_price=5, max_price=50,
                                        in_stock=True, exclude_out_of_stock=True))
    assert keep == [{"terms": {"brand_key": ["nike"]}}, {"terms": {"category_key": ["shoes"]}},
                    {"range": {"price": {"gte": 5, "lte": 50}}}, {"term": {"in_stock": True}}]
    assert drop == [{"terms": {"brand_key": ["hpinc"]}}, {"term": {"in_stock": False}}]
    body = bm25_body("shoes", 7, None)
    assert body["size"] == 7
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "shoes"


@pytest.mark.parametrize("cls", [OpenSearchBackend, ElasticsearchBackend])
def test_knn_bodies_push_filters_into_the_vector_search(cls):
    backend = cls.__new__(cls)  # body builders only: no connection
    backend.target = parse_target(f"{cls.engine}://h:9200/x")
    body = backend._knn_body([0.1, 0.2], 10, Filters(exclude_brands=("Apple",)))
    text = json.dumps(body)
    assert '"must_not": [{"terms": {"brand_key": ["apple"]}}]' in text
    if cls is OpenSearchBackend:
        assert body["query"]["knn"]["embedding"]["k"] == 10
        assert backend._vector_mapping(384)["method"]["engine"] == "faiss"
        backend.target = parse_target("opensearch://h:9200/x?knn_engine=lucene")
        assert backend._vector_mapping(384)["method"]["engine"] == "lucene"
    else:
        assert body["knn"]["num_candidates"] == 100
        assert backend._vector_mapping(384)["similarity"] == "dot_product"


def test_elasticsearch_urls_parse():
    target = parse_target("elasticsearch+https://elastic:pw@es.local:9243/shop")
    assert (target.engine, target.url, target.index) == ("elasticsearch", "https://es.local:9243",
                                                         "shop")


def test_retry_delays_are_jittered_within_half_to_all_of_the_capped_backoff():
    import random

    from rex_search.backends.bulk import backoff_delay

    random.seed(0)
    delays = [backoff_delay(attempt, 0.5, 2.0) for attempt in range(5) for _ in range(50)]
    caps = [min(2.0, 0.5 * 2 ** attempt) for attempt in range(5) for _ in range(50)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert len({round(d, 6) for d in delays[:50]}) > 40  # not one instant for every writer


def test_the_cluster_clients_do_not_retry_under_rex_searchs_own_retries():
    from rex_search.backends.connection import parse_target
    from rex_search.backends.opensearch import opensearch_client

    client = opensearch_client(parse_target("opensearch://localhost:9200/products"))
    assert client.transport.max_retries == 0
