"""The `rex-search` command line: index, query, info.

Errors print ``Error: <message>`` and exit 1, with no traceback; usage errors exit 2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from rex_search.backends.base import Filters
from rex_search.config import Config, load_config, with_overrides
from rex_search.errors import RexSearchError
from rex_search.results import SearchResult

DEFAULT_METRICS = ("ndcg@5", "ndcg@10", "ndcg_exp@10", "ndcg_topk@5", "mrr@10", "recall@10")
DEFAULT_INDEX_HELP = ("index directory or cluster URL, e.g. opensearch://host:9200/products "
                      "(default: $REX_BACKEND, $REX_INDEX, the config's [index] path, ./rex-index)")


def _config(ctx: click.Context, index: str | None) -> Config:
    config: Config = ctx.obj["config"]
    path = index or os.environ.get("REX_BACKEND") or os.environ.get("REX_INDEX")
    return with_overrides(config, index={"path": path})


def _require_index(config: Config) -> None:
    from rex_search.backends.open import index_exists

    if not index_exists(config.index.path):
        raise RexSearchError(f"no index at {config.index.path}: run `rex-search index "
                             "CATALOG` first (or pass --index)")


@click.group()
@click.version_option(package_name="rex-search", prog_name="rex-search")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML configuration file (default: $REX_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """rex-search: retrieve, rerank and explain product search results."""
    # Only rex-search's own messages: client libraries log tracebacks for every failed request.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package = logging.getLogger("rex_search")
    if not package.handlers:
        package.addHandler(handler)
    package.setLevel(logging.INFO if verbose else logging.WARNING)
    ctx.obj = {"config": load_config(config_path)}


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

    from rex_search.backends.open import open_backend
    from rex_search.indexer.embed import Embedder
    from rex_search.indexer.indexer import index_catalog

    config = with_overrides(_config(ctx, index),
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
    embedder = Embedder(config.index.embedding_model)
    backend = open_backend(config.index.path, embedder, config.index.vector_index, reindex)
    report_dir = backend.path if hasattr(backend, "path") else None
    with tqdm(desc="indexing", unit="rows", disable=as_json or not sys.stderr.isatty()) as bar:
        summary = index_catalog(catalog, backend, embedder, batch_size=config.index.batch_size,
                                progress=bar.update, report_dir=report_dir)
    backend.close()
    where = getattr(backend, "path", None) or backend.target.display
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
            click.echo(f"  failed {asin}: {reason}")
        for row in summary.rejected_examples:
            click.echo(f"  rejected {row}")
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
        raise RexSearchError(f"no embedded index at {config.index.path}")
    backend = EmbeddedBackend(config.index.path, repair=True)
    try:
        if repair:
            from rex_search.indexer.embed import Embedder

            done = backend.repair(Embedder(str(backend.model_id)))
            click.echo(f"repaired {config.index.path}: {done['reembedded']} product(s) "
                       f"re-embedded/re-added, {done['extra_removed']} stray entries removed")
        found, count = backend.verify(), backend.count()
    finally:
        backend.close()
    bad = {k: v for k, v in found.items() if v}
    if not bad:
        click.echo(f"{config.index.path}: consistent ({count} products in all three stores)")
        return
    for kind, ids in bad.items():
        click.echo(f"  {kind}: {len(ids)} (e.g. {', '.join(ids[:5])})")
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
        raise RexSearchError("the query is empty; pass some words, e.g. 'running shoes'")
    config = with_overrides(_config(ctx, index), rerank={"model": reranker})
    _require_index(config)
    pipeline = SearchPipeline.from_config(config)
    filters = Filters(brands=brand, exclude_brands=exclude_brand, min_price=min_price,
                      max_price=max_price)
    result = pipeline.search(text, filters=filters, page=page, size=size)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(format_result(result, explain))


def format_result(result: SearchResult, explain: bool) -> str:
    lines = [f'"{result.query}": {len(result.hits)} hits (page {result.page}) of '
             f"{result.total_candidates} candidates; reranker {result.reranker} "
             f"scored {result.reranked}"]
    lines.append(f"{'#':>3}  {'score':>6}  {'bm25':>5}  {'dense':>5}  {'price':>8}  "
                 f"{'stock':>5}  {'brand':<16}  title")
    for hit in result.hits:
        sources = hit.explanation.retrieval
        bm25 = str(sources["bm25"].rank) if "bm25" in sources else "-"
        dense = str(sources["dense"].rank) if "dense" in sources else "-"
        price = f"${hit.price:,.2f}" if hit.price is not None else "-"
        stock = {True: "yes", False: "no", None: "?"}[hit.in_stock]
        lines.append(f"{hit.rank:>3}  {hit.score:6.3f}  {bm25:>5}  {dense:>5}  {price:>8}  "
                     f"{stock:>5}  {_printable(hit.brand or '-')[:16]:<16}  "
                     f"{_printable(hit.title)[:70]}")
        if explain:
            lines.extend("       " + line for line in _explain(hit))
    if explain and result.constraints:
        lines.append("understood: " + "; ".join(f"{k}={v}"
                                                for k, v in result.constraints.items()))
    if explain:
        timings = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
        lines.append(f"timings (ms): {timings}")
        for asin, effect in result.removed:
            lines.append(f"removed {asin}: {effect.rule} {effect.action} {effect.detail}".rstrip())
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
        lines.append(f"reranked to {e.rerank_rank} (model score {e.rerank_score:.3f})")
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

    config = _config(ctx, index)
    _require_index(config)
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

    config = _config(ctx, index)
    _require_index(config)
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
        return
    click.echo(f"{feed}: {summary['rows']} rows, {summary['updated']} products updated, "
               f"{len(unknown)} not in the index, {len(rejected)} rejected "
               f"({summary['seconds']} s)")
    for asin in unknown[:10]:
        click.echo(f"  not in the index: {asin}")
    for row in rejected[:10]:
        click.echo(f"  rejected {row}")


@cli.group("opensearch")
def opensearch_group() -> None:
    """OpenSearch integration."""


def _opensearch_client(ctx: click.Context, index: str | None, command: str) -> tuple[Any, str]:
    from rex_search.backends.connection import is_cluster_url, parse_target
    from rex_search.backends.opensearch import opensearch_client

    target = _config(ctx, index).index.path
    if not is_cluster_url(target) or not target.startswith("opensearch"):
        raise RexSearchError(f"{command} needs --index opensearch[+https]://host:port/INDEX")
    return opensearch_client(parse_target(target)), parse_target(target).index


@opensearch_group.command("install-pipeline")
@click.option("--index", "--backend", "index", help="opensearch[+https]://... cluster URL")
@click.option("--service", help="the rex-search service, e.g. http://10.0.0.5:8080")
@click.option("--local-model", is_flag=True,
              help="register the shipped reranker inside ml-commons instead (no service)")
@click.option("--name", default="rex-rerank", show_default=True, help="search pipeline name")
@click.option("--dry-run", is_flag=True, help="print the requests instead of sending them")
@click.pass_context
def install_pipeline(ctx: click.Context, index: str | None, service: str | None,
                     local_model: bool, name: str, dry_run: bool) -> None:
    """Register rex-search as the reranker of an OpenSearch search pipeline (again: updates
    the connector and model in place)."""
    from rex_search.integrations.opensearch_pipeline import check_index, install, plan

    if bool(service) == local_model:
        raise click.UsageError("give exactly one of --service URL and --local-model")
    if dry_run:
        if service is None:
            raise click.UsageError("--dry-run shows the --service plan")
        for step in plan(service, name, trusted=["<endpoints the cluster already trusts>"]):
            body = "" if step.body is None else json.dumps(step.body, indent=2)
            click.echo(f"{step.method} {step.path}\n{body}\n")
        return
    client, alias = _opensearch_client(ctx, index, "install-pipeline")
    check_index(client, alias)
    if service is not None:
        click.echo(json.dumps(install(client, service, name), indent=2))
        return
    import tempfile

    from rex_search.integrations.ml_commons_model import install_local
    from rex_search.model_files import BUNDLED_RERANKER, resolve_model

    with tempfile.TemporaryDirectory() as work:
        created = install_local(client, Path(resolve_model(BUNDLED_RERANKER)), Path(work), name)
    created.pop("model_zip")
    click.echo(json.dumps(created, indent=2))


@opensearch_group.command("uninstall-pipeline")
@click.option("--index", "--backend", "index", help="opensearch[+https]://... cluster URL")
@click.option("--service", required=True, help="the service URL given to install-pipeline")
@click.option("--name", default="rex-rerank", show_default=True, help="search pipeline name")
@click.pass_context
def uninstall_pipeline(ctx: click.Context, index: str | None, service: str, name: str) -> None:
    """Remove the search pipeline, model, connector and trusted endpoint install-pipeline made."""
    from rex_search.integrations.opensearch_pipeline import uninstall

    client, _ = _opensearch_client(ctx, index, "uninstall-pipeline")
    click.echo(json.dumps(uninstall(client, service, name), indent=2))


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
@click.pass_context
def serve(ctx: click.Context, index: str | None, host: str, port: int, workers: int,
          queue: int, api_key_env: str | None) -> None:
    """Serve /search, /rerank (also /v1/rerank, /v2/rerank), /health, /metrics and a search
    page over HTTP."""
    try:
        import uvicorn
    except ImportError as exc:
        raise RexSearchError("serving needs: pip install 'rex-search[serve]'") from exc
    import threading

    from rex_search.pipelines.pipeline import SearchPipeline
    from rex_search.service import Limits, create_app

    config = _config(ctx, index)
    _require_index(config)
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
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=10,
                                           h11_max_incomplete_event_size=16 * 1024))
    failure: list[str] = []

    def load() -> None:
        try:
            pipeline = SearchPipeline.from_config(config)
            app.state.rex["pipeline"] = pipeline
            click.echo(f"ready: http://{host}:{port} (index {config.index.path}, "
                       f"{pipeline.backend.count()} products; reranker "
                       f"{pipeline.reranker.name}; embedder {pipeline.embedder.model_id} on "
                       f"{pipeline.embedder.runtime})", err=True)
        except Exception as exc:  # noqa: BLE001 (reported, then the server stops)
            failure.append(str(exc))
            server.should_exit = True

    click.echo(f"serving http://{host}:{port}; loading model and index from "
               f"{config.index.path} ...", err=True)
    threading.Thread(target=load, daemon=True).start()
    server.run()
    if failure:
        raise RexSearchError(f"could not load the search pipeline: {failure[0]}")


@cli.command("export-onnx")
@click.argument("model")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--quantize", is_flag=True, help="also write a dynamic int8 model.int8.onnx")
@click.option("--check", "check_file", type=click.Path(path_type=Path),
              default=None, help="judgments for the agreement check (default: bundled DEV set)")
@click.option("--min-spearman", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="refuse a variant whose scores agree less with PyTorch fp32")
@click.option("--pairs", type=click.IntRange(10), default=400, show_default=True)
@click.option("--fp32-node", "fp32_nodes", multiple=True,
              help="keep graph nodes whose name contains this in fp32 when quantizing "
                   "(repeatable), e.g. layer.0/output/dense/")
def export_onnx_command(model: str, out: Path, quantize: bool, check_file: Path | None,
                        min_spearman: float, pairs: int, fp32_nodes: tuple[str, ...]) -> None:
    """Export cross-encoder MODEL to ONNX in OUT and check its agreement with PyTorch."""
    from rex_search.catalog.prompt import product_text
    from rex_search.catalog.schema import Product
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.rerank.export import check_agreement, export_onnx

    export_onnx(model, out, quantize, fp32_nodes=fp32_nodes)
    check_file = check_file or Path(__file__).resolve().parents[1] / "data" / "esci-sample" / \
        "dev" / "eress.parquet"
    if not check_file.exists():
        raise RexSearchError(f"no check set at {check_file}: pass --check JUDGMENTS")
    check = [(q.query, product_text(Product(d.parent_asin, d.title, description=d.description)))
             for q in read_judgments(check_file) for d in q.docs][:pairs]
    results = check_agreement(model, out, check, min_spearman)
    for a in results:
        verdict = "kept" if a.accepted else f"REFUSED (below {min_spearman}), file removed"
        size = f"{(out / a.file).stat().st_size / 1e6:.1f} MB" if a.accepted else "-"
        click.echo(f"{a.variant:5} {a.file:16} {size:>8}  Spearman {a.spearman:.4f}  max |diff| "
                   f"{a.max_abs_diff:.2e} on {a.pairs} pairs: {verdict}")
    if not any(a.accepted for a in results):
        raise RexSearchError("no exported variant agrees with PyTorch; nothing usable in "
                             f"{out}")


@cli.group("train-data")
def train_data() -> None:
    """Training data generation."""


@train_data.command("synth")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="parquet file in ERESS columns")
@click.option("--queries", type=click.IntRange(1), default=2400, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--real-pairs", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="real Exact (query, product) pairs with text [default: the bundled "
                   "data/esci-extra/exact_pairs.parquet]")
@click.option("--real-queries", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="real query strings, one a line, teacher-labelled [default: the bundled "
                   "data/esci-extra/queries.txt]")
@click.option("--no-real", is_flag=True, help="synthetic pairs only (no real pairs or queries)")
@click.option("--distill", type=click.FloatRange(0, 1), default=0.3, show_default=True,
              help="alpha: move each target this far toward the bi-encoder teacher")
@click.option("--embedding-model", default="all-MiniLM-L6-v2", show_default=True,
              help="the teacher")
def train_data_synth(catalog: Path, out: Path, queries: int, seed: int, real_pairs: Path | None,
                     real_queries: Path | None, no_real: bool, distill: float,
                     embedding_model: str) -> None:
    """Graded training pairs from CATALOG (grades: rex_search/train/synth.py; teacher:
    rex_search/train/distill.py; the whole recipe: rex_search/train/data.py)."""
    from collections import Counter

    import pyarrow as pa
    import pyarrow.parquet as pq

    from rex_search.catalog.reader import read_catalog
    from rex_search.train.data import REAL_PAIRS, REAL_QUERIES, training_pairs

    products = [p for batch in read_catalog(catalog) for p in batch.products]
    needs_teacher = distill > 0 or not no_real
    embedder = None
    if needs_teacher:
        from rex_search.indexer.embed import Embedder

        embedder = Embedder(embedding_model)
    with _progress_bar(None, "teacher embeddings", "texts") as step:
        pairs = training_pairs(
            products, _Reporting(embedder, step) if embedder is not None else None, queries,
            seed, real_pairs=None if no_real else real_pairs or REAL_PAIRS,
            real_queries=None if no_real else real_queries or REAL_QUERIES, alpha=distill)
    rows = [{"query_id": "synth-" + hashlib.sha1(p.query.encode()).hexdigest()[:10],
             "query_string": p.query,
             "parent_asin": p.parent_asin, "title": p.title, "description": p.description,
             "relevance_score": p.relevance_score, "label_raw": p.kind,
             "teacher_cosine": p.teacher} for p in pairs]
    pq.write_table(pa.Table.from_pylist(rows), out)
    kinds = ", ".join(f"{k} {n}" for k, n in Counter(p.kind for p in pairs).most_common())
    click.echo(f"{len(pairs)} pairs for {len({p.query for p in pairs})} queries -> {out} "
               f"({kinds})")


@cli.command("train")
@click.option("--data", "data_files", multiple=True, required=True,
              type=click.Path(path_type=Path), help="judgments (ERESS/Amazebay), repeatable")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--base", default="all-MiniLM-L6-v2", show_default=True)
@click.option("--init", type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="fine-tune a model trained here (head kept) instead of a new head on --base")
@click.option("--loss", type=click.Choice(["distributional", "bce", "mse"]),
              default="distributional", show_default=True)
@click.option("--pooling", type=click.Choice(["mean", "cls"]), default="mean", show_default=True)
@click.option("--width", type=click.Choice(["schedule", "data"]), default="schedule",
              show_default=True, help="target widths: boundary schedule, or the judgments' "
                                      "relevance_variance column where present")
@click.option("--layers", type=click.IntRange(1), default=None)
@click.option("--epochs", type=click.IntRange(1), default=1, show_default=True)
@click.option("--max-tokens", type=click.IntRange(16, 512), default=128, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option("--backbone-lr", type=click.FloatRange(0, min_open=True), default=5e-5,
              show_default=True)
@click.option("--head-lr", type=click.FloatRange(0, min_open=True), default=1e-3,
              show_default=True)
@click.option("--mse-weight", type=click.FloatRange(0), default=0.0, show_default=True,
              help="lambda of the expected-value MSE term (distributional loss)")
@click.option("--validation", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
              help="share of queries held out (query-grouped)")
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(data_files: tuple[Path, ...], out: Path, base: str, init: Path | None,
                  loss: str, pooling: str, width: str, layers: int | None, epochs: int,
                  max_tokens: int, batch_size: int, backbone_lr: float, head_lr: float,
                  mse_weight: float, validation: float, seed: int) -> None:
    """Train a cross-encoder with the RexReranker recipe; the best epoch is saved to OUT."""
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.train.recipe import TrainConfig, split_queries, train

    queries = [q for f in data_files for q in read_judgments(f)]
    config = TrainConfig(base=base, init=str(init) if init else None, loss=loss,  # type: ignore
                         pooling=pooling, width=width, layers=layers,  # type: ignore
                         epochs=epochs, max_tokens=max_tokens, batch_size=batch_size,
                         backbone_lr=backbone_lr, head_lr=head_lr, mse_weight=mse_weight,
                         seed=seed)
    train_set, held_out = split_queries(queries, validation, seed)
    click.echo(f"training on {len(train_set)} queries, validating on {len(held_out)}")
    sources = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in data_files}
    with _progress_bar(None, "training", "steps") as step:
        train(train_set, config, held_out or None, out, log=click.echo, sources=sources,
              progress=step)
    click.echo(f"saved to {out} (model_card.json beside the weights)")


@cli.command("eval")
@click.argument("judgments", type=click.Path(path_type=Path))
@click.option("--mode", type=click.Choice(["rerank", "end-to-end"]), default="rerank",
              show_default=True)
@click.option("--ranker", "rankers", multiple=True,
              help="rerank mode: random, bm25, dense, fused, rerank, pipeline (repeatable; "
                   "default: random, bm25, dense, rerank)")
@click.option("--metric", "metrics", multiple=True,
              help="spec such as ndcg@5 (repeatable; default ndcg@5, ndcg@10, ndcg_exp@10, "
                   "ndcg_topk@5, mrr@10, recall@10)")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="relevance that counts as relevant for mrr and recall")
@click.option("--index", "--backend", "index", help=DEFAULT_INDEX_HELP + "; end-to-end mode")
@click.option("--reranker", help="embedding-cosine, or a cross-encoder directory / hub id")
@click.option("--bootstrap", "resamples", type=click.IntRange(100), default=1000,
              show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--per-query", is_flag=True, help="include per-query values in --json")
@click.pass_context
def evaluate(ctx: click.Context, judgments: Path, mode: str, rankers: tuple[str, ...],
             metrics: tuple[str, ...], threshold: float, index: str | None,
             reranker: str | None, resamples: int, seed: int, as_json: bool,
             per_query: bool) -> None:
    """Evaluate rankers on graded JUDGMENTS (ERESS or Amazebay-Relevance columns)."""
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.evaluate.metrics import parse_metric
    from rex_search.evaluate.run import evaluate_end_to_end, evaluate_rerank, format_report
    from rex_search.indexer.embed import Embedder
    from rex_search.rerank.base import load_reranker

    try:
        specs = [parse_metric(m) for m in (metrics or DEFAULT_METRICS)]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--metric") from None
    config = with_overrides(_config(ctx, index), rerank={"model": reranker})
    queries = read_judgments(judgments)
    if mode == "rerank":
        from rex_search.evaluate.rankers import RANKERS, CachedEmbedder, make_rankers

        names = rankers or ("random", "bm25", "dense", "rerank")
        bad = [n for n in names if n not in RANKERS]
        if bad:
            raise click.BadParameter(f"unknown ranker(s) {', '.join(bad)}; valid: "
                                     f"{', '.join(RANKERS)}", param_hint="--ranker")
        embedder = CachedEmbedder(Embedder(config.index.embedding_model))
        needs_reranker = {"rerank", "pipeline"} & set(names)
        model = load_reranker(config.rerank.model, embedder, config.rerank.max_tokens,
                              config.rerank.batch_size, config.rerank.runtime) \
            if needs_reranker else None
        from rex_search.rules.build import build_rules

        brands, catalog = _index_context(config) if "pipeline" in names else (None, None)
        built = make_rankers(names, embedder, model, seed, build_rules(config.rules),
                             config.rerank, brands, catalog)
        with _progress_bar(len(queries) * len(built), "evaluating", "queries") as step:
            report = evaluate_rerank(queries, built, specs, threshold, resamples, seed, step)
    else:
        from rex_search.pipelines.pipeline import SearchPipeline

        _require_index(config)
        pipeline = SearchPipeline.from_config(config)
        with _progress_bar(len(queries), "evaluating", "queries") as step:
            report = evaluate_end_to_end(queries, pipeline, "pipeline", specs, threshold,
                                         resamples, seed, step)
    if as_json:
        click.echo(json.dumps(report.to_dict(per_query), indent=2))
    else:
        click.echo(format_report(report))


@contextmanager
def _progress_bar(total: int | None, what: str, unit: str) -> Iterator[Callable[..., None]]:
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


class _Reporting:
    """An embedder that reports each batch it encodes to a progress ``step``."""

    def __init__(self, embedder: Any, step: Callable[..., None]) -> None:
        self._embedder, self._step = embedder, step

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def encode(self, texts: Any, progress: Any = None) -> Any:
        return self._embedder.encode(texts, progress=lambda n: self._step(count=n))


def _index_context(config: Config):
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


def main() -> None:
    """Console entry point: `RexSearchError` becomes `Error: ...` and exit code 1."""
    try:
        cli.main(standalone_mode=False, prog_name="rex-search")
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RexSearchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


