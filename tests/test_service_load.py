"""A short bounded load test on loopback (slow suite): sustainable load has no 5xx, overload
gets quick 503s. The full table comes from benchmarks/bench_service.py."""

from __future__ import annotations

import pytest

from benchmarks.bench_service import load, summarise
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.service import Limits, create_app
from tests.conftest import cosine_reranker
from tests.service_server import running

pytestmark = pytest.mark.slow
QUERIES = ["running shoes", "laptop bag", "usb c charger", "phone case", "shoe laces"]


def test_load_sustainable_then_overloaded(small_index, embedder):
    pipeline = SearchPipeline(small_index, embedder, cosine_reranker(small_index, embedder))
    with running(create_app(pipeline, Limits(workers=2, queue=2))) as url:
        calm = summarise(load(url, 2, 3.0, QUERIES))
        storm = summarise(load(url, 24, 3.0, QUERIES))
    assert calm["other_5xx"] == 0 and calm["n503"] == 0 and calm["ok_per_s"] > 1
    assert storm["other_5xx"] == 0 and storm["n503"] > 0
    assert storm["p50_503_ms"] < storm["p50_ms"]  # rejections are fast, not queued
