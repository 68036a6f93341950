"""Each rule on hand-built ranked lists with known scores, so every move can be worked by hand."""

from __future__ import annotations

from rex_search.backends.base import IndexedProduct
from rex_search.catalog.schema import Product
from rex_search.query import KnownBrands, parse_query
from rex_search.results import Candidate
from rex_search.rules.availability import Availability
from rex_search.rules.base import Ranked, RuleContext
from rex_search.rules.brand import BrandExclusion, BrandPreference
from rex_search.rules.diversity import Diversity
from rex_search.rules.pinning import Pinning
from rex_search.rules.size import SizeMatch


def item(asin: str, score: float, brand: str | None = "Acme", in_stock: bool | None = None,
         title: str = "", category: str = "Shoes", reranked: bool = True) -> Ranked:
    product = Product(asin, title or f"product {asin}", brand=brand, main_category=category)
    r = Ranked(Candidate(asin, 1, 0.0, {}), IndexedProduct(product, in_stock), score)
    if reranked:
        r.rerank_score = score
    return r


def ids(ranked: list[Ranked]) -> list[str]:
    return [r.parent_asin for r in ranked]


CTX = RuleContext(query="q")


def test_out_of_stock_drops_below_similar_but_not_below_clearly_worse():
    ranked = [item("a", 0.90, in_stock=False), item("b", 0.88, in_stock=True),
              item("c", 0.86), item("d", 0.70, in_stock=True)]
    out = Availability(margin=0.05).apply(ranked, CTX).kept
    assert ids(out) == ["b", "c", "a", "d"]  # 0.90 - 0.05 = 0.85: below b and c, above d
    assert out[2].effects[0].detail == "out of stock: rank 1 -> 3"


def test_availability_filter_mode_and_unknown_policy():
    ranked = [item("a", 0.9, in_stock=False), item("b", 0.8, in_stock=None),
              item("c", 0.7, in_stock=True)]
    outcome = Availability(mode="filter", unknown="filter").apply(ranked, CTX)
    assert ids(outcome.kept) == ["c"]
    assert [(r.parent_asin, e.detail) for r, e in outcome.removed] == [
        ("a", "out of stock"), ("b", "stock unknown")]
    kept = Availability(mode="filter").apply(ranked, CTX).kept
    assert ids(kept) == ["b", "c"]  # unknown kept by default


def test_rules_never_reorder_across_the_rerank_window_boundary():
    ranked = [item("a", 0.9, in_stock=False), item("b", 0.88),
              item("t1", 0.031, reranked=False), item("t2", 0.030, reranked=False)]
    out = Availability(margin=0.5).apply(ranked, CTX).kept
    assert ids(out) == ["b", "a", "t1", "t2"]


def test_brand_exclusion_uses_query_and_compliance_list():
    brands = KnownBrands.from_names(["Nike", "HP", "HP Inc.", "Kuncan"])
    ranked = [item("n", 0.9, "Nike"), item("h", 0.8, "HP Inc."), item("k", 0.7, "Kuncan",
                                                                     title="Charger for HP"),
              item("x", 0.6, "BadCo")]
    context = RuleContext(query="charger no hp", parsed=parse_query("charger no hp", brands))
    outcome = BrandExclusion(always_exclude=("Bad Co",)).apply(ranked, context)
    assert ids(outcome.kept) == ["n", "k"]
    assert [(r.parent_asin, e.detail) for r, e in outcome.removed] == [
        ("h", "brand HP Inc.: query excludes this brand"), ("x", "brand BadCo: compliance list")]


def test_non_branded_intent_boosts_generic_within_margin():
    ranked = [item("b1", 0.60, "Spigen"), item("b2", 0.55, "OtterBox"), item("g", 0.52, "Generic"),
              item("b3", 0.30, "Apple"), item("u", 0.25, None)]
    context = RuleContext(query="non-branded case", parsed=parse_query("non-branded case"))
    out = BrandPreference(margin=0.1).apply(ranked, context).kept
    assert ids(out) == ["g", "b1", "b2", "u", "b3"]


