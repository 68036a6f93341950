"""Cross-encoder scoring for both RexReranker output heads, on PyTorch or ONNX Runtime.

* single-logit head (``num_labels == 1``, e.g. ms-marco MiniLM cross-encoders):
  score = sigmoid(logit), in [0, 1];
* distributional head (``num_labels == 11``, RexRerankers): p = softmax(logits) over bins with
  centres c_k = 0, 0.1, ..., 1.0, and score = E[relevance] = sum_k p_k c_k, in [0, 1].

Less work per request: identical product texts are scored once, a (model, query, text) LRU
cache answers repeats, and pairs are sorted by length and batched under a token budget, so a
batch pads to similar lengths and its memory stays bounded.

A dynamically quantised (int8) model is the exception: it quantises each activation with one
scale for the whole batch, so a pair's score would depend on which other pairs (and how much
padding) shared its batch -- up to 0.11 apart on DEV, and a cached score would depend on the request
that filled the cache. It runs one pair per call instead, on a pool of single-threaded calls,
which measured as fast as batching on 2 cores (benchmarks/bench_int8_calls.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from rex_search.catalog.prompt import product_text, query_text
from rex_search.catalog.schema import Product
from rex_search.errors import ModelError
from rex_search.model_files import check_tokenizer, load_error, resolve_model
from rex_search.onnx_session import default_threads, open_session
from rex_search.rerank.cache import ScoreCache
from rex_search.rerank.split_inputs import SplitShape, plain_tokenizer, split_pairs

BIN_CENTRES = np.linspace(0.0, 1.0, 11)


def expected_relevance(logits: np.ndarray) -> np.ndarray:
    """Expected value over the 11 relevance bins of softmax(logits), row-wise."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.asarray(probs @ BIN_CENTRES)


def scores_from_logits(logits: np.ndarray) -> np.ndarray:
    """Scores in [0, 1]: sigmoid of a single logit, or expected relevance over 11 bins."""
    if logits.shape[-1] == 1:
        return np.asarray(1.0 / (1.0 + np.exp(-logits[:, 0])))
    return expected_relevance(logits)


