"""Query understanding: a table of hand-written cases with the constraints each must yield."""

from __future__ import annotations

import pytest

from rex_search.query import KnownBrands, parse_query

BRANDS = KnownBrands.from_names([
    "Nike", "Apple", "Anker", "HP", "HP Inc.", "Sony", "Dell", "Samsung", "Under Armour", "Now",
    "Generic", "Amazon Basics", "adidas", "Lodge", "Gap", "Dr. Martens", "Levi's",
])

# (query, model text, expected constraints); keys absent from the dict must be absent/empty.
CASES = [
    ("running shoes no nike", "running shoes", {"exclude_brands": ["Nike"]}),
    ("running shoes NO NIKE", "running shoes", {"exclude_brands": ["Nike"]}),
    ("usb c charger not apple", "usb c charger", {"exclude_brands": ["Apple"]}),
    ("tv -samsung", "tv", {"exclude_brands": ["Samsung"]}),
    ("headphones except sony", "headphones", {"exclude_brands": ["Sony"]}),
    ("laptop anything but dell", "laptop", {"exclude_brands": ["Dell"]}),
    ("hoodie without under armour", "hoodie", {"exclude_brands": ["Under Armour"]}),
    ("printer ink no hp", "printer ink", {"exclude_brands": ["HP"]}),
    ("boots not dr martens", "boots", {"exclude_brands": ["Dr. Martens"]}),
    ("jeans excluding levis", "jeans", {"exclude_brands": ["Levi's"]}),
    ("shoes no nike no adidas", "shoes", {"exclude_brands": ["Nike", "adidas"]}),
    ("non-branded phone case", "phone case", {"non_branded": True}),
    ("generic printer ink", "printer ink", {"non_branded": True}),
    ("unbranded t-shirt", "t-shirt", {"non_branded": True}),
    ("phone charger no brand", "phone charger", {"non_branded": True}),
    ("kindle no ads", "kindle ad-free", {"ad_free": True}),
    ("ad-free tablet", "ad-free tablet", {"ad_free": True}),
    ("nike running shoes", "nike running shoes", {"brands": ["Nike"]}),
    ("16 inch laptop bag", "16 inch laptop bag", {"sizes": ["16 in"]}),
    ("16in laptop bag", "16 inch laptop bag", {"sizes": ["16 in"]}),
    ('16" laptop bag', "16 inch laptop bag", {"sizes": ["16 in"]}),
    ("15.6-inch laptop sleeve", "15.6 inch laptop sleeve", {"sizes": ["15.6 in"]}),
    ("2 tb external hard drive", "2 tb external hard drive", {"sizes": ["2 tb"]}),
    ("1/2 in drill bit", "1/2 inch drill bit", {"sizes": ["0.5 in"]}),
    ("running shoes under $50", "running shoes", {"max_price": 50.0}),
    ("socks below 30 dollars", "socks", {"max_price": 30.0}),
    ("tv under $1,299.99", "tv", {"max_price": 1299.99}),
    ("desk lamp over $20", "desk lamp", {"min_price": 20.0}),
    ("headphones between $20 and $40", "headphones", {"min_price": 20.0, "max_price": 40.0}),
    ("laptop bag under 16 inch", "laptop bag under 16 inch", {"sizes": ["16 in"]}),
    # Traps: a negated word that is not a known brand is not a brand exclusion.
    ("nike air max no laces", "nike air max", {"brands": ["Nike"],
                                                "ignored_negations": ["laces"]}),
    ("jacket not waterproof", "jacket", {"ignored_negations": ["waterproof"]}),
    ("apple cider vinegar", "apple cider vinegar", {"brands": ["Apple"]}),
    ("vitamins now", "vitamins now", {}),  # "Now" is a brand but also a plain word
    # A brand word without negation is only a *mention*: the brand-preference rule acts on it
    # only when the catalog context agrees (tests/rules), and it never excludes anything.
    ("gap between teeth filler", "gap between teeth filler", {"brands": ["Gap"]}),
    ("cast iron skillet", "cast iron skillet", {}),
    ("usb c charger", "usb c charger", {}),
    # A misspelt negated brand is excluded when exactly one brand is that close, and said so.
    ("headphones no sonyy", "headphones", {"exclude_brands": ["Sony"],
                                           "corrected_brands": ["sonyy -> Sony"]}),
    ("phone case without samsng", "phone case", {"exclude_brands": ["Samsung"],
                                                 "corrected_brands": ["samsng -> Samsung"]}),
    # Traps: a plural is a word, not a misspelt brand; short words are never guessed.
    ("fruit basket no apples", "fruit basket", {"ignored_negations": ["apples"]}),
    ("shoes no nikes", "shoes", {"ignored_negations": ["nikes"]}),
    ("cable not hq", "cable", {"ignored_negations": ["hq"]}),
    # Negation forms and lists: every brand of a negated list is excluded.
    ("shoes w/o nike", "shoes", {"exclude_brands": ["Nike"]}),
    ("not nike or adidas running shoes", "running shoes", {"exclude_brands": ["Nike", "adidas"]}),
    ("running shoes no nike, adidas or sony", "running shoes", {
        "exclude_brands": ["Nike", "adidas", "Sony"]}),
    ("neither nike nor adidas", "neither nike nor adidas", {"exclude_brands": ["Nike", "adidas"]}),
    # Traps: a list ends at a word that is not a brand; "now" stays a word.
    ("shoes no nike or blue ones", "shoes or blue ones", {"exclude_brands": ["Nike"]}),
    ("no nike or now vitamins", "or now vitamins", {"exclude_brands": ["Nike"]}),
    # Currencies: prices in the catalog's own currency, whatever the mark.
    ("socks under £30", "socks", {"max_price": 30.0}),
    ("tv under 500 euros", "tv", {"max_price": 500.0}),
    ("bag between €20 and €40", "bag", {"min_price": 20.0, "max_price": 40.0}),
    ("dumbbell 50 pounds", "dumbbell 50 pound", {"sizes": ["50 lb"]}),  # a weight, not £
    # Contradictory prices: the ceiling is kept and the dropped floor said.
    ("shoes over $30 under $20", "shoes", {"max_price": 20.0, "notes": [
        "ignored the minimum price $30: it is above the maximum $20"]}),
]


@pytest.mark.parametrize(("query", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_query_understanding_table(query: str, text: str, expected: dict):
    parsed = parse_query(query, BRANDS)
    got = parsed.constraints()
    assert got.pop("model_text") == text
    assert got == expected


def test_brand_families_cover_corporate_suffixes_and_only_them():
    parsed = parse_query("usb c charger no hp", BRANDS)
    assert set(parsed.exclude_brand_keys) == {"hp", "hpinc"}
    assert parse_query("no apple", BRANDS).exclude_brand_keys == ("apple",)


def test_aliases_are_configurable():
    brands = KnownBrands({"hewlettpackard": "Hewlett Packard", "hp": "HP"},
                         aliases={"hewlett packard enterprise": "Hewlett Packard"})
    parsed = parse_query("toner except hewlett packard enterprise", brands)
    assert parsed.exclude_brands == ("Hewlett Packard",)
    assert parsed.text == "toner"


def test_without_known_brands_nothing_is_excluded():
    parsed = parse_query("running shoes no nike")
    assert parsed.exclude_brands == ()
    assert parsed.ignored_negations == ("nike",)
    assert parsed.text == "running shoes"
