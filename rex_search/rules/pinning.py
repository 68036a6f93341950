"""Pinning: configured products go first for a configured query (merchandising hook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rex_search.results import Candidate, RuleEffect
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome


def normalise_query(query: str) -> str:
    return " ".join(query.lower().split())


@dataclass(frozen=True)
class Pinning:
    """``pins`` maps a query (case/whitespace-insensitive) to product ids shown first, in order.
    A pinned product that retrieval did not find is fetched from the index."""

    pins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    name: str = "pinning"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        wanted = {normalise_query(q): ids for q, ids in self.pins.items()}.get(
            normalise_query(context.query), ())
        if not wanted:
            return RuleOutcome(ranked)
        by_id = {r.parent_asin: r for r in ranked}
        missing = [i for i in wanted if i not in by_id]
        if missing and context.fetch is not None:
            for asin, item in context.fetch(missing).items():
                by_id[asin] = Ranked(Candidate(asin, 0, 0.0, {}), item, 0.0)
        pinned = []
        for position, asin in enumerate((i for i in wanted if i in by_id), start=1):
            r = by_id[asin]
            was = next((i for i, x in enumerate(ranked, start=1) if x.parent_asin == asin), None)
            r.effects.append(RuleEffect(self.name, "pinned", (
                f"rank {was} -> {position}" if was else f"not retrieved; inserted at {position}")))
            pinned.append(r)
        pinned_ids = {r.parent_asin for r in pinned}
        return RuleOutcome(pinned + [r for r in ranked if r.parent_asin not in pinned_ids])
