from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rex_search.errors import CatalogError
from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments, read_judgments
from rex_search.evaluate.metrics import parse_metric
from rex_search.evaluate.rankers import BM25Ranker, RandomRanker, make_rankers
from rex_search.evaluate.run import evaluate_rerank, format_report
from rex_search.evaluate.stats import bootstrap_ci, paired_bootstrap
from tests.conftest import DEV_JUDGMENTS


class OracleRanker:
    """Scores by the judged relevance itself: the best possible ranking (a test reference)."""

    name, unit_scores = "oracle", True

    def score(self, query_id, query, docs):
        return [d.relevance for d in docs]


def test_dev_judgments_load_grouped_by_query():
    queries = read_judgments(DEV_JUDGMENTS)
    assert len(queries) == 50
    assert sum(len(q.docs) for q in queries) == 2208
    assert all(0 <= d.relevance <= 1 for q in queries for d in q.docs)


def test_amazebay_columns_and_bad_rows_name_row_and_column(tmp_path: Path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"query": "mug", "parent_asin": "A", "title": "Mug",
                                "description": ["Blue", "Ceramic"], "relevance_score": 0.8,
                                "relevance_label": "Exact"}) + "\n")
    [q] = read_judgments(good)
    assert (q.query, q.docs[0].description, q.docs[0].relevance) == ("mug", "Blue\nCeramic", 0.8)
    bad = tmp_path / "b.parquet"
    pq.write_table(pa.table({"query_string": ["a", "b", None], "parent_asin": ["A", "B", "C"],
                             "relevance_score": [0.5, 1.5, 0.1]}), bad)
    with pytest.raises(CatalogError, match=re.escape(
            "b.parquet: 2 invalid judgment row(s): row 2: relevance_score: expected a number "
            "between 0 and 1, got 1.5; row 3: query_string: expected a non-empty string, got "
            "null")):
        read_judgments(bad)
    missing = tmp_path / "c.parquet"
    pq.write_table(pa.table({"q": ["a"], "parent_asin": ["A"]}), missing)
    with pytest.raises(CatalogError, match=re.escape(
            "lacks required column(s) query_string or query, relevance_score")):
        read_judgments(missing)


def test_judgments_that_would_crash_or_hang_an_evaluation_are_refused(tmp_path: Path):
    rows = [{"query": "mug", "parent_asin": "A", "title": "Mug\ud800", "relevance_score": 1},
            {"query": "cup", "parent_asin": "B", "title": "Cup", "relevance_score": 1},
            {"query": "cup", "parent_asin": "B", "title": "Cup", "relevance_score": 0},
            {"query": "x" * 600, "parent_asin": "C", "title": "C", "relevance_score": 1}]
    path = tmp_path / "j.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(CatalogError) as error:
        read_judgments(path)
    message = str(error.value)
    assert "row 1: title: not valid Unicode text" in message
    assert "query 'cup': parent_asin B is judged twice" in message
    assert "row 4: query: expected a query of at most 512 characters, got 600" in message


def test_oracle_is_perfect_and_random_is_deterministic():
    queries = read_judgments(DEV_JUDGMENTS)[:10]
    metrics = [parse_metric("ndcg@5"), parse_metric("ndcg@10")]
    report = evaluate_rerank(queries, [OracleRanker(), RandomRanker(seed=1)], metrics,
                             resamples=200)
    oracle, rand = report.rankers
    assert oracle.summary["ndcg@5"].mean == pytest.approx(1.0)
    assert rand.summary["ndcg@5"].mean < 0.95
    again = evaluate_rerank(queries, [OracleRanker(), RandomRanker(seed=1)], metrics,
                            resamples=200)
    assert format_report(again).splitlines()[:-2] == format_report(report).splitlines()[:-2]
    [(a, b, metric, comparison)] = [c for c in report.comparisons if c[2] == "ndcg@5"]
    assert (a, b) == ("oracle", "random")
    assert comparison.diff > 0 and comparison.p_value < 0.05
    assert "oracle better" in format_report(report)


def test_queries_without_positives_are_excluded_and_counted():
    queries = [
        QueryJudgments("q1", "mug", (JudgedDoc("A", "mug", "", 1.0), JudgedDoc("B", "x", "", 0))),
        QueryJudgments("q2", "lamp", (JudgedDoc("C", "cord", "", 0.0),)),
    ]
    report = evaluate_rerank(queries, [OracleRanker()], [parse_metric("ndcg@5")], resamples=100)
    assert report.rankers[0].excluded["ndcg@5"] == 1
    assert report.rankers[0].per_query["q2"]["ndcg@5"] is None
    assert "queries excluded (no judged product relevant for the metric): ndcg@5 1" in \
        format_report(report)


def test_bm25_ranker_prefers_matching_titles():
    docs = (JudgedDoc("A", "cast iron skillet", "", 0), JudgedDoc("B", "running shoes", "", 1),
            JudgedDoc("C", "shoe lace", "for running shoes", 0))
    scores = BM25Ranker().score("q", "running shoes", docs)
    assert scores[1] > scores[2] > scores[0] == 0.0


def test_bootstrap_statistics():
    ci = bootstrap_ci([0.0, 1.0] * 20, resamples=500, seed=0)
    assert ci.mean == 0.5 and ci.low < 0.5 < ci.high
    assert bootstrap_ci([0.7] * 5).low == pytest.approx(0.7)
    same = paired_bootstrap([0.5, 0.6], [0.5, 0.6])
    assert same.diff == 0 and same.p_value == 1.0
    better = paired_bootstrap([1.0] * 30, [0.0] * 30)
    assert better.p_value == 0.0 and better.low == 1.0


def test_unknown_ranker_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown ranker\\(s\\) bm26; valid: random, bm25"):
        make_rankers(["bm26"], None, None)


def test_evaluation_reports_progress_per_query_and_ranker():
    queries = read_judgments(DEV_JUDGMENTS)[:5]
    seen: list[str] = []
    evaluate_rerank(queries, [OracleRanker(), RandomRanker(seed=1)], [parse_metric("ndcg@5")],
                    resamples=10, progress=seen.append)
    assert seen == ["oracle"] * 5 + ["random"] * 5
