"""Stream a catalog file (parquet, CSV or JSONL) as validated `Product` batches.

Nothing is loaded whole: parquet and CSV are read in Arrow record batches, JSONL line by line,
so a 37M-row catalog needs memory for one batch only. A bad row never stops the run and is
never dropped silently: it comes back as a `RejectedRow` naming its row number, id and field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rex_search.catalog.schema import REQUIRED_COLUMNS, Product
from rex_search.catalog.text import lone_surrogate_at
from rex_search.errors import CatalogError

FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
_PRICE = re.compile(r"\d+(?:\.\d+)?")
_NO_PRICE = {"", "none", "null", "nan", "n/a", "-", "—"}
MAX_PRICE = 10_000_000.0  # beyond this a "price" is a data error (1e308, inf), not a product
BOUNDS = {"average_rating": (0.0, 5.0), "rating_number": (0.0, 1e12)}


@dataclass(frozen=True)
class RejectedRow:
    """A row that was skipped, and why. `row` is the 1-based data row number in the file."""

    row: int
    parent_asin: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        who = f" (parent_asin={self.parent_asin})" if self.parent_asin else ""
        return f"row {self.row}{who}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class CatalogBatch:
    products: list[Product]
    rejected: list[RejectedRow]


class _BadField(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def read_catalog(path: str | Path, batch_size: int = 1024) -> Iterator[CatalogBatch]:
    """Yield validated products from ``path`` in batches of at most ``batch_size`` rows.

    Raises:
        CatalogError: the file is missing, of an unknown format, or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog file not found: {path}")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CatalogError(
            f"cannot read {path.name}: unknown format {path.suffix!r}; "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    rows = {"parquet": _parquet_rows, "csv": _csv_rows, "jsonl": _jsonl_rows}[fmt](path, batch_size)
    row_number = 0
    for chunk in rows:
        products: list[Product] = []
        rejected: list[RejectedRow] = []
        for raw in chunk:
            row_number += 1
            try:
                products.append(parse_row(raw))
            except _BadField as bad:
                asin = raw.get("parent_asin")
                asin = asin.strip() if isinstance(asin, str) and asin.strip() else None
                rejected.append(RejectedRow(row_number, asin, bad.field, bad.reason))
        yield CatalogBatch(products, rejected)


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CatalogError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            f"found columns: {', '.join(columns) or '(none)'}"
        )


def _parquet_rows(path: Path, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"{path.name} is not a readable parquet file: {exc}") from exc
    _check_columns(path, parquet.schema_arrow.names)
    # Row group by row group: a corrupt data page loses its own group's rows (each reported),
    # not the rest of the file.
    for group in range(parquet.num_row_groups):
        try:
            table = parquet.read_row_group(group)
        except (pa.ArrowException, OSError) as exc:
            rows = parquet.metadata.row_group(group).num_rows
            reason = f"unreadable parquet data in row group {group} ({exc})"
            yield [{"__invalid__": reason}] * rows
            continue
        for batch in table.to_batches(max_chunksize=batch_size):
            yield batch.to_pylist()


def _csv_rows(path: Path, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    # Every column as text: types are checked per row below, so one odd value cannot make
    # Arrow reject the whole file.
    bad_rows: list[dict[str, Any]] = []

    def skip_bad_row(row) -> str:  # a malformed line anywhere in the file: report, go on
        where = f"line {row.number}" if row.number is not None else "a line"
        bad_rows.append({"__invalid__": f"malformed CSV at {where} (expected "
                                        f"{row.expected_columns} columns, found "
                                        f"{row.actual_columns}): {row.text[:80]!r}"})
        return "skip"

    try:
        header = pa_csv.open_csv(path).schema.names
        options = pa_csv.ConvertOptions(column_types={name: pa.string() for name in header})
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=1 << 20),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=skip_bad_row),
            convert_options=options,
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path.name} is not a readable CSV file: {exc}") from exc
    _check_columns(path, header)
    pending: list[dict[str, Any]] = []
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:  # e.g. invalid UTF-8 in a later block: the rest is lost
            pending.append({"__invalid__": f"unreadable CSV after this point ({exc})"})
            break
        pending.extend(bad_rows)
        bad_rows.clear()
        pending.extend(batch.to_pylist())
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
    if pending:
        yield pending


