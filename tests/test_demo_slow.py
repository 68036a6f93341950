"""The whole bundled sample catalog, as `make demo` indexes it (slow: ~75 s of embedding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.indexer.indexer import index_catalog
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import SAMPLE_CATALOG, cosine_reranker

pytestmark = pytest.mark.slow


def test_full_sample_index_answers_running_shoes(tmp_path: Path, embedder):
    backend = EmbeddedBackend(tmp_path / "full", dim=embedder.dim, model_id=embedder.model_id)
    summary = index_catalog(SAMPLE_CATALOG, backend, embedder)
    assert (summary.indexed, summary.rejected) == (6764, 0)
    pipeline = SearchPipeline(backend, embedder, cosine_reranker(backend, embedder))
    hits = pipeline.search("running shoes", size=5).hits
    assert all("running" in h.title.lower() and "shoe" in h.title.lower() for h in hits)
    assert "B08P6VWLBQ" not in [h.parent_asin for h in hits]  # the leather shoe-lace cord
    again = index_catalog(SAMPLE_CATALOG, backend, embedder)
    assert (again.indexed, again.unchanged) == (0, 6764)
    backend.close()
