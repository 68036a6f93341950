"""Calibrated reranker scores and the honest "no good match": the fit, the shipped file, and
what search, /rerank, rank() and the CLI say with it (bundled reranker, fixture catalog)."""

from __future__ import annotations

import json
import random
import shutil

import httpx
import pytest

from rex_search import rank
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.cli.search import format_result
from rex_search.config import RerankConfig
from rex_search.errors import ModelError
from rex_search.evaluate.metrics import calibration as ece
from rex_search.model_files import BUNDLED_RERANKER, BUNDLED_RERANKERS_SHA256
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.rerank.calibration import FILE, Calibration, fit, for_model, load
from rex_search.service import create_app
from tests.service_server import running


def _overconfident(n: int, seed: int) -> tuple[list[float], list[float]]:
    """Scores from a model that says sigmoid(2z) when the truth is sigmoid(z): too sure."""
    rng = random.Random(seed)
    scores, labels = [], []
    for _ in range(n):
        z = rng.uniform(-3, 3)
        truth = 1 / (1 + pow(2.718281828, -z))
        scores.append(1 / (1 + pow(2.718281828, -2 * z)))
        labels.append(1.0 if rng.random() < truth else 0.0)
    return scores, labels


def test_the_fit_recovers_a_known_miscalibration_and_lowers_held_out_ece():
    scores, labels = _overconfident(20_000, seed=1)
    fitted = fit(scores, labels)
    assert fitted.a == pytest.approx(0.5, abs=0.05) and fitted.b == pytest.approx(0.0, abs=0.05)
    held_scores, held_labels = _overconfident(5_000, seed=2)
    before = ece(held_scores, held_labels)[0]
    after = ece(fitted.apply(held_scores), held_labels)[0]
    assert after < 0.03 < before


def test_the_map_is_monotone_so_it_never_changes_an_order():
    calibration = Calibration(0.68, -0.28)
    scores = [0.0, 0.01, 0.2, 0.5, 0.51, 0.9, 1.0]
    assert calibration.apply(scores) == sorted(calibration.apply(scores))
    assert len(set(calibration.apply(scores))) == len(scores)


@pytest.mark.parametrize("name", tuple(BUNDLED_RERANKERS_SHA256))
def test_the_shipped_calibration_is_pinned_and_loaded(name: str):
    assert FILE in BUNDLED_RERANKERS_SHA256[name]
    shipped = for_model(name)
    assert shipped is not None and shipped.a > 0 and "DEV" in shipped.fitted_on
    assert for_model("embedding-cosine") is None


def test_a_damaged_calibration_file_is_named_with_what_was_expected(tmp_path):
    assert load(tmp_path) is None  # a model without one: nothing judged weak or good
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(ModelError, match=f"{FILE} is not a calibration.*numbers a and b"):
        load(tmp_path)
    (tmp_path / FILE).write_text(json.dumps({"a": -1.0, "b": 0.0}))
    with pytest.raises(ModelError, match="a must be a finite number > 0"):
        load(tmp_path)
    Calibration(0.7, -0.3).save(tmp_path)
    assert load(tmp_path) == Calibration(0.7, -0.3)


def test_fit_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="equally many"):
        fit([0.5], [1.0])
    with pytest.raises(ValueError, match=r"relevance in \[0, 1\]"):
        fit([0.2, 0.8], [0.0, 2.0])


@pytest.fixture(scope="module")
def pipeline(fixture_index_dir, embedder, tmp_path_factory):
    copy = tmp_path_factory.mktemp("calibration") / "fx"
    shutil.copytree(fixture_index_dir, copy)
    backend = EmbeddedBackend(copy)
    yield SearchPipeline(backend, embedder, load_reranker(BUNDLED_RERANKER),
                         calibration=for_model(BUNDLED_RERANKER))
    backend.close()


def test_a_query_the_catalog_answers_has_good_matches_on_top(pipeline):
    result = pipeline.search("usb c charger", size=5)
    assert result.min_score == RerankConfig().min_score
    assert result.good_matches and result.good_matches >= 3
    top = result.hits[0]
    assert top.weak is False and "Charger" in top.title
    assert top.explanation.calibrated_score == pytest.approx(
        for_model(BUNDLED_RERANKER)(top.explanation.rerank_score))
    assert "no good match" not in format_result(result, explain=False)


def test_a_query_the_catalog_cannot_answer_says_so(pipeline):
    """The fixture has no skillet: what is shown is only the closest, and every surface says
    so instead of presenting it as an answer."""
    result = pipeline.search("cast iron skillet 12 inch", size=5)
    assert result.hits and result.good_matches == 0
    assert all(hit.weak for hit in result.hits)
    text = format_result(result, explain=True)
    assert "no good match: no candidate reaches min_score 0.50" in text
    assert "calibrated" in text and " weak " in text
    with running(create_app(pipeline)) as base:
        body = httpx.post(f"{base}/search", json={"query": "cast iron skillet 12 inch",
                                                   "size": 5}, timeout=60).json()
        assert body["good_matches"] == 0 and all(h["weak"] for h in body["hits"])
        docs = ["Lodge 12 Inch Cast Iron Skillet", "Anker 65W USB C Charger"]
        reranked = httpx.post(f"{base}/v2/rerank", json={"query": "cast iron skillet 12 inch",
                                                         "documents": docs}, timeout=60).json()
        assert reranked["meta"]["good_matches"] == 1
        assert [(r["index"], r["weak"]) for r in reranked["results"]] == [(0, False), (1, True)]


def test_min_score_is_a_setting_and_rank_reports_it():
    from rex_search.config import Config

    docs = ["Lodge 12 Inch Cast Iron Skillet", "Anker 65W USB C Charger"]
    ranked = rank("cast iron skillet", docs)
    assert ranked.good_matches == 1 and [r.weak for r in ranked] == [False, True]
    strict = rank("cast iron skillet", docs, config=Config(rerank=RerankConfig(min_score=0.99)))
    assert strict.good_matches == 0 and all(r.weak for r in strict)
    assert rank("cast iron skillet", docs).good_matches == 1  # not the strict one's pipeline

