"""Weakly supervised training pairs generated from a catalog (``rex-search train-data synth``).

For a seed product p a query is built in one of several shoppers' styles: its leaf category
(the product type), brand + type, colour + type, an attribute word of its title + type, the
first 2-4 or 5-8 content words of its title, or "type without X" (X a word some products of
that type have in their title). One query in eight gets a typo (a dropped or swapped letter).
Every candidate gets a grade y in [0, 1] by how well it satisfies that query:

- 1.0 exact: same product type, every stated attribute matches (p itself; same leaf
  category with the same brand/colour; for title-word and attribute queries, a same-leaf
  product whose title holds every query word; for "without X", one whose title lacks X);
- 0.5 same type, a stated attribute differs (same leaf category, other brand or colour, a
  query word missing from its title, or X present despite "without X");
- 0.2 same department, another product type (same top-level category, other leaf);
- 0.1 lexical hard negative: shares a query word but is another type (shoe laces for
  "running shoes", a sofa cover for "sofa"): titles containing a non-brand query word, in
  another leaf and another parent category (a sibling leaf can be a near-synonym type);
- 0.0 unrelated: a random product from another department.

A pair's text is shown in one of the forms other catalogs use (``text_forms``): with the
brand/colour/category sentences the pipeline's ``product_text`` adds, plain features and
description, title only, or an HTML description with shop boilerplate.

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
from rex_search.train.text_forms import description_in_form, pick_form

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
    teacher: float | None = None  # the bi-encoder cosine of the pair, where distilled


def _leaf(p: Product) -> str | None:
    return p.categories[-1].lower() if p.categories else None


def _parent(p: Product) -> tuple[str, ...]:
    """The category path above the leaf: leaves sharing it are sibling types."""
    return tuple(c.lower() for c in p.categories[:-1])


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _STOP]


STYLES = ("type", "brand", "color", "attribute", "title", "long", "without")


def misspell(word: str, rng: random.Random) -> str:
    """One typo: a dropped or a swapped letter (words of 5+ letters only)."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1:]
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]


def _query(p: Product, style: str, leaf: str, same_leaf: list[Product],
           rng: random.Random) -> tuple[str, tuple[str, str] | None]:
    """(query text, the attribute it states: ("brand"|"color"|"words"|"without", value))."""
    title_words = [w for w in _words(p.title) if brand_key(w) != brand_key(p.brand)]
    leaf_words = set(_words(leaf))
    if style == "brand" and p.brand:
        return f"{p.brand} {leaf}", ("brand", brand_key(p.brand))
    if style == "color" and p.color:
        return f"{p.color.lower()} {leaf}", ("color", p.color.lower())
    if style == "attribute":
        extra = [w for w in title_words if w not in leaf_words]
        if extra:
            word = rng.choice(extra[:6])
            return f"{word} {leaf}", ("words", word)
    if style in ("title", "long") and title_words:
        words = title_words[:rng.randint(2, 4)] if style == "title" else \
            title_words[:rng.randint(5, 8)]
        return " ".join(words), ("words", " ".join(words))
    if style == "without":
        own = set(_words(p.title))
        others = sorted({w for o in same_leaf for w in _words(o.title)} - own - leaf_words)
        if others:
            word = rng.choice(others)
            return f"{leaf} without {word}", ("without", word)
    return leaf, None


def _matches(o: Product, attribute: tuple[str, str] | None) -> bool:
    if attribute is None:
        return True
    kind, value = attribute
    if kind == "brand":
        return brand_key(o.brand) == value
    if kind == "color":
        return (o.color or "").lower() == value
    words = set(_words(o.title))
    if kind == "without":
        return value not in words
    return set(_words(value)) <= words


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
        same = [o for o in by_leaf[leaf] if o.parent_asin != p.parent_asin]
        rng.shuffle(same)
        query, attribute = _query(p, rng.choice(STYLES), leaf, same[:20], rng)
        query_words = set(_words(query.split(" without ")[0]))
        graded: dict[str, tuple[Product, float, str]] = {}
        if _matches(p, attribute):
            graded[p.parent_asin] = (p, 1.0, "exact")
        for o in same[: 2 * per_grade]:
            match = _matches(o, attribute)
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
        if rng.random() < 0.125:
            words = query.split()
            i = rng.randrange(len(words))
            query = " ".join([*words[:i], misspell(words[i], rng), *words[i + 1:]])
        for o, grade, kind in graded.values():
            body = description_in_form(o, pick_form(rng), rng)
            pairs.append(Pair(query, o.parent_asin, o.title, body, grade, kind))
    return pairs
