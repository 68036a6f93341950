"""Elasticsearch backend (elasticsearch client 8/9): BM25 via multi_match, dense via
``dense_vector`` (HNSW, dot_product on unit vectors) and the top-level ``knn`` search option
with a pre-filter, or faiss-local."""

from __future__ import annotations

from typing import Any

from rex_search.backends.base import Filters
from rex_search.backends.cluster import ClusterBackend, filter_clauses
from rex_search.errors import ConfigError


class ElasticsearchBackend(ClusterBackend):
    engine = "elasticsearch"

    def _connect(self) -> Any:
        try:
            from elasticsearch import Elasticsearch
        except ImportError as exc:
            raise ConfigError("the Elasticsearch backend needs the elasticsearch client: "
                              "pip install 'rex-search[elasticsearch]'") from exc
        t = self.target
        kwargs: dict[str, Any] = {"hosts": [t.url], "request_timeout": t.timeout,
                                  "verify_certs": t.verify_certs}
        if t.username:
            kwargs["basic_auth"] = (t.username, t.password or "")
        if t.api_key:
            kwargs["api_key"] = t.api_key
        if t.ca_certs:
            kwargs["ca_certs"] = t.ca_certs
        return Elasticsearch(**kwargs)

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        from elasticsearch import ConnectionError, ConnectionTimeout

        return (ConnectionError, ConnectionTimeout)

    def _vector_mapping(self, dim: int) -> dict[str, Any]:
        return {"type": "dense_vector", "dims": dim, "index": True, "similarity": "dot_product",
                "index_options": {"type": "hnsw", "m": 16, "ef_construction": 128}}

    def _cosine(self, score: float) -> float:
        return 2.0 * score - 1.0  # dot_product similarity scores (1 + dot) / 2

    def _knn_body(self, vector: list[float], k: int, filters: Filters | None) -> dict[str, Any]:
        knn: dict[str, Any] = {"field": "embedding", "query_vector": vector, "k": k,
                               "num_candidates": max(100, 2 * k)}
        keep, drop = filter_clauses(filters)
        if keep or drop:
            knn["filter"] = {"bool": {"filter": keep, "must_not": drop}}
        return {"size": k, "_source": ["parent_asin"], "knn": knn}

    def _create_index(self, name: str, settings: dict, mappings: dict) -> None:
        self.client.indices.create(index=name, settings=settings, mappings=mappings)

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.search(index=index, **body).body

    def _bulk_request(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self.client.bulk(operations=operations).body

    def _mget(self, index: str, ids: list[str], source: list[str] | None) -> list[dict]:
        return self.client.mget(index=index, ids=ids, source_includes=source)["docs"]

    def _swap_alias(self, remove: list[str], add: str) -> None:
        actions = [{"remove": {"index": i, "alias": self.alias}} for i in remove]
        self.client.indices.update_aliases(
            actions=[*actions, {"add": {"index": add, "alias": self.alias}}])

    def _get_alias(self) -> dict[str, Any]:
        return self.client.indices.get_alias(name=self.alias).body
