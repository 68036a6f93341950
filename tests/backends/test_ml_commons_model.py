"""The shipped reranker packaged as an ml-commons local model (ONNX, TEXT_SIMILARITY)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from opensearchpy import OpenSearch
from tokenizers import Tokenizer

from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product
from rex_search.integrations.ml_commons_model import build_zip, register, trained_max_tokens
from rex_search.model_files import BUNDLED_RERANKER, resolve_model
from rex_search.rerank.base import load_reranker

MODEL_DIR = Path(resolve_model(BUNDLED_RERANKER))
QUERY = "running shoes no nike"
DOCS = [product_text(Product(parent_asin="a", title="Skechers mens Energy Afterburn road "
                             "running shoe", brand="Skechers", description="Cushioned. " * 40)),
        product_text(Product(parent_asin="b", title="Nike Air Zoom Pegasus", brand="Nike")),
        product_text(Product(parent_asin="c", title="Insulated lunch backpack"))]


@pytest.fixture(scope="module")
def model_zip(tmp_path_factory) -> Path:
    return build_zip(MODEL_DIR, tmp_path_factory.mktemp("ml") / "rex.zip",
                     trained_max_tokens(MODEL_DIR))


def test_the_zip_scores_exactly_as_the_python_runtime(model_zip):
    """What ml-commons does with the zip -- its tokenizer.json on the raw (query, document)
    pair, the graph's single output as the score -- gives the Python reranker's scores."""
    with zipfile.ZipFile(model_zip) as z:
        assert sorted(z.namelist()) == ["model.onnx", "tokenizer.json"]
        tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode())
        session = ort.InferenceSession(z.read("model.onnx"))
    scores = []
    for doc in DOCS:  # one pair at a time, as ml-commons predicts
        encoding = tokenizer.encode(QUERY, doc)
        feed = {"input_ids": [encoding.ids], "attention_mask": [encoding.attention_mask],
                "token_type_ids": [encoding.type_ids]}
        (output,) = session.run(None, {k: np.array(v, dtype=np.int64) for k, v in feed.items()})
        assert output.shape == (1, 1)
        scores.append(float(output[0, 0]))
    assert len(tokenizer.encode(QUERY, DOCS[0]).ids) == trained_max_tokens(MODEL_DIR)
    reranker = load_reranker(BUNDLED_RERANKER)
    expected = [reranker.score_texts(QUERY, [doc])[0] for doc in DOCS]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert scores[0] > scores[2]  # a real score, not a constant


def test_the_real_node_registers_and_deploys_it(opensearch_node, model_zip):
    client = OpenSearch(hosts=[opensearch_node.url], timeout=120)
    model_id = register(client, model_zip, "rex-search-local-test")
    model = client.transport.perform_request("GET", f"/_plugins/_ml/models/{model_id}")
    assert (model["model_state"], model["algorithm"], model["model_format"]) == (
        "DEPLOYED", "TEXT_SIMILARITY", "ONNX")
    assert register(client, model_zip, "rex-search-local-test") == model_id  # same content
    try:
        result = client.transport.perform_request(
            "POST", f"/_plugins/_ml/models/{model_id}/_predict",
            body={"query_text": QUERY, "text_docs": DOCS})
    except Exception as exc:  # noqa: BLE001
        if "Failed to inference" in str(exc):
            # ml-commons 2.19 batches pairs with DJL's StackBatchifier, which needs DJL's
            # PyTorch engine; its native library is downloaded from publish.djl.ai at run
            # time (no network here) and DJL 0.31.1's JNI jar is not on Maven Central.
            pytest.xfail("ml-commons cannot run local ONNX inference offline: " + json.dumps(
                str(exc)[:200]))
        raise
    scores = [t["output"][0]["data"][0] for t in result["inference_results"]]
    expected = [load_reranker(BUNDLED_RERANKER).score_texts(QUERY, [d])[0] for d in DOCS]
    assert scores == pytest.approx(expected, abs=1e-4)
    client.close()
