"""Read an inventory feed (CSV, parquet or JSONL): parent_asin, in_stock, quantity, price."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rex_search.catalog.reader import RejectedRow
from rex_search.catalog.schema import StockRecord
from rex_search.errors import CatalogError

_TRUE = {"true", "1", "yes", "y", "t", "in_stock", "instock"}
_FALSE = {"false", "0", "no", "n", "f", "out_of_stock", "outofstock"}


def read_inventory(path: str | Path) -> tuple[list[StockRecord], list[RejectedRow]]:
    """All valid stock records and the rejected rows (row number, id, field, reason)."""
    path = Path(path)
    records, rejected = [], []
    for number, row in enumerate(_rows(path), start=1):
        try:
            records.append(_record(row))
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            asin = row.get("parent_asin") if isinstance(row.get("parent_asin"), str) else None
            rejected.append(RejectedRow(number, asin, field, reason))
    return records, rejected


def _record(row: dict[str, Any]) -> StockRecord:
    asin = row.get("parent_asin")
    if not isinstance(asin, str) or not asin.strip():
        raise ValueError(f"parent_asin: expected a non-empty string, got {asin!r}")
    quantity = row.get("quantity")
    if quantity in (None, ""):
        quantity = None
    else:
        try:
            quantity = int(float(quantity))
        except (TypeError, ValueError):
            raise ValueError(f"quantity: expected a whole number >= 0, got {quantity!r}") from None
        if quantity < 0:
            raise ValueError(f"quantity: expected a whole number >= 0, got {quantity}")
    in_stock = _bool(row.get("in_stock"))
    if in_stock is None:
        if quantity is None:
            raise ValueError("in_stock: expected true/false (or a quantity), got nothing")
        in_stock = quantity > 0
    price = row.get("price")
    if price in (None, ""):
        price = None
    else:
        try:
            price = float(str(price).replace("$", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"price: expected a number, got {price!r}") from None
        if price < 0:
            raise ValueError(f"price: expected a number >= 0, got {price}")
    return StockRecord(asin.strip(), in_stock, quantity, price)


def _bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"in_stock: expected true/false, got {value!r}")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise CatalogError(f"inventory file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            table = pq.read_table(path)
        elif suffix == ".csv":
            names = pa_csv.open_csv(path).schema.names
            table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names}))
        elif suffix in (".jsonl", ".ndjson"):
            with path.open(encoding="utf-8") as lines:
                yield from (json.loads(line) for line in lines if line.strip())
            return
        else:
            raise CatalogError(f"cannot read {path.name}: expected .csv, .parquet or .jsonl")
    except (pa.ArrowInvalid, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path.name} is not readable: {exc}") from exc
    if "parent_asin" not in table.column_names:
        raise CatalogError(f"{path.name} lacks column parent_asin; found: "
                           f"{', '.join(table.column_names)}")
    yield from table.to_pylist()