def _jsonl_rows(path: Path, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    pending: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for raw_line in lines:
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                pending.append({"__invalid__": f"not valid UTF-8 (byte {exc.start})"})
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                record = {"__invalid__": f"not a JSON object ({exc.msg})"}
            except RecursionError:
                record = {"__invalid__": "JSON nested too deeply"}
            if not isinstance(record, dict):
                record = {"__invalid__": f"expected a JSON object, got {type(record).__name__}"}
            pending.append(record)
            if len(pending) >= batch_size:
                yield pending
                pending = []
    if pending:
        yield pending


def parse_row(raw: dict[str, Any]) -> Product:
    """Validate one raw row into a `Product`; raises `_BadField` naming the first bad field."""
    if "__invalid__" in raw:
        raise _BadField("record", raw["__invalid__"])
    details = _details(raw.get("details"))
    store = _optional_text(raw, "store")
    brand = details.get("Brand") or store
    return Product(
        parent_asin=_required_text(raw, "parent_asin"),
        title=_required_text(raw, "title"),
        brand=brand.strip() if brand and brand.strip() else None,
        store=store,
        main_category=_optional_text(raw, "main_category"),
        categories=_text_list(raw, "categories"),
        features=_text_list(raw, "features"),
        description="\n".join(_text_list(raw, "description")),
        price=_price(raw.get("price")),
        average_rating=_number(raw, "average_rating"),
        rating_number=_integer(raw, "rating_number"),
        details=details,
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


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _valid_unicode(name: str, value: str) -> str:
    """JSON may carry lone surrogates (\\ud800) that no UTF-8 store can hold."""
    if lone_surrogate_at(value) is not None:
        raise _BadField(name, "not valid Unicode text (a lone surrogate such as \\ud800)")
    return value


def _required_text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        found = "an empty string" if isinstance(value, str) else _type_name(value)
        raise _BadField(name, f"expected a non-empty string, got {found}")
    return _valid_unicode(name, value.strip())


def _optional_text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _BadField(name, f"expected a string, got {_type_name(value)}")
    return _valid_unicode(name, value.strip()) or None


def _text_list(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    value = raw.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        # CSV cells carry lists as JSON arrays; a plain string is a one-item list.
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _BadField(name, f"expected a JSON array of strings ({exc.msg})") from exc
        else:
            return (text,) if text else ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadField(name, f"expected a list of strings, got {_type_name(value)}")
    return tuple(_valid_unicode(name, v.strip()) for v in value if v.strip())


def _price(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise _BadField("price", "expected a number or a price string, got bool")
        return None
    if isinstance(value, int | float):
        price = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _NO_PRICE:
            return None
        text = text.removeprefix("$").replace(",", "").strip()
        if not _PRICE.fullmatch(text):
            raise _BadField("price", f"expected a single price like '12.99', got {value!r}")
        price = float(text)
    else:
        raise _BadField("price", f"expected a number or a price string, got {_type_name(value)}")
    if math.isnan(price):
        return None
    if not 0 <= price <= MAX_PRICE:
        raise _BadField("price", f"expected a price between 0 and {MAX_PRICE:,.0f}, "
                                 f"got {value!r}")
    return price


def _details(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _BadField("details", f"expected a JSON object string ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise _BadField("details", f"expected a JSON object, got {_type_name(value)}")
    return {_valid_unicode("details", str(k)): _valid_unicode("details", str(v))
            for k, v in value.items() if v is not None}


def _number(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise _BadField(name, f"expected a number, got {value!r}") from None
    if math.isnan(number):
        return None
    low, high = BOUNDS.get(name, (-math.inf, math.inf))
    if not (math.isfinite(number) and low <= number <= high):
        raise _BadField(name, f"expected a number between {low:g} and {high:g}, got {value!r}")
    return number


def _integer(raw: dict[str, Any], name: str) -> int | None:
    number = _number(raw, name)
    if number is None:
        return None
    if not number.is_integer():
        raise _BadField(name, f"expected a whole number, got {raw.get(name)!r}")
    return int(number)
