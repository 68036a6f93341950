"""BM25 over product text with tantivy (title boosted; brand/category/price/stock filter fields).

Documents are keyed by the product's 63-bit ``doc_id``; writing one replaces any document with
that id, so every write is an upsert.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tantivy

from rex_search.backends.base import Filters
from rex_search.catalog.schema import Product, brand_key
from rex_search.errors import BackendError

TEXT_FIELDS = ("title", "brand", "categories", "features", "description")
FIELD_BOOSTS = {"title": 3.0, "brand": 1.5, "categories": 1.0, "features": 0.7, "description": 0.5}
# Word tokens only, split as tantivy's default tokenizer splits ("men's" -> men, s): an
# apostrophe or dot inside a token is query syntax to tantivy's parser.
_TOKEN = re.compile(r"[^\W_]+")
MAX_QUERY_TOKENS = 64


class Bm25Store:
    """A tantivy index in ``folder``; ``hint`` (how to repair) ends every damage message."""

    def __init__(self, folder: Path, create: bool, hint: str = "") -> None:
        self.folder = folder
        self._hint = hint
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise BackendError(f"index {folder.parent} has lost its bm25/ directory{hint}")
        try:
            self._index = tantivy.Index(_schema(), path=str(folder), reuse=True)
            self._index.searcher()
        except ValueError as exc:
            raise BackendError(f"{folder} is unreadable ({exc}){hint}") from None
        self._writer: tantivy.IndexWriter | None = None

    @property
    def num_docs(self) -> int:
        return int(self._index.searcher().num_docs)

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=64_000_000, num_threads=1)
            except ValueError as exc:  # tantivy's own lock: a writer outside rex-search
                raise BackendError(f"index {self.folder.parent} is being written by another "
                                   f"process ({exc})") from None
        return self._writer

    def put(self, doc_id: int, product: Product, in_stock: int | None) -> None:
        writer = self._get_writer()
        writer.delete_documents_by_term("doc_id", doc_id)
        writer.add_document(_document(doc_id, product, in_stock))

    def delete(self, doc_id: int) -> None:
        self._get_writer().delete_documents_by_term("doc_id", doc_id)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self._index.reload()

    def reload(self) -> None:
        self._index.reload()

    def search(self, query: str, k: int, filters: Filters | None) -> list[tuple[int, float]]:
        """Top-``k`` (doc_id, BM25 score) for the word tokens of ``query``."""
        tokens = list(dict.fromkeys(_TOKEN.findall(query.lower())))[:MAX_QUERY_TOKENS]
        if not tokens or k <= 0:
            return []
        # Only word tokens reach the parser, lower-cased, so user text cannot inject query
        # syntax (field:, -, quotes, AND/OR/NOT).
        text_query = self._index.parse_query(" ".join(tokens), list(TEXT_FIELDS), FIELD_BOOSTS)
        searcher = self._index.searcher()
        hits = searcher.search(_with_filters(text_query, self._index.schema, filters), limit=k,
                               count=False).hits
        doc_ids = searcher.fast_field_values("doc_id", [address for _, address in hits])
        return [(int(d), float(score)) for (score, _), d in zip(hits, doc_ids, strict=True)
                if d is not None]

    def matching_ids(self, filters: Filters | None = None) -> np.ndarray:
        """Every doc_id the filters allow (all of them without filters)."""
        searcher = self._index.searcher()
        query = _with_filters(tantivy.Query.all_query(), self._index.schema, filters)
        hits = searcher.search(query, limit=max(1, searcher.num_docs), count=False).hits
        return np.array(searcher.fast_field_values("doc_id", [a for _, a in hits]),
                        dtype=np.int64)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("doc_id", stored=True, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name="en_stem")
    builder.add_text_field("brand_key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("category_key", tokenizer_name="raw", index_option="basic")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_integer_field("in_stock", indexed=True, fast=True)
    return builder.build()


def _document(doc_id: int, product: Product, in_stock: int | None) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_integer("doc_id", doc_id)
    doc.add_text("title", product.title)
    if product.brand:
        doc.add_text("brand", product.brand)
        doc.add_text("brand_key", brand_key(product.brand))
    for category in product.categories:
        doc.add_text("categories", category)
        doc.add_text("category_key", category.lower())
    if product.main_category:
        doc.add_text("category_key", product.main_category.lower())
    for feature in product.features:
        doc.add_text("features", feature)
    if product.description:
        doc.add_text("description", product.description)
    if product.price is not None:
        doc.add_float("price", product.price)
    if in_stock is not None:
        doc.add_integer("in_stock", int(in_stock))
    return doc


def _with_filters(query: tantivy.Query, schema: tantivy.Schema,
                  filters: Filters | None) -> tantivy.Query:
    if filters is None or filters.is_empty():
        return query
    must = tantivy.Occur.Must
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = [(must, query)]
    if filters.brands:
        keys = [brand_key(b) for b in filters.brands]
        clauses.append((must, tantivy.Query.term_set_query(schema, "brand_key", keys)))
    if filters.exclude_brands:
        keys = [brand_key(b) for b in filters.exclude_brands]
        clauses.append((tantivy.Occur.MustNot,
                        tantivy.Query.term_set_query(schema, "brand_key", keys)))
    if filters.categories:
        values = [c.lower() for c in filters.categories]
        clauses.append((must, tantivy.Query.term_set_query(schema, "category_key", values)))
    if filters.min_price is not None or filters.max_price is not None:
        clauses.append((must, tantivy.Query.range_query(
            schema, "price", tantivy.FieldType.Float, filters.min_price, filters.max_price)))
    if filters.exclude_out_of_stock:
        clauses.append((tantivy.Occur.MustNot,
                        tantivy.Query.term_query(schema, "in_stock", 0)))
    if filters.in_stock is not None:
        clauses.append((must, tantivy.Query.term_query(schema, "in_stock",
                                                       int(filters.in_stock))))
    return tantivy.Query.boolean_query(clauses)
