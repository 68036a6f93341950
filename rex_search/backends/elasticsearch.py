"""Elasticsearch backend (elasticsearch client 8/9, servers 8.x and 9.x): BM25 via
multi_match, dense via ``dense_vector`` (HNSW, dot_product on unit vectors) and the top-level
``knn`` search option with a pre-filter, or faiss-local."""

from __future__ import annotations

import re
from typing import Any

from rex_search.backends.base import Filters
from rex_search.backends.cluster import ClusterBackend
from rex_search.backends.cluster_bodies import filter_clauses
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
        kwargs: dict[str, Any] = {"hosts": t.urls, "request_timeout": t.timeout,
                                  "max_retries": 0,  # one layer of retries: rex-search's
                                  "verify_certs": t.verify_certs}
        if t.username:
            kwargs["basic_auth"] = (t.username, t.password or "")
        if t.api_key:
            kwargs["api_key"] = t.api_key
        if t.ca_certs:
            kwargs["ca_certs"] = t.ca_certs
        client = Elasticsearch(**kwargs)
        client._transport = ServerVersionTransport(client.transport)  # type: ignore[assignment]
        return client

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

    def _create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        self.client.indices.create(index=name, settings=settings, mappings=mappings)

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.search(index=index, **body).body

    def _bulk_request(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        return self.client.bulk(operations=operations).body

    def _mget(self, index: str, ids: list[str], source: list[str] | None) -> list[dict[str, Any]]:
        return self.client.mget(index=index, ids=ids, source_includes=source)["docs"]

    def _swap_alias(self, remove: list[str], add: str) -> None:
        actions = [{"remove": {"index": i, "alias": self.alias}} for i in remove]
        self.client.indices.update_aliases(
            actions=[*actions, {"add": {"index": add, "alias": self.alias}}])

    def _get_alias(self) -> dict[str, Any]:
        return self.client.indices.get_alias(name=self.alias).body


COMPATIBLE = re.compile(r"compatible-with=(\d+)")
VERSION_PROBES = ("/", "/_nodes/_local?filter_path=nodes.*.version")


class ServerVersionTransport:
    """The client's transport, speaking the server's API version.

    The elasticsearch 9 client marks every request ``compatible-with=9``, which Elasticsearch 8
    refuses (``media_type_header_exception``) -- the client alone cannot talk to an 8.x
    cluster. Before the first request this asks the server its version (plain JSON, which
    every version accepts; the request's own auth headers) and, when the server is older than
    the client, marks requests ``compatible-with=<server major>`` instead.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.server_major: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def perform_request(self, method: str, target: str, *, headers: Any = None,
                        **kwargs: Any) -> Any:
        if self.server_major is None:
            self.server_major = self._probe(headers or {}, kwargs)
        major = self.server_major
        if headers is not None and major:
            headers = {k: COMPATIBLE.sub(lambda m: f"compatible-with="
                                         f"{min(int(m.group(1)), major)}", v)
                       for k, v in dict(headers).items()}
        return self._transport.perform_request(method, target, headers=headers, **kwargs)

    def _probe(self, headers: Any, kwargs: dict[str, Any]) -> int:
        """The server's major version, or 0 when it will not say (then nothing changes)."""
        plain = {k: v for k, v in dict(headers).items()
                 if k.lower() not in ("accept", "content-type")}
        plain["accept"] = "application/json"
        options = {k: v for k, v in kwargs.items() if k == "request_timeout"}
        for path in VERSION_PROBES:
            try:
                response = self._transport.perform_request("GET", path, headers=plain,
                                                           **options)
            except Exception:  # noqa: BLE001 -- unreachable: the real request will say so
                return 0
            body = response.body if response.meta.status == 200 else None
            if not isinstance(body, dict):
                continue
            versions = [body.get("version", {}).get("number")] if path == "/" else \
                [n.get("version") for n in body.get("nodes", {}).values()]
            majors = [int(v.split(".")[0]) for v in versions if isinstance(v, str)]
            if majors:
                return min(majors)
        return 0
