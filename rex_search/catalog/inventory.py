"""Read an inventory feed (CSV, parquet or JSONL): parent_asin, in_stock, quantity, price.

Streamed through the shared row reader, with the catalog's own field parsers: a price means
the same here as in a catalog ("nan" is no price; "inf", negatives and text are errors), and a
bad row (a malformed JSONL line included) is that row's error, never the whole file's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rex_search.catalog.fields import BadField, boolean, integer, price, required_text
from rex_search.catalog.rows import RejectedRow, parse_rows, read_rows
from rex_search.catalog.schema import StockRecord

# Beyond this a quantity is a data error (1e300, 99999999999999999999999), not stock: the
# records store holds 64-bit integers, and such a value once failed the whole feed.
MAX_QUANTITY = 1_000_000_000


def read_inventory(path: str | Path) -> tuple[list[StockRecord], list[RejectedRow]]:
    """All valid stock records and the rejected rows (row number, id, field, reason)."""
    records: list[StockRecord] = []
    rejected: list[RejectedRow] = []
    for parsed, bad in parse_rows(read_rows(path, ("parent_asin",), "inventory"), parse_stock):
        records += parsed
        rejected += bad
    return records, rejected


def parse_stock(row: dict[str, Any]) -> StockRecord:
    """One feed row; ``in_stock`` may be left out when a quantity says it."""
    asin = required_text(row, "parent_asin")
    quantity = integer(row, "quantity", 0, MAX_QUANTITY)
    in_stock = boolean(row, "in_stock")
    if in_stock is None:
        if quantity is None:
            raise BadField("in_stock", "expected true/false (or a quantity), got nothing")
        in_stock = quantity > 0
    return StockRecord(asin, in_stock, quantity, price(row.get("price")))
