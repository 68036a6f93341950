"""Train a cross-encoder with the RexReranker recipe (``rex-search train``).

AdamW with separate learning rates for backbone and head, no weight decay on biases and
LayerNorm weights, cosine schedule with 5% warm-up, the backbone frozen for the first
``freeze_fraction`` of the first epoch, seeded. Validation on a query-grouped split (no query
on both sides) with the evaluation harness every epoch; the best checkpoint (nDCG@10) is kept,
with a model card. The model is a :class:`PooledCrossEncoder` (mean pooling by default, or the
[CLS] token). ``width="data"`` takes each target's width from the judgments'
``relevance_variance`` column where a pair has one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rex_search.catalog.prompt import query_text
from rex_search.catalog.schema import Product
from rex_search.evaluate.judgments import QueryJudgments
from rex_search.evaluate.metrics import parse_metric
from rex_search.model_files import resolve_model

LossName = Literal["distributional", "bce", "mse"]
Width = Literal["schedule", "data"]


@dataclass(frozen=True)
class TrainConfig:
    base: str = "all-MiniLM-L6-v2"
    loss: LossName = "distributional"
    pooling: Literal["mean", "cls"] = "mean"
    width: Width = "schedule"  # target widths: boundary schedule, or the data's variances
    init: str | None = None  # continue from a model trained here (its head kept) instead of base
    # keep the first N encoder layers, or these layers (a smaller, faster student)
    layers: int | tuple[int, ...] | None = None
    epochs: int = 1
    batch_size: int = 16
    max_tokens: int = 128
    backbone_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    freeze_fraction: float = 0.1
    mse_weight: float = 0.0
    seed: int = 0
    # a split cross-encoder: the first N layers run on query and product apart (the product's
    # computed once per product), each segment cut to its own budget (rerank/split_inputs.py)
    split_layers: int | None = None
    query_tokens: int = 20
    product_tokens: int = 54


def split_queries(queries: list[QueryJudgments], validation: float,
                  seed: int) -> tuple[list[QueryJudgments], list[QueryJudgments]]:
    """Query-grouped split: every judgment of a query lands on the same side."""
    order = sorted(queries, key=lambda q: hashlib.sha256(f"{seed}:{q.query_id}".encode())
                   .hexdigest())
    cut = max(1, round(len(order) * validation)) if validation > 0 else 0
    return order[cut:], order[:cut]


def build_model(config: TrainConfig):
    """A new head on the base encoder, or (``init``) a model trained here, to fine-tune on."""
    from transformers import AutoTokenizer

    from rex_search.rerank.pooled import PooledCrossEncoder

    labels = 11 if config.loss == "distributional" else 1
    if config.init:
        model = PooledCrossEncoder.from_pretrained(config.init, config.layers)
        if model.config.num_labels != labels:
            raise ValueError(f"{config.init} has {model.config.num_labels} outputs; loss "
                             f"{config.loss!r} needs {labels}")
        tokenizer = AutoTokenizer.from_pretrained(config.init)
    else:
        path = resolve_model(config.base)
        model = PooledCrossEncoder.from_base(path, labels, config.pooling, config.layers)
        tokenizer = AutoTokenizer.from_pretrained(path)
    if config.split_layers:
        model.make_split(config.split_layers, config.query_tokens, config.product_tokens)
    return model, tokenizer


@functools.cache
def _plain(tokenizer):
    """The training tokenizer's plain copy, made once (`split_inputs.plain_tokenizer`)."""
    from rex_search.rerank.split_inputs import plain_tokenizer

    return plain_tokenizer(tokenizer)


def encode_pairs(model, tokenizer, queries: list[str], texts: list[str], max_tokens: int):
    """Padded model inputs for (query, product text) pairs: the pair format of an ordinary
    cross-encoder, or a split model's two segments (`rex_search.rerank.split_inputs`)."""
    import torch

    from rex_search.rerank.split_inputs import SplitShape, split_pairs

    shape = SplitShape.of(model.config)
    if shape is None:
        return tokenizer([query_text(q) for q in queries], texts, truncation="only_second",
                         max_length=max_tokens, padding=True, return_tensors="pt")
    batch = split_pairs(_plain(tokenizer), queries, texts, shape)
    return {name: torch.from_numpy(values) for name, values in batch.items()}


