"""Availability: out-of-stock products are demoted (default) or filtered out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rex_search.results import RuleEffect
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome, reorder


@dataclass(frozen=True)
class Availability:
    """``mode="demote"`` moves an out-of-stock product below in-stock products scoring less than
    ``margin`` lower, never below a clearly worse one; ``"filter"`` removes it. Products with no
    inventory data follow ``unknown``: ``keep`` (as in stock), ``demote`` or ``filter``."""

    mode: Literal["demote", "filter"] = "demote"
    unknown: Literal["keep", "demote", "filter"] = "keep"
    margin: float = 0.05
    name: str = "availability"

    def _state(self, r: Ranked) -> str:
        if r.item.in_stock is None:
            return {"keep": "ok", "demote": "demote", "filter": "filter"}[self.unknown]
        if r.item.in_stock:
            return "ok"
        return self.mode

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        kept, removed = [], []
        for r in ranked:
            if self._state(r) == "filter":
                reason = "stock unknown" if r.item.in_stock is None else "out of stock"
                removed.append((r, RuleEffect(self.name, "filtered", reason)))
            else:
                kept.append(r)

        def adjust(r: Ranked) -> float:
            return -self.margin if self._state(r) == "demote" else 0.0

        reason = "out of stock" if self.unknown != "demote" else "out of stock or unknown"
        return RuleOutcome(reorder(kept, adjust, self.name, "demoted", reason), removed)
