"""Reranker mechanics on the real MiniLM architecture.

No trained cross-encoder weights exist offline, so the head tests build cross-encoders from the
real all-MiniLM-L6-v2 encoder with seeded, untrained heads. They check the scoring mechanics
(input format, truncation, head maths, batching) against an independent computation, not
ranking quality; such a model is never offered as a reranker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product
from rex_search.errors import ModelError
from rex_search.model_files import resolve_model
from rex_search.rerank.base import load_reranker
from rex_search.rerank.cross_encoder import BIN_CENTRES, CrossEncoderReranker, expected_relevance

PRODUCTS = [
    Product("A1", "Nike Men's Running Shoe", brand="Nike", description="Light mesh upper. " * 80),
    Product("A2", "Leather shoe lace cord", brand="Generic", features=("Round", "Brown")),
    Product("A3", "Cast iron skillet", brand="Lodge", categories=("Kitchen", "Pans")),
]


def make_model(tmp_path_factory: pytest.TempPathFactory, labels: int) -> Path:
    torch.manual_seed(labels)
    source = resolve_model("all-MiniLM-L6-v2")
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=labels)
    out = tmp_path_factory.mktemp(f"ce{labels}")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


@pytest.fixture(scope="module", params=[1, 11], ids=["single-logit", "distributional-11"])
def head(request, tmp_path_factory):
    return request.param, make_model(tmp_path_factory, request.param)


def reference_scores(path: Path, labels: int, query: str, max_tokens: int) -> list[float]:
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    for product in PRODUCTS:  # one pair at a time: no padding, no batching
        encoded = tokenizer(f"Query: {query}", product_text(product), truncation="only_second",
                            max_length=max_tokens, return_tensors="pt")
        with torch.no_grad():
            logits = model(**encoded).logits[0]
        if labels == 1:
            out.append(torch.sigmoid(logits[0]).item())
        else:
            out.append(float((torch.softmax(logits, -1) * torch.tensor(BIN_CENTRES)).sum()))
    return out


def test_both_heads_match_an_independent_computation(head):
    labels, path = head
    reranker = CrossEncoderReranker(str(path), max_tokens=64, batch_size=2)
    assert reranker.head == ("single-logit" if labels == 1 else "distributional-11")
    scores = reranker.score("running shoes", PRODUCTS)
    assert scores == pytest.approx(reference_scores(path, labels, "running shoes", 64), abs=1e-5)
    assert all(0.0 <= s <= 1.0 for s in scores)
    # Order of the inputs does not change any product's score (length-sorted batching).
    reversed_scores = reranker.score("running shoes", PRODUCTS[::-1])
    assert reversed_scores[::-1] == pytest.approx(scores, abs=1e-5)


def test_token_budget_truncates_only_the_product_side(head):
    _, path = head
    reranker = CrossEncoderReranker(str(path), max_tokens=32)
    short = reranker.score_texts("running shoes", [product_text(PRODUCTS[0])])
    longer = CrossEncoderReranker(str(path), max_tokens=256).score_texts(
        "running shoes", [product_text(PRODUCTS[0])])
    assert short != pytest.approx(longer, abs=1e-6)  # the budget changes what the model sees


def test_expected_relevance_hand_worked():
    one_hot = np.full((1, 11), -1e9)
    one_hot[0, 8] = 0.0
    assert expected_relevance(one_hot)[0] == pytest.approx(0.8)
    assert expected_relevance(np.zeros((1, 11)))[0] == pytest.approx(0.5)


def test_prompt_format():
    text = product_text(PRODUCTS[2])
    assert text.startswith("Title: Cast iron skillet\nDescription: Brand: Lodge. ")
    assert "Category: Kitchen > Pans." in text


def test_wrong_head_size_and_missing_model_are_clear(tmp_path_factory, tmp_path):
    path = make_model(tmp_path_factory, 3)
    with pytest.raises(ModelError, match="has 3 output labels; a reranker needs 1"):
        CrossEncoderReranker(str(path))
    with pytest.raises(ModelError, match="cannot load model"):
        CrossEncoderReranker(str(tmp_path / "no-such-model"))


def test_cosine_reranker_is_named_for_what_it_is(embedder):
    reranker = load_reranker("embedding-cosine", embedder)
    assert reranker.kind == "embedding-cosine"
    assert reranker.name == "embedding-cosine(bge-small-en-v1.5)"
    scores = reranker.score("running shoes", PRODUCTS)
    assert scores[0] > scores[2]  # a running shoe beats a skillet
    assert all(0.0 <= s <= 1.0 for s in scores)  # (1 + cosine) / 2, like every reranker
    # Given a vector source when built, it reuses what the index stores (embeds nothing).
    stored = embedder.encode(["completely unrelated text"])
    reusing = load_reranker("embedding-cosine", embedder,
                            stored_vectors=lambda ids: {PRODUCTS[0].parent_asin: stored[0]})
    cosine = float(stored[0] @ embedder.encode_queries(["running shoes"])[0])
    assert reusing.score("running shoes", PRODUCTS[:1]) == [pytest.approx((1 + cosine) / 2)]