class _PairTokenizer:
    """A model folder's ``tokenizer.json`` on the `tokenizers` library, called like a
    transformers tokenizer on (query, text) pairs: no transformers (nor torch) needed."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size()

    def __call__(self, queries: list[str], texts: Sequence[str], truncation: str,
                 max_length: int) -> dict[str, list[list[int]]]:
        self._tokenizer.enable_truncation(max_length, strategy=truncation)
        # Tokenizing whole 1,000-character texts to keep 64 tokens of each: 8.7 ms for 50
        # pairs; cut after their first max_length words first: 4.8 ms (2-core EPYC). A cut
        # between words leaves the tokens before it unchanged, so a cut pair that fills
        # max_length with the whole query has exactly the whole text's ids. Any other cut pair
        # (words that are no tokens, such as zero-width characters; a query truncated too,
        # where the split between the sides depends on the text's full length) is encoded
        # again from the whole text. A text under ~6 characters a word is not looked at.
        cut = [_first_words(t, max_length) if len(t) > 6 * max_length else t for t in texts]
        encoded = self._tokenizer.encode_batch(list(zip(queries, cut, strict=True)))
        query_tokens: dict[str, int] = {}  # only for queries of cut pairs

        def query_cut(query: str, e: Any) -> bool:
            if query not in query_tokens:
                query_tokens[query] = len(self._tokenizer.encode(
                    query, add_special_tokens=False).ids)
            return bool(e.sequence_ids.count(0) < query_tokens[query])

        again = [i for i, e in enumerate(encoded) if len(cut[i]) < len(texts[i]) and (
            len(e.ids) < max_length or query_cut(queries[i], e))]
        if again:
            redone = self._tokenizer.encode_batch([(queries[i], texts[i]) for i in again])
            for i, e in zip(again, redone, strict=True):
                encoded[i] = e
        return {"input_ids": [e.ids for e in encoded],
                "token_type_ids": [e.type_ids for e in encoded],
                "attention_mask": [e.attention_mask for e in encoded]}


def _first_words(text: str, words: int) -> str:
    """``text`` up to its ``words``-th whitespace-separated word (and the space after it)."""
    parts = text.split(None, words)  # in C: the regex scan this replaced cost more than it saved
    if len(parts) <= words:
        return text
    return text[:len(text) - len(parts[-1])]


def _load_tokenizer_and_config(path: str) -> tuple[Any, Any]:
    """A folder with tokenizer.json and config.json is read directly (the bundled reranker,
    `export-onnx` output); anything else (a hub id, slow tokenizers) through transformers."""
    folder = Path(path)
    if (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file():
        import json
        from types import SimpleNamespace

        config = json.loads((folder / "config.json").read_text())
        config.setdefault("num_labels", len(config.get("id2label") or {}) or 2)
        return _PairTokenizer(folder / "tokenizer.json"), SimpleNamespace(**config)
    from transformers import AutoConfig, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoConfig.from_pretrained(path)


class _PairScorer:
    """Shared batching, dedupe, caching and head maths; subclasses supply `_logits`."""

    kind = "cross-encoder"
    runtime = "?"
    # Set by a scorer whose output for a pair must not depend on its batch (see the module doc).
    _pool: ThreadPoolExecutor | None = None

    def __init__(self, model: str, max_tokens: int = 256, batch_size: int = 32,
                 max_batch_tokens: int = 8192, cache_entries: int = 100_000) -> None:
        self.model_id = model
        self._path = resolve_model(model)
        try:
            self._tokenizer, config = _load_tokenizer_and_config(self._path)
            labels = int(config.num_labels)
        except (OSError, ValueError) as exc:
            raise load_error(model, exc) from exc
        check_tokenizer(model, self._tokenizer, config)
        self._config = config
        if labels not in (1, 11):
            raise ModelError(
                f"{model!r} has {labels} output labels; a reranker needs 1 (single-logit) or "
                "11 (distributional head over relevance bins 0, 0.1, ..., 1)"
            )
        self.head = "single-logit" if labels == 1 else "distributional-11"
        self._pooled = hasattr(config, "rex_pooling")  # trained here: PooledCrossEncoder
        # A model trained on short inputs is run at that length: longer ones were never seen.
        trained = getattr(config, "rex_max_tokens", None)
        self.max_tokens = min(max_tokens, trained) if trained else max_tokens
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.cache = ScoreCache(cache_entries) if cache_entries else None
        self.tokens_processed = 0  # padded tokens actually run through the model (FLOP count)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.model_id} ({self.head}, {self.runtime})"

    def _logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def score(self, query: str, products: Sequence[Product]) -> list[float]:
        return self.score_texts(query, [product_text(p) for p in products])

    def score_texts(self, query: str, texts: Sequence[str]) -> list[float]:
        """Scores in [0, 1] for (query, product text) pairs, in input order."""
        unique = list(dict.fromkeys(texts))  # variants with identical text: score once
        known: dict[str, float] = {}
        if self.cache is not None:
            for text in unique:
                hit = self.cache.get(ScoreCache.key(self.model_id, query, text))
                if hit is not None:
                    known[text] = hit
        todo = [t for t in unique if t not in known]
        if todo:
            for text, value in zip(todo, self._score_uncached(query, todo), strict=True):
                known[text] = value
                if self.cache is not None:
                    self.cache.put(ScoreCache.key(self.model_id, query, text), value)
        return [known[t] for t in texts]

    def encode(self, query: str, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """The model's inputs for each (query, product text) pair, unpadded."""
        # longest_first: the product side is cut first (it is the longer one); a query too
        # long for the budget on its own is cut too, instead of failing the whole rerank.
        encoded: dict[str, list[list[int]]] = self._tokenizer(
            [query_text(query)] * len(texts), texts, truncation="longest_first",
            max_length=self.max_tokens)
        return encoded

    def _score_uncached(self, query: str, texts: list[str]) -> list[float]:
        encoded = self.encode(query, texts)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        if self._pool is not None:
            return self._score_one_by_one(self._pool, encoded, lengths)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out = np.zeros(len(texts), dtype=np.float64)
        with self._lock:
            start = 0
            while start < len(order):
                # Grow the batch while it fits both the item and the padded-token budget.
                end = start + 1
                while (end < len(order) and end - start < self.batch_size
                       and lengths[order[end]] * (end - start + 1) <= self.max_batch_tokens):
                    end += 1
                idx = order[start:end]
                width = lengths[idx[-1]]
                batch = {name: np.array([values[i] + [0] * (width - len(values[i]))
                                         for i in idx], dtype=np.int64)
                         for name, values in encoded.items()}
                self.tokens_processed += width * len(idx)
                out[idx] = scores_from_logits(self._logits(batch))
                start = end
        return out.tolist()

    def _score_one_by_one(self, pool: ThreadPoolExecutor, encoded: dict[str, list[list[int]]],
                          lengths: list[int]) -> list[float]:
        """Each pair in its own call (no batch, no padding), the calls spread over ``pool``."""
        def one(i: int) -> float:
            pair = {name: np.array([values[i]], dtype=np.int64)
                    for name, values in encoded.items()}
            return float(scores_from_logits(self._logits(pair))[0])

        scores = list(pool.map(one, range(len(lengths))))
        with self._lock:
            self.tokens_processed += sum(lengths)
        return scores


