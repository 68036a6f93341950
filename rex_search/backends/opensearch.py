"""OpenSearch backend (opensearch-py): BM25 via multi_match, dense via the k-NN plugin
(``knn_vector``, HNSW, faiss engine or lucene, inner product, efficient filtering) or
faiss-local."""

from __future__ import annotations

from typing import Any

from rex_search.backends.base import Filters
from rex_search.backends.cluster import ClusterBackend
from rex_search.backends.cluster_bodies import knn_clause
from rex_search.backends.connection import ClusterTarget
from rex_search.errors import ConfigError


def opensearch_client(t: ClusterTarget) -> Any:
    """An opensearch-py client for ``t``: auth, TLS (verified unless disabled) and timeout."""
    try:
        from opensearchpy import OpenSearch
    except ImportError as exc:
        raise ConfigError("the OpenSearch backend needs opensearch-py: "
                          "pip install 'rex-search[opensearch]'") from exc
    # max_retries=0: rex-search retries (capped backoff with jitter, resending only what
    # failed); the client's own retries underneath would multiply every retry.
    kwargs: dict[str, Any] = {"hosts": t.urls, "timeout": t.timeout, "max_retries": 0,
                              "verify_certs": t.verify_certs, "ssl_show_warn": False}
    if t.username:
        kwargs["http_auth"] = (t.username, t.password or "")
    if t.api_key:
        kwargs["headers"] = {"Authorization": f"ApiKey {t.api_key}"}
    if t.ca_certs:
        kwargs["ca_certs"] = t.ca_certs
    return OpenSearch(**kwargs)


class OpenSearchBackend(ClusterBackend):
    engine = "opensearch"

    def _connect(self) -> Any:
        return opensearch_client(self.target)

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        from opensearchpy.exceptions import ConnectionError, ConnectionTimeout

        return (ConnectionError, ConnectionTimeout)

    def _vector_mapping(self, dim: int) -> dict[str, Any]:
        return {"type": "knn_vector", "dimension": dim,
                "method": {"name": "hnsw", "engine": self.target.knn_engine,
                           "space_type": "innerproduct",
                           "parameters": {"m": 16, "ef_construction": 128}}}

    def _cosine(self, score: float) -> float:
        # k-NN's innerproduct space scores ip + 1 when ip >= 0, else 1 / (1 - ip).
        return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score

    def _knn_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return {"index": {**settings["index"], "knn": True, "knn.algo_param.ef_search": 256}}

    def _knn_body(self, vector: list[float], k: int, filters: Filters | None) -> dict[str, Any]:
        return {"size": k, "_source": ["parent_asin"], "query": knn_clause(vector, k, filters)}

    def _create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        self.client.indices.create(index=name, body={"settings": settings, "mappings": mappings})

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.search(index=index, body=body)

    def _bulk_request(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self.client.bulk(body=operations)

    def _mget(self, index: str, ids: list[str], source: list[str] | None) -> list[dict[str, Any]]:
        return self.client.mget(index=index, body={"ids": ids}, _source_includes=source)["docs"]

    def _swap_alias(self, remove: list[str], add: str) -> None:
        actions = [{"remove": {"index": i, "alias": self.alias}} for i in remove]
        self.client.indices.update_aliases(
            body={"actions": [*actions, {"add": {"index": add, "alias": self.alias}}]})

    def _get_alias(self) -> dict[str, Any]:
        return self.client.indices.get_alias(name=self.alias)
