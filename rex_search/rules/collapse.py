"""Variants are not separate answers: products that differ only by colour or size are shown
once, the best-ranked of them, with the others listed in its explanation ("+2 colours").

Like OpenSearch's field collapsing or a merchandising tool's "distinct". Two products are
variants when they share a brand and the same *name*: the title before its first comma-separated
segment that holds only colours, sizes and numbers, lower-cased, possessives folded, colour words
removed (the common colour vocabulary and the product's own ``details.Color``). With ``field``
set (a ``details`` key such as ``Model Name``), products that have that field group by its value
instead. The kept product is the best-ranked of its group, so rules that ran before (stock)
decide which variant is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rex_search.catalog.schema import brand_key
from rex_search.results import RuleEffect
from rex_search.rules.base import Ranked, RuleContext, RuleOutcome

_COLOUR_TEXT = """
black white grey gray silver gold rose red pink purple violet blue navy teal turquoise aqua
green olive lime yellow orange brown tan beige khaki cream ivory charcoal burgundy maroon
wine coral mint multicolor multi multicolour clear transparent bronze copper chrome nickel
matte dark light bright pale heather camo natural chestnut taupe mauve lavender fuchsia
"""
_SIZE_TEXT = """
xs s m l xl xxl xxxl 2xl 3xl 4xl small medium large x-large xx-large regular wide narrow
us uk eu size sizes inch inches in cm mm ft oz lb pack count ct pcs piece pieces one
x-wide xw ww w n d ee eee 2e 4e b
"""
COLOURS = frozenset(_COLOUR_TEXT.split())
SIZE_WORDS = frozenset(_SIZE_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")


@dataclass(frozen=True)
class Collapse:
    field: str = ""  # a details key; products that have it group by its value
    name: str = "collapse"

    def apply(self, ranked: list[Ranked], context: RuleContext) -> RuleOutcome:
        shown: dict[tuple[str, ...], Ranked] = {}
        variants: dict[str, list[Ranked]] = {}
        kept: list[Ranked] = []
        removed: list[tuple[Ranked, RuleEffect]] = []
        for r in ranked:
            key = self.key(r)
            best = shown.get(key) if key else None
            if best is None:
                if key:
                    shown[key] = r
                kept.append(r)
                continue
            effect = RuleEffect(self.name, "collapsed", (
                f"a variant of {best.parent_asin} ({_differs(best, r)}), which is shown "
                "instead"))
            r.effects.append(effect)
            removed.append((r, effect))
            variants.setdefault(best.parent_asin, []).append(r)
        for r in kept:
            others = variants.get(r.parent_asin)
            if others:
                r.effects.append(RuleEffect(self.name, "variants", (
                    f"{_count(r, others)}: {', '.join(o.parent_asin for o in others[:5])}"
                    + (" ..." if len(others) > 5 else ""))))
        return RuleOutcome(kept, removed)

    def key(self, r: Ranked) -> tuple[str, ...]:
        """The group a product belongs to (empty: a group of its own)."""
        product = r.item.product
        if self.field and product.details.get(self.field):
            return ("field", product.details[self.field].strip().lower())
        name = variant_name(product.title, product.color)
        # joined: "Cloud foam" and "Cloudfoam" name the same shoe
        return ("title", brand_key(product.brand) if product.brand else "", "".join(name)) \
            if name else ()


def variant_name(title: str, colour: str | None = None) -> tuple[str, ...]:
    """The words that name a product, without its colour and size: "adidas Women's Cloudfoam
    Pure Running Shoe, Black/Grey/Grey, 8.5" -> ("adidas", "womens", "cloudfoam", "pure",
    "running", "shoe")."""
    own = set(_words(colour or ""))
    segments = title.split(",")
    name = segments[0]
    for segment in segments[1:]:
        words = _words(segment)
        if words and not all(_is_variant_word(w, own) for w in words):
            name += " " + segment  # a segment that describes the product, not a variant
    return tuple(w for w in _words(name) if w not in COLOURS and w not in own)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("'s", "s").replace("’s", "s"))


def _is_variant_word(word: str, own: set[str]) -> bool:
    return (word in COLOURS or word in own or word in SIZE_WORDS
            or bool(re.fullmatch(r"[\d.\-/]+(?:us|uk|eu|in|cm|mm|oz|lb|ct|pk)?", word)))


def _differs(best: Ranked, other: Ranked) -> str:
    a, b = best.item.product, other.item.product
    if a.color and b.color and a.color.strip().lower() != b.color.strip().lower():
        return f"colour {b.color}"
    return "another size or colour"


def _count(best: Ranked, others: list[Ranked]) -> str:
    own = (best.item.product.color or "").strip().lower()
    colours = {o.item.product.color.strip().lower() for o in others
               if o.item.product.color and o.item.product.color.strip().lower() != own}
    if len(colours) == len(others):
        return f"+{len(others)} colour{'s' if len(others) > 1 else ''}"
    return f"+{len(others)} variant{'s' if len(others) > 1 else ''}"
