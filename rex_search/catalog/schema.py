"""The product record every stage shares, and how its searchable text is built."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from rex_search.catalog.text import plain_text

REQUIRED_COLUMNS = ("parent_asin", "title")
OPTIONAL_COLUMNS = (
    "main_category",
    "categories",
    "features",
    "description",
    "price",
    "store",
    "details",
    "average_rating",
    "rating_number",
    "images",
)


@dataclass(frozen=True)
class Product:
    """One catalog product (Amazebay-Catalog / Amazon-Reviews-2023 item metadata)."""

    parent_asin: str
    title: str
    brand: str | None = None
    store: str | None = None
    main_category: str | None = None
    categories: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    description: str = ""
    price: float | None = None
    average_rating: float | None = None
    rating_number: int | None = None
    details: dict[str, str] = field(default_factory=dict)
    image: str | None = None  # the first http(s) image URL of the catalog's ``images``

    @property
    def color(self) -> str | None:
        return self.details.get("Color")

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["categories"] = list(self.categories)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Product:
        values = dict(data)
        values["categories"] = tuple(values.get("categories") or ())  # type: ignore[arg-type]
        values["features"] = tuple(values.get("features") or ())  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def content_hash(self) -> str:
        """Fingerprint of everything indexed; unchanged products are skipped on re-index."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def embedding_text(product: Product, max_chars: int = 300) -> str:
    """Text the dense embedder sees: title, brand, leaf category, then the start of the body.

    Title and brand come first because the embedder truncates long inputs; the body adds the
    attributes a title leaves out (NOTES.md: title + first 300 characters worked best on DEV).
    HTML markup is stripped, so 300 characters of a feed's HTML description are 300 of words.
    """
    parts = [plain_text(product.title)]
    if product.brand and product.brand.lower() not in product.title.lower():
        parts.append(f"Brand: {product.brand}")
    if product.categories:
        parts.append(product.categories[-1])
    body = plain_text(" ".join((*product.features, product.description)))
    if body:
        parts.append(body[:max_chars])
    return ". ".join(parts)


def brand_key(brand: str | None) -> str:
    """Case- and punctuation-insensitive brand key: "HP Inc." -> "hpinc"."""
    return "".join(ch for ch in (brand or "").lower() if ch.isalnum())


@dataclass(frozen=True)
class StockRecord:
    """One row of a stock/price feed (`rex-search inventory update`)."""

    parent_asin: str
    in_stock: bool
    quantity: int | None = None
    price: float | None = None
