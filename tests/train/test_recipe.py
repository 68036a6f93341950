from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from rex_search.catalog.reader import read_catalog
from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments
from rex_search.train.recipe import TrainConfig, split_queries, train
from rex_search.train.synth import synthesize
from tests.conftest import RULES_FIXTURE


def test_synthetic_grades_follow_the_documented_scheme():
    products = [p for b in read_catalog(RULES_FIXTURE) for p in b.products]
    pairs = synthesize(products, queries=20, seed=3)
    assert pairs == synthesize(products, queries=20, seed=3)  # deterministic
    by_id = {p.parent_asin: p for p in products}
    same_type: dict[str, set[str]] = {}
    for pair in pairs:
        assert pair.relevance_score in (0.0, 0.1, 0.2, 0.5, 1.0)
        product = by_id[pair.parent_asin]
        if pair.kind == "lexical-hard-negative":
            assert pair.relevance_score == 0.1
        if pair.kind in ("exact", "attribute-mismatch"):  # graded 1.0 / 0.5: the seed's type
            same_type.setdefault(pair.query, set()).add(product.categories[-1])
    assert all(len(leaves) == 1 for leaves in same_type.values())
    laces = [p for p in pairs if p.parent_asin == "FX0058" and "running" in p.query]
    assert all(p.relevance_score <= 0.2 for p in laces)


def test_query_grouped_split_never_shares_a_query():
    queries = [QueryJudgments(f"q{i}", f"query {i}", (JudgedDoc("A", "t", "", 1.0),))
               for i in range(20)]
    train_set, held = split_queries(queries, 0.25, seed=1)
    assert len(held) == 5 and not {q.query_id for q in train_set} & {q.query_id for q in held}


def test_training_runs_validates_and_writes_a_model_card(tmp_path: Path):
    docs = (JudgedDoc("A", "Nike running shoe", "mesh", 1.0),
            JudgedDoc("B", "leather shoe laces", "cord", 0.1),
            JudgedDoc("C", "cast iron skillet", "pan", 0.0))
    queries = [QueryJudgments(f"q{i}", "running shoes", docs) for i in range(4)]
    config = TrainConfig(layers=1, epochs=2, batch_size=4, max_tokens=32, head_lr=5e-3)
    model, _, history = train(queries, config, validation=queries[:1], out=tmp_path / "m",
                              log=lambda _: None)
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert {"ndcg@5", "ndcg@10", "ece"} <= set(history[0])
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["recipe"]["loss"] == "distributional" and card["training_data"]["pairs"] == 12
    assert model.config.num_hidden_layers == 1 and model.config.num_labels == 11


