from __future__ import annotations

import json

import pytest

from rex_search.backends.base import Filters
from rex_search.backends.cluster import bm25_body, filter_clauses
from rex_search.backends.connection import parse_target
from rex_search.backends.elasticsearch import ElasticsearchBackend
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.errors import ConfigError
from rex_search.integrations.opensearch_pipeline import plan


def test_install_pipeline_plan_shapes():
    steps = plan("http://10.0.0.5:8080", "rex-rerank", connector_id="C1", model_id="M1")
    assert [(s.method, s.path) for s in steps] == [
        ("PUT", "/_cluster/settings"), ("POST", "/_plugins/_ml/connectors/_create"),
        ("POST", "/_plugins/_ml/models/_register?deploy=true"),
        ("PUT", "/_search/pipeline/rex-rerank")]
    settings, connector, model, pipeline = (s.body for s in steps)
    assert settings["persistent"]["plugins.ml_commons.trusted_connector_endpoints_regex"] == [
        r"^http://10\.0\.0\.5:8080/.*$"]
    action = connector["actions"][0]
    assert connector["parameters"]["endpoint"] == "http://10.0.0.5:8080"
    assert action["url"] == "${parameters.endpoint}/rerank"
    assert action["pre_process_function"] == "connector.pre_process.cohere.rerank"
    assert action["post_process_function"] == "connector.post_process.cohere.rerank"
    assert "${parameters.documents}" in action["request_body"]
    assert model == {"name": "rex-search-reranker", "function_name": "remote",
                     "description": model["description"], "connector_id": "C1"}
    processor = pipeline["response_processors"][0]["rerank"]
    assert processor["ml_opensearch"]["model_id"] == "M1"
    assert processor["context"]["document_fields"] == ["title", "brand", "description"]
    assert "${" not in json.dumps([settings, model, pipeline])
    with pytest.raises(ConfigError, match="--service must be http"):
        plan("10.0.0.5:8080")


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
