"""Training commands: train-data synth, train, export-onnx."""

from __future__ import annotations

from pathlib import Path

import click

from rex_search.cli.common import (
    Reporting,
    progress_bar,
)
from rex_search.cli.root import cli
from rex_search.errors import RexSearchError


@cli.group("train-data")
def train_data() -> None:
    """Training data generation."""


@train_data.command("relabel")
@click.argument("data", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--teacher", required=True, help="the full reranker (a model directory or name)")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--weight", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="move each target this far toward the teacher's score")
def train_data_relabel(data: Path, teacher: str, out: Path, weight: float) -> None:
    """Targets for a student: DATA's pairs scored by the TEACHER reranker
    (rex_search/train/student.py)."""
    from rex_search.rerank.base import load_reranker
    from rex_search.train.student import relabel

    model = load_reranker(teacher)
    with progress_bar(None, "teacher scores", "pairs") as step:
        count = relabel(data, model, out, weight, progress=step)
    click.echo(f"{count} pairs relabelled by {model.name} -> {out}")


@train_data.command("mine")
@click.option("--index", "target", required=True,
              help="an index of the catalog the queries search (directory or cluster URL)")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="parquet file in ERESS columns, every target 0 until relabelled")
@click.option("--queries", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="real query strings, one a line [default: the bundled "
                   "data/esci-extra/queries.txt]")
@click.option("--k", type=click.IntRange(1, 1000), default=40, show_default=True,
              help="candidates per query, in retrieval order")
@click.option("--seed", type=int, default=0, show_default=True)
def train_data_mine(target: str, out: Path, queries: Path | None, k: int, seed: int) -> None:
    """Real queries with their first-stage top K from an index, for `train-data relabel`
    (rex_search/train/mine.py)."""
    from rex_search.backends.open import open_backend
    from rex_search.indexer.embed import Embedder
    from rex_search.pipelines.pipeline import SearchPipeline
    from rex_search.rerank.base import load_reranker
    from rex_search.train.data import REAL_QUERIES, query_strings, write_pairs
    from rex_search.train.mine import mined_pairs

    backend = open_backend(target)
    embedder = Embedder(backend.model_id)
    # the first stage alone runs (rerank=False); the cosine stands in as the unused reranker
    pipeline = SearchPipeline(backend, embedder, load_reranker("embedding-cosine", embedder),
                              cache_size=0)
    strings = query_strings(queries or REAL_QUERIES)
    with progress_bar(len(strings), "retrieval", "queries") as step:
        pairs = mined_pairs(pipeline, strings, k, seed, progress=step)
    if not pairs:
        raise RexSearchError(f"no candidates: the index at {target} returned nothing for the "
                             f"{len(strings)} queries")
    write_pairs(pairs, out)
    click.echo(f"{len(pairs)} pairs of {len({p.query for p in pairs})} queries -> {out}")


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
@click.option("--embedding-model", default="bge-small-en-v1.5", show_default=True,
              help="the teacher")
def train_data_synth(catalog: Path, out: Path, queries: int, seed: int, real_pairs: Path | None,
                     real_queries: Path | None, no_real: bool, distill: float,
                     embedding_model: str) -> None:
    """Graded training pairs from CATALOG (grades: rex_search/train/synth.py; teacher:
    rex_search/train/distill.py; the whole recipe: rex_search/train/data.py)."""
    from collections import Counter

    from rex_search.catalog.reader import read_catalog
    from rex_search.train.data import REAL_PAIRS, REAL_QUERIES, training_pairs, write_pairs

    products = [p for batch in read_catalog(catalog) for p in batch.products]
    needs_teacher = distill > 0 or not no_real
    embedder = None
    if needs_teacher:
        from rex_search.indexer.embed import Embedder

        embedder = Embedder(embedding_model)
    with progress_bar(None, "teacher embeddings", "texts") as step:
        pairs = training_pairs(
            products, Reporting(embedder, step) if embedder is not None else None, queries,
            seed, real_pairs=None if no_real else real_pairs or REAL_PAIRS,
            real_queries=None if no_real else real_queries or REAL_QUERIES, alpha=distill)
    write_pairs(pairs, out)
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
@click.option("--layers", default=None, callback=lambda _c, _p, v: parse_layers(v),
              help="keep the first N encoder layers (6), or the listed ones (0,2,4,6,8,10)")
