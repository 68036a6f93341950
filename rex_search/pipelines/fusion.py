"""Fuse ranked lists from several retrieval sources, keeping each source's rank and score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from rex_search.backends.base import ScoredId
from rex_search.errors import ConfigError
from rex_search.results import Candidate, SourceHit

FusionMethod = Literal["rrf", "weighted"]


def fuse(lists: Mapping[str, Sequence[ScoredId]], method: FusionMethod = "rrf", rrf_k: int = 60,
         weights: Mapping[str, float] | None = None) -> list[Candidate]:
    """Fuse per-source rankings into one list, best first (ties broken by id, deterministic).

    ``rrf``: reciprocal-rank fusion, score(d) = sum over sources s of 1 / (rrf_k + rank_s(d)),
    ranks 1-based (Cormack, Clarke & Buettcher, SIGIR 2009). Scale-free, so BM25 and cosine
    need no calibration against each other.
    ``weighted``: sum over sources of w_s * min-max-normalised score_s(d); a product missing
    from a source gets 0 from it.
    """
    if method not in ("rrf", "weighted"):
        raise ConfigError(f"fusion method must be 'rrf' or 'weighted', got {method!r}")
    sources: dict[str, dict[str, SourceHit]] = {}
    for source, hits in lists.items():
        for rank, hit in enumerate(hits, start=1):
            sources.setdefault(hit.parent_asin, {})[source] = SourceHit(rank, hit.score)
    fused: dict[str, float] = {}
    if method == "rrf":
        for asin, found in sources.items():
            fused[asin] = sum(1.0 / (rrf_k + h.rank) for h in found.values())
    else:
        weights = weights or {}
        for source, hits in lists.items():
            if not hits:
                continue
            low = min(h.score for h in hits)
            span = max(h.score for h in hits) - low
            for hit in hits:
                norm = (hit.score - low) / span if span > 0 else 1.0
                fused[hit.parent_asin] = (fused.get(hit.parent_asin, 0.0)
                                          + weights.get(source, 1.0) * norm)
    order = sorted(fused, key=lambda a: (-fused[a], a))
    return [Candidate(a, rank, fused[a], sources[a]) for rank, a in enumerate(order, start=1)]
