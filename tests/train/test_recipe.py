from __future__ import annotations

import json
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
