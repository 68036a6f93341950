"""Diversity in the first page window: a per-brand cap (default) or MMR over embeddings.

Neither buries the best product: an item is only displaced by one whose relevance is at most
``max_drop`` lower; otherwise it keeps its place and the cap is relaxed (recorded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rex_search.catalog.schema import brand_key
from rex_search.results import RuleEffect
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome


@dataclass(frozen=True)
class Diversity:
    method: Literal["cap", "mmr"] = "cap"
    per_brand: int = 3
    window: int = 10
    max_drop: float = 0.1
    mmr_lambda: float = 0.7
    name: str = "diversity"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        if len(ranked) <= 1:
            return RuleOutcome(ranked)
        if self.method == "mmr" and context.vectors is not None:
            return RuleOutcome(self._mmr(ranked, context))
        return RuleOutcome(self._cap(ranked))

    def _cap(self, ranked: list[Ranked]) -> list[Ranked]:
        before = {r.parent_asin: i + 1 for i, r in enumerate(ranked)}
        pool: list[Ranked] = list(ranked)
        out: list[Ranked] = []
        counts: dict[str, int] = {}
        while pool and len(out) < self.window:
            best = pool[0]
            choice = best
            if counts.get(_brand(best), 0) >= self.per_brand:
                other = next((r for r in pool if counts.get(_brand(r), 0) < self.per_brand), None)
                if other is not None and _comparable(best, other) and \
                        best.score - other.score <= self.max_drop:
                    choice = other
                    other.effects.append(RuleEffect(self.name, "promoted", (
                        f"brand cap: rank {before[other.parent_asin]} -> {len(out) + 1}")))
                else:
                    best.effects.append(RuleEffect(self.name, "cap relaxed", (
                        f"{self.per_brand} {best.item.product.brand or 'unbranded'} products "
                        f"already shown, but no other brand within {self.max_drop} relevance")))
            pool.remove(choice)
            out.append(choice)
            counts[_brand(choice)] = counts.get(_brand(choice), 0) + 1
        result = out + pool
        for i, r in enumerate(result, start=1):
            if i > before[r.parent_asin] and r in pool:
                r.effects.append(RuleEffect(self.name, "capped", (
                    f"at most {self.per_brand} per brand in the top {self.window}: rank "
                    f"{before[r.parent_asin]} -> {i}")))
        return result

    def _mmr(self, ranked: list[Ranked], context: RuleContext) -> list[Ranked]:
        """Maximal marginal relevance (Carbonell & Goldstein, 1998) over the first window:
        pick argmax lambda * rel - (1 - lambda) * max cosine to already picked items."""
        head = ranked[: self.window * 3]
        vectors = context.vectors([r.parent_asin for r in head])  # type: ignore[misc]
        before = {r.parent_asin: i + 1 for i, r in enumerate(ranked)}
        pool: list[Ranked] = list(head)
        out: list[Ranked] = []
        while pool and len(out) < self.window:
            best = pool[0]

            def value(r: Ranked) -> float:
                v = vectors.get(r.parent_asin)
                sim = max((float(v @ vectors[o.parent_asin]) for o in out
                           if v is not None and o.parent_asin in vectors), default=0.0)
                return self.mmr_lambda * r.score - (1 - self.mmr_lambda) * sim

            eligible = [r for r in pool if _comparable(best, r)
                        and best.score - r.score <= self.max_drop] or [best]
            choice = max(eligible, key=value)
            pool.remove(choice)
            out.append(choice)
            if before[choice.parent_asin] != len(out):
                choice.effects.append(RuleEffect(self.name, "mmr", (
                    f"rank {before[choice.parent_asin]} -> {len(out)}")))
        return out + pool + ranked[len(head):]


def _brand(r: Ranked) -> str:
    return brand_key(r.item.product.brand) or r.parent_asin  # unbranded items are each distinct


def _comparable(a: Ranked, b: Ranked) -> bool:
    return (a.rerank_score is None) == (b.rerank_score is None)


