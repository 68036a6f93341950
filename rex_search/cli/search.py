"""Commands over an index: index, query, info, inventory update, serve."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rex_search.backends.base import Filters
from rex_search.backends.connection import redact
from rex_search.cli.common import (
    DEFAULT_INDEX_HELP,
    config_for,
    require_index,
)
from rex_search.cli.root import cli
from rex_search.config import Config, with_overrides
from rex_search.errors import BackendError, IndexMissing, QueryError, RexSearchError
from rex_search.results import SearchResult

if TYPE_CHECKING:
    from rex_search.pipelines.pipeline import SearchPipeline


@cli.command()
@click.argument("catalog", type=click.Path(path_type=Path), required=False)
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP)
@click.option("--reindex", is_flag=True,
              help="cluster backends: build a new index and swap the alias when done")
@click.option("--verify", is_flag=True,
              help="embedded index: compare the ids of its three stores (no CATALOG)")
@click.option("--repair", is_flag=True, help="embedded index: re-embed and re-add what a store "
                                             "lost, from the stored records (no CATALOG)")
@click.option("--vector-index", type=click.Choice(["flat", "hnsw"]), default=None,
              help="exact (flat) or approximate (hnsw) dense search")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=None)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@click.pass_context
def index(ctx: click.Context, catalog: Path | None, index: str | None, reindex: bool,
          verify: bool, repair: bool, vector_index: str | None, batch_size: int | None,
          as_json: bool) -> None:
    """Index CATALOG (parquet, CSV or JSONL) into the index; re-running skips unchanged products.
    With --verify or --repair (and no CATALOG): check or restore the index's consistency."""
    from tqdm import tqdm

    from rex_search.backends.open import open_backend, recorded_model
    from rex_search.indexer.embed import Embedder
    from rex_search.indexer.indexer import index_catalog

    config = with_overrides(config_for(ctx, index),
                            index={"vector_index": vector_index, "batch_size": batch_size})
    if verify or repair:
        if catalog is not None:
            raise click.UsageError("--verify/--repair check the index itself: give no CATALOG")
        _verify_or_repair(config, repair)
        return
    if catalog is None:
        raise click.UsageError("missing argument CATALOG")
    if catalog.is_dir():
        raise RexSearchError(f"catalog {catalog} is a directory: give a parquet, CSV or JSONL "
                             "file")
    if not catalog.is_file():
        raise RexSearchError(f"catalog file not found: {catalog}")
    model = config.index.embedding_model
    recorded = recorded_model(config.index.path, reindex)
    if recorded is not None and recorded != model:
        # An index keeps the model it was built with: vectors of two models cannot be mixed.
        click.echo(f"note: index {config.index.path} was embedded with {recorded}; updating it "
                   f"with {recorded}, not the configured {model} (to switch models, index into "
                   "a new --index)", err=True)
        model = recorded
    embedder = Embedder(model)
    backend = open_backend(config.index.path, embedder, config.index.vector_index, reindex)
    report_dir = backend.local_dir
    with tqdm(desc="indexing", unit="rows", disable=as_json or not sys.stderr.isatty()) as bar:
        summary = index_catalog(catalog, backend, embedder, batch_size=config.index.batch_size,
                                progress=bar.update, report_dir=report_dir)
    backend.close()
    where = backend.location
    if as_json:
        click.echo(json.dumps({**summary.to_dict(), "index": str(where)}, indent=2))
    else:
        click.echo(
            f"{catalog}: {summary.rows_read} rows read, {summary.indexed} indexed, "
            f"{summary.unchanged} unchanged, {summary.rejected} rejected, "
            + (f"{summary.duplicates} duplicate ids (the later row kept), "
               if summary.duplicates else "")
            + f"{len(summary.failed)} failed ({summary.seconds:.1f} s) -> {where}"
        )
        for asin, reason in summary.failed[:20]:
            click.echo(_printable(f"  failed {asin}: {reason}"))
        for row in summary.rejected_examples:
            click.echo(f"  rejected {_printable(str(row))}")
        if summary.rejected > len(summary.rejected_examples):
            click.echo(f"  ... all {summary.rejected} rejections: {summary.rejected_report}")
    if summary.failed:
        raise RexSearchError(f"{len(summary.failed)} product(s) were not indexed (listed above); "
                             "re-run the same command to retry them")
    if summary.rows_read == 0:
        raise RexSearchError(f"{catalog} has no rows: nothing was indexed")
    if summary.indexed + summary.unchanged == 0 and summary.rejected:
        raise RexSearchError(f"no valid rows in {catalog}: all {summary.rejected} were rejected")


