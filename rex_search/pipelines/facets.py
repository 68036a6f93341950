"""Facets over a query's candidates (brand, category, price band, stock), and the selection
that narrows the results to the chosen values.

Counts come from every candidate of the ranking, not only the page, so a merchandiser sees
what the query found. Values within one facet are alternatives (OR); facets combine with AND.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from rex_search.catalog.schema import brand_key
from rex_search.errors import QueryError
from rex_search.results import FacetValue
from rex_search.rules.base import Ranked

# (label, low inclusive, high exclusive) in dollars
PRICE_BANDS = (("under $25", 0.0, 25.0), ("$25 to $50", 25.0, 50.0),
               ("$50 to $100", 50.0, 100.0), ("$100 to $200", 100.0, 200.0),
               ("$200 and up", 200.0, float("inf")))
NO_PRICE = "no price"
PRICE_VALUES = (*(label for label, _, _ in PRICE_BANDS), NO_PRICE)
STOCK = {True: "in stock", False: "out of stock", None: "stock unknown"}
FACETS = ("brand", "category", "price", "stock")
MAX_VALUES = 12  # per facet, most frequent first (selected values always shown)


@dataclass(frozen=True)
class FacetSelection:
    """The chosen values of each facet; empty means no narrowing."""

    brand: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    price: tuple[str, ...] = ()
    stock: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for facet, valid in (("price", PRICE_VALUES), ("stock", tuple(STOCK.values()))):
            unknown = [v for v in self.chosen(facet) if v not in valid]
            if unknown:
                raise QueryError(f"unknown {facet} facet value(s) {', '.join(map(repr, unknown))}"
                                 f"; valid: {', '.join(map(repr, valid))}")

    def is_empty(self) -> bool:
        return not (self.brand or self.category or self.price or self.stock)

    def chosen(self, facet: str) -> tuple[str, ...]:
        values: tuple[str, ...] = getattr(self, facet)
        return values


def price_band(price: float | None) -> str:
    if price is None:
        return NO_PRICE
    return next(label for label, low, high in PRICE_BANDS if low <= price < high)


def _category(r: Ranked) -> str | None:
    product = r.item.product
    return product.categories[-1] if product.categories else product.main_category


VALUE_OF: dict[str, Callable[[Ranked], str | None]] = {
    # brands compare case- and punctuation-insensitively ("Nike", "NIKE" and "nike" are one)
    "brand": lambda r: brand_key(r.item.product.brand) if r.item.product.brand else None,
    "category": _category,
    "price": lambda r: price_band(r.item.product.price),
    "stock": lambda r: STOCK[r.item.in_stock],
}


def count_facets(ranked: list[Ranked],
                 selection: FacetSelection) -> dict[str, tuple[FacetValue, ...]]:
    """Per facet, its values with counts among ``ranked``; price bands in price order."""
    out: dict[str, tuple[FacetValue, ...]] = {}
    shown = _brand_names(ranked)
    for facet in FACETS:
        counts = Counter(v for r in ranked if (v := VALUE_OF[facet](r)) is not None)
        chosen = _keys(facet, selection.chosen(facet))
        if facet == "price":
            order = [label for label, _, _ in PRICE_BANDS] + [NO_PRICE]
            values = [v for v in order if counts[v]]
        else:
            values = [v for v, _ in counts.most_common(MAX_VALUES)]
        values += [v for v in chosen if v not in values]
        out[facet] = tuple(FacetValue(shown.get(v, v) if facet == "brand" else v, counts[v],
                                      v in chosen) for v in values)
    return out


def _keys(facet: str, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(brand_key(v) for v in values) if facet == "brand" else values


def _brand_names(ranked: list[Ranked]) -> dict[str, str]:
    """Each brand key's most frequent spelling among the candidates (the one shown)."""
    spellings = Counter(r.item.product.brand for r in ranked if r.item.product.brand)
    names: dict[str, str] = {}
    for name, _ in spellings.most_common():
        names.setdefault(brand_key(name), name)
    return names


def select(ranked: list[Ranked], selection: FacetSelection) -> list[Ranked]:
    """The candidates that have one of the chosen values of every facet with a choice."""
    if selection.is_empty():
        return ranked
    chosen = {f: _keys(f, selection.chosen(f)) for f in FACETS}
    return [r for r in ranked
            if all(not chosen[f] or VALUE_OF[f](r) in chosen[f] for f in FACETS)]