def file_hashes(files: Sequence[Path]) -> dict[str, str]:
    """File name -> sha256 of its bytes: the model card's record of what it was trained on."""
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def train(train_set: list[QueryJudgments], config: TrainConfig,
          validation: list[QueryJudgments] | None = None, out: Path | None = None,
          log=print, sources: dict[str, str] | None = None,
          progress=None) -> tuple[object, object, list[dict]]:
    """Train; returns (best model, tokenizer, per-epoch validation history). ``sources``
    (file name -> sha256) goes into the model card; ``progress(label)`` after each step."""
    import torch

    from rex_search.catalog.prompt import product_text

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    model, tokenizer = build_model(config)
    pairs = [(q.query, product_text(d.as_product()), d.relevance,
              math.nan if d.variance is None else d.variance) for q in train_set for d in q.docs]
    optimizer = _optimizer(model, config)
    schedule = _Schedule(optimizer, config, math.ceil(len(pairs) / config.batch_size))
    history: list[dict] = []
    best_state, best_score = None, -1.0
    for epoch in range(config.epochs):
        entry = _train_epoch(model, tokenizer, optimizer, schedule, pairs, config, epoch, log,
                             progress)
        if validation:
            entry.update(validate(model, tokenizer, config, validation))
        history.append(entry)
        log(json.dumps(entry))
        score = entry.get("ndcg@10", -entry["train_loss"])
        if score > best_score:
            best_score = score
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    if out is not None:
        save(model, tokenizer, config, history, train_set, out, sources or {})
    return model, tokenizer, history


def _optimizer(model, config: TrainConfig):
    """AdamW with the head's and the backbone's learning rates; no decay on biases and norms."""
    import torch

    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        is_head = name.startswith("head.")
        no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((is_head, no_decay), []).append(param)
    return torch.optim.AdamW([
        {"params": params, "lr": config.head_lr if is_head else config.backbone_lr,
         "weight_decay": 0.0 if no_decay else config.weight_decay}
        for (is_head, no_decay), params in groups.items()])


