"""Catalog file -> validated products -> embeddings -> backend, resumable and idempotent.

Unchanged products (same content hash as stored) are skipped without re-embedding, so running
the same file twice leaves the same index, and a run that died resumes where its last commit
ended. Rejected rows are counted, listed in the summary and written to a JSONL report.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from rex_search.backends.base import Backend
from rex_search.catalog.reader import RejectedRow, read_catalog
from rex_search.catalog.schema import embedding_text
from rex_search.indexer.embed import Embedder

logger = logging.getLogger(__name__)


@dataclass
class IndexSummary:
    """What one indexing run did."""

    catalog: str
    rows_read: int = 0
    indexed: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0  # rows whose parent_asin repeats an earlier row of the same batch
    rejected_by_field: Counter[str] = field(default_factory=Counter)
    rejected_examples: list[RejectedRow] = field(default_factory=list)
    rejected_report: str | None = None
    failed: list[tuple[str, str]] = field(default_factory=list)  # (parent_asin, reason)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "catalog": self.catalog, "rows_read": self.rows_read, "indexed": self.indexed,
            "unchanged": self.unchanged, "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejected_by_field": dict(self.rejected_by_field),
            "rejected_examples": [str(r) for r in self.rejected_examples],
            "rejected_report": self.rejected_report,
            "failed": len(self.failed),
            "failed_examples": [f"{a}: {r}" for a, r in self.failed[:20]],
            "seconds": round(self.seconds, 2),
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def index_catalog(
    path: str | Path,
    backend: Backend,
    embedder: Embedder,
    batch_size: int = 256,
    commit_every: int = 4096,
    progress: Callable[[int], None] | None = None,
    report_dir: Path | None = None,
    max_examples: int = 20,
) -> IndexSummary:
    """Index ``path`` into ``backend``; see the module docstring for the guarantees.

    Products the backend refuses (after its own retries) are listed in ``summary.failed``;
    they are not recorded as done, so the next run retries them.
    """
    path = Path(path)
    started = time.perf_counter()
    summary = IndexSummary(catalog=str(path))
    report = None
    partial = None
    if report_dir is not None:
        summary.rejected_report = str(report_dir / "rejected-rows.jsonl")
        # Written beside the last run's report and swapped in only when this run completes,
        # so a run that fails does not erase the previous report; named per run, so two
        # overlapping runs never rename each other's file (the later finisher's report stays).
        partial = f"{summary.rejected_report}.{os.getpid()}.tmp"
        report = open(partial, "w", encoding="utf-8")  # noqa: SIM115
    pending = 0
    completed = False
    try:
        for batch in read_catalog(path, batch_size=batch_size):
            summary.rows_read += len(batch.products) + len(batch.rejected)
            _record_rejections(summary, batch.rejected, report, max_examples)
            # Later rows win over earlier duplicates of the same id within a batch.
            latest = {p.parent_asin: p for p in batch.products}
            summary.duplicates += len(batch.products) - len(latest)
            stored = backend.content_hashes(list(latest))
            changed = [p for p in latest.values() if stored.get(p.parent_asin) != p.content_hash()]
            summary.unchanged += len(latest) - len(changed)
            if changed:
                vectors = np.zeros((len(changed), 0), dtype=np.float32) \
                    if backend.embeds_documents else \
                    embedder.encode([embedding_text(p) for p in changed])
                failures = backend.upsert(changed, vectors) or []
                summary.failed += failures
                summary.indexed += len(changed) - len(failures)
                pending += len(changed)
            if pending >= commit_every:
                backend.commit()
                pending = 0
            if progress:
                progress(len(batch.products) + len(batch.rejected))
        backend.commit()
        backend.finalize()
        completed = True
    finally:
        if report is not None and partial is not None:
            report.close()
            if completed and summary.rejected_report is not None:
                os.replace(partial, summary.rejected_report)
            else:
                os.unlink(partial)
    summary.seconds = time.perf_counter() - started
    backend.record_catalog({"name": path.name, "sha256": file_sha256(path),
                            "rows": summary.rows_read, "rejected": summary.rejected})
    logger.info("indexed %s: %s", path, summary.to_dict())
    return summary


def _record_rejections(summary: IndexSummary, rejected: list[RejectedRow],
                       report: IO[str] | None, max_examples: int) -> None:
    for row in rejected:
        summary.rejected += 1
        summary.rejected_by_field[row.field] += 1
        if len(summary.rejected_examples) < max_examples:
            summary.rejected_examples.append(row)
        if report is not None:
            report.write(json.dumps({"row": row.row, "parent_asin": row.parent_asin,
                                     "field": row.field, "reason": row.reason}) + "\n")
