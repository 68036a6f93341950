"""The default reranker's training data, in one place: graded synthetic pairs from a catalog
(``synth``), real ESCI Exact pairs and real query strings (``data/esci-extra``), and the
bi-encoder teacher blended into every target (``distill``). ``rex-search train-data synth``
and the leave-category-out benchmark both build their data here."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rex_search.catalog.schema import Product
from rex_search.errors import ConfigError
from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments, read_judgments
from rex_search.train import distill
from rex_search.train.synth import Pair, synthesize

logger = logging.getLogger(__name__)
# Training runs from a rex-search checkout: its data/ folder is not part of an installed wheel.
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "data"
EXTRA = CHECKOUT_DATA / "esci-extra"
REAL_PAIRS = EXTRA / "exact_pairs.parquet"
REAL_QUERIES = EXTRA / "queries.txt"
DEV_JUDGMENTS = CHECKOUT_DATA / "esci-sample" / "dev" / "eress.parquet"
DEFAULT_ALPHA = 0.3


def training_pairs(products: Sequence[Product], embedder=None, queries: int = 2400,
                   seed: int = 0, real_pairs: Path | None = REAL_PAIRS,
                   real_queries: Path | None = REAL_QUERIES, real_query_limit: int | None = None,
                   alpha: float = DEFAULT_ALPHA) -> list[Pair]:
    """Synthetic graded pairs (+ real Exact pairs), teacher-blended with weight ``alpha``
    (+ teacher-labelled real queries). ``embedder`` (the teacher) is needed when ``alpha > 0``
    or ``real_queries`` is given."""
    import pyarrow.parquet as pq

    pairs = synthesize(products, queries, seed)
    if real_pairs:
        pairs += distill.real_exact_pairs(pq.read_table(real_pairs).to_pylist(), products,
                                          seed=seed)
    if alpha <= 0 and not real_queries:
        return pairs
    if embedder is None:
        raise ValueError("distillation needs the bi-encoder teacher (an embedder)")
    cosines = distill.pair_cosines(embedder, pairs, {p.parent_asin: p for p in products})
    a, b = distill.fit_calibration(cosines, np.array([p.relevance_score for p in pairs]))
    logger.info("teacher calibration: relevance ~ sigmoid(%.3f * cosine + %.3f)", a, b)
    pairs = distill.blend(pairs, cosines, alpha, a, b)
    if real_queries:
        strings = query_strings(real_queries)[:real_query_limit]
        pairs += distill.teacher_pairs(embedder, strings, products, a, b, seed=seed)
    return pairs


def query_strings(path: Path) -> list[str]:
    """A file's query strings, one a line: stripped, blank lines and repeats dropped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(q.strip() for q in lines if q.strip()))


def as_judgments(pairs: Sequence[Pair]) -> list[QueryJudgments]:
    """Pairs grouped by query, as the training recipe reads judgments."""
    groups: dict[str, list[JudgedDoc]] = {}
    for p in pairs:
        groups.setdefault(p.query, []).append(
            JudgedDoc(p.parent_asin, p.title, p.description, p.relevance_score))
    return [QueryJudgments(f"synth-{i}", q, tuple(docs))
            for i, (q, docs) in enumerate(groups.items())]


def write_pairs(pairs: Sequence[Pair], out: Path) -> None:
    """``pairs`` as a parquet file in ERESS columns (plus ``label_raw`` and ``teacher_cosine``);
    a query's id is a hash of its text, so the same query has the same id in every file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"query_id": "synth-" + hashlib.sha1(p.query.encode()).hexdigest()[:10],
             "query_string": p.query, "parent_asin": p.parent_asin, "title": p.title,
             "description": p.description, "relevance_score": p.relevance_score,
             "label_raw": p.kind, "teacher_cosine": p.teacher} for p in pairs]
    pq.write_table(pa.Table.from_pylist(rows), out)


def checkout_file(path: Path | None, default: Path, option: str) -> Path:
    """``path``, else ``default`` (a file of a rex-search checkout), which must exist."""
    chosen = path or default
    if not chosen.is_file():
        raise ConfigError(f"no file at {chosen}" + ("" if path else
                          f" (the default lives in a rex-search checkout): pass {option} FILE"))
    return chosen


def agreement_pairs(judgments: str | Path, limit: int) -> list[tuple[str, str]]:
    """The first ``limit`` (query, product text) pairs of a judgments file: what an exported
    model is compared with PyTorch on."""
    from rex_search.catalog.prompt import product_text
    from rex_search.catalog.schema import Product

    return [(q.query, product_text(Product(d.parent_asin, d.title, description=d.description)))
            for q in read_judgments(Path(judgments)) for d in q.docs][:limit]
