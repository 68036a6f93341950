"""The rule protocol: a reranked list in, a new list out, with a recorded effect per product."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rex_search.backends.base import IndexedProduct
from rex_search.pipelines.fusion import Candidate
from rex_search.results import RuleEffect


@dataclass
class Ranked:
    """A product on its way through the rules (mutable working state, private to a request)."""

    candidate: Candidate
    item: IndexedProduct
    score: float  # relevance used for ordering: rerank score, else fused score
    rerank_score: float | None = None
    rerank_rank: int | None = None
    effects: list[RuleEffect] = field(default_factory=list)

    @property
    def parent_asin(self) -> str:
        return self.candidate.parent_asin


@dataclass(frozen=True)
class RuleContext:
    query: str
    constraints: object | None = None  # a ParsedQuery when query understanding ran
    page_window: int = 10


@dataclass
class RuleOutcome:
    kept: list[Ranked]
    removed: list[tuple[Ranked, RuleEffect]] = field(default_factory=list)


class Rule(Protocol):
    name: str

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        """Return the new order; record effects on the items (``item.effects``) it changes."""
