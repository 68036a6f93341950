"""`SearchPipeline`: understand -> retrieve -> rerank -> rules -> one page of explained results.

Construct once per process and share it: `search` keeps no per-request state on the instance,
the models serialise their own inference, and the result cache is locked, so concurrent calls
are safe. The full ranked list of a (query, filters, reranker, index generation) is computed
once and cached, so page 2 never repeats or skips a page-1 product.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rex_search.backends.base import Backend, Filters, IndexedProduct
from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product, brand_key
from rex_search.config import Config, RerankConfig, RetrievalConfig, RulesConfig
from rex_search.errors import QueryError
from rex_search.indexer.embed import Embedder
from rex_search.lru import LruCache
from rex_search.pipelines.facets import FacetSelection, count_facets, select
from rex_search.pipelines.rank import rank_candidates
from rex_search.pipelines.retrieve import retrieve
from rex_search.pipelines.timing import elapsed_ms
from rex_search.pipelines.views import hidden_by_filters, movements
from rex_search.query import (
    GENERIC_BRANDS,
    KnownBrands,
    ParsedQuery,
    check_query,
    parse_query,
)
from rex_search.rerank.base import Reranker, load_reranker
from rex_search.rerank.calibration import Calibration
from rex_search.rerank.calibration import for_model as calibration_for
from rex_search.rerank.cosine import EmbeddingCosineReranker
from rex_search.results import (
    Candidate,
    Explanation,
    Hidden,
    Hit,
    RuleEffect,
    SearchResult,
    SourceHit,
)
from rex_search.rules.base import Ranked, RuleContext
from rex_search.rules.build import build_rules

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _Ranking:
    parsed: ParsedQuery
    ranked: list[Ranked]
    removed: list[tuple[Ranked, RuleEffect]]
    reranked: int
    timings_ms: dict[str, float]
    degraded_reason: str | None
    vector: np.ndarray  # the query's, and the filters as given and as pushed down: what
    filters: Filters  # the page's "hidden" view needs to retrieve again without the added ones
    pushed: Filters
    hidden: tuple[Hidden, ...] | None = None  # computed on the first request for the views


class SearchPipeline:
    """Product search over a backend.

    Example:
        >>> pipeline = SearchPipeline.from_config(load_config())
        >>> [h.title for h in pipeline.search("running shoes no nike", size=2).hits]
        ['Running Shoes for Men Fashion Tennis Shoes ...', 'QANSI Mens Running Shoes ...']
    """

    def __init__(self, backend: Backend, embedder: Embedder, reranker: Reranker,
                 retrieval: RetrievalConfig | None = None, rerank: RerankConfig | None = None,
                 rules: RulesConfig | None = None, cache_size: int = 256,
                 calibration: Calibration | None = None) -> None:
        """``calibration``: maps the reranker's scores to calibrated ones (from_config loads
        the model's own); without it no hit is judged weak or strong."""
        self.backend = backend
        self.calibration = calibration
        self.embedder = embedder
        self.reranker = reranker
        self.retrieval = retrieval or RetrievalConfig()
        self.rerank_config = rerank or RerankConfig()
        self.rules_config = rules or RulesConfig()
        self.rules = build_rules(self.rules_config)
        # the `dense` signal of [rerank] combine, from the index's stored vectors
        self._cosine = EmbeddingCosineReranker(embedder, backend.vectors)
        self._cache: LruCache[tuple[object, ...], _Ranking] = LruCache(cache_size)
        self._lock = threading.Lock()
        self._brands: tuple[str, KnownBrands] | None = None

    @classmethod
    def from_config(cls, config: Config) -> SearchPipeline:
        from rex_search.backends.open import open_backend

        backend = open_backend(config.index.path, embedder=None)
        # Queries are embedded with the model the index was built with, whatever the config
        # says: vectors from another model would be compared with the index's silently.
        model = backend.model_id
        if model != config.index.embedding_model:
            logger.warning("index %s was embedded with %s; using it for queries, not the "
                           "configured %s", config.index.path, model,
                           config.index.embedding_model)
        embedder = Embedder(model)
        reranker = load_reranker(config.rerank.model, embedder, config.rerank.max_tokens,
                                 config.rerank.batch_size, config.rerank.runtime,
                                 stored_vectors=backend.vectors)
        return cls(backend, embedder, reranker, config.retrieval, config.rerank, config.rules,
                   calibration=calibration_for(config.rerank.model))

    def prepare_reranker(self) -> int:
        """Do the reranker's per-product work for stored products before queries need it (a
        split reranker's product states, as many as it keeps); returns how many products
        were prepared, 0 for a reranker with no such work."""
        prepare = getattr(self.reranker, "prepare", None)
        capacity = int(getattr(self.reranker, "prepare_capacity", 0))
        if prepare is None or capacity <= 0:
            return 0
        return int(prepare([product_text(p) for p in self.backend.products(capacity)]))

    def known_brands(self) -> KnownBrands:
        generation = self.backend.generation()
        with self._lock:
            if self._brands is None or self._brands[0] != generation:
                self._brands = (generation, KnownBrands(self.backend.brands(),
                                                        self.rules_config.brand_aliases))
            return self._brands[1]

    def search(self, query: str, filters: Filters | None = None, page: int = 1,
               size: int = 10, budget_ms: float | None = None,
               rerank: bool = True, started: float | None = None,
               facets: FacetSelection | None = None, interpret: bool = True,
               views: bool = False) -> SearchResult:
        """Return page ``page`` (1-based) of ``size`` hits for ``query``.

        ``budget_ms`` bounds the whole request: the reranker scores candidates best-first (by
        fused rank) in small batches while the budget lasts; unscored candidates keep their
        fused order *below* the scored ones (not interleaved: fused and reranker scores are on
        different scales), and the result says ``reranked`` k of ``total_candidates`` and
        ``degraded``. A reranker error also degrades to fused order, with the reason, instead of
        raising. ``rerank=False`` gives the retrieval-only order (for comparison).
        ``started`` (a ``time.perf_counter()`` value) is when the request arrived, if earlier
        than this call: the budget and ``timings_ms["total"]`` count from then.

        The search page's options: ``facets`` narrows the hits to the chosen facet values
        (``matching`` says how many candidates remain); ``interpret=False`` searches the text
        literally (no excluded brands, prices or sizes taken from it); ``views=True`` adds the
        facet counts, what the query's filters hid (one more retrieval) and the retrieval
        order beside the final one.
        """
        check_query(query)
        if page < 1 or size < 1:
            raise QueryError(f"page and size must be >= 1, got page={page}, size={size}")
        if budget_ms is not None and not 0 < budget_ms <= 600_000:  # NaN fails this too
            raise QueryError(f"budget_ms must be a number of milliseconds in (0, 600000], got "
                             f"{budget_ms!r}")
        started = time.perf_counter() if started is None else started
        key = (" ".join(query.split()).lower(), filters, self.reranker.name if rerank else None,
               budget_ms, self.backend.generation(), interpret)
        ranking = self._cache.get(key)
        cached = ranking is not None
        if ranking is None:
            deadline = started + budget_ms / 1000 if budget_ms is not None else None
            ranking = self._rank(query, filters, deadline, rerank, interpret)
            self._cache.put(key, ranking)
        selection = facets or FacetSelection()
        shown = select(ranking.ranked, selection)
        first = (page - 1) * size
        hits = tuple(self._hit(first + i + 1, r)
                     for i, r in enumerate(shown[first:first + size]))
        timings = {"cached": 1.0} if cached else dict(ranking.timings_ms)
        if views and ranking.hidden is None:
            step = time.perf_counter()
            ranking.hidden = self._hidden(ranking)
            timings["hidden"] = elapsed_ms(step)
        timings["total"] = elapsed_ms(started)
        return SearchResult(
            query=query, hits=hits, page=page, size=size, total_candidates=len(ranking.ranked),
            reranker=self.reranker.name if rerank else "none (retrieval order)",
            reranked=ranking.reranked, timings_ms=timings,
            degraded=ranking.degraded_reason is not None,
            degraded_reason=ranking.degraded_reason,
            removed=tuple((r.parent_asin, effect) for r, effect in ranking.removed),
            constraints=ranking.parsed.constraints(),
            facets=count_facets(ranking.ranked, selection) if views else {},
            matching=len(shown), hidden=(ranking.hidden or ()) if views else (),
            before=movements(ranking.ranked, ranking.removed, max(20, page * size))
            if views else (),
            **self._match_quality(ranking.ranked),
        )

    def _rank(self, query: str, filters: Filters | None, deadline: float | None = None,
              rerank: bool = True, interpret: bool = True) -> _Ranking:
        timings: dict[str, float] = {}
        self.backend.retrieval_warning()  # start clean: a warning belongs to this query
        step = time.perf_counter()
        parsed, pushed = self.understand(query, filters, interpret)
        timings["understand"] = elapsed_ms(step)
        step = time.perf_counter()
        vector = self._query_vector(parsed.text)
        timings["embed_query"] = elapsed_ms(step)
        extra = None
        if parsed.non_branded:
            generic = tuple(k for k in self.known_brands().display if k in GENERIC_BRANDS)
            if generic:
                extra = {"generic": dataclasses.replace(pushed, brands=generic)}
        found = retrieve(self.backend, parsed.text, vector, self.retrieval, pushed, extra)
        timings.update(found.timings_ms)
        step = time.perf_counter()
        stored = self.backend.get([c.parent_asin for c in found.candidates])
        ranked = [Ranked(c, stored[c.parent_asin], c.fused_score)
                  for c in found.candidates if c.parent_asin in stored]
        timings["fetch"] = elapsed_ms(step)
        context = RuleContext(query=query, parsed=parsed, vectors=self.backend.vectors,
                              fetch=self.backend.get)
        outcome = rank_candidates(
            parsed.text, ranked, self.reranker if rerank else None, self.rerank_config,
            self.rules, context, dense=self._dense(parsed.text), deadline=deadline)
        timings.update(outcome.timings_ms)
        reasons = [r for r in (self.backend.retrieval_warning(), outcome.degraded_reason) if r]
        return _Ranking(parsed, outcome.ranked, outcome.removed, outcome.reranked, timings,
                        "; ".join(reasons) or None, vector, filters or Filters(), pushed)

    def understand(self, query: str, filters: Filters | None = None, interpret: bool = True,
                   brands: Sequence[str | None] = ()) -> tuple[ParsedQuery, Filters]:
        """The query as the model reads it (negations and prices taken out) and the filters
        retrieval must apply: the caller's merged with what the query and the rules demand.
        ``brands``: more brand names to recognise (candidates the index does not hold)."""
        explicit = self.rules_config.explicit_brands
        known = self.known_brands()
        extra = {brand_key(b): b for b in brands if b and brand_key(b) not in known.display}
        if extra:
            known = KnownBrands({**extra, **known.display}, self.rules_config.brand_aliases)
        parsed = parse_query(query, known, detect_brands=explicit != "off") \
            if interpret else ParsedQuery(raw=query, text=" ".join(query.split()))
        return parsed, self._pushdown(filters or Filters(), parsed)

    def _hidden(self, ranking: _Ranking) -> tuple[Hidden, ...]:
        shown = {r.parent_asin for r in ranking.ranked} | \
            {r.parent_asin for r, _ in ranking.removed}
        return hidden_by_filters(self.backend, ranking.parsed.text, ranking.vector,
                                 self.retrieval, ranking.filters, ranking.pushed, shown,
                                 ranking.parsed.exclude_brands)

    def rerank(self, query: str, candidates: Sequence[str | Product | IndexedProduct],
               size: int | None = None, apply_rules: bool = True,
               candidate_brands: bool = False) -> SearchResult:
        """Rerank candidates a host app retrieved itself, then apply the business rules.

        ``candidates`` in the app's order: ``parent_asin`` strings (read from the index, with
        their stock), `Product` objects (their own text; stock unknown) or `IndexedProduct`
        (a product with its stock). Ids the index does not hold, and repeated ids, are listed
        in ``removed``, never dropped silently. Every candidate is scored (no window); the
        result is explained as `search`'s are, with retrieval ``{"given": rank}``. ``size``
        keeps the first hits (default: all). ``apply_rules=False``: the model alone, on the
        query as typed (no understanding either). ``candidate_brands``: for candidates from
        outside the index, read their brands (or a brand-less title's first word) as brands
        the query may name.
        """
        check_query(query)
        started = time.perf_counter()
        # The candidates' brands are brands too; one without a brand field offers its title's
        # first word (titles lead with the brand), so "no skechers" is read as a brand.
        products = [c if isinstance(c, Product) else c.product
                    for c in candidates if not isinstance(c, str)] if candidate_brands else []
        brands = [p.brand or next(iter(p.title.split()), None) for p in products]
        parsed = self.understand(query, interpret=apply_rules, brands=brands)[0]
        stored = self.backend.get([c for c in candidates if isinstance(c, str)])
        ranked: list[Ranked] = []
        removed: list[tuple[str, RuleEffect]] = []
        seen: set[str] = set()
        for position, given in enumerate(candidates, 1):
            if isinstance(given, str):
                asin, item = given, stored.get(given)
            elif isinstance(given, IndexedProduct):
                asin, item = given.product.parent_asin, given
            else:
                asin, item = given.parent_asin, IndexedProduct(given)
            if asin in seen or item is None:
                reason = "repeats an earlier candidate" if asin in seen else "not in the index"
                removed.append((asin, RuleEffect("input", "removed", reason)))
                continue
            seen.add(asin)
            score = 1.0 / position
            candidate = Candidate(asin, position, score, {"given": SourceHit(position, score)})
            ranked.append(Ranked(candidate, item, score))
        context = RuleContext(query=query, parsed=parsed, vectors=self.backend.vectors,
                              fetch=self.backend.get)
        config = dataclasses.replace(self.rerank_config, window=max(1, len(ranked)))
        outcome = rank_candidates(parsed.text, ranked, self.reranker, config,
                                  self.rules if apply_rules else [], context,
                                  dense=self._dense(parsed.text))
        kept = outcome.ranked[:size] if size is not None else outcome.ranked
        timings = {**outcome.timings_ms, "total": elapsed_ms(started)}
        return SearchResult(
            query=query, hits=tuple(self._hit(i + 1, r) for i, r in enumerate(kept)), page=1,
            size=len(kept), total_candidates=len(ranked), reranker=self.reranker.name,
            reranked=outcome.reranked, timings_ms=timings,
            degraded=outcome.degraded_reason is not None,
            degraded_reason=outcome.degraded_reason,
            removed=(*removed, *((r.parent_asin, e) for r, e in outcome.removed)),
            constraints=parsed.constraints(), **self._match_quality(outcome.ranked))

    def _calibrated(self, r: Ranked) -> float | None:
        if self.calibration is None or r.rerank_score is None:
            return None
        return self.calibration(r.rerank_score)

    def _match_quality(self, ranked: Sequence[Ranked]) -> dict[str, Any]:
        """``good_matches`` (candidates at or above min_score) and ``min_score``: both None
        without a calibration, since a raw model score is no probability to compare."""
        if self.calibration is None:
            return {"good_matches": None, "min_score": None}
        floor = self.rerank_config.min_score
        scores = [s for s in map(self._calibrated, ranked) if s is not None]
        return {"good_matches": sum(1 for s in scores if s >= floor), "min_score": floor}

    def _hit(self, rank: int, r: Ranked) -> Hit:
        product = r.item.product
        calibrated = self._calibrated(r)
        return Hit(
            rank=rank, parent_asin=r.parent_asin, title=product.title, brand=product.brand,
            price=product.price, in_stock=r.item.in_stock, score=r.score, image=product.image,
            rating=product.average_rating, rating_count=product.rating_number,
            category=(product.categories[-1] if product.categories else product.main_category),
            weak=None if calibrated is None else calibrated < self.rerank_config.min_score,
            explanation=Explanation(
                retrieval=dict(r.candidate.sources), fused_rank=r.candidate.fused_rank,
                fused_score=r.candidate.fused_score, rerank_score=r.rerank_score,
                rerank_rank=r.rerank_rank, calibrated_score=calibrated, rules=tuple(r.effects),
                contributions=dict(r.contributions),
            ),
        )

    def _query_vector(self, text: str) -> np.ndarray:
        """Embedded where the index embeds (``?embed=cluster``: by the cluster), else here;
        the `dense` signal reuses it."""
        vector = self.backend.embed_query(text)
        if vector is None:
            local: np.ndarray = self.embedder.encode_queries([text])[0]
            return local
        self._cosine.remember_query(text, vector)
        if isinstance(self.reranker, EmbeddingCosineReranker):
            self.reranker.remember_query(text, vector)
        return vector

    def _dense(self, text: str) -> Callable[[list[Ranked]], list[float]]:
        """The `dense` signal of [rerank] combine: cosine from stored vectors (embedding only
        products the index has no vector for)."""
        return lambda window: self._cosine.cosines(text, [r.item.product for r in window])

    def _pushdown(self, filters: Filters, parsed: ParsedQuery) -> Filters:
        """Merge the caller's filters with what the query and configuration demand."""
        config = self.rules_config
        brands = filters.brands
        if config.explicit_brands == "filter" and parsed.brand_keys:
            brands = tuple(dict.fromkeys((*brands, *parsed.brand_keys)))
        exclude = tuple(dict.fromkeys((*filters.exclude_brands, *parsed.exclude_brand_keys,
                                       *config.always_exclude_brands)))
        in_stock, drop_out = filters.in_stock, filters.exclude_out_of_stock
        if config.availability == "filter" and "availability" in config.order:
            if config.unknown_stock == "filter":
                in_stock = True
            else:
                drop_out = True
        low = filters.min_price if filters.min_price is not None else parsed.min_price
        high = filters.max_price if filters.max_price is not None else parsed.max_price
        if low is not None and high is not None and low > high:
            # The caller's explicit filter wins over a bound read from the query's words.
            low, high = (low, None) if filters.max_price is None else (None, high)
        return dataclasses.replace(
            filters, brands=brands, exclude_brands=exclude, in_stock=in_stock,
            exclude_out_of_stock=drop_out, min_price=low, max_price=high)


__all__: Sequence[str] = ("SearchPipeline",)
