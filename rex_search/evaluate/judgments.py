"""Read graded judgments (ERESS or Amazebay-Relevance columns) grouped by query.

Judgments are the yardstick, so a bad row is an error (naming row and column), never skipped:
dropping a judgment silently would change every metric computed from the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rex_search.catalog.fields import (
    BadField,
    number,
    required_number,
    required_text,
    valid_unicode,
)
from rex_search.catalog.rows import parse_rows, read_rows
from rex_search.catalog.schema import Product
from rex_search.errors import CatalogError
from rex_search.query import MAX_QUERY_CHARS

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


def read_judgments(path: str | Path, training: bool = False) -> list[QueryJudgments]:
    """All judgments in ``path``, grouped by query id (or query text), in first-seen order.

    A (query, product) pair judged twice is an error in an evaluation set (which grade
    counts?); ``training`` data may repeat a pair (the same product in several text forms)."""
    path = Path(path)
    groups: dict[str, tuple[str, list[JudgedDoc]]] = {}
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    required: list[str | tuple[str, ...]] = [QUERY_COLUMNS, "parent_asin", "relevance_score"]
    for parsed, rejected in parse_rows(read_rows(path, required, "judgments"), _parse):
        errors += [f"row {r.row}: {r.field}: {r.reason}" for r in rejected]
        for key, query, doc in parsed:
            docs = groups.setdefault(key, (query, []))[1]
            if not training and (key, doc.parent_asin) in seen:
                errors.append(f"query {query!r}: parent_asin {doc.parent_asin} is judged twice "
                              "(one grade per query and product)")
                continue
            seen.add((key, doc.parent_asin))
            docs.append(doc)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise CatalogError(f"{path.name}: {len(errors)} invalid judgment row(s): "
                           + "; ".join(errors[:10]) + more)
    if not groups:
        raise CatalogError(f"{path.name} has no judgments")
    return [QueryJudgments(key, query, tuple(docs)) for key, (query, docs) in groups.items()]


def _parse(row: dict[str, Any]) -> tuple[str, str, JudgedDoc]:
    """(group key: query id or text, query, judged doc) of one row."""
    query_col = next((c for c in QUERY_COLUMNS if c in row), QUERY_COLUMNS[0])
    query = required_text(row, query_col)
    asin = required_text(row, "parent_asin")
    relevance = required_number(row, "relevance_score", 0.0, 1.0)
    variance = _variance(row)
    if len(query) > MAX_QUERY_CHARS:  # as a search refuses it: an eval must not hang on it
        raise BadField(query_col, f"expected a query of at most {MAX_QUERY_CHARS} characters, "
                                  f"got {len(query)}")
    title = row.get("title") or ""
    description = row.get("description") or ""
    if isinstance(description, list):
        description = "\n".join(str(d) for d in description)
    doc = JudgedDoc(asin, valid_unicode("title", str(title)),
                    valid_unicode("description", str(description)), relevance, variance)
    return str(row.get("query_id") or query), query, doc


def _variance(row: dict[str, Any]) -> float | None:
    raw = row.get("relevance_variance")
    if raw is None:
        return None
    try:
        variance = number(row, "relevance_variance", 0.0)
    except BadField:
        variance = None
    if variance is None:
        raise BadField("relevance_variance", "expected a number >= 0 (the variance of the "
                       f"annotators' grades), got {raw!r}")
    return variance