class _Schedule:
    """Linear warmup then cosine decay of every group's rate; the backbone frozen for the
    first ``freeze_fraction`` of an epoch's steps."""

    def __init__(self, optimizer, config: TrainConfig, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.total = steps_per_epoch * config.epochs
        self.warmup = max(1, int(self.total * config.warmup))
        self.frozen_steps = int(steps_per_epoch * config.freeze_fraction)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.step = 0

    @property
    def backbone_frozen(self) -> bool:
        return self.step < self.frozen_steps

    def set_rates(self, optimizer) -> None:
        step, warmup = self.step, self.warmup
        scale = (step + 1) / warmup if step < warmup else 0.5 * (1 + math.cos(
            math.pi * (step - warmup) / max(1, self.total - warmup)))
        for group, base_lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base_lr * scale


def _loss(logits, y, variance, config: TrainConfig):
    from rex_search.train.loss import DistributionalConfig, bce_loss, distributional_loss, mse_loss

    if config.loss == "distributional":
        return distributional_loss(logits, y, DistributionalConfig(mse_weight=config.mse_weight),
                                   variance)
    return bce_loss(logits, y) if config.loss == "bce" else mse_loss(logits, y)


def _train_epoch(model, tokenizer, optimizer, schedule: _Schedule, pairs: list[tuple],
                 config: TrainConfig, epoch: int, log, progress) -> dict:
    """One shuffled pass over ``pairs``; returns the epoch's log entry."""
    import torch

    model.train()
    rng = random.Random(config.seed + epoch)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    started, running = time.perf_counter(), 0.0
    for start in range(0, len(order), config.batch_size):
        batch = [pairs[i] for i in order[start:start + config.batch_size]]
        encoded = encode_pairs(model, tokenizer, [p[0] for p in batch], [p[1] for p in batch],
                               config.max_tokens)
        y = torch.tensor([p[2] for p in batch], dtype=torch.float32)
        variance = (torch.tensor([p[3] for p in batch], dtype=torch.float32)
                    if config.width == "data" else None)
        freeze = schedule.backbone_frozen
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("head.") or not freeze
        loss = _loss(model(**encoded), y, variance, config)
        optimizer.zero_grad()
        loss.backward()
        schedule.set_rates(optimizer)
        optimizer.step()
        running += loss.item()
        schedule.step += 1
        if progress is not None:
            progress(f"epoch {epoch + 1}/{config.epochs}")
        if schedule.step % 200 == 0:
            done = start // config.batch_size + 1
            log(json.dumps({"step": schedule.step, "of": schedule.total,
                            "train_loss": round(running / done, 5),
                            "seconds": round(time.perf_counter() - started, 1)}))
    return {"epoch": epoch + 1, "train_loss": running / schedule.steps_per_epoch,
            "seconds": round(time.perf_counter() - started, 1)}


class InMemoryScorer:
    """Scores with a model being trained (for validation with the evaluation harness)."""

    kind = "cross-encoder"

    def __init__(self, model, tokenizer, config: TrainConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.name = f"training:{config.loss}"

    def score(self, query: str, products: Sequence[Product]) -> list[float]:
        import torch

        from rex_search.catalog.prompt import product_text
        from rex_search.rerank.cross_encoder import scores_from_logits

        self.model.eval()
        out: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(products), 64):
                chunk = products[start:start + 64]
                enc = encode_pairs(self.model, self.tokenizer, [query] * len(chunk),
                                   [product_text(p) for p in chunk], self.config.max_tokens)
                out += scores_from_logits(self.model(**enc).float().numpy()).tolist()
        return out


def validate(model, tokenizer, config: TrainConfig,
             queries: list[QueryJudgments]) -> dict[str, float]:
    from rex_search.evaluate.rankers import RerankRanker
    from rex_search.evaluate.run import evaluate_rerank

    report = evaluate_rerank(queries, [RerankRanker(InMemoryScorer(model, tokenizer, config))],
                             [parse_metric("ndcg@5"), parse_metric("ndcg@10")], resamples=200)
    ranker = report.rankers[0]
    return {"ndcg@5": ranker.summary["ndcg@5"].mean, "ndcg@10": ranker.summary["ndcg@10"].mean,
            "ece": ranker.ece if ranker.ece is not None else float("nan")}


def save(model, tokenizer, config: TrainConfig, history: list[dict],
         train_set: list[QueryJudgments], out: Path, sources: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, max_tokens=config.max_tokens)
    tokenizer.save_pretrained(out)
    data_hash = hashlib.sha256(json.dumps(
        [(q.query, [(d.parent_asin, d.relevance) for d in q.docs]) for q in train_set]
    ).encode()).hexdigest()
    init_card = Path(config.init) / "model_card.json" if config.init else None
    origin = json.loads(init_card.read_text()) if init_card and init_card.is_file() else None
    # With --init the weights (and pooling) come from that model, not from --base: the card
    # names the model they come from and carries its licence line.
    recipe = asdict(config) | {"pooling": getattr(model.config, "rex_pooling", config.pooling)}
    card = {"base_model": config.init or config.base, "recipe": recipe,
            "initialised_from": origin,
            "training_data": {"queries": len(train_set),
                              "pairs": sum(len(q.docs) for q in train_set),
                              "sha256": data_hash, "files_sha256": sources},
            "validation_history": history,
            "licence": (origin or {}).get("licence") or _licence(config.base),
            "score": "expected relevance over 11 bins" if config.loss == "distributional"
            else "sigmoid(logit)"}
    (out / "model_card.json").write_text(json.dumps(card, indent=2))


def _licence(base: str) -> str:
    """The trained model's licence line, from the base model's card where it has one (the
    converted Maven Central encoders do)."""
    card = Path(resolve_model(base)) / "model_card.json"
    if card.is_file():
        data = json.loads(card.read_text())
        if data.get("license"):
            return f"base model {data.get('upstream') or base}: {data['license']}"
    return "Apache-2.0 (base model all-MiniLM-L6-v2: Apache-2.0)"
