"""Colour and size variants are shown once: the best-ranked, with the others listed."""

from __future__ import annotations

import dataclasses

import pytest

from rex_search.config import RulesConfig
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rules.collapse import variant_name
from tests.conftest import cosine_reranker


@pytest.mark.parametrize(("title", "colour", "name"), [
    ("adidas Women's Cloudfoam Pure Running Shoe, Black/Grey/Grey, 8.5", "Black/Grey/Grey",
     ("adidas", "womens", "cloudfoam", "pure", "running", "shoe")),
    ("adidas womens Cloudfoam Pure Running Shoe, White/White/Black, 9.5 US",
     "White/White/Black", ("adidas", "womens", "cloudfoam", "pure", "running", "shoe")),
    ("UGG Women's Fluff Yeah Slide Slipper, Neon Coral, 5 M US", "Neon Coral",
     ("ugg", "womens", "fluff", "yeah", "slide", "slipper")),
    ("New Balance Men's 481 V3 Trail Running Shoe, Chocolate Brown/Black/Tigers Eye, 10.5 XW US",
     "Chocolate Brown/Black/Tigers Eye",
     ("new", "balance", "mens", "481", "v3", "trail", "running", "shoe")),
    # A segment that describes the product is part of its name: not collapsed with others.
    ("Kodiak Futon Frame, No Drawers, Espresso", "Espresso",
     ("kodiak", "futon", "frame", "no", "drawers")),
    # Model numbers are names, not sizes.
    ("Apple iPhone 13 Case, Black", "Black", ("apple", "iphone", "13", "case")),
])
def test_the_name_of_a_variant_drops_its_colour_and_size(title, colour, name):
    assert variant_name(title, colour) == name


def test_running_shoes_shows_each_shoe_once_and_lists_its_variants(small_index, embedder):
    reranker = cosine_reranker(small_index, embedder)
    plain = SearchPipeline(small_index, embedder, reranker, rules=dataclasses.replace(
        RulesConfig(), collapse="off"))
    before = plain.search("running shoes", size=100).hits
    names = [variant_name(h.title) for h in before]
    assert len(set(names)) < len(names)  # the sample has colour/size variants of one shoe
    collapsed = SearchPipeline(small_index, embedder, reranker).search("running shoes", size=100)
    after = [variant_name(h.title) for h in collapsed.hits]
    assert len(set(after)) == len(after)
    shown = next(h for h in collapsed.hits
                 if any(r.rule == "collapse" for r in h.explanation.rules))
    listed = next(r for r in shown.explanation.rules if r.rule == "collapse")
    assert listed.action == "variants" and listed.detail.startswith("+")
    removed = {asin for asin, effect in collapsed.removed if effect.rule == "collapse"}
    listed_ids = listed.detail.split(": ", 1)[1].removesuffix(" ...").split(", ")
    assert listed_ids and set(listed_ids) <= removed


def test_spacing_inside_a_name_does_not_split_a_group():
    from rex_search.backends.base import IndexedProduct
    from rex_search.catalog.schema import Product
    from rex_search.results import Candidate
    from rex_search.rules.base import Ranked
    from rex_search.rules.collapse import Collapse

    def key(title: str) -> tuple[str, ...]:
        item = IndexedProduct(Product("A", title, brand="adidas"))
        return Collapse().key(Ranked(Candidate("A", 1, 0.0, {}), item, 0.0))

    assert key("adidas Women's Cloud foam Pure Running Shoe, white/white/black, 8 Medium US") \
        == key("adidas Women's Cloudfoam Pure Running Shoe, Black/Grey/Grey, 8.5")
