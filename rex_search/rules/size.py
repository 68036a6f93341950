"""Size match: products whose text states a size compatible with the query's are boosted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rex_search.query import _SIZE, Size, _size
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome, reorder


def sizes_in(text: str) -> list[Size]:
    return [size for m in _SIZE.finditer(text) if (size := _size(m)) is not None]


def compatible(wanted: Size, offered: Size, tolerance: float = 0.05) -> bool:
    """Same unit and within 5% (so a 16-inch bag matches 15.6-inch laptops)."""
    return wanted.unit == offered.unit and abs(wanted.value - offered.value) <= \
        tolerance * max(wanted.value, offered.value)


@dataclass(frozen=True)
class SizeMatch:
    margin: float = 0.05
    name: str = "size_match"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        if context.parsed is None or not context.parsed.sizes:
            return RuleOutcome(ranked)
        wanted = context.parsed.sizes
        matches: dict[str, str] = {}
        for r in ranked:
            p = r.item.product
            text = re.sub(r"\s+", " ", " ".join((p.title, *p.features, p.description[:500])))
            hit = next((o for o in sizes_in(text) for w in wanted if compatible(w, o)), None)
            if hit is not None:
                matches[r.parent_asin] = f"{hit.value:g} {hit.unit}"
        if not matches:
            return RuleOutcome(ranked)
        label = ", ".join(f"{w.value:g} {w.unit}" for w in wanted)
        return RuleOutcome(reorder(ranked, lambda r: self.margin if r.parent_asin in matches
                                   else 0.0, self.name, "boosted",
                                   f"mentions a size compatible with {label}"))
