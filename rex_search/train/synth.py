"""Weakly supervised training pairs generated from a catalog (``rex-search train-data synth``).

For a seed product p a query is built from its leaf category (its product type), optionally
with its brand or colour, or from the first content words of its title. Every candidate gets a
grade y in [0, 1] by how well it satisfies that query:

- 1.0 exact: same product type, every stated attribute matches (p itself; same leaf
  category with the same brand/colour; for title-word queries, a same-leaf product whose
  title holds every query word);
- 0.5 same type, a stated attribute differs (same leaf category, other brand or colour, or
  a title-word query's word missing from its title);
- 0.2 same department, another product type (same top-level category, other leaf);
- 0.1 lexical hard negative: shares a query word but is another type (shoe laces for
  "running shoes", a sofa cover for "sofa"): titles containing a non-brand query word, in
  another leaf and another parent category (a sibling leaf can be a near-synonym type);
- 0.0 unrelated: a random product from another department.

A pair's description is the product's features and description, preceded in half of the pairs
(at random) by the brand/colour/category sentences the pipeline's ``product_text`` adds, so
the model learns to read both catalog products and judgments that carry only a description.

Grades sit between RexRerankers' boundaries (0.2/0.5/0.8), so the distributional loss widens
its targets where the weak label is least certain. Seeded and deterministic.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rex_search.catalog.schema import Product, brand_key
from rex_search.rerank.prompt import attribute_text

_STOP = {"for", "with", "and", "the", "of", "in", "to", "a", "men", "women", "mens", "womens",
         "pack", "set", "size", "new", "kids", "inch", "x"}


@dataclass(frozen=True)
class Pair:
    query: str
    parent_asin: str
    title: str
    description: str
    relevance_score: float
    kind: str


def _leaf(p: Product) -> str | None:
    return p.categories[-1].lower() if p.categories else None


def _parent(p: Product) -> tuple[str, ...]:
    """The category path above the leaf: leaves sharing it are sibling types."""
    return tuple(c.lower() for c in p.categories[:-1])


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _STOP]


def synthesize(products: Iterable[Product], queries: int = 3000, seed: int = 0,
               per_grade: int = 2) -> list[Pair]:
    """About ``queries`` queries with ~``4 * per_grade + 1`` graded candidates each."""
    rng = random.Random(seed)
    items = [p for p in products if _leaf(p)]
    by_leaf: dict[str, list[Product]] = defaultdict(list)
    by_top: dict[str, list[Product]] = defaultdict(list)
    by_word: dict[str, list[Product]] = defaultdict(list)
    for p in items:
        by_leaf[_leaf(p)].append(p)  # type: ignore[index]
        by_top[p.categories[0].lower()].append(p)
        for w in set(_words(p.title)):
            by_word[w].append(p)
    pairs: list[Pair] = []
    seeds = rng.sample(items, min(queries, len(items)))
    for p in seeds:
        leaf = _leaf(p) or ""
        style = rng.choice(["type", "brand", "color", "title"])
        if style == "brand" and p.brand:
            query, attribute = f"{p.brand} {leaf}", ("brand", brand_key(p.brand))
        elif style == "color" and p.color:
            query, attribute = f"{p.color.lower()} {leaf}", ("color", p.color.lower())
        elif style == "title":
            words = [w for w in _words(p.title) if brand_key(w) != brand_key(p.brand)][:4]
            query, attribute = " ".join(words) or leaf, None
        else:
            query, attribute = leaf, None
        query_words = set(_words(query))
        graded: dict[str, tuple[Product, float, str]] = {p.parent_asin: (p, 1.0, "exact")}
        same = [o for o in by_leaf[leaf] if o.parent_asin not in graded]
        rng.shuffle(same)
        for o in same[: 2 * per_grade]:
            if attribute is None:
                match = style != "title" or query_words <= set(_words(o.title))
            elif attribute[0] == "brand":
                match = brand_key(o.brand) == attribute[1]
            else:
                match = (o.color or "").lower() == attribute[1]
            graded[o.parent_asin] = (o, 1.0 if match else 0.5,
                                     "exact" if match else "attribute-mismatch")
        department = [o for o in by_top[p.categories[0].lower()] if _leaf(o) != leaf]
        for o in rng.sample(department, min(per_grade, len(department))):
            graded.setdefault(o.parent_asin, (o, 0.2, "same-department"))
        brand_words = set(_words(p.brand or ""))
        lexical = {o.parent_asin: o for w in query_words - brand_words
                   for o in by_word.get(w, []) if _parent(o) != _parent(p)}
        for o in rng.sample(sorted(lexical.values(), key=lambda x: x.parent_asin),
                            min(per_grade, len(lexical))):
            graded.setdefault(o.parent_asin, (o, 0.1, "lexical-hard-negative"))
        for o in rng.sample(items, per_grade):
            if o.categories[0].lower() != p.categories[0].lower():
                graded.setdefault(o.parent_asin, (o, 0.0, "unrelated"))
        for o, grade, kind in graded.values():
            attributes = attribute_text(o) if rng.random() < 0.5 else []
            body = " ".join((*attributes, *o.features, o.description))[:600]
            pairs.append(Pair(query, o.parent_asin, o.title, body, grade, kind))
    return pairs
