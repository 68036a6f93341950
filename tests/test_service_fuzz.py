"""The HTTP API fuzzed from its own OpenAPI document (schemathesis, bounded): whatever a
client sends that the document allows -- and much that it does not -- is never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.service import OPENAPI, create_app
from tests.conftest import cosine_reranker
from tests.service_server import running

# Positive cases for every operation; negative ones where there is input to break.
CASES = [(method, path, mode) for path, methods in OPENAPI["paths"].items()
         for method, spec in methods.items() for mode in GenerationMode
         if mode is GenerationMode.POSITIVE or "requestBody" in spec]


@pytest.fixture(scope="module")
def base(small_index_dir, embedder):
    backend = EmbeddedBackend(small_index_dir)
    pipeline = SearchPipeline(backend, embedder, cosine_reranker(backend, embedder))
    with running(create_app(pipeline)) as url:
        yield url
    backend.close()


@pytest.mark.parametrize(("method", "path", "mode"), CASES,
                         ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_request_is_a_server_error(base, method, path, mode):
    """Positive cases follow the document; negative ones break it on purpose."""
    operation = schemathesis.openapi.from_dict(OPENAPI)[path][method.upper()]
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    @given(st.data())
    def call(data):
        case = data.draw(strategy)
        response = case.call(base_url=base, timeout=30)
        assert response.status_code < 500, (case.body, response.text[:300])

    call()
