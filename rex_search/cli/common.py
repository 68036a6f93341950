"""Helpers every command group shares: the configured index, progress bars."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from rex_search.config import Config, with_overrides
from rex_search.errors import RexSearchError

DEFAULT_METRICS = ("ndcg@5", "ndcg@10", "ndcg_exp@10", "ndcg_topk@5", "mrr@10", "recall@10")
DEFAULT_INDEX_HELP = ("index directory or cluster URL, e.g. opensearch://host:9200/products "
                      "(default: $REX_BACKEND, $REX_INDEX, the config's [index] path, ./rex-index)")


def config_for(ctx: click.Context, index: str | None) -> Config:
    config: Config = ctx.obj["config"]
    path = index or os.environ.get("REX_BACKEND") or os.environ.get("REX_INDEX")
    return with_overrides(config, index={"path": path})


def require_index(config: Config) -> None:
    from rex_search.backends.open import index_exists

    if not index_exists(config.index.path):
        raise RexSearchError(f"no index at {config.index.path}: run `rex-search index "
                             "CATALOG` first (or pass --index)")



@contextmanager
def progress_bar(total: int | None, what: str, unit: str) -> Iterator[Callable[..., None]]:
    """A stderr progress bar (only on a terminal: logs and pipes stay clean); yields
    ``step(label="", count=1)``, which advances it and shows ``label``."""
    from tqdm import tqdm

    with tqdm(total=total, desc=what, unit=unit, disable=not sys.stderr.isatty(),
              leave=False) as bar:
        def step(label: str = "", count: int = 1) -> None:
            if label:
                bar.set_postfix_str(label, refresh=False)
            bar.update(count)

        yield step


class Reporting:
    """An embedder that reports each batch it encodes to a progress ``step``."""

    def __init__(self, embedder: Any, step: Callable[..., None]) -> None:
        self._embedder, self._step = embedder, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def encode(self, texts: Any, progress: Any = None) -> Any:
        return self._embedder.encode(texts, progress=lambda n: self._step(count=n))


def index_context(config: Config):
    """(known brands, product lookup) from the configured index, when there is one: the
    ``pipeline`` ranker then understands brands and sees full records, as a search does."""
    from rex_search.backends.open import index_exists, open_backend
    from rex_search.query import KnownBrands

    if not index_exists(config.index.path):
        click.echo(f"note: no index at {config.index.path}: the pipeline ranker knows no brands "
                   "and sees only the judged title and description", err=True)
        return None, None
    backend = open_backend(config.index.path)
    return KnownBrands(backend.brands(), config.rules.brand_aliases), backend.get
