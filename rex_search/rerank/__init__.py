"""Rerankers: score (query, product) pairs. See `load_reranker` for the names accepted."""

from rex_search.rerank.base import Reranker, load_reranker

__all__ = ["Reranker", "load_reranker"]
