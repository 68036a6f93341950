"""Brand rules: hard exclusion (query negations + a compliance list), and brand preferences
(non-branded intent, brands the query names) that reorder only within a relevance margin."""

from __future__ import annotations

from dataclasses import dataclass

from rex_search.catalog.schema import brand_key
from rex_search.query import GENERIC_BRANDS
from rex_search.results import RuleEffect
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome, reorder


def excluded_keys(context: RuleContext, always: tuple[str, ...]) -> set[str]:
    keys = {brand_key(b) for b in always}
    if context.parsed is not None:
        keys |= set(context.parsed.exclude_brand_keys)
    return keys


@dataclass(frozen=True)
class BrandExclusion:
    """Removes products of excluded brands. The same keys are pushed into retrieval as a filter
    (so the page still fills); this re-check after reranking guards every other path."""

    always_exclude: tuple[str, ...] = ()
    name: str = "brand_exclusion"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        keys = excluded_keys(context, self.always_exclude)
        if not keys:
            return RuleOutcome(ranked)
        kept, removed = [], []
        for r in ranked:
            product = r.item.product
            key, shown = brand_key(product.brand), product.brand
            if not key:  # no brand field (a bare text document): a title led by the brand
                key = next((k for k in title_brand_keys(product.title) if k in keys), "")
                shown = f"{key} (the title's first words; no brand field)"
            if key in keys:
                why = "compliance list" if key in {brand_key(b) for b in self.always_exclude} \
                    else "query excludes this brand"
                removed.append((r, RuleEffect(self.name, "filtered", f"brand {shown}: {why}")))
            else:
                kept.append(r)
        return RuleOutcome(kept, removed)


def title_brand_keys(title: str, words: int = 3) -> list[str]:
    """Brand keys a title's first one to ``words`` words would make ("Under Armour Men's ..."
    -> underarmour): product titles lead with the brand."""
    parts = title.split()[:words]
    return [brand_key(" ".join(parts[:n])) for n in range(1, len(parts) + 1)]


def is_generic(brand: str | None) -> bool:
    return brand_key(brand) in GENERIC_BRANDS or not brand_key(brand)


@dataclass(frozen=True)
class BrandPreference:
    """Non-branded intent boosts generic products; a brand named in the query boosts that brand,
    but only when the catalog context says the word is used as a brand: some product of that
    brand shares a main category with the top 3 results ("apple cider vinegar" ranks grocery
    first, Apple sells electronics, so nothing changes). Each boost is at most ``margin``."""

    margin: float = 0.1
    name: str = "brand_preference"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        parsed = context.parsed
        if parsed is None:
            return RuleOutcome(ranked)
        if parsed.non_branded:
            ranked = reorder(ranked, lambda r: self.margin if is_generic(r.item.product.brand)
                             else 0.0, self.name, "boosted", "generic product (non-branded query)")
        wanted = set(parsed.brand_keys)
        if wanted and _used_as_brand(ranked, wanted):
            ranked = reorder(ranked, lambda r: self.margin
                             if brand_key(r.item.product.brand) in wanted else 0.0,
                             self.name, "boosted", "brand named in the query")
        return RuleOutcome(ranked)


def _used_as_brand(ranked: list[Ranked], wanted: set[str]) -> bool:
    top = {r.item.product.main_category for r in ranked[:3]}
    return any(brand_key(r.item.product.brand) in wanted and r.item.product.main_category in top
               for r in ranked)