def test_annotator_variance_is_read_and_sets_the_target_width(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from rex_search.errors import CatalogError
    from rex_search.evaluate.judgments import read_judgments

    rows = [{"query_string": "running shoes", "parent_asin": a, "title": t,
             "relevance_score": y, "relevance_variance": v}
            for a, t, y, v in (("A", "Nike running shoe", 1.0, 0.0),
                               ("B", "leather shoe laces", 0.3, 0.02),
                               ("C", "cast iron skillet", 0.0, None))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "j.parquet")
    queries = read_judgments(tmp_path / "j.parquet")
    assert [d.variance for d in queries[0].docs] == [0.0, 0.02, None]
    config = TrainConfig(layers=1, epochs=1, batch_size=3, max_tokens=32, width="data")
    steps: list[str] = []
    _, _, history = train(queries * 2, config, log=lambda _: None, progress=steps.append)
    assert history[0]["train_loss"] > 0
    assert steps == ["epoch 1/1"] * 2  # six pairs, batches of three: progress per step
    rows[1]["relevance_variance"] = -1.0
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(CatalogError, match="row 2: relevance_variance: expected a number >= 0"):
        read_judgments(tmp_path / "bad.parquet")


def test_mean_pooling_ignores_padding():
    import torch
    from transformers import AutoTokenizer

    from rex_search.model_files import resolve_model
    from rex_search.rerank.pooled import PooledCrossEncoder

    path = resolve_model("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    for pooling in ("mean", "cls"):
        model = PooledCrossEncoder.from_base(path, 11, pooling, layers=2).eval()
        pair = ("Query: sofa", "Title: grey three seat sofa")
        alone = model(**tokenizer(*pair, return_tensors="pt"))
        batch = tokenizer(["Query: sofa", "Query: running shoes for trail and road"],
                          ["Title: grey three seat sofa", "Title: a much longer title here"],
                          padding=True, return_tensors="pt")
        assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]
        with torch.inference_mode():
            assert torch.allclose(model(**batch)[0], alone[0], atol=1e-5)


def test_a_model_trained_from_init_names_the_model_its_weights_come_from(tmp_path: Path):
    """With --init the weights and pooling are the init model's, not --base's: the card says
    so (it once named the default base, all-MiniLM-L6-v2, and its mean pooling)."""
    docs = (JudgedDoc("A", "Nike running shoe", "mesh", 1.0),
            JudgedDoc("B", "leather shoe laces", "cord", 0.1))
    queries = [QueryJudgments(f"q{i}", "running shoes", docs) for i in range(2)]
    small = TrainConfig(layers=3, epochs=1, batch_size=4, max_tokens=32)
    teacher_dir, student_dir = tmp_path / "teacher", tmp_path / "student"
    train(queries, replace(small, pooling="cls"), out=teacher_dir, log=lambda _: None)
    teacher_card = json.loads((teacher_dir / "model_card.json").read_text())
    train(queries, replace(small, init=str(teacher_dir), layers=(0, 2)), out=student_dir,
          log=lambda _: None)
    card = json.loads((student_dir / "model_card.json").read_text())
    assert card["base_model"] == str(teacher_dir)
    assert card["recipe"]["pooling"] == "cls" and card["recipe"]["layers"] == [0, 2]
    assert card["initialised_from"] == teacher_card
    assert card["licence"] == teacher_card["licence"]


def test_a_student_is_cut_from_a_trained_model_and_learns_the_teachers_scores(tmp_path: Path):
    """`--init MODEL --layers ...`: the student keeps the listed layers of a model trained here
    (head included); `relabel` sets its targets to the teacher reranker's scores."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rex_search.rerank.base import load_reranker
    from rex_search.rerank.pooled import PooledCrossEncoder
    from rex_search.train.student import relabel

    docs = (JudgedDoc("A", "Nike running shoe", "mesh", 1.0),
            JudgedDoc("B", "leather shoe laces", "cord", 0.1))
    queries = [QueryJudgments(f"q{i}", "running shoes", docs) for i in range(2)]
    teacher_dir = tmp_path / "teacher"
    train(queries, TrainConfig(layers=3, epochs=1, batch_size=4, max_tokens=32), out=teacher_dir,
          log=lambda _: None)
    student = PooledCrossEncoder.from_pretrained(teacher_dir, layers=(0, 2))
    assert student.config.num_hidden_layers == 2
    teacher = PooledCrossEncoder.from_pretrained(teacher_dir)
    for kept, source in zip(student.encoder.encoder.layer, (0, 2), strict=True):
        original = teacher.encoder.encoder.layer[source]
        assert all((a == b).all() for a, b in zip(kept.parameters(), original.parameters(),
                                                  strict=True))
    data = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"query_string": ["running shoes", "running shoes", "tent"],
                             "parent_asin": ["A", "B", "A"],
                             "title": ["Nike running shoe", "leather shoe laces",
                                       "Nike running shoe"],
                             "description": ["mesh", "cord", "mesh"],
                             "relevance_score": [1.0, 0.1, 0.0]}), data)
    scorer = load_reranker("rex-reranker-bge-small")
    for weight in (0.0, 1.0):
        relabel(data, scorer, tmp_path / "out.parquet", weight)
        out = pq.read_table(tmp_path / "out.parquet").to_pydict()
        if weight == 0.0:
            assert out["relevance_score"] == [1.0, 0.1, 0.0]
        else:
            assert out["relevance_score"] == out["teacher_rerank"]
    assert out["teacher_rerank"][0] > out["teacher_rerank"][1] > 0  # a real model's judgment
