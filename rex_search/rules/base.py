"""The rule protocol: a reranked list in, a new list out, with a recorded effect per product."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rex_search.backends.base import IndexedProduct
from rex_search.query import ParsedQuery
from rex_search.results import Candidate, RuleEffect


@dataclass
class Ranked:
    """A product on its way through the rules (mutable working state, private to a request)."""

    candidate: Candidate
    item: IndexedProduct
    score: float  # relevance used for ordering: rerank score, else fused score
    rerank_score: float | None = None
    rerank_rank: int | None = None
    contributions: dict[str, float] = field(default_factory=dict)  # signal -> share of score
    effects: list[RuleEffect] = field(default_factory=list)

    @property
    def parent_asin(self) -> str:
        return self.candidate.parent_asin


@dataclass(frozen=True)
class RuleContext:
    query: str
    parsed: ParsedQuery | None = None  # None when query understanding did not run
    vectors: Callable[[list[str]], dict[str, np.ndarray]] | None = None  # stored embeddings
    fetch: Callable[[list[str]], dict[str, IndexedProduct]] | None = None  # stored products


@dataclass
class RuleOutcome:
    kept: list[Ranked]
    removed: list[tuple[Ranked, RuleEffect]] = field(default_factory=list)


class Rule(Protocol):
    @property
    def name(self) -> str:
        """The rule's name, as its effects record it."""

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        """Return the new order; record effects on the items (``item.effects``) it changes."""


def segments(ranked: list[Ranked]) -> list[list[Ranked]]:
    """Split into runs of reranked items and of fused-order items: their scores are on different
    scales, so a rule may reorder within a run but never across runs."""
    runs: list[list[Ranked]] = []
    for r in ranked:
        if runs and (runs[-1][0].rerank_score is None) == (r.rerank_score is None):
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


def reorder(ranked: list[Ranked], adjust: Callable[[Ranked], float], rule: str, action: str,
            reason: str) -> list[Ranked]:
    """Sort each segment by score + adjust(item), stable; record the move of adjusted items.

    A positive adjustment of m lets an item pass only items scoring less than m above it, a
    negative one drops it only below items scoring less than m below it: nothing moves past an
    item whose relevance differs by more than the margin.
    """
    before = {r.parent_asin: i + 1 for i, r in enumerate(ranked)}
    out: list[Ranked] = []
    for run in segments(ranked):
        out += sorted(run, key=lambda r: -(r.score + adjust(r)))
    for i, r in enumerate(out, start=1):
        if adjust(r) != 0:
            moved = f"rank {before[r.parent_asin]} -> {i}" if before[r.parent_asin] != i \
                else f"rank {i} unchanged"
            r.effects.append(RuleEffect(rule, action, f"{reason}: {moved}"))
    return out
