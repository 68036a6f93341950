"""A split cross-encoder on ONNX Runtime: product states computed once, pairs finish jointly.

The model's first layers run on each segment alone (`rex_search.rerank.split_inputs`), so:

* the query's states come from one prefix call per query;
* a product's states come from one prefix call per product and are kept
  (:class:`ProductStates`): `prepare` fills them ahead of queries (at startup or after
  indexing), and a product first seen by a query is computed then and kept;
* each (query, product) pair then runs only the suffix: the remaining layers over the joined
  states, one pair per call like the whole-model scorer, so a score never depends on which
  other products a request held, nor on whether a product's states were computed earlier.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rex_search.errors import ModelError
from rex_search.lru import LruCache
from rex_search.onnx_session import default_threads, open_session
from rex_search.rerank.cache import text_digest
from rex_search.rerank.cross_encoder import _PairScorer, scores_from_logits
from rex_search.rerank.split_inputs import (
    SplitShape,
    plain_tokenizer,
    product_ids,
    query_ids,
    segment_feed,
)

PREFIX_FILE, SUFFIX_FILE = "prefix.int8.onnx", "suffix.int8.onnx"
# The prefix may stay fp32 where its int8 graph misses the export's agreement floor: it runs
# once per product (ahead of queries) and once per query, so only the suffix sets per-pair cost.
PREFIX_FP32_FILE = "prefix.onnx"


def prefix_file(path: Path) -> str | None:
    """The prefix graph a split model directory runs: int8 where kept, else fp32."""
    return next((f for f in (PREFIX_FILE, PREFIX_FP32_FILE) if (path / f).is_file()), None)


def is_split_model(path: Path) -> bool:
    """True for a directory holding a split cross-encoder's prefix and int8 suffix graphs."""
    return prefix_file(path) is not None and (path / SUFFIX_FILE).is_file()


class ProductStates(LruCache[str, np.ndarray]):
    """A product's prefix states (tokens x hidden) by its text's hash, stored as float16:
    about 40 KB per product at the 54-token budget, so 20,000 products take about 0.8 GB."""

    @property
    def nbytes(self) -> int:
        """Memory the kept states take."""
        return sum(states.nbytes for states in self.values())


class SplitOnnxCrossEncoder(_PairScorer):
    """Scores (query, product text) pairs with ``prefix.int8.onnx`` and ``suffix.int8.onnx``."""

    runtime = "onnx-int8-split"

    def __init__(self, model: str, cache_entries: int = 100_000,
                 product_entries: int = 20_000, threads: int | None = None,
                 prefix: str | None = None) -> None:
        """``prefix``: the prefix graph's file name (default: `prefix_file`'s choice)."""
        super().__init__(model, cache_entries=cache_entries)
        path = Path(self._path)
        shape = SplitShape.of(self._config)
        if shape is None or not is_split_model(path):
            raise ModelError(f"{model!r} is not a split cross-encoder: it needs config.json's "
                             f"rex_split_layers, {SUFFIX_FILE} and {PREFIX_FILE} or "
                             f"{PREFIX_FP32_FILE}")
        self.shape = shape
        self.prefix_file = prefix or prefix_file(path)
        self._plain = plain_tokenizer(str(path / "tokenizer.json"))
        self._prefix = open_session(path / str(self.prefix_file), threads=1)
        self._suffix = open_session(path / SUFFIX_FILE, threads=1)
        self._workers = ThreadPoolExecutor(threads or default_threads(),
                                           thread_name_prefix="rex-rerank")
        self.products = ProductStates(product_entries)
        self._query_states: LruCache[str, np.ndarray] = LruCache(1_000)
        self._count_lock = threading.Lock()

    @property
    def prepare_capacity(self) -> int:
        """How many products' states are kept: what `prepare` is worth calling with."""
        return self.products.max_entries

    def prepare(self, texts: Iterable[str]) -> int:
        """Compute and keep the states of products not kept yet; returns how many were new.
        Call it with the catalog's product texts so queries run only the suffix."""
        todo = list(dict.fromkeys(t for t in texts if self.products.get(text_digest(t))
                                  is None))
        for start in range(0, len(todo), 256):
            chunk = todo[start:start + 256]
            list(self._workers.map(self._product_state, chunk,
                                product_ids(self._plain, chunk, self.shape)))
        return len(todo)

    def _states(self, ids: list[int], segment: int) -> np.ndarray:
        return np.asarray(self._prefix.run(None, segment_feed(ids, segment, self.shape))[0][0])

    def _query_state(self, query: str) -> np.ndarray:
        known = self._query_states.get(query)
        if known is None:
            known = self._states(query_ids(self._plain, query, self.shape), 0)
            self._query_states.put(query, known)
        return known

    def _product_state(self, text: str, ids: list[int]) -> np.ndarray:
        key = text_digest(text)
        known = self.products.get(key)
        if known is None:
            known = self._states(ids, 1).astype(np.float16)
            self.products.put(key, known)
        return known

    def _score_uncached(self, query: str, texts: list[str]) -> list[float]:
        query_states = self._query_state(query)
        ids = product_ids(self._plain, texts, self.shape)

        def one(i: int) -> float:
            joined = np.concatenate([query_states,
                                     self._product_state(texts[i], ids[i]).astype(np.float32)])
            feed = {"hidden": joined[None], "attention_mask": np.ones((1, len(joined)),
                                                                      dtype=np.int64)}
            return float(scores_from_logits(np.asarray(self._suffix.run(None, feed)[0]))[0])

        scores = list(self._workers.map(one, range(len(texts))))
        with self._count_lock:
            self.tokens_processed += sum(len(query_states) + len(p) for p in ids)
        return scores
