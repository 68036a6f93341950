"""The shipped cross-encoder as an ml-commons local model: reranking inside OpenSearch, with no
rex-search service to run.

ml-commons runs a ``TEXT_SIMILARITY`` model in ONNX format from a zip holding ``model.onnx``
and ``tokenizer.json``, tokenizing each (query, document) pair itself and taking the model's
one output as the score. Two things make the RexReranker fit that contract exactly:

- the graph gains its score head: softmax over the 11 relevance bins, then the expected value
  (the same `scores_from_logits` the Python runtime applies), as one ``[batch, 1]`` output;
- the tokenizer gains the ``Query: `` prefix and the trained token budget: its pair template
  becomes ``[CLS] query : $A [SEP] $B [SEP]`` and it truncates longest-first, so the ids equal
  those the Python runtime feeds for ``Query: {q}`` and the product text.

Documents are each hit's ``rerank_text`` (the product format), as for the service pipeline.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rex_search.errors import BackendError, ConfigError
from rex_search.integrations.opensearch_pipeline import MlCommons, rerank_pipeline_body
from rex_search.rerank.cross_encoder import BIN_CENTRES

CHUNK_BYTES = 10_000_000  # ml-commons accepts chunks of at most 10 MB
MODEL_VERSION = "1.0.0"
LOCAL_FILE = "plugins.ml_commons.allow_registering_model_via_local_file"


def score_graph(model_path: Path) -> Any:
    """The reranker's ONNX graph with its score head: logits [batch, 11] -> score [batch, 1]."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ConfigError("packaging the model for ml-commons needs onnx: "
                          "pip install 'rex-search[onnx]'") from exc
    model = onnx.load(str(model_path))
    graph = model.graph
    (logits,) = [o.name for o in graph.output]
    # The same expected value over the bins as `scores_from_logits`.
    centres = numpy_helper.from_array(BIN_CENTRES.astype(np.float32).reshape(-1, 1),
                                      "rex_bin_centres")
    graph.initializer.append(centres)
    graph.node.extend([
        helper.make_node("Softmax", [logits], ["rex_bin_probabilities"], axis=1),
        helper.make_node("MatMul", ["rex_bin_probabilities", "rex_bin_centres"], ["score"]),
    ])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("score", TensorProto.FLOAT,
                                                      ["batch", 1]))
    onnx.checker.check_model(model)
    return model


def query_tokenizer(tokenizer_path: Path, max_tokens: int) -> dict[str, Any]:
    """tokenizer.json with the ``Query: `` prefix in its pair template and the trained budget."""
    from tokenizers import Tokenizer

    spec = json.loads(tokenizer_path.read_text())
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    prefix = tokenizer.encode("Query:", add_special_tokens=False)
    template = spec["post_processor"]
    if template.get("type") != "TemplateProcessing":
        raise ConfigError(f"{tokenizer_path}: expected a BERT-style TemplateProcessing "
                          "post-processor")
    template["special_tokens"]["Query:"] = {"id": "Query:", "ids": prefix.ids,
                                             "tokens": prefix.tokens}
    template["pair"].insert(1, {"SpecialToken": {"id": "Query:", "type_id": 0}})
    spec["truncation"] = {"direction": "Right", "max_length": max_tokens,
                          "strategy": "LongestFirst", "stride": 0}
    spec["padding"] = None
    return spec


def build_zip(model_dir: Path, out: Path, max_tokens: int) -> Path:
    """``out``: the zip ml-commons registers (model.onnx + tokenizer.json)."""
    model = score_graph(model_dir / "model.int8.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.onnx", model.SerializeToString())
        z.writestr("tokenizer.json", json.dumps(query_tokenizer(model_dir / "tokenizer.json",
                                                                 max_tokens)))
    return out


def register(client: Any, zip_path: Path, name: str) -> str:
    """Register (upload in chunks) and deploy the zip as ``name``; an existing model of that
    name with the same content is reused, one with other content is replaced."""
    cluster = MlCommons(client)
    data = zip_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    existing = cluster.find("models", name)
    if existing is not None:
        model = cluster.call("read the model", "GET", f"/_plugins/_ml/models/{existing}")
        if model.get("model_content_hash_value") == digest:
            cluster.deploy(existing)
            return existing
        cluster.undeploy(existing)
        cluster.call("delete the old model", "DELETE", f"/_plugins/_ml/models/{existing}")
    chunks = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    # Uploading a model (not a URL, not an OpenSearch-hosted one) is off by default.
    cluster.call("allow uploaded models", "PUT", "/_cluster/settings", {"persistent": {
        LOCAL_FILE: True, "plugins.ml_commons.only_run_on_ml_node": False}})
    response = cluster.call("register the model", "POST", "/_plugins/_ml/models/_register_meta", {
        "name": name, "version": MODEL_VERSION, "model_format": "ONNX",
        "function_name": "TEXT_SIMILARITY", "description": "rex-search RexReranker "
        "cross-encoder (score = expected relevance over 11 bins)",
        "model_content_hash_value": digest, "model_content_size_in_bytes": len(data),
        "total_chunks": len(chunks),
        "model_config": {"model_type": "bert", "embedding_dimension": 1,
                         "framework_type": "huggingface_transformers"}})
    model_id = str(response.get("model_id") or
                   cluster.wait_task(response["task_id"])["model_id"])
    for number, chunk in enumerate(chunks):
        try:
            # Raw bytes under the client's JSON content type: ml-commons reads the body as
            # is, and OpenSearch refuses application/octet-stream on REST.
            client.transport.perform_request(
                "POST", f"/_plugins/_ml/models/{model_id}/upload_chunk/{number}", body=chunk)
        except Exception as exc:  # noqa: BLE001
            raise BackendError(f"OpenSearch refused model chunk {number}: {exc}") from None
    cluster.deploy(model_id)
    return model_id


def trained_max_tokens(model_dir: Path, default: int = 256) -> int:
    """The token budget the model was trained with (as the Python runtime caps it)."""
    config = json.loads((model_dir / "config.json").read_text())
    return min(default, int(config.get("rex_max_tokens", default)))


def install_local(client: Any, model_dir: Path, work: Path,
                  pipeline: str = "rex-rerank-local") -> dict[str, str]:
    """The shipped reranker as a local model, and a search pipeline reranking with it."""
    zip_path = build_zip(model_dir, work / "rex-reranker-ml-commons.zip",
                         trained_max_tokens(model_dir))
    model_id = register(client, zip_path, f"rex-search-local-{pipeline}")
    MlCommons(client).call("create the search pipeline", "PUT", f"/_search/pipeline/{pipeline}",
                          rerank_pipeline_body(model_id))
    return {"model_id": model_id, "search_pipeline": pipeline, "model_zip": str(zip_path)}