@click.option("--split-layers", type=click.IntRange(1), default=None,
              help="a split cross-encoder: the first N layers run on query and product apart, "
                   "so a product's are computed once, not once per query")
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
                  loss: str, pooling: str, width: str, layers: int | tuple[int, ...] | None,
                  split_layers: int | None, epochs: int,
                  max_tokens: int, batch_size: int, backbone_lr: float, head_lr: float,
                  mse_weight: float, validation: float, seed: int) -> None:
    """Train a cross-encoder with the RexReranker recipe; the best epoch is saved to OUT."""
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.train.recipe import TrainConfig, file_hashes, split_queries, train

    queries = [q for f in data_files for q in read_judgments(f, training=True)]
    config = TrainConfig(base=base, init=str(init) if init else None, loss=loss,  # type: ignore
                         pooling=pooling, width=width, layers=layers,  # type: ignore
                         epochs=epochs, max_tokens=max_tokens, batch_size=batch_size,
                         backbone_lr=backbone_lr, head_lr=head_lr, mse_weight=mse_weight,
                         seed=seed, split_layers=split_layers)
    train_set, held_out = split_queries(queries, validation, seed)
    click.echo(f"training on {len(train_set)} queries, validating on {len(held_out)}")
    with progress_bar(None, "training", "steps") as step:
        train(train_set, config, held_out or None, out, log=click.echo,
              sources=file_hashes(data_files), progress=step)
    click.echo(f"saved to {out} (model_card.json beside the weights)")


def parse_layers(value: str | None) -> int | tuple[int, ...] | None:
    """``--layers``: a count ("6") or a list of layer numbers ("0,2,4")."""
    if not value:
        return None
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected a count (6) or layer numbers (0,2,4), got {value!r}"
                                 ) from None
    if any(p < 0 for p in parts) or (len(parts) == 1 and parts[0] < 1):
        raise click.BadParameter(f"layer numbers start at 0 and a count at 1, got {value!r}")
    return parts[0] if len(parts) == 1 and "," not in value else tuple(parts)


@cli.command("export-onnx")
@click.argument("model")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--quantize", is_flag=True, help="also write a dynamic int8 model.int8.onnx")
@click.option("--check", "check_file", type=click.Path(path_type=Path),
              default=None, help="judgments for the agreement check (default: a checkout's "
                   "data/esci-sample/dev/eress.parquet)")
@click.option("--min-spearman", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="refuse a variant whose scores agree less with PyTorch fp32")
@click.option("--pairs", type=click.IntRange(10), default=400, show_default=True)
@click.option("--fp32-node", "fp32_nodes", multiple=True,
              help="keep graph nodes whose name contains this in fp32 when quantizing "
                   "(repeatable), e.g. layer.0/output/dense/")
def export_onnx_command(model: str, out: Path, quantize: bool, check_file: Path | None,
                        min_spearman: float, pairs: int, fp32_nodes: tuple[str, ...]) -> None:
    """Export cross-encoder MODEL to ONNX in OUT and check its agreement with PyTorch."""
    from rex_search.rerank.export import check_agreement, export_onnx
    from rex_search.train.data import DEV_JUDGMENTS, agreement_pairs, checkout_file

    check = agreement_pairs(checkout_file(check_file, DEV_JUDGMENTS, "--check"), pairs)
    export_onnx(model, out, quantize, fp32_nodes=fp32_nodes)
    results = check_agreement(model, out, check, min_spearman)
    for a in results:
        verdict = "kept" if a.accepted else f"REFUSED (below {min_spearman}), file removed"
        size = (f"{sum((out / f).stat().st_size for f in a.file.split('+')) / 1e6:.1f} MB"
                if a.accepted else "-")
        click.echo(f"{a.variant:5} {a.file:16} {size:>8}  Spearman {a.spearman:.4f}  max |diff| "
                   f"{a.max_abs_diff:.2e} on {a.pairs} pairs: {verdict}")
    if not any(a.accepted for a in results):
        raise RexSearchError("no exported variant agrees with PyTorch; nothing usable in "
                             f"{out}")
