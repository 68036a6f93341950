"""Stream a catalog file (parquet, CSV or JSONL) as validated `Product` batches.

Nothing is loaded whole (see `rows.py`), so a 37M-row catalog needs memory for one batch only.
A bad row never stops the run and is never dropped silently: it comes back as a `RejectedRow`
naming its row number, id and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rex_search.catalog.fields import (
    BadField,
    details,
    integer,
    number,
    optional_text,
    price,
    required_text,
    text_list,
)
from rex_search.catalog.rows import INVALID, RejectedRow, parse_rows, read_rows
from rex_search.catalog.schema import REQUIRED_COLUMNS, Product
from rex_search.errors import CatalogError

__all__ = ["CatalogBatch", "RejectedRow", "parse_row", "read_catalog"]


@dataclass(frozen=True)
class CatalogBatch:
    products: list[Product]
    rejected: list[RejectedRow]


def read_catalog(path: str | Path, batch_size: int = 1024) -> Iterator[CatalogBatch]:
    """Yield validated products from ``path`` in batches of at most ``batch_size`` rows.

    Raises:
        CatalogError: the file is missing, of an unknown format, or lacks a required column.
    """
    rows = read_rows(path, REQUIRED_COLUMNS, "catalog", batch_size)
    for products, rejected in parse_rows(_not_judgments(Path(path), rows), parse_row):
        yield CatalogBatch(products, rejected)


def _not_judgments(path: Path, batches: Iterator[list[dict[str, Any]]]
                   ) -> Iterator[list[dict[str, Any]]]:
    """Refuse a judgments file given as a catalog: its rows have parent_asin and title too,
    and indexing them would overwrite real products with thinner records."""
    for position, batch in enumerate(batches):
        if position == 0 and batch and "relevance_score" in batch[0] and (
                "query_string" in batch[0] or "query" in batch[0]):
            raise CatalogError(f"{path.name} is a judgments file (it has query and "
                               "relevance_score columns), not a catalog: evaluate with it "
                               f"(`rex-search eval {path.name}`), index a catalog")
        yield batch


def parse_row(raw: dict[str, Any]) -> Product:
    """Validate one raw row into a `Product`; raises `BadField` naming the first bad field."""
    if INVALID in raw:
        raise BadField("record", raw[INVALID])
    extra = details(raw.get("details"))
    store = optional_text(raw, "store")
    brand = extra.get("Brand") or store
    return Product(
        parent_asin=required_text(raw, "parent_asin"),
        title=required_text(raw, "title"),
        brand=brand.strip() if brand and brand.strip() else None,
        store=store,
        main_category=optional_text(raw, "main_category"),
        categories=text_list(raw, "categories"),
        features=text_list(raw, "features"),
        description="\n".join(text_list(raw, "description")),
        price=price(raw.get("price")),
        average_rating=number(raw, "average_rating", 0.0, 5.0),
        rating_number=integer(raw, "rating_number", 0.0, 1e12),
        details=extra,
        image=_image(raw.get("images")),
    )


def _image(value: Any) -> str | None:
    """The first http(s) URL in ``images`` (Amazon-Reviews-2023: a list of {large, hi_res,
    thumb, variant}; also a list of URLs, or either as JSON text in CSV). Display only: an
    unreadable value means no image, never a rejected product; other schemes (javascript:,
    data:) are never taken."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list):
        return None
    for item in value:
        urls = [item] if isinstance(item, str) else \
            [item.get(k) for k in ("large", "hi_res", "thumb")] if isinstance(item, dict) else []
        for url in urls:
            if isinstance(url, str) and re.fullmatch(r"https?://[^\s\"'<>]{1,2000}", url):
                return url
    return None
