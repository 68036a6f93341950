"""The contract against real clusters: k-NN plugin / dense_vector search, alias swap, security.

Runs against $OPENSEARCH_URL / $ELASTICSEARCH_URL (rex-search URLs, e.g.
``opensearch+https://admin:PASS@localhost:9200/rex-test?verify_certs=false``) when set, else
starts a container with testcontainers when a Docker daemon answers, else skips saying how to
run it (where the engine holds the image: no registry may be reachable). Start a local
cluster with ``make opensearch OPENSEARCH_MODE=containers`` (docker/compose.yml).
"""

from __future__ import annotations

import functools
import os
import uuid

import pytest

from rex_search.backends.base import Filters
from rex_search.backends.connection import parse_target
from rex_search.indexer.indexer import index_catalog
from tests.conftest import RULES_FIXTURE

pytestmark = pytest.mark.opensearch

HOW = ("set OPENSEARCH_URL (or ELASTICSEARCH_URL), e.g. after `make opensearch "
       "OPENSEARCH_MODE=containers`: OPENSEARCH_URL='opensearch://127.0.0.1:9200/rex-test?"
       "knn_engine=lucene' pytest -m opensearch")
IMAGES = {"opensearch": "opensearchproject/opensearch:2.19.0",
          "elasticsearch": "elasticsearch:8.15.0"}


@functools.cache
def _image_present(image: str) -> bool:
    """No registry may be reachable: only an image already on this engine can start."""
    import docker

    client = docker.from_env()
    try:
        client.images.get(image)
        return True
    except Exception:  # noqa: BLE001 -- not found, or any engine error: not usable
        return False
    finally:
        client.close()


@functools.cache
def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False  # nothing to ask (and docker's client leaks a socket when it fails)
    try:
        import docker

        client = docker.from_env()
    except Exception:  # no client package, no socket, daemon down: all mean "no Docker"
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _container_url(engine: str):
    if engine == "opensearch":
        from testcontainers.opensearch import OpenSearchContainer

        container = OpenSearchContainer(IMAGES[engine])
    else:
        from testcontainers.elasticsearch import ElasticSearchContainer

        container = ElasticSearchContainer(IMAGES[engine])
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(9200)
    return container, f"{engine}://{host}:{port}/rex-test"


@pytest.fixture(params=["opensearch", "elasticsearch"])
def cluster_url(request):
    engine = request.param
    url = os.environ.get(f"{engine.upper()}_URL")
    container = None
    if not url:
        if not _docker_answers():
            pytest.skip(f"no {engine} cluster: {HOW}")
        if not _image_present(IMAGES[engine]):
            pytest.skip(f"no {engine} cluster: Docker answers but has no {IMAGES[engine]} "
                        f"image and no registry may be reachable; {HOW}")
        container, url = _container_url(engine)
    base, _, query = url.partition("?")
    unique = f"{base.rsplit('/', 1)[0]}/rex-test-{uuid.uuid4().hex[:8]}" + \
        (f"?{query}" if query else "")
    yield unique
    if container is not None:
        container.stop()


def _backend(url: str, embedder, **kwargs):
    target = parse_target(url)
    if target.engine == "opensearch":
        from rex_search.backends.opensearch import OpenSearchBackend as Backend
    else:
        from rex_search.backends.elasticsearch import ElasticsearchBackend as Backend
    return Backend(target, embedder.dim, embedder.model_id, **kwargs)


def test_knn_with_filters_and_hybrid_pipeline(cluster_url, embedder):
    backend = _backend(cluster_url, embedder)
    index_catalog(RULES_FIXTURE, backend, embedder)
    vector = embedder.encode_queries(["usb c charger"])[0]
    hits = backend.knn(vector, 5, Filters(exclude_brands=("Apple",)))
    assert len(hits) == 5
    brands = {p.product.brand for p in backend.get([h.parent_asin for h in hits]).values()}
    assert "Apple" not in brands
    assert backend.bm25("usb c charger", 5)


def test_reindex_swaps_alias(cluster_url, embedder):
    first = _backend(cluster_url, embedder)
    index_catalog(RULES_FIXTURE, first, embedder)
    old = first.info()["indices"]
    second = _backend(cluster_url, embedder, reindex=True)
    index_catalog(RULES_FIXTURE, second, embedder)
    assert second.info()["indices"] != old
    assert second.count() == 36
