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
from rex_search.config import DEFAULT_COMBINE, RerankConfig
from rex_search.errors import ConfigError
from rex_search.evaluate.judgments import JudgedDoc
from rex_search.lru import LruCache
from rex_search.pipelines.fusion import fuse
from rex_search.pipelines.rank import rank_candidates
from rex_search.query import KnownBrands, parse_query
from rex_search.rerank.base import Reranker
from rex_search.rerank.combine import combine, is_rerank_only
from rex_search.rerank.cosine import EmbeddingCosineReranker
from rex_search.results import Candidate
from rex_search.rules.base import Ranked, Rule, RuleContext

RANKERS = ("random", "bm25", "dense", "fused", "rerank", "pipeline")
_WORD = re.compile(r"[^\W_]+")


class EvalRanker(Protocol):
    name: str
    unit_scores: bool  # scores are in [0, 1], so calibration can be measured

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        """One score per doc, higher is better."""


class CachedEmbedder:
    """Memoises an embedder's vectors by text (bounded), so rankers sharing it embed once."""

    def __init__(self, embedder, max_entries: int = 200_000) -> None:
        self._embedder = embedder
        self.model_id = embedder.model_id
        self.dim = embedder.dim
        self._cache: LruCache[str, np.ndarray] = LruCache(max_entries)
        self._queries: LruCache[str, np.ndarray] = LruCache(max_entries)  # prefixed apart

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        found = {t: v for t in unique if (v := self._cache.get(t)) is not None}
        missing = [t for t in unique if t not in found]
        if missing:
            for text, vector in zip(missing, self._embedder.encode(missing), strict=True):
                self._cache.put(text, vector)
                found[text] = vector
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, self.dim))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        known = {t: v for t in dict.fromkeys(texts) if (v := self._queries.get(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            for text, vector in zip(missing, self._embedder.encode_queries(missing),
                                    strict=True):
                self._queries.put(text, vector)
                known[text] = vector
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, self.dim))


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
        return [float(s) for s in vectors @ self._embedder.encode_queries([query])[0]]


class FusedRanker:
    """RRF of the bm25 and dense rankings of the candidates (the pipeline's fusion)."""

    name, unit_scores = "fused", False

    def __init__(self, embedder, rrf_k: int = 60) -> None:
        self._bm25, self._dense, self.rrf_k = BM25Ranker(), DenseRanker(embedder), rrf_k

    def candidates(self, query_id: str, query: str,
                   docs: Sequence[JudgedDoc]) -> dict[str, Candidate]:
        """Each doc as a fused candidate, with its bm25 and dense rank and score."""
        lists = {}
        for name, ranker in (("bm25", self._bm25), ("dense", self._dense)):
            scores = ranker.score(query_id, query, docs)
            order = sorted(range(len(docs)), key=lambda i: (-scores[i], docs[i].parent_asin))
            lists[name] = [ScoredId(docs[i].parent_asin, scores[i]) for i in order]
        return {c.parent_asin: c for c in fuse(lists, "rrf", self.rrf_k)}

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        fused = self.candidates(query_id, query, docs)
        return [fused[d.parent_asin].fused_score for d in docs]


class RerankRanker:
    """The configured reranker over all judged candidates, combined with the first-stage
    signals exactly as ``[rerank] combine`` says (``rex_search/rerank/combine.py``)."""

    def __init__(self, reranker: Reranker, embedder=None,
                 weights: dict[str, float] | None = None) -> None:
        self._reranker = reranker
        self._weights = weights or dict(DEFAULT_COMBINE)
        self._fused = FusedRanker(embedder) if embedder is not None else None
        self.name = "rerank"
        only_model = is_rerank_only(self._weights)
        if not only_model and embedder is None:
            raise ConfigError("combining signals needs the embedder")
        self.unit_scores = True  # every reranker scores in [0, 1], and so does combine()

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        scores = self._reranker.score(query, [d.as_product() for d in docs])
        if is_rerank_only(self._weights):
            return scores
        fused = self._fused.candidates(query_id, query, docs)  # type: ignore[union-attr]
        ordered = [fused[d.parent_asin] for d in docs]
        signals = {"rerank": scores,
                   "dense": [c.sources["dense"].score for c in ordered],
                   "bm25": [c.sources["bm25"].score for c in ordered],
                   "fused": [c.fused_score for c in ordered]}
        return [c.score for c in combine(signals, self._weights)]


class PipelineRanker:
    """Fused order -> :func:`rank_candidates` (the pipeline's own reranking and rules, on the
    understood query); score = minus final rank. ``catalog`` (ids -> indexed products, e.g. an
    index's ``get``) supplies full product records, so brand rules see brands; without it the
    judged title and description are all a product has."""

    name, unit_scores = "pipeline", False

    def __init__(self, embedder, reranker: Reranker, rules: Sequence[Rule] = (),
                 config: RerankConfig | None = None, known_brands: KnownBrands | None = None,
                 catalog=None) -> None:
        self._fused = FusedRanker(embedder)
        self._cosine = EmbeddingCosineReranker(embedder)  # the `dense` signal (raw cosines)
        self._reranker, self._rules = reranker, tuple(rules)
        self._config = config or RerankConfig()
        self._brands, self._catalog = known_brands, catalog

    def score(self, query_id: str, query: str, docs: Sequence[JudgedDoc]) -> list[float]:
        fused = self._fused.candidates(query_id, query, docs)
        stored = self._catalog([d.parent_asin for d in docs]) if self._catalog else {}
        items = {d.parent_asin: stored.get(d.parent_asin) or IndexedProduct(d.as_product())
                 for d in docs}
        ranked = [Ranked(c, items[c.parent_asin], c.fused_score)
                  for c in sorted(fused.values(), key=lambda c: c.fused_rank)]
        parsed = parse_query(query, self._brands)
        cosine = self._cosine
        outcome = rank_candidates(
            parsed.text, ranked, self._reranker, self._config, self._rules,
            RuleContext(query=query, parsed=parsed),
            dense=lambda window: cosine.cosines(parsed.text, [r.item.product for r in window]))
        position = {r.parent_asin: len(outcome.ranked) - i for i, r in enumerate(outcome.ranked)}
        return [float(position.get(d.parent_asin, -1)) for d in docs]


def make_rankers(names: Sequence[str], embedder, reranker: Reranker | None,
                 seed: int = 0, rules: Sequence[Rule] = (), config: RerankConfig | None = None,
                 known_brands: KnownBrands | None = None, catalog=None) -> list[EvalRanker]:
    """Build the named rankers, sharing one cached embedder (build ``reranker`` on the same
    :class:`CachedEmbedder` to share it too)."""
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ConfigError(f"unknown ranker(s) {', '.join(unknown)}; valid: {', '.join(RANKERS)}")
    cached = embedder if embedder is None or isinstance(embedder, CachedEmbedder) \
        else CachedEmbedder(embedder)
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
            weights = (config or RerankConfig()).combine
            built.append(RerankRanker(_required(reranker), cached, weights))
        else:
            built.append(PipelineRanker(cached, _required(reranker), rules, config,
                                        known_brands, catalog))
    return built


def _required(reranker: Reranker | None) -> Reranker:
    if reranker is None:
        raise ConfigError("the rerank and pipeline rankers need a reranker")
    return reranker
