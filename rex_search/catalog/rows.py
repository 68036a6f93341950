"""One streaming row reader for every input file (catalogs, inventory feeds, judgments):
parquet and CSV in Arrow record batches, JSONL line by line, so memory holds one batch only.

A line that cannot be read (malformed CSV, bad JSON, invalid UTF-8, a corrupt parquet page)
comes back as a row ``{INVALID: reason}`` in its place: the caller reports it as that
row's error, and the rest of the file is read. Only a file that cannot be opened at all, or
lacks a required column, is a `CatalogError`.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from rex_search.catalog.fields import BadField
from rex_search.errors import CatalogError

csv.field_size_limit(min(sys.maxsize, 1 << 28))  # long descriptions are data, not an error
FORMATS = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
}
INVALID = "__invalid__"
Required = Sequence[str | tuple[str, ...]]  # a tuple: any one of these columns
T = TypeVar("T")


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


def read_rows(path: str | Path, required: Required = (), what: str = "input",
              batch_size: int = 1024) -> Iterator[list[dict[str, Any]]]:
    """Raw rows of ``path`` in batches of at most ``batch_size``.

    Raises:
        CatalogError: the file is missing, of an unknown format, unreadable, or lacks a
            ``required`` column (checked from the header before any row is read; JSONL has
            no header: there a row without a required field is that row's error).
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{what} file not found: {path}")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CatalogError(
            f"cannot read {path.name}: unknown format {path.suffix!r}; "
            f"expected one of {', '.join(sorted(FORMATS))}"
        )
    reader = {"parquet": _parquet_rows, "csv": _csv_rows, "jsonl": _jsonl_rows}[fmt]
    return reader(path, list(required), batch_size)


def parse_rows(batches: Iterable[list[dict[str, Any]]], parse: Callable[[dict[str, Any]], T]
               ) -> Iterator[tuple[list[T], list[RejectedRow]]]:
    """Each batch parsed row by row into (parsed, rejected); rows are numbered from 1 across
    the file, and a row that ``parse`` refuses with `BadField` (or that could not be read)
    becomes a `RejectedRow` naming its number, id and field."""
    number = 0
    for batch in batches:
        parsed: list[T] = []
        rejected: list[RejectedRow] = []
        for row in batch:
            number += 1
            try:
                if INVALID in row:
                    raise BadField("record", row[INVALID])
                parsed.append(parse(row))
            except BadField as bad:
                asin = row.get("parent_asin")
                asin = asin.strip() if isinstance(asin, str) and asin.strip() else None
                rejected.append(RejectedRow(number, asin, bad.field, bad.reason))
        yield parsed, rejected


def _check_columns(path: Path, required: Required, columns: list[str]) -> None:
    missing = [c if isinstance(c, str) else " or ".join(c) for c in required
               if not (c in columns if isinstance(c, str) else any(x in columns for x in c))]
    if missing:
        raise CatalogError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; "
            f"found columns: {', '.join(columns) or '(none)'}"
        )


def _parquet_rows(path: Path, required: Required,
                  batch_size: int) -> Iterator[list[dict[str, Any]]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CatalogError(f"{path.name} is not a readable parquet file: {exc}") from exc
    _check_columns(path, required, parquet.schema_arrow.names)
    # Row group by row group: a corrupt data page loses its own group's rows (each reported),
    # not the rest of the file.
    for group in range(parquet.num_row_groups):
        try:
            table = parquet.read_row_group(group)
        except (pa.ArrowException, OSError) as exc:
            rows = parquet.metadata.row_group(group).num_rows
            reason = f"unreadable parquet data in row group {group} ({exc})"
            yield [{INVALID: reason}] * rows
            continue
        for batch in table.to_batches(max_chunksize=batch_size):
            yield batch.to_pylist()


def _csv_rows(path: Path, required: Required, batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Rows of a CSV file, every value as text (types are checked per row, so one odd value
    cannot reject the file). Python's csv reader over a stream decoded with surrogateescape:
    a line with invalid UTF-8 or the wrong number of fields is that row's error, reported
    with its line number, and every later row is still read."""
    try:
        handle = path.open("r", encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise CatalogError(f"{path.name} is not a readable CSV file: {exc}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
        except csv.Error as exc:
            raise CatalogError(f"{path.name} is not a readable CSV file: {exc}") from exc
        if header:
            header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark
        if any(_has_surrogate(name) for name in header):
            raise CatalogError(f"{path.name}: the header line is not valid UTF-8")
        _check_columns(path, required, header)
        pending: list[dict[str, Any]] = []
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over the size limit: this row only
                pending.append({INVALID: f"malformed CSV at line {reader.line_num} ({exc})"})
                continue
            if not fields:
                continue  # a blank line
            pending.append(_csv_record(header, fields, reader.line_num))
            if len(pending) >= batch_size:
                yield pending
                pending = []
        if pending:
            yield pending


def _csv_record(header: list[str], fields: list[str], line: int) -> dict[str, Any]:
    if len(fields) != len(header):
        text = ",".join(fields)
        return {INVALID: f"malformed CSV at line {line} (expected {len(header)} columns, found "
                         f"{len(fields)}): {text[:80].encode('utf-8', 'replace').decode()!r}"}
    bad = next((name for name, value in zip(header, fields, strict=True)
                if _has_surrogate(value)), None)
    if bad is not None:
        return {INVALID: f"not valid UTF-8 at line {line} (column {bad})"}
    return dict(zip(header, fields, strict=True))


def _has_surrogate(text: str) -> bool:
    """surrogateescape decodes each undecodable byte to a lone surrogate (U+DC80..U+DCFF)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _jsonl_rows(path: Path, required: Required,
                batch_size: int) -> Iterator[list[dict[str, Any]]]:
    pending: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for raw_line in lines:
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                pending.append({INVALID: f"not valid UTF-8 (byte {exc.start})"})
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                record = {INVALID: f"not a JSON object ({exc.msg})"}
            except RecursionError:
                record = {INVALID: "JSON nested too deeply"}
            if not isinstance(record, dict):
                record = {INVALID: f"expected a JSON object, got {type(record).__name__}"}
            pending.append(record)
            if len(pending) >= batch_size:
                yield pending
                pending = []
    if pending:
        yield pending
