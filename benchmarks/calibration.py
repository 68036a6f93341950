"""Calibration of the reranker's score on DEV and its robustness variants, cross-fitted.

    python benchmarks/calibration.py                  # the table
    python benchmarks/calibration.py --write          # + store the all-DEV fit beside the model
    python benchmarks/calibration.py --model DIR --folds 5 --json out.json

The shipped model never saw DEV (it was trained on synthetic judgments of the catalog), so DEV
can fit the calibration. Cross-fitting keeps the reported ECE honest: DEV's queries are split
into ``--folds`` query-grouped folds; each fold's pairs are calibrated by a fit on the *other*
folds' as-is pairs, in every variant (titles only and HTML descriptions are never fitted on).
ECE: 10 equal-width bins against the graded relevance. "in-sample" fits each variant on its
own pairs and scores the same pairs: the floor a two-parameter map can reach on that text form
(what is left is the queries' own differences, which no per-pair map can know). "kept"
columns: at each ``min_score``, the share of pairs at or above it, and the share of those that
are Exact (grade 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.config import RerankConfig  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import calibration  # noqa: E402
from rex_search.evaluate.robustness import VARIANTS, variant  # noqa: E402
from rex_search.model_files import BUNDLED_RERANKERS_SHA256, resolve_model  # noqa: E402
from rex_search.onnx_session import machine  # noqa: E402
from rex_search.rerank.base import load_reranker  # noqa: E402
from rex_search.rerank.calibration import FILE, fit  # noqa: E402
from rex_search.train.bundle import add_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"
THRESHOLDS = (0.3, 0.5)


def scored_pairs(reranker, queries) -> list[tuple[int, float, float]]:
    """(query index, model score, relevance) for every judged pair."""
    out = []
    for i, q in enumerate(queries):
        scores = reranker.score(q.query, [d.as_product() for d in q.docs])
        out += [(i, s, d.relevance) for s, d in zip(scores, q.docs, strict=True)]
    return out


def cross_fitted(pairs_by_variant: dict[str, list], folds: int) -> dict[str, list[float]]:
    """Each pair's calibrated score from a fit on the other folds' as-is pairs."""
    fits = []
    for fold in range(folds):
        train = [(s, r) for q, s, r in pairs_by_variant["as-is"] if q % folds != fold]
        fits.append(fit([s for s, _ in train], [r for _, r in train]))
    return {name: [fits[q % folds](s) for q, s, _ in pairs]
            for name, pairs in pairs_by_variant.items()}


def kept(scores: list[float], relevance: list[float], threshold: float) -> tuple[float, float]:
    above = [r for s, r in zip(scores, relevance, strict=True) if s >= threshold]
    share = len(above) / len(scores)
    exact = sum(1 for r in above if r >= 1.0) / len(above) if above else float("nan")
    return share, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=RerankConfig().model)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=0, help="first N DEV queries (0: all)")
    parser.add_argument("--write", action="store_true",
                        help="store the fit on all DEV as calibration.json beside the model")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--smoke", action="store_true", help="3 queries, 2 folds: seconds")
    args = parser.parse_args()
    if args.smoke:
        args.queries, args.folds, args.write = 3, 2, False
    queries = read_judgments(DEV)
    if args.queries:
        queries = queries[: args.queries]
    reranker = load_reranker(args.model, max_tokens=RerankConfig().max_tokens)
    pairs = {name: scored_pairs(reranker, variant(queries, name)) for name in VARIANTS}
    calibrated = cross_fitted(pairs, args.folds)
    where = machine()
    print(f"reranker {args.model}; {len(queries)} DEV queries, {len(pairs['as-is'])} pairs per "
          f"variant; {args.folds} query-grouped folds; CPU {where['cpu']} ({where['cpu_flags']})")
    header = (f"{'variant':<11} {'ECE raw':>8} {'ECE calibrated':>15} {'in-sample':>10}"
              + "".join(f"  kept@{t} / exact" for t in THRESHOLDS))
    print(header)
    print("-" * len(header))
    rows = []
    for name, variant_pairs in pairs.items():
        relevance = [r for _, _, r in variant_pairs]
        raw = calibration([s for _, s, _ in variant_pairs], relevance)[0]
        fitted = calibration(calibrated[name], relevance)[0]
        own = fit([s for _, s, _ in variant_pairs], relevance)
        floor = calibration(own.apply([s for _, s, _ in variant_pairs]), relevance)[0]
        cells = {t: kept(calibrated[name], relevance, t) for t in THRESHOLDS}
        rows.append({"variant": name, "ece_raw": raw, "ece_calibrated": fitted,
                     "ece_in_sample": floor,
                     "kept": {str(t): {"share": s, "exact": e} for t, (s, e) in cells.items()}})
        print(f"{name:<11} {raw:>8.3f} {fitted:>15.3f} {floor:>10.3f}"
              + "".join(f"  {s:>6.0%} / {e:>5.0%}   " for s, e in cells.values()))
    everything = fit([s for _, s, _ in pairs["as-is"]], [r for _, _, r in pairs["as-is"]],
                     fitted_on=f"ESCI sample DEV ({len(queries)} queries, "
                     f"{len(pairs['as-is'])} pairs, as-is text)")
    print(f"fit on all DEV: a={everything.a:.4f} b={everything.b:.4f}")
    if args.write:
        folder = Path(resolve_model(args.model))
        print(f"wrote {everything.save(folder)}")
        if (folder / "model_card.json").exists():  # listed in the card; pinned if shipped
            add_file(folder, FILE, pin=args.model in BUNDLED_RERANKERS_SHA256)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "fit": vars(everything)}, indent=1))


if __name__ == "__main__":
    main()

