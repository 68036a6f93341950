"""Hosted-rerank documents -> products with their stock, and ranked results -> scores.

A document is a string (one already in the RexReranker product format is read back as title
and description) or an object: ``id``, ``title``/``text``, ``description``, and any catalog
field the rules read (``brand``, ``price``, ``categories``, ``features``, ``details``, ...)
plus ``in_stock``/``quantity``. Every problem names the document and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rex_search.backends.base import IndexedProduct
from rex_search.catalog import fields
from rex_search.catalog.prompt import parse_product_text
from rex_search.catalog.schema import Product
from rex_search.catalog.text import lone_surrogate_at

# Keys a document object may carry besides id/title/text/description.
CATALOG_KEYS = ("parent_asin", "brand", "store", "main_category", "categories", "features",
                "price", "details", "average_rating", "rating_number", "image", "in_stock",
                "quantity")
_KNOWN = {"id", "title", "text", "description", *CATALOG_KEYS}


class DocumentError(ValueError):
    """A document the caller must fix; the message names it."""


def read_document(i: int, doc: Any, max_chars: int) -> IndexedProduct:
    """Document ``i`` as a product with its stock (None: unknown)."""
    stock: tuple[bool | None, int | None]
    if isinstance(doc, str):
        title, body = parse_product_text(doc) or (doc, "")
        product, stock = Product(parent_asin=str(i), title=title, description=body), (None, None)
    elif isinstance(doc, dict):
        product, stock = _from_object(i, doc)
    else:
        raise DocumentError(f"documents[{i}] must be a string or an object")
    text = product.title + product.description
    if len(text) > max_chars:
        raise DocumentError(f"documents[{i}] is over {max_chars} characters")
    if not product.title.strip():
        raise DocumentError(f"documents[{i}] is empty")
    if lone_surrogate_at(text) is not None:
        raise DocumentError(f"documents[{i}] is not valid Unicode text (a lone surrogate)")
    return IndexedProduct(product, *stock)


def _from_object(i: int, doc: dict[str, Any]) -> tuple[Product, tuple[bool | None, int | None]]:
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise DocumentError(f"documents[{i}]: unknown field(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(_KNOWN))}")
    title = doc.get("title") or doc.get("text")
    body = doc.get("description") or ("" if doc.get("title") is None else doc.get("text", ""))
    if not isinstance(title, str) or not isinstance(body, str):
        raise DocumentError(f"documents[{i}] needs a string title or text")
    try:
        product = Product(
            parent_asin=str(doc.get("id", doc.get("parent_asin", i))), title=title,
            description=body, image=fields.optional_text(doc, "image"),
            average_rating=fields.number(doc, "average_rating", 0, 5),
            rating_number=fields.integer(doc, "rating_number", 0, 1e12),
            brand=fields.optional_text(doc, "brand"), store=fields.optional_text(doc, "store"),
            main_category=fields.optional_text(doc, "main_category"),
            categories=fields.text_list(doc, "categories"),
            features=fields.text_list(doc, "features"),
            price=fields.price(doc.get("price")), details=fields.details(doc.get("details")))
        in_stock = doc.get("in_stock")
        if in_stock is not None and not isinstance(in_stock, bool):
            raise fields.BadField("in_stock", f"expected true, false or null, got "
                                              f"{fields.type_name(in_stock)}")
        quantity = fields.integer(doc, "quantity", low=0, high=1e9)
    except fields.BadField as exc:
        raise DocumentError(f"documents[{i}].{exc}") from None
    return product, (in_stock, int(quantity) if quantity is not None else None)


def positions(items: Sequence[IndexedProduct]) -> dict[str, int]:
    """Each document's id -> its position; a repeated id is an error naming both documents."""
    index_of: dict[str, int] = {}
    for i, item in enumerate(items):
        first = index_of.setdefault(item.product.parent_asin, i)
        if first != i:
            raise DocumentError(f"documents[{i}].id repeats documents[{first}]'s id")
    return index_of


def capped_scores(scores: Sequence[float | None]) -> list[float]:
    """Each hit's model score, capped by the one above it so the list reads best-first: a rule
    that moved a product down (availability, diversity) shows as a lower score, never as a
    higher score below a lower one. ``scores`` are the hits' model scores (None: unscored)."""
    capped: list[float] = []
    for score in scores:
        value = 0.0 if score is None else float(score)
        capped.append(min(value, capped[-1]) if capped else value)
    return capped
