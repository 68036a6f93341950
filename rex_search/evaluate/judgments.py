"""Read graded judgments (ERESS or Amazebay-Relevance columns) grouped by query.

Judgments are the yardstick, so a bad row is an error (naming row and column), never skipped:
dropping a judgment silently would change every metric computed from the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from rex_search.catalog.schema import Product
from rex_search.errors import CatalogError

QUERY_COLUMNS = ("query_string", "query")


@dataclass(frozen=True)
class JudgedDoc:
    parent_asin: str
    title: str
    description: str
    relevance: float
    variance: float | None = None  # spread of the annotators' grades, where the data has it

    def as_product(self) -> Product:
        return Product(parent_asin=self.parent_asin, title=self.title,
                       description=self.description)


@dataclass(frozen=True)
class QueryJudgments:
    query_id: str
    query: str
    docs: tuple[JudgedDoc, ...]


def read_judgments(path: str | Path) -> list[QueryJudgments]:
    """All judgments in ``path``, grouped by query id (or query text), in first-seen order."""
    path = Path(path)
    rows = list(_rows(path))
    if not rows:
        raise CatalogError(f"{path.name} has no judgments")
    columns = set(rows[0])
    query_col = next((c for c in QUERY_COLUMNS if c in columns), None)
    missing = [c for c in ("parent_asin", "relevance_score") if c not in columns]
    if query_col is None or missing:
        need = missing + ([] if query_col else ["query_string (or query)"])
        raise CatalogError(f"{path.name} lacks column(s) {', '.join(need)}; "
                           f"found: {', '.join(sorted(columns))}")
    groups: dict[str, tuple[str, list[JudgedDoc]]] = {}
    errors: list[str] = []
    for number, row in enumerate(rows, start=1):
        try:
            query, doc = _parse(row, query_col)
        except ValueError as exc:
            errors.append(f"row {number}: {exc}")
            continue
        key = str(row.get("query_id") or query)
        groups.setdefault(key, (query, []))[1].append(doc)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise CatalogError(f"{path.name}: {len(errors)} invalid judgment row(s): "
                           + "; ".join(errors[:10]) + more)
    return [QueryJudgments(key, query, tuple(docs)) for key, (query, docs) in groups.items()]


def _parse(row: dict[str, Any], query_col: str) -> tuple[str, JudgedDoc]:
    query = row.get(query_col)
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{query_col}: expected a non-empty string, got {query!r}")
    asin = row.get("parent_asin")
    if not isinstance(asin, str) or not asin.strip():
        raise ValueError(f"parent_asin: expected a non-empty string, got {asin!r}")
    raw = row.get("relevance_score")
    try:
        relevance = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"relevance_score: expected a number in [0, 1], got {raw!r}") from None
    if math.isnan(relevance) or not 0.0 <= relevance <= 1.0:
        raise ValueError(f"relevance_score: expected a number in [0, 1], got {raw!r}")
    variance = row.get("relevance_variance")
    if variance is not None:
        try:
            variance = float(variance)
        except (TypeError, ValueError):
            variance = math.nan
        if math.isnan(variance) or variance < 0:
            raise ValueError("relevance_variance: expected a number >= 0 (the variance of the "
                             f"annotators' grades), got {row.get('relevance_variance')!r}")
    title = row.get("title") or ""
    description = row.get("description") or ""
    if isinstance(description, list):
        description = "\n".join(str(d) for d in description)
    return query.strip(), JudgedDoc(asin.strip(), str(title), str(description), relevance,
                                   variance)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise CatalogError(f"judgments file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from pq.read_table(path).to_pylist()
    elif suffix == ".csv":
        yield from pa_csv.read_csv(path).to_pylist()
    elif suffix in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CatalogError(
                            f"{path.name}: row {number}: not JSON ({exc.msg})") from None
    else:
        raise CatalogError(f"cannot read {path.name}: expected .parquet, .csv or .jsonl")
