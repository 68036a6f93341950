"""Product text in the forms other catalogs store it, for training a reranker that transfers.

The sample catalog has clean titles, features and a brand; other retailers' feeds have titles
only, HTML descriptions with shop boilerplate, or no brand. Each training pair is shown in one
of these forms (seeded), so the model does not learn to rely on one catalog's layout.
"""

from __future__ import annotations

import random
from typing import Literal

from rex_search.catalog.prompt import attribute_text
from rex_search.catalog.schema import Product

Form = Literal["attributes", "plain", "title", "html"]
FORMS: tuple[tuple[Form, float], ...] = (("attributes", 0.35), ("plain", 0.25), ("title", 0.2),
                                         ("html", 0.2))
BOILERPLATE = (
    "Satisfaction guaranteed or your money back.",
    "Free shipping on orders over $35.",
    "Please check the size chart before ordering.",
    "Our customer service team is happy to help 24/7.",
    "Ships within 2 business days.",
    "Colors may vary slightly due to monitor settings.",
    "Add to cart now!",
    "100% brand new and high quality.",
)


def pick_form(rng: random.Random) -> Form:
    draw, total = rng.random(), 0.0
    for form, share in FORMS:
        total += share
        if draw < total:
            return form
    return FORMS[-1][0]


def description_in_form(product: Product, form: Form, rng: random.Random,
                        max_chars: int = 600) -> str:
    """The description field as a catalog of that form would hold it (title unchanged)."""
    if form == "title":
        return ""
    lines = [*product.features, *([product.description] if product.description else [])]
    if form == "html":
        items = "".join(f"<li>{line}</li>" for line in lines)[:max_chars]
        return (f'<div class="description"><p><b>{rng.choice(BOILERPLATE)}</b></p><ul>{items}'
                f"</ul><p>{rng.choice(BOILERPLATE)} &amp; more.</p></div>")
    attributes = attribute_text(product) if form == "attributes" else []
    return " ".join((*attributes, *lines))[:max_chars]