class CrossEncoderReranker(_PairScorer):
    """A transformers sequence-classification model run with PyTorch."""

    runtime = "torch"

    def __init__(self, model: str, max_tokens: int = 256, batch_size: int = 32,
                 max_batch_tokens: int = 8192, cache_entries: int = 100_000,
                 threads: int | None = None) -> None:
        super().__init__(model, max_tokens, batch_size, max_batch_tokens, cache_entries)
        import torch
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        from rex_search.rerank.pooled import PooledCrossEncoder

        try:
            if self._pooled:
                self._model = PooledCrossEncoder.from_pretrained(self._path)
            else:
                self._model = AutoModelForSequenceClassification.from_pretrained(
                    self._path).eval()
        except (OSError, ValueError) as exc:
            raise load_error(model, exc) from exc
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self._split = SplitShape.of(self._config)
        if self._split is not None:
            self._plain = plain_tokenizer(str(Path(self._path) / "tokenizer.json"))

    def _score_uncached(self, query: str, texts: list[str]) -> list[float]:
        if self._split is None:
            return super()._score_uncached(query, texts)
        # a split model's own input layout (rerank/split_inputs.py), batch_size pairs a batch
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start:start + self.batch_size]
            batch = split_pairs(self._plain, [query] * len(chunk), chunk, self._split)
            scores += [float(s) for s in scores_from_logits(self._logits(batch))]
        return scores

    def _logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        with self._torch.inference_mode():
            tensors = {k: self._torch.from_numpy(v) for k, v in batch.items()}
            output = self._model(**tensors)
            return np.asarray(getattr(output, "logits", output).float().numpy())


class OnnxCrossEncoder(_PairScorer):
    """The same scorer on ONNX Runtime: a directory with ``model.onnx`` (from ``rex-search
    export-onnx``), its tokenizer and config. Needs no torch."""

    runtime = "onnx"

    def __init__(self, model: str, max_tokens: int = 256, batch_size: int = 32,
                 max_batch_tokens: int = 8192, cache_entries: int = 100_000,
                 threads: int | None = None, file: str = "model.onnx",
                 one_pair_per_call: bool | None = None) -> None:
        """``one_pair_per_call``: default on for an int8 model (see the module doc)."""
        super().__init__(model, max_tokens, batch_size, max_batch_tokens, cache_entries)
        onnx_file = Path(self._path) / file
        if not onnx_file.exists():
            raise ModelError(f"{onnx_file} not found: export it with `rex-search export-onnx`")
        self.runtime = "onnx-int8" if "int8" in file else "onnx"
        if one_pair_per_call is None:
            one_pair_per_call = self.runtime == "onnx-int8"
        if one_pair_per_call:
            workers = threads or default_threads()
            self._session = open_session(onnx_file, threads=1)
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rex-rerank")
        else:
            self._session = open_session(onnx_file, threads)
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {k: v for k, v in batch.items() if k in self._inputs}
        return np.asarray(self._session.run(None, feed)[0])