def _verify_or_repair(config: Config, repair: bool) -> None:
    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.backends.open import index_exists

    if not index_exists(config.index.path) or "://" in config.index.path:
        raise RexSearchError(f"no embedded index at {redact(config.index.path)}: --verify and "
                             "--repair check an embedded index (a directory)")
    backend = EmbeddedBackend(config.index.path, repair=True, set_aside_damaged=repair)
    try:
        if repair:
            from rex_search.indexer.embed import Embedder

            done = backend.repair(Embedder(str(backend.model_id)))
            click.echo(f"repaired {config.index.path}: {done['reembedded']} product(s) "
                       f"re-embedded/re-added, {done['extra_removed']} stray entries removed")
            for aside in backend.damaged_segments:
                click.echo(f"  set aside unreadable {aside.name} (its products were re-added)")
        found, count = backend.verify(), backend.count()
    finally:
        backend.close()
    bad = {k: v for k, v in found.items() if v}
    if not bad:
        click.echo(f"{config.index.path}: consistent ({count} products in all three stores)")
        return
    for kind, ids in bad.items():
        click.echo(f"  {kind}: {len(ids)} (e.g. {', '.join(ids[:5])})")
    if "damaged_records" in bad:
        raise RexSearchError(f"the records of {config.index.path} (products.sqlite, the source "
                             "of truth) are damaged: re-index the catalog into a new --index")
    raise RexSearchError(f"index {config.index.path} is inconsistent: run `rex-search index "
                         f"--repair --index {config.index.path}`")


