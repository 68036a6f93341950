"""`open_backend`: one entry point from an index location to a backend."""

from __future__ import annotations

from pathlib import Path

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.errors import ConfigError
from rex_search.indexer.embed import Embedder

SCHEMES = ("a directory path (embedded index)",)


def open_backend(target: str | Path, embedder: Embedder | None = None,
                 vector_index: str = "flat") -> EmbeddedBackend:
    """Open (or, with an ``embedder``, create) the index at ``target``.

    Without an embedder the index must already exist; with one, its model and dimension must
    match the index's manifest.
    """
    target_text = str(target)
    if "://" in target_text:
        scheme = target_text.split("://", 1)[0]
        raise ConfigError(
            f"unsupported backend scheme {scheme!r}; supported: {', '.join(SCHEMES)}"
        )
    if embedder is None:
        return EmbeddedBackend(target)
    return EmbeddedBackend(target, dim=embedder.dim, model_id=embedder.model_id,
                           vector_index=vector_index)
