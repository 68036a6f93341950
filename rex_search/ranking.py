"""`rank(query, documents)`: rex-search's reranker and business rules over candidates you
already have -- no index, no server.

    >>> from rex_search import rank
    >>> for r in rank("running shoes no skechers", ["Skechers GoRun ...", "ASICS Gel ..."]):
    ...     print(r.index, r.score)

Documents are strings (a title, or text in the RexReranker product format), `Product` objects
or dicts with the keys ``/rerank`` documents take (id, title/text, description, brand, price,
categories, features, details, in_stock, quantity). The query is understood as in search (the
model reads "running shoes"; "no skechers" excludes the brand), then the rules run on what the
documents carry: brand exclusion needs ``brand`` (or a title led by the brand), availability
needs ``in_stock``. Price bounds read from the query ("under $50") are understood and shown in
``Ranking.understood`` but not applied (no rule checks price). Nothing is dropped silently: what
a rule removed is in ``Ranking.removed``.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rex_search.backends.base import IndexedProduct
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.catalog.schema import Product
from rex_search.config import Config
from rex_search.errors import ModelError
from rex_search.indexer.embed import Embedder
from rex_search.pipelines.documents import (
    DocumentError,
    capped_scores,
    positions,
    read_document,
)
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import Reranker, load_reranker
from rex_search.rerank.calibration import Calibration
from rex_search.rerank.calibration import for_model as calibration_for
from rex_search.results import RuleEffect

Document = str | Product | Mapping[str, Any]


@dataclass(frozen=True)
class RankedDocument:
    index: int  # position in the documents given
    score: float  # the model's score in [0, 1], capped by the one above (best-first)
    document: Document
    rerank_score: float | None  # the model's own score
    rules: tuple[RuleEffect, ...] = ()  # what each rule did to it
    weak: bool | None = None  # calibrated score below [rerank] min_score (None: no calibration)


@dataclass(frozen=True)
class RemovedDocument:
    index: int
    document: Document
    rule: str
    reason: str


@dataclass(frozen=True)
class Ranking(Sequence[RankedDocument]):
    """The documents best first; iterate it like a list. ``removed``: what the rules took
    out (an excluded brand, a collapsed variant); ``understood``: the query as read;
    ``good_matches``: documents whose calibrated score reaches [rerank] min_score (0: none
    matches well; None: the model has no calibration)."""

    results: tuple[RankedDocument, ...]
    removed: tuple[RemovedDocument, ...]
    understood: dict[str, object]
    good_matches: int | None = None

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[RankedDocument]:
        return iter(self.results)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        return self.results[i]


@dataclass(frozen=True)
class _Models:
    embedder: Embedder
    reranker: Reranker
    calibration: Calibration | None
    backend: EmbeddedBackend  # empty: rank() reads no index, but the pipeline wants one
    folder: tempfile.TemporaryDirectory[str]


_models: dict[tuple[object, ...], _Models] = {}
_lock = threading.Lock()


def _pipeline(config: Config) -> SearchPipeline:
    """A pipeline with ``config``'s rules and settings over models loaded once per process
    (keyed by what loading depends on): a call with other rules never reuses another's."""
    rerank = config.rerank
    key = (config.index.embedding_model, rerank.model, rerank.runtime, rerank.max_tokens,
           rerank.batch_size)
    with _lock:
        if key not in _models:
            folder = tempfile.TemporaryDirectory(prefix="rex-rank-")
            embedder = Embedder(config.index.embedding_model)
            backend = EmbeddedBackend(folder.name, dim=embedder.dim, model_id=embedder.model_id)
            reranker = load_reranker(rerank.model, embedder, rerank.max_tokens,
                                     rerank.batch_size, rerank.runtime)
            _models[key] = _Models(embedder, reranker, calibration_for(rerank.model), backend,
                                   folder)
        models = _models[key]
    return SearchPipeline(models.backend, models.embedder, models.reranker, config.retrieval,
                          rerank, config.rules, calibration=models.calibration)


def rank(query: str, documents: Sequence[Document], *, top_k: int | None = None,
         rules: bool = True, config: Config | None = None) -> Ranking:
    """Rank ``documents`` for ``query``, best first; ``top_k`` keeps the first k.
    ``rules=False``: the model alone, on the query as typed. ``config`` chooses the models
    and rules (default: the bundled ones, default rules). Bad input raises
    `DocumentError` naming the document and field."""
    if isinstance(documents, str | bytes):
        raise DocumentError("documents must be a list of documents, not one string")
    if top_k is not None and top_k < 1:
        raise DocumentError(f"top_k must be >= 1, got {top_k}")
    items = [_item(i, d) for i, d in enumerate(documents)]
    by_id = positions(items)
    result = _pipeline(config or Config()).rerank(query, items, apply_rules=rules,
                                                   candidate_brands=True)
    if result.degraded:
        raise ModelError(f"the reranker failed: {result.degraded_reason}")
    scores = capped_scores([h.explanation.rerank_score for h in result.hits])
    ranked = tuple(RankedDocument(by_id[h.parent_asin], score, documents[by_id[h.parent_asin]],
                                  h.explanation.rerank_score, h.explanation.rules, h.weak)
                   for h, score in zip(result.hits, scores, strict=True))
    removed = tuple(RemovedDocument(by_id[asin], documents[by_id[asin]], e.rule,
                                    e.detail or e.action)
                    for asin, e in result.removed if asin in by_id)
    return Ranking(ranked[:top_k] if top_k else ranked, removed,
                   result.constraints if rules else {}, result.good_matches)


def _item(i: int, document: Document) -> IndexedProduct:
    if isinstance(document, Product):
        return IndexedProduct(document)
    if isinstance(document, Mapping):
        document = dict(document)
    return read_document(i, document, max_chars=1_000_000)
