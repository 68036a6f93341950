"""The JSON a cluster backend sends: index mappings, filter clauses, the BM25 query and each
product's document. Pure functions, shared by OpenSearch and Elasticsearch."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rex_search.backends.base import Filters
from rex_search.backends.embedded import doc_id_of
from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product, brand_key, embedding_text

BM25_FIELDS = ["title^3", "brand^1.5", "categories", "features^0.7", "description^0.5"]


def text_mappings() -> dict[str, Any]:
    english = {"type": "text", "analyzer": "english"}
    return {
        "parent_asin": {"type": "keyword"},
        "doc_id": {"type": "long"},
        "title": english,
        "brand": {**english, "fields": {"raw": {"type": "keyword"}}},
        "brand_key": {"type": "keyword"},
        "categories": english,
        "category_key": {"type": "keyword"},
        "features": english,
        "description": english,
        "price": {"type": "float"},
        "in_stock": {"type": "boolean"},
        "quantity": {"type": "integer"},
        "content_hash": {"type": "keyword", "index": False},
        "product": {"type": "keyword", "index": False, "doc_values": False},
        # The reranker's input, prepared: a search pipeline's rerank processor sends it whole.
        "rerank_text": {"type": "keyword", "index": False, "doc_values": False},
        # The dense embedder's input, prepared: an ingest pipeline's text_embedding processor
        # embeds it in the cluster (``?embed=cluster``) exactly as `rex-search index` would.
        "embed_text": {"type": "keyword", "index": False, "doc_values": False},
        # {"in_stock", "quantity"} as JSON, always present (null = unknown): the rules' input
        # that a search pipeline sends per hit (a missing field would misalign its lists).
        "stock": {"type": "keyword", "index": False, "doc_values": False},
    }


def filter_clauses(filters: Filters | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(filter, must_not) clauses of a bool query for ``filters``."""
    if filters is None:
        return [], []
    keep: list[dict[str, Any]] = []
    drop: list[dict[str, Any]] = []
    if filters.brands:
        keep.append({"terms": {"brand_key": [brand_key(b) for b in filters.brands]}})
    if filters.exclude_brands:
        drop.append({"terms": {"brand_key": [brand_key(b) for b in filters.exclude_brands]}})
    if filters.categories:
        keep.append({"terms": {"category_key": [c.lower() for c in filters.categories]}})
    if filters.min_price is not None or filters.max_price is not None:
        bounds = {k: v for k, v in (("gte", filters.min_price), ("lte", filters.max_price))
                  if v is not None}
        keep.append({"range": {"price": bounds}})
    if filters.in_stock is not None:
        keep.append({"term": {"in_stock": filters.in_stock}})
    if filters.exclude_out_of_stock:
        drop.append({"term": {"in_stock": False}})
    return keep, drop


def bm25_body(query: str, k: int, filters: Filters | None) -> dict[str, Any]:
    """A structured multi_match (never query_string): user text cannot inject query syntax."""
    keep, drop = filter_clauses(filters)
    return {"size": k, "_source": ["parent_asin"], "query": {"bool": {
        "must": [{"multi_match": {"query": query, "fields": BM25_FIELDS, "type": "most_fields"}}],
        "filter": keep, "must_not": drop}}}


def knn_clause(vector: list[float], k: int, filters: Filters | None) -> dict[str, Any]:
    """A ``knn`` query on the ``embedding`` field, filtered during the graph search."""
    knn: dict[str, Any] = {"vector": vector, "k": k}
    keep, drop = filter_clauses(filters)
    if keep or drop:
        knn["filter"] = {"bool": {"filter": keep, "must_not": drop}}
    return {"knn": {"embedding": knn}}


# How `rex-search opensearch install-pipeline` names what it registers (rex_search.integrations
# builds them; the cluster backend finds the query model by them).
EMBED_SUFFIX = "-embed"  # the ingest pipeline of pipeline NAME is NAME-embed


def ml_names(pipeline: str, role: str) -> tuple[str, str]:
    """(connector name, model name) of one role of one pipeline."""
    return f"rex-search {role} ({pipeline})", f"rex-search-{role}-{pipeline}"


def ml_search_body(name: str) -> dict[str, Any]:
    """An ml-commons ``_search`` for the connectors or models called ``name`` (not chunks)."""
    return {"size": 100, "query": {"bool": {
        "filter": [{"term": {"name.keyword": name}}],
        "must_not": [{"exists": {"field": "chunk_number"}}]}}}


def neural_clause(text: str, model_id: str, k: int, filters: Filters | None) -> dict[str, Any]:
    """A ``neural`` query on ``embedding``: the cluster embeds ``text`` with ``model_id`` (the
    query model `install-pipeline --embed` registers) and searches as `knn_clause` does."""
    neural: dict[str, Any] = {"query_text": text, "model_id": model_id, "k": k}
    keep, drop = filter_clauses(filters)
    if keep or drop:
        neural["filter"] = {"bool": {"filter": keep, "must_not": drop}}
    return {"neural": {"embedding": neural}}


def hybrid_query(text: str, vector: np.ndarray, filters: Filters | None, bm25_k: int,
                 dense_k: int) -> dict[str, Any]:
    """rex-search's retrieval as one neural-search ``hybrid`` query: the BM25 query and the
    kNN query with the same filters (a search pipeline's score-ranker fuses them by RRF)."""
    queries = [bm25_body(text, bm25_k, filters)["query"],
               knn_clause([float(x) for x in vector], dense_k, filters)]
    if not text.strip():  # an empty multi_match matches nothing; kNN alone then
        queries = queries[1:]
    return {"hybrid": {"queries": queries}}


def stock_field(in_stock: bool | None, quantity: int | None) -> str:
    return json.dumps({"in_stock": in_stock, "quantity": quantity})


def source_of(product: Product, vector: np.ndarray | None,
              stock: tuple[bool | None, int | None] = (None, None)) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "parent_asin": product.parent_asin, "doc_id": doc_id_of(product.parent_asin),
        "title": product.title, "brand": product.brand, "brand_key": brand_key(product.brand),
        "categories": list(product.categories),
        "category_key": [c.lower() for c in (*product.categories, product.main_category or "")
                         if c],
        "features": list(product.features), "description": product.description,
        "price": product.price, "content_hash": product.content_hash(),
        "product": json.dumps(product.to_dict(), ensure_ascii=False),
        "rerank_text": product_text(product),
        "embed_text": embedding_text(product),
        "stock": stock_field(*stock),
    }
    if stock[0] is not None:
        doc["in_stock"], doc["quantity"] = stock
    if vector is not None:
        doc["embedding"] = [float(x) for x in vector]
    return doc
