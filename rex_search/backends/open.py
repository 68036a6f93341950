"""`open_backend`: one entry point from an index location (directory or URL) to a backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rex_search.backends.base import Backend
from rex_search.backends.connection import is_cluster_url, parse_target
from rex_search.backends.embedded import EmbeddedBackend

if TYPE_CHECKING:  # only its type: the embedder lives above the backends
    from rex_search.indexer.embed import Embedder

from rex_search.errors import ConfigError


def open_backend(target: str | Path, embedder: Embedder | None = None,
                 vector_index: str = "flat", reindex: bool = False, repair: bool = False
                 ) -> Backend:
    """Open (or, with an ``embedder``, create) the index at ``target``: a directory (embedded)
    or ``opensearch[+https]://...`` / ``elasticsearch[+https]://...`` (see backends.connection).

    Without an embedder the index must already exist; with one, its model and dimension must
    match what the index was built with.
    """
    text = str(target)
    dim = embedder.dim if embedder is not None else None
    model = embedder.model_id if embedder is not None else None
    if is_cluster_url(text):
        cluster = parse_target(text)
        if cluster.engine == "opensearch":
            from rex_search.backends.opensearch import OpenSearchBackend

            return OpenSearchBackend(cluster, dim, model, reindex=reindex)
        from rex_search.backends.elasticsearch import ElasticsearchBackend

        return ElasticsearchBackend(cluster, dim, model, reindex=reindex)
    if "://" in text:
        raise ConfigError(f"unsupported backend {text.split('://')[0]!r}://; use a directory, "
                          "opensearch[+https]://host:port/index or elasticsearch[+https]://...")
    if reindex:
        raise ConfigError("--reindex applies to cluster backends; for an embedded index, index "
                          "into a new directory")
    path = Path(target)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"index path {path} is a file, not a directory: pass --index DIR")
    if embedder is None:
        return EmbeddedBackend(target, repair=repair)
    return EmbeddedBackend(target, dim=dim, model_id=model, vector_index=vector_index,
                           repair=repair)


def recorded_model(target: str, reindex: bool = False) -> str | None:
    """The embedding model an existing embedded index records in its manifest (None: no
    index yet, a cluster target -- its backend checks the model when opened -- or
    ``reindex``). A damaged manifest is left for the backend to report."""
    manifest = Path(target) / "manifest.json"
    if reindex or is_cluster_url(target) or not manifest.is_file():
        return None
    try:
        model = json.loads(manifest.read_text(encoding="utf-8")).get("embedding_model")
    except (ValueError, OSError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def index_exists(target: str) -> bool:
    """Cheap check for the CLI; cluster targets are checked when opened."""
    return is_cluster_url(target) or (Path(target) / "manifest.json").exists()
