"""Inputs of a split cross-encoder: query and product tokenised apart, product placed at a fixed
position.

A split cross-encoder (PreTTR, MacAvaney et al., SIGIR 2020) runs its first ``split_layers``
layers on the query and on the product separately -- each segment attends only to itself --
and the remaining layers on the two joined. The product's early layers then depend on the
product alone and are computed once per product instead of once per (query, product) pair;
the query's once per query. That holds only if nothing in those layers sees the other segment,
so the product segment starts at a fixed position (``query_tokens``) whatever the query's
length, and each segment is cut to its own budget. Training and scoring build inputs here, so
the two cannot drift apart.

Token layout: ``[CLS] Query: q [SEP]`` (type 0, positions 0..) then ``Title: ... [SEP]``
(type 1, positions ``query_tokens``..).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rex_search.catalog.prompt import query_text


@dataclass(frozen=True)
class SplitShape:
    """Where a split model's segments meet: layers run apart, and each segment's token budget."""

    split_layers: int
    query_tokens: int = 20
    product_tokens: int = 54

    @classmethod
    def of(cls, config: Any) -> SplitShape | None:
        """The shape recorded in a model's config, or None for an ordinary cross-encoder."""
        layers = getattr(config, "rex_split_layers", None)
        if not layers:
            return None
        return cls(int(layers), int(config.rex_query_tokens), int(config.rex_product_tokens))


def plain_tokenizer(tokenizer: Any) -> Any:
    """A `tokenizers.Tokenizer` with no truncation or padding of its own: from a path, an
    existing Tokenizer or a transformers fast tokenizer (copied, so its settings stay)."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, str):
        plain = Tokenizer.from_file(tokenizer)
    else:
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        plain = Tokenizer.from_str(backend.to_str())
    plain.no_truncation()
    plain.no_padding()
    return plain


def _cut(ids: list[int], budget: int) -> list[int]:
    """The first ``budget`` tokens, keeping the closing [SEP]."""
    return ids if len(ids) <= budget else ids[:budget - 1] + ids[-1:]


def query_ids(tokenizer: Any, query: str, shape: SplitShape) -> list[int]:
    """``[CLS] Query: q [SEP]``, cut to the query budget."""
    return _cut(tokenizer.encode(query_text(query)).ids, shape.query_tokens)


def product_ids(tokenizers: Any, texts: list[str], shape: SplitShape) -> list[list[int]]:
    """``Title: ... [SEP]`` per product text (the single-text [CLS] dropped), cut to budget."""
    return [_cut(e.ids[1:], shape.product_tokens) for e in tokenizers.encode_batch(texts)]


def segment_feed(ids: list[int], segment: int, shape: SplitShape) -> dict[str, np.ndarray]:
    """One segment alone, as the prefix graph reads it (batch of one)."""
    start = 0 if segment == 0 else shape.query_tokens
    n = len(ids)
    return {"input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, n), dtype=np.int64),
            "token_type_ids": np.full((1, n), segment, dtype=np.int64),
            "position_ids": np.arange(start, start + n, dtype=np.int64)[None, :]}


def joined_batch(queries: list[list[int]], products: list[list[int]],
                 shape: SplitShape) -> dict[str, np.ndarray]:
    """Right-padded (query + product) rows with types and positions, for training and for
    checking the split graphs against the whole model."""
    width = max(len(q) + len(p) for q, p in zip(queries, products, strict=True))
    out = {name: np.zeros((len(queries), width), dtype=np.int64)
           for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids")}
    for row, (q, p) in enumerate(zip(queries, products, strict=True)):
        n = len(q) + len(p)
        out["input_ids"][row, :n] = q + p
        out["attention_mask"][row, :n] = 1
        out["token_type_ids"][row, len(q):n] = 1
        out["position_ids"][row, :len(q)] = np.arange(len(q))
        out["position_ids"][row, len(q):n] = np.arange(len(p)) + shape.query_tokens
    return out


def split_pairs(tokenizer: Any, queries: list[str], texts: list[str],
                shape: SplitShape) -> dict[str, np.ndarray]:
    """(query, product text) pairs in a split model's layout, as one padded batch."""
    return joined_batch([query_ids(tokenizer, q, shape) for q in queries],
                        product_ids(tokenizer, texts, shape), shape)
