"""`rex-search eval`: rankers or the whole pipeline on graded judgments."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rex_search.cli.common import (
    DEFAULT_INDEX_HELP,
    DEFAULT_METRICS,
    config_for,
    index_context,
    progress_bar,
    require_index,
)
from rex_search.cli.root import cli
from rex_search.config import with_overrides


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
    config = with_overrides(config_for(ctx, index), rerank={"model": reranker})
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

        brands, catalog = index_context(config) if "pipeline" in names else (None, None)
        built = make_rankers(names, embedder, model, seed, build_rules(config.rules),
                             config.rerank, brands, catalog)
        with progress_bar(len(queries) * len(built), "evaluating", "queries") as step:
            report = evaluate_rerank(queries, built, specs, threshold, resamples, seed, step)
    else:
        from rex_search.pipelines.pipeline import SearchPipeline

        require_index(config)
        pipeline = SearchPipeline.from_config(config)
        with progress_bar(len(queries), "evaluating", "queries") as step:
            report = evaluate_end_to_end(queries, pipeline, "pipeline", specs, threshold,
                                         resamples, seed, step)
    if as_json:
        click.echo(json.dumps(report.to_dict(per_query), indent=2))
    else:
        click.echo(format_report(report))
