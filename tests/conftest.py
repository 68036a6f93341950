"""Shared fixtures: the real embedder (loaded once) and a small real index built once per session.

The small index holds a real slice of the bundled ESCI sample: every product whose title
mentions shoes, laces, laptops, bags or chargers, plus a seeded random sample of the rest.
Tests that write to an index get their own copy.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.indexer.embed import Embedder
from rex_search.indexer.indexer import index_catalog

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CATALOG = REPO / "data" / "esci-sample" / "catalog.parquet"
DEV_JUDGMENTS = REPO / "data" / "esci-sample" / "dev" / "eress.parquet"
SMALL_PATTERN = r"(?i)shoe|lace|laptop|bag|charger|nike|usb"


def cosine_reranker(backend, embedder: Embedder):
    """The embedding-cosine scorer over ``backend``'s stored vectors (as `from_config` builds
    it): without them it would embed every candidate again."""
    from rex_search.rerank.base import load_reranker

    return load_reranker("embedding-cosine", embedder, stored_vectors=backend.vectors)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = pq.read_table(SAMPLE_CATALOG)
    matches = pc.match_substring_regex(table["title"], SMALL_PATTERN).to_pylist()
    rng = random.Random(7)
    keep = [i for i, m in enumerate(matches) if m]
    rest = [i for i, m in enumerate(matches) if not m]
    keep = sorted(keep + rng.sample(rest, 150))
    path = tmp_path_factory.mktemp("catalog") / "small.parquet"
    pq.write_table(table.take(keep), path)
    return path


@pytest.fixture(scope="session")
def small_index_dir(tmp_path_factory: pytest.TempPathFactory, small_catalog: Path,
                    embedder: Embedder) -> Path:
    path = tmp_path_factory.mktemp("index") / "small"
    backend = EmbeddedBackend(path, dim=embedder.dim, model_id=embedder.model_id)
    index_catalog(small_catalog, backend, embedder)
    backend.close()
    return path


@pytest.fixture
def small_index(small_index_dir: Path) -> EmbeddedBackend:
    """The shared small index, read-only by convention."""
    backend = EmbeddedBackend(small_index_dir)
    yield backend
    backend.close()


@pytest.fixture
def writable_index(small_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the small index that a test may change."""
    copy = tmp_path / "index"
    shutil.copytree(small_index_dir, copy)
    return copy


RULES_FIXTURE = REPO / "tests" / "fixtures" / "rules_catalog.jsonl"


@pytest.fixture(scope="session")
def fixture_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """The hand-written rules fixture catalog (tests/fixtures/README.md), indexed."""
    path = tmp_path_factory.mktemp("fixture-index") / "rules"
    backend = EmbeddedBackend(path, dim=embedder.dim, model_id=embedder.model_id)
    index_catalog(RULES_FIXTURE, backend, embedder)
    backend.close()
    return path


@pytest.fixture(scope="session")
def osmem_server():
    """osmem-server (OpenSearch-API emulator) for the session; overrides the plugin's fixture
    to also close the server's stdout pipe, which the plugin leaves open."""
    from osmem_server import OsmemServer

    server = OsmemServer.start()
    yield server
    server.close()
    if server.process.stdout is not None:
        server.process.stdout.close()


def _started(what: str, make):
    """``make(run_dir)`` builds and starts nodes; skip (or, with REX_REQUIRE_OPENSEARCH=1 as
    .ci/run sets, fail) saying why where Java or Maven are missing. Yields them, then stops."""
    from tests.opensearch_node import NodeError

    # Not pytest's tmp_path: its folders are private to root, and as root the node runs as
    # an unprivileged user that must reach its run folder.
    run_dir = Path(tempfile.mkdtemp(prefix=f"rex-{what.replace(' ', '-')}-"))
    os.chmod(run_dir, 0o755)
    started = None
    try:
        started = make(run_dir)
        started.start()
    except NodeError as exc:
        if started is not None:
            started.stop()
        if os.environ.get("REX_REQUIRE_OPENSEARCH") == "1":
            pytest.fail(f"no {what}: {exc}")
        pytest.skip(f"no {what} (needs Java and Maven Central): {exc}")
    yield started
    started.stop()
    shutil.rmtree(run_dir, ignore_errors=True)


def _started_node(assembler, engine: str, heap: str):
    from tests.opensearch_node import OpenSearchNode, knn_native_libs

    libs = knn_native_libs() if engine == "opensearch" else None
    yield from _started(f"{engine} node", lambda run_dir: OpenSearchNode(
        assembler(), run_dir, heap=heap, engine=engine, knn_libs=libs))


@pytest.fixture(scope="session")
def opensearch_node():
    """A real OpenSearch node assembled from Maven Central (tests/opensearch_node.py), started
    once per session."""
    from tests.opensearch_node import assemble

    yield from _started_node(assemble, "opensearch", "1g")


@pytest.fixture(scope="session")
def embedding_service(small_index_dir: Path, embedder: Embedder):
    """rex-search serve on the small index: the /v1/embed (and /opensearch/*) endpoints a
    cluster's remote models call."""
    from rex_search.pipelines.pipeline import SearchPipeline
    from rex_search.service import create_app
    from tests.service_server import running

    backend = EmbeddedBackend(small_index_dir)
    with running(create_app(SearchPipeline(backend, embedder,
                                           cosine_reranker(backend, embedder)))) as base:
        yield base
    backend.close()


@pytest.fixture(scope="module")
def opensearch_cluster():
    """Three OpenSearch nodes on loopback forming one cluster (tests/opensearch_node.py), for
    the tests that kill one."""
    from tests.opensearch_node import OpenSearchCluster, assemble

    yield from _started("opensearch cluster", lambda run_dir: OpenSearchCluster(
        assemble(), run_dir, size=3, heap="512m"))


@pytest.fixture(scope="module")
def compose_cluster():
    """docker/compose.yml's three nodes and rex-search serve as containers; skips saying what
    is missing (fails instead with REX_REQUIRE_CONTAINERS=1, which .ci/run sets once it has
    started an engine and built the images)."""
    from tests.compose_cluster import ComposeCluster, unavailable
    from tests.opensearch_node import NodeError

    why = unavailable()
    if why:
        if os.environ.get("REX_REQUIRE_CONTAINERS") == "1":
            pytest.fail(f"no containers: {why}")
        pytest.skip(f"no containers: {why}")
    cluster = ComposeCluster()
    try:
        cluster.start()
    except NodeError as exc:
        cluster.stop()
        pytest.fail(f"the compose cluster did not start: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def elasticsearch_node():
    """A real Elasticsearch 8 node from Maven Central's minimal distribution (see
    tests/opensearch_node.py for what it lacks)."""
    from tests.opensearch_node import assemble_elasticsearch

    yield from _started_node(assemble_elasticsearch, "elasticsearch", "512m")