@cli.command()
@click.argument("text")
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP)
@click.option("-n", "--size", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--brand", multiple=True, help="only these brands (repeatable)")
@click.option("--exclude-brand", multiple=True, help="never these brands (repeatable)")
@click.option("--min-price", type=float)
@click.option("--max-price", type=float)
@click.option("--reranker", help="embedding-cosine, or a cross-encoder directory / hub id")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--explain", is_flag=True, help="show the per-stage story of each hit")
@click.pass_context
def query(ctx: click.Context, text: str, index: str | None, size: int, page: int,
          brand: tuple[str, ...], exclude_brand: tuple[str, ...], min_price: float | None,
          max_price: float | None, reranker: str | None, as_json: bool, explain: bool) -> None:
    """Search the index for TEXT: retrieve, rerank, apply rules, show why."""
    from rex_search.pipelines.pipeline import SearchPipeline

    if not text.strip():
        raise QueryError("the query is empty; pass some words, e.g. 'running shoes'")
    config = with_overrides(config_for(ctx, index), rerank={"model": reranker})
    require_index(config)
    pipeline = SearchPipeline.from_config(config)
    filters = Filters(brands=brand, exclude_brands=exclude_brand, min_price=min_price,
                      max_price=max_price)
    result = pipeline.search(text, filters=filters, page=page, size=size)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(format_result(result, explain))


def _pipeline_once_indexed(config: Config, state: dict[str, Any],
                           poll_s: float = 3.0) -> SearchPipeline:
    """The search pipeline; a cluster index that does not exist yet, or a cluster that does not
    answer yet, is waited for, serving /v1/embed meanwhile: with ``?embed=cluster`` the cluster
    builds the index by calling this service, so the service must run first (and a service
    started beside its cluster must not exit before the cluster is up)."""
    from rex_search.backends.connection import is_cluster_url
    from rex_search.indexer.embed import Embedder
    from rex_search.pipelines.pipeline import SearchPipeline

    said = ""
    while True:
        try:
            return SearchPipeline.from_config(config)
        except BackendError as exc:
            if not is_cluster_url(config.index.path):
                raise
            why = "it does not exist yet" if isinstance(exc, IndexMissing) else str(exc)
            if "embedder" not in state:
                state["embedder"] = Embedder(config.index.embedding_model)
                state["waiting_for"] = redact(config.index.path)
            if why != said:
                click.echo(f"waiting for the index {redact(config.index.path)} ({why}); "
                           "/v1/embed answers meanwhile", err=True)
                said = why
            time.sleep(poll_s)


def format_result(result: SearchResult, explain: bool) -> str:
    lines = [f'"{result.query}": {len(result.hits)} hits (page {result.page}) of '
             f"{result.total_candidates} candidates; reranker {result.reranker} "
             f"scored {result.reranked}"]
    if result.degraded:  # a budget, a reranker failure or a cluster's missing shards
        lines.append(_printable(f"degraded: {result.degraded_reason}"))
    if result.hits and result.good_matches == 0:
        lines.append(f"no good match: no candidate reaches min_score {result.min_score:.2f} "
                     "(calibrated model score); these are only the closest the catalog has")
    lines.append(f"{'#':>3}  {'score':>6}  {'match':>5}  {'bm25':>5}  {'dense':>5}  "
                 f"{'price':>8}  {'stock':>5}  {'brand':<16}  title")
    for hit in result.hits:
        sources = hit.explanation.retrieval
        bm25 = str(sources["bm25"].rank) if "bm25" in sources else "-"
        dense = str(sources["dense"].rank) if "dense" in sources else "-"
        price = f"${hit.price:,.2f}" if hit.price is not None else "-"
        stock = {True: "yes", False: "no", None: "?"}[hit.in_stock]
        match = {True: "weak", False: "good", None: "-"}[hit.weak]
        lines.append(f"{hit.rank:>3}  {hit.score:6.3f}  {match:>5}  {bm25:>5}  {dense:>5}  "
                     f"{price:>8}  {stock:>5}  {_printable(hit.brand or '-')[:16]:<16}  "
                     f"{_printable(hit.title)[:70]}")
        if explain:
            lines.extend("       " + _printable(line) for line in _explain(hit))
    # Said by default: a negation that excluded nothing, or that was read as another spelling.
    for typed_as in result.constraints.get("corrected_brands", []):  # type: ignore[attr-defined]
        typed, brand = str(typed_as).split(" -> ", 1)
        lines.append(f"note: '{_printable(typed)}' read as the brand {brand}: excluded")
    for note in result.constraints.get("notes", []):  # type: ignore[attr-defined]
        lines.append(f"note: {note}")
    for word in result.constraints.get("ignored_negations", []):  # type: ignore[attr-defined]
        lines.append(f"note: '{_printable(str(word))}' after a negation is not a brand in this "
                     "catalog: ignored, nothing excluded")
    if explain and result.constraints:
        lines.append(_printable("understood: " + "; ".join(
            f"{k}={v}" for k, v in result.constraints.items())))
    if explain:
        timings = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
        lines.append(f"timings (ms): {timings}")
        for asin, effect in result.removed:
            lines.append(_printable(f"removed {asin}: {effect.rule} {effect.action} "
                                    f"{effect.detail}".rstrip()))
    return "\n".join(lines)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Catalog text with control characters (terminal escape sequences) made visible, so a
    product title cannot retitle or recolour the user's terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _explain(hit) -> list[str]:
    e = hit.explanation
    parts = [f"{name} rank {s.rank} (score {s.score:.3f})" for name, s in e.retrieval.items()]
    lines = [f"{hit.parent_asin}: retrieved by {', '.join(parts) or 'nothing'}; "
             f"fused rank {e.fused_rank} ({e.fused_score:.4f})"]
    if e.rerank_score is not None:
        calibrated = (f", calibrated {e.calibrated_score:.3f}"
                      if e.calibrated_score is not None else "")
        lines.append(f"reranked to {e.rerank_rank} (model score {e.rerank_score:.3f}"
                     f"{calibrated})")
        if len(e.contributions) > 1:
            lines.append("final score " + " + ".join(
                f"{name} {value:.3f}" for name, value in e.contributions.items())
                + f" = {sum(e.contributions.values()):.3f}")
    else:
        lines.append("not reranked (outside the rerank window): kept fused order")
    lines.extend(f"{r.rule}: {r.action} {r.detail}".rstrip() for r in e.rules)
    return lines


@cli.command()
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def info(ctx: click.Context, index: str | None, as_json: bool) -> None:
    """Describe what is in an index."""
    from rex_search.backends.open import open_backend

    config = config_for(ctx, index)
    require_index(config)
    backend = open_backend(config.index.path)
    details = backend.info()
    backend.close()
    if as_json:
        click.echo(json.dumps(details, indent=2, default=str))
        return
    for key, value in details.items():
        click.echo(f"{key}: {json.dumps(value, default=str) if isinstance(value, list) else value}")


@cli.group()
def inventory() -> None:
    """Stock and price updates (no re-embedding)."""


@inventory.command("update")
@click.argument("feed", type=click.Path(path_type=Path))
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def inventory_update(ctx: click.Context, feed: Path, index: str | None, as_json: bool) -> None:
    """Apply FEED (CSV/parquet/JSONL: parent_asin, in_stock, quantity, optional price)."""
    import time

    from rex_search.backends.open import open_backend
    from rex_search.catalog.inventory import read_inventory

    config = config_for(ctx, index)
    require_index(config)
    started = time.perf_counter()
    records, rejected = read_inventory(feed)
    backend = open_backend(config.index.path)
    unknown = backend.update_inventory(records)
    backend.close()
    summary = {"rows": len(records) + len(rejected), "updated": len(records) - len(unknown),
               "unknown_products": len(unknown), "rejected": len(rejected),
               "seconds": round(time.perf_counter() - started, 2),
               "unknown_examples": unknown[:10],
               "rejected_examples": [str(r) for r in rejected[:10]]}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        _fail_if_nothing_applied(feed, summary)
        return
    click.echo(f"{feed}: {summary['rows']} rows, {summary['updated']} products updated, "
               f"{len(unknown)} not in the index, {len(rejected)} rejected "
               f"({summary['seconds']} s)")
    for asin in unknown[:10]:
        click.echo(f"  not in the index: {_printable(asin)}")
    for row in rejected[:10]:
        click.echo(f"  rejected {_printable(str(row))}")
    _fail_if_nothing_applied(feed, summary)


def _fail_if_nothing_applied(feed: Path, summary: dict[str, Any]) -> None:
    """A feed that changed nothing is a failed run (exit 1), not a success."""
    if summary["rows"] and not summary["updated"]:
        raise RexSearchError(f"{feed}: nothing was applied ({summary['rejected']} rejected, "
                             f"{summary['unknown_products']} not in the index)")




@cli.command()
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="requests that run the models at once")
@click.option("--queue", type=click.IntRange(0, 10_000), default=8, show_default=True,
              help="requests that may wait; beyond this, 503 at once")
