"""`SearchPipeline`: retrieve -> rerank -> rules -> one page of explained results.

Construct once per process and share it: `search` keeps no per-request state on the instance,
and the models serialise their own inference, so concurrent calls are safe.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rex_search.backends.base import Backend, Filters
from rex_search.config import Config, RerankConfig, RetrievalConfig
from rex_search.indexer.embed import Embedder
from rex_search.pipelines.retrieve import retrieve
from rex_search.rerank.base import Reranker, load_reranker
from rex_search.results import Explanation, Hit, SearchResult
from rex_search.rules.base import Ranked, Rule, RuleContext


class SearchPipeline:
    """Product search over a backend.

    Example:
        >>> pipeline = SearchPipeline.from_config(load_config())
        >>> result = pipeline.search("running shoes", size=5)
        >>> [hit.title for hit in result.hits][:1]
        ["Nike Women's Race Running Shoe, ..."]
    """

    def __init__(self, backend: Backend, embedder: Embedder, reranker: Reranker,
                 retrieval: RetrievalConfig | None = None, rerank: RerankConfig | None = None,
                 rules: Sequence[Rule] = ()) -> None:
        self.backend = backend
        self.embedder = embedder
        self.reranker = reranker
        self.retrieval = retrieval or RetrievalConfig()
        self.rerank_config = rerank or RerankConfig()
        self.rules = tuple(rules)

    @classmethod
    def from_config(cls, config: Config) -> SearchPipeline:
        from rex_search.backends.open import open_backend

        embedder = Embedder(config.index.embedding_model)
        backend = open_backend(config.index.path, embedder=None)
        reranker = load_reranker(config.rerank.model, embedder, config.rerank.max_tokens,
                                 config.rerank.batch_size)
        return cls(backend, embedder, reranker, config.retrieval, config.rerank)

    def search(self, query: str, filters: Filters | None = None, page: int = 1,
               size: int = 10) -> SearchResult:
        """Return page ``page`` (1-based) of ``size`` hits for ``query``."""
        if page < 1 or size < 1:
            raise ValueError(f"page and size must be >= 1, got page={page}, size={size}")
        started = time.perf_counter()
        timings: dict[str, float] = {}
        ranked, removed, reranked = self._rank(query, filters, page * size, timings)
        first = (page - 1) * size
        hits = tuple(_hit(first + i + 1, r) for i, r in enumerate(ranked[first:first + size]))
        timings["total"] = _ms(started)
        return SearchResult(
            query=query, hits=hits, page=page, size=size, total_candidates=len(ranked),
            reranker=self.reranker.name, reranked=reranked, timings_ms=timings,
            removed=tuple((r.parent_asin, effect) for r, effect in removed),
        )

    def _rank(self, query: str, filters: Filters | None, page_window: int,
              timings: dict[str, float]) -> tuple[list[Ranked], list, int]:
        step = time.perf_counter()
        vector = self.embedder.encode([query])[0]
        timings["embed_query"] = _ms(step)
        found = retrieve(self.backend, query, vector, self.retrieval, filters)
        timings.update(found.timings_ms)
        step = time.perf_counter()
        stored = self.backend.get([c.parent_asin for c in found.candidates])
        ranked = [Ranked(c, stored[c.parent_asin], c.fused_score)
                  for c in found.candidates if c.parent_asin in stored]
        timings["fetch"] = _ms(step)
        step = time.perf_counter()
        reranked = self._rerank(query, ranked)
        timings["rerank"] = _ms(step)
        step = time.perf_counter()
        context = RuleContext(query=query, page_window=page_window)
        removed = []
        for rule in self.rules:
            outcome = rule.apply(ranked, context)
            ranked = outcome.kept
            removed.extend(outcome.removed)
        timings["rules"] = _ms(step)
        return ranked, removed, reranked

    def _rerank(self, query: str, ranked: list[Ranked]) -> int:
        """Score the first `window` candidates; they lead, the rest keep fused order."""
        window = ranked[: self.rerank_config.window]
        if not window:
            return 0
        products = [r.item.product for r in window]
        vectors = None
        if self.reranker.kind == "embedding-cosine":
            stored = self.backend.vectors([r.parent_asin for r in window])
            vectors = [stored.get(r.parent_asin) for r in window]
        scores = self.reranker.score(query, products, vectors)
        for r, score in zip(window, scores, strict=True):
            r.rerank_score = score
            r.score = score
        order = sorted(range(len(window)), key=lambda i: (-scores[i], i))
        for rank, i in enumerate(order, start=1):
            window[i].rerank_rank = rank
        ranked[: len(window)] = [window[i] for i in order]
        return len(window)


def _hit(rank: int, r: Ranked) -> Hit:
    product = r.item.product
    sources = r.candidate.sources
    return Hit(
        rank=rank, parent_asin=r.parent_asin, title=product.title, brand=product.brand,
        price=product.price, in_stock=r.item.in_stock, score=r.score,
        explanation=Explanation(
            retrieval=dict(sources), fused_rank=r.candidate.fused_rank,
            fused_score=r.candidate.fused_score,
            rerank_score=r.rerank_score, rerank_rank=r.rerank_rank, rules=tuple(r.effects),
        ),
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
