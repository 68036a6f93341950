"""Rankers for rerank-mode evaluation: each scores exactly a query's judged candidates.

``random`` (seeded), ``bm25`` (Okapi BM25 over the candidates' own text), ``dense`` (embedding
cosine), ``fused`` (RRF of bm25 and dense, as the pipeline fuses), ``rerank`` (the configured
reranker) and ``pipeline`` (fused order, reranked, then the pipeline's rules).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rex_search.backends.base import IndexedProduct, ScoredId
from rex_search.catalog.schema import embedding_text
from rex_search.evaluate.judgments import JudgedDoc
from rex_search.pipelines.fusion import fuse
from rex_search.pipelines.query import parse_query
from rex_search.rerank.base import Reranker
from rex_search.rules.base import Ranked, Rule, RuleContext

RANKERS = ("random", "bm25", "dense", "fused", "rerank", "pipeline")
_WORD = re.compile(r"[^\W_]+")


class EvalRanker(Protocol):
    name: str
    unit_scores: bool  # scores are in [0, 1], so calibration can be measured

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        """One score per doc, higher is better."""


class CachedEmbedder:
    """Memoises an embedder's vectors by text, so rankers sharing an embedder embed once."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self._cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self._embedder.encode(missing), strict=True):
                self._cache[text] = vector
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim))


class RandomRanker:
    name, unit_scores = "random", True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        digest = hashlib.sha256(f"{self.seed}:{query_id}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        return [rng.random() for _ in docs]


def _tokens(text: str) -> list[str]:
    return [t[:-1] if len(t) > 3 and t.endswith("s") else t for t in _WORD.findall(text.lower())]


class BM25Ranker:
    """Okapi BM25 (k1=1.2, b=0.75) with statistics from the query's candidates; the title field
    counts twice as much as the description (like the index's title boost)."""

    name, unit_scores = "bm25", False

    def __init__(self, k1: float = 1.2, b: float = 0.75, title_weight: float = 2.0) -> None:
        self.k1, self.b, self.title_weight = k1, b, title_weight

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        terms = set(_tokens(query))
        titles = [_tokens(d.title) for d in docs]
        bodies = [_tokens(d.description) for d in docs]
        title_scores = self._field(terms, titles)
        body_scores = self._field(terms, bodies)
        return [self.title_weight * t + b for t, b in zip(title_scores, body_scores, strict=True)]

    def _field(self, terms: set[str], field: list[list[str]]) -> list[float]:
        n = len(field)
        avg = sum(len(f) for f in field) / n if n else 0.0
        df = Counter(t for f in field for t in set(f) if t in terms)
        out = []
        for f in field:
            tf = Counter(t for t in f if t in terms)
            s = 0.0
            for term, count in tf.items():
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                norm = count + self.k1 * (1 - self.b + self.b * len(f) / (avg or 1.0))
                s += idf * count * (self.k1 + 1) / norm
            out.append(s)
        return out


class DenseRanker:
    name, unit_scores = "dense", False

    def __init__(self, embedder) -> None:
        self._embedder = embedder

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        vectors = self._embedder.encode([embedding_text(d.as_product()) for d in docs])
        return [float(s) for s in vectors @ self._embedder.encode([query])[0]]


class FusedRanker:
    """RRF of the bm25 and dense rankings of the candidates (the pipeline's fusion)."""

    name, unit_scores = "fused", False

    def __init__(self, embedder, rrf_k: int = 60) -> None:
        self._bm25, self._dense, self.rrf_k = BM25Ranker(), DenseRanker(embedder), rrf_k

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        lists = {}
        for name, ranker in (("bm25", self._bm25), ("dense", self._dense)):
            scores = ranker.score(query_id, query, docs)
            order = sorted(range(len(docs)), key=lambda i: (-scores[i], docs[i].parent_asin))
            lists[name] = [ScoredId(docs[i].parent_asin, scores[i]) for i in order]
        fused = {c.parent_asin: c.fused_score for c in fuse(lists, "rrf", self.rrf_k)}
        return [fused[d.parent_asin] for d in docs]


class RerankRanker:
    unit_scores = True

    def __init__(self, reranker: Reranker) -> None:
        self._reranker = reranker
        self.name = "rerank"
        self.unit_scores = reranker.kind == "cross-encoder"

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        return self._reranker.score(query, [d.as_product() for d in docs])


class PipelineRanker:
    """Fused order -> reranker over the first ``window`` -> rules; score = minus final rank."""

    name, unit_scores = "pipeline", False

    def __init__(self, embedder, reranker: Reranker, rules: Sequence[Rule] = (),
                 window: int = 100) -> None:
        self._fused = FusedRanker(embedder)
        self._reranker, self._rules, self.window = reranker, tuple(rules), window

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        from rex_search.pipelines.fusion import Candidate

        fused = self._fused.score(query_id, query, docs)
        order = sorted(range(len(docs)), key=lambda i: (-fused[i], docs[i].parent_asin))
        ranked = [Ranked(Candidate(docs[i].parent_asin, rank, fused[i], {}),
                         IndexedProduct(docs[i].as_product()), fused[i])
                  for rank, i in enumerate(order, start=1)]
        window = ranked[: self.window]
        scores = self._reranker.score(query, [r.item.product for r in window])
        for r, s in zip(window, scores, strict=True):
            r.score = r.rerank_score = s
        ranked[: len(window)] = sorted(window, key=lambda r: -r.score)
        context = RuleContext(query=query, parsed=parse_query(query))
        for rule in self._rules:
            ranked = rule.apply(ranked, context).kept
        position = {r.parent_asin: len(ranked) - i for i, r in enumerate(ranked)}
        return [float(position.get(d.parent_asin, -1)) for d in docs]


def make_rankers(names: Sequence[str], embedder, reranker: Reranker | None,
                 seed: int = 0, rules: Sequence[Rule] = ()) -> list[EvalRanker]:
    """Build the named rankers, sharing one cached embedder."""
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; valid: {', '.join(RANKERS)}")
    cached = CachedEmbedder(embedder) if embedder is not None else None
    built: list[EvalRanker] = []
    for name in names:
        if name == "random":
            built.append(RandomRanker(seed))
        elif name == "bm25":
            built.append(BM25Ranker())
        elif name == "dense":
            built.append(DenseRanker(cached))
        elif name == "fused":
            built.append(FusedRanker(cached))
        elif name == "rerank":
            built.append(RerankRanker(_share(reranker, cached)))
        else:
            built.append(PipelineRanker(cached, _share(reranker, cached), rules))
    return built


def _share(reranker: Reranker | None, cached) -> Reranker:
    if reranker is None:
        raise ValueError("the rerank and pipeline rankers need a reranker")
    if reranker.kind == "embedding-cosine":
        from rex_search.rerank.cosine import EmbeddingCosineReranker

        return EmbeddingCosineReranker(cached)
    return reranker
