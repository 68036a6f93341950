"""The RexReranker input format: ``Query: {q}`` paired with ``Title: {t}\\nDescription: {d}``."""

from __future__ import annotations

from rex_search.catalog.schema import Product
from rex_search.catalog.text import plain_text

TITLE, DESCRIPTION = "Title: ", "\nDescription: "


def query_text(query: str) -> str:
    return f"Query: {query}"


def product_text(product: Product, max_chars: int = 1000) -> str:
    """Title first, then brand and key attributes, then features and description.

    Markup is stripped first (:func:`plain_text`): feeds that store HTML descriptions must not
    spend the token budget on tags. The order matters because the tokenizer truncates from the
    end: what a shopper checks first (brand, colour, price) survives a tight token budget, the
    long description does not.
    """
    body = plain_text(" ".join((*attribute_text(product), *product.features,
                                product.description)))
    return f"{TITLE}{plain_text(product.title)}{DESCRIPTION}{body[:max_chars]}"


def parse_product_text(text: str) -> tuple[str, str] | None:
    """(title, description) of a text already in the product format, else None. A cluster
    stores `product_text` prepared (``rerank_text``) and sends it to /rerank as a string;
    reading it back means the model sees exactly that text, not a title of "Title: ..."."""
    if not text.startswith(TITLE):
        return None
    title, separator, body = text[len(TITLE):].partition(DESCRIPTION)
    return (title, body) if separator and title.strip() else None


def attribute_text(product: Product) -> list[str]:
    """Brand, colour and the last two category levels, as the description's first sentences."""
    attributes = []
    if product.brand:
        attributes.append(f"Brand: {product.brand}.")
    if product.color:
        attributes.append(f"Color: {product.color}.")
    if product.categories:
        attributes.append(f"Category: {' > '.join(product.categories[-2:])}.")
    return attributes