@click.option("--api-key-env", metavar="VAR",
              help="require Authorization: Bearer $VAR on every POST (off by default)")
@click.option("--read-timeout", type=click.FloatRange(0.1, 3600), default=10.0,
              show_default=True, help="seconds a client has to send a whole request; then its "
              "connection is closed (bounds slow or half-sent requests)")
@click.pass_context
def serve(ctx: click.Context, index: str | None, host: str, port: int, workers: int,
          queue: int, api_key_env: str | None, read_timeout: float) -> None:
    """Serve /search, /rerank (also /v1/rerank, /v2/rerank), /health, /metrics and a search
    page over HTTP."""
    try:
        import uvicorn
    except ImportError as exc:
        raise RexSearchError("serving needs: pip install 'rex-search[serve]'") from exc
    import threading

    from rex_search.service import Limits, create_app
    from rex_search.service.server import server_config

    config = config_for(ctx, index)
    require_index(config)
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise RexSearchError(f"--api-key-env {api_key_env}: that variable is not set")
    elif host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: serving on {host} without authentication; anyone who can reach "
                   "it can run the models (use --api-key-env VAR)", err=True)
    # The port opens at once and /health says "loading" (503) until model and index are ready.
    app = create_app(None, Limits(workers=workers, queue=queue), api_key)
    server = uvicorn.Server(server_config(app, host, port, read_timeout, log_level="warning",
                                          timeout_graceful_shutdown=10))
    failure: list[str] = []

    def load() -> None:
        try:
            pipeline = _pipeline_once_indexed(config, app.state.rex)
            app.state.rex["pipeline"] = pipeline
            click.echo(f"ready: http://{host}:{port} (index {config.index.path}, "
                       f"{pipeline.backend.count()} products; reranker "
                       f"{pipeline.reranker.name}; embedder {pipeline.embedder.model_id} on "
                       f"{pipeline.embedder.runtime})", err=True)
            started = time.perf_counter()
            prepared = pipeline.prepare_reranker()  # while serving: queries never wait on it
            if prepared:
                click.echo(f"reranker: {prepared} products prepared in "
                           f"{time.perf_counter() - started:.0f} s", err=True)
        except Exception as exc:  # noqa: BLE001 (reported, then the server stops)
            failure.append(str(exc))
            server.should_exit = True

    click.echo(f"serving http://{host}:{port}; loading model and index from "
               f"{config.index.path} ...", err=True)
    threading.Thread(target=load, daemon=True).start()
    server.run()
    if failure:
        raise RexSearchError(f"could not load the search pipeline: {failure[0]}")