def test_named_brand_boost_needs_catalog_context():
    brands = KnownBrands.from_names(["Apple", "Bragg"])
    vinegar = [item("v1", 0.7, "Bragg", category="Grocery"), item("v2", 0.6, "Heinz",
                                                                   category="Grocery"),
               item("v3", 0.55, "Heinz", category="Grocery"),
               item("a1", 0.5, "Apple", category="Electronics")]
    parsed = parse_query("apple cider vinegar", brands)
    out = BrandPreference(margin=0.2).apply(vinegar, RuleContext("q", parsed)).kept
    assert ids(out) == ["v1", "v2", "v3", "a1"] and not out[3].effects
    phones = [item("s", 0.7, "Samsung", category="Electronics"),
              item("a", 0.65, "Apple", category="Electronics")]
    parsed = parse_query("apple phone", brands)
    assert ids(BrandPreference(margin=0.1).apply(phones, RuleContext("q", parsed)).kept) == \
        ["a", "s"]


def test_brand_cap_limits_brands_but_never_buries_the_best():
    ranked = [item(f"n{i}", 0.9 - i * 0.01, "Nike") for i in range(5)] + \
             [item("a", 0.84, "adidas"), item("s", 0.83, "ASICS")]
    out = Diversity(per_brand=3, window=5, max_drop=0.1).apply(ranked, CTX).kept
    assert ids(out) == ["n0", "n1", "n2", "a", "s", "n3", "n4"]
    assert out[5].effects[-1].detail == "at most 3 per brand in the top 5: rank 4 -> 6"
    far = [item(f"n{i}", 0.9 - i * 0.01, "Nike") for i in range(4)] + [item("x", 0.2, "Other")]
    out = Diversity(per_brand=3, window=5, max_drop=0.1).apply(far, CTX).kept
    assert ids(out) == ["n0", "n1", "n2", "n3", "x"]  # the other brand is far worse: cap relaxed
    assert out[3].effects[0].action == "cap relaxed"


def test_mmr_spreads_near_duplicates(tmp_path):
    import numpy as np

    vectors = {"a": np.array([1.0, 0.0]), "a2": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    ranked = [item("a", 0.90), item("a2", 0.89), item("b", 0.85)]
    context = RuleContext("q", vectors=lambda asins: {a: vectors[a] for a in asins})
    out = Diversity(method="mmr", window=3, max_drop=0.1, mmr_lambda=0.5).apply(ranked, context)
    assert ids(out.kept) == ["a", "b", "a2"]


def test_size_match_boosts_compatible_sizes():
    ranked = [item("17", 0.78, title="Samsonite 17 Inch Laptop Backpack"),
              item("156", 0.75, title="Shoulder bag for 15.6-Inch laptops"),
              item("16", 0.70, title='Targus 16" Laptop Bag')]
    parsed = parse_query("16 inch laptop bag")
    out = SizeMatch(margin=0.05).apply(ranked, RuleContext("q", parsed)).kept
    assert ids(out) == ["156", "17", "16"]  # 0.80, 0.78, 0.75: 16" stays below 17" (0.08 gap)


def test_pinning_puts_configured_products_first_and_fetches_missing_ones():
    ranked = [item("a", 0.9), item("b", 0.8), item("c", 0.7)]
    fetched = {"z": IndexedProduct(Product("z", "pinned promo"))}
    rule = Pinning({"Summer  SALE": ("z", "c")})
    context = RuleContext("summer sale", fetch=lambda asins: {a: fetched[a] for a in asins
                                                               if a in fetched})
    out = rule.apply(ranked, context).kept
    assert ids(out) == ["z", "c", "a", "b"]
    assert out[0].effects[0].detail == "not retrieved; inserted at 1"
    assert out[1].effects[0].detail == "rank 3 -> 2"
    assert ids(rule.apply(ranked, RuleContext("other")).kept) == ["a", "b", "c"]
