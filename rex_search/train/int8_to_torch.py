"""PyTorch weights from a reranker's int8 ONNX file, dequantized: the shipped default keeps only
its int8 graph (the fp32 training weights are not shipped), and a student or a split model is
best initialised from the model it must imitate.

    python -m rex_search.train.int8_to_torch rex-reranker-bge-small build/default-torch

Each dynamically quantized MatMul's weight is ``(q - zero_point) * scale`` (per output column),
found from its bias as in `onnx_to_torch` (``…query.bias`` is added to ``scale * MatMulInteger``
whose second input is the weight); embedding tables are ``DequantizeLinear`` inputs. The output
is a `PooledCrossEncoder` directory; `agreement` compares its scores with the int8 graph's.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

_COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json", "LICENSE", "NOTICE")


def dequantized_weights(model_file: Path) -> dict[str, np.ndarray]:
    """The `PooledCrossEncoder` state dict (numpy, fp32) of a dynamically quantized graph."""
    import onnx
    from onnx import numpy_helper

    from rex_search.train.onnx_to_torch import bias_matmuls

    graph = onnx.load(str(model_file)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantize(quantized: str) -> np.ndarray:
        base = quantized.removesuffix("_quantized")
        q = values[quantized].astype(np.float32)
        return (q - values[base + "_zero_point"].astype(np.float32)) * values[base + "_scale"]

    state = {name: value.astype(np.float32) for name, value in values.items()
             if name.startswith(("encoder.", "head.")) and value.dtype == np.float32
             and not name.endswith(("_scale", "_zero_point"))}
    for name in list(values):
        if name.startswith("encoder.embeddings.") and name.endswith(".weight_quantized"):
            state[name.removesuffix("_quantized")] = dequantize(name)
    for bias, matmul in bias_matmuls(graph, values):
        if matmul is None or matmul.op_type != "MatMulInteger":
            raise ValueError(f"{model_file}: no MatMulInteger before {bias}; not a dynamically "
                             "quantized graph")
        state[bias.removesuffix(".bias") + ".weight"] = dequantize(matmul.input[1]).T.copy()
    return state


def convert(folder: Path, out: Path) -> Path:
    """Write a `PooledCrossEncoder` directory for the int8 reranker in ``folder``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    config = BertConfig(**json.loads((folder / "config.json").read_text()))
    encoder = BertModel(config, add_pooling_layer=False)
    state = dequantized_weights(folder / "model.int8.onnx")
    encoder_state = {k.removeprefix("encoder."): torch.from_numpy(v)
                     for k, v in state.items() if k.startswith("encoder.")}
    expected = {k for k in encoder.state_dict() if not k.endswith("position_ids")}
    missing, unexpected = expected - set(encoder_state), set(encoder_state) - expected
    if missing or unexpected or not {"head.weight", "head.bias"} <= set(state):
        raise ValueError(f"{folder}: weights do not map onto the encoder and head: missing "
                         f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in encoder_state.items()},
              str(out / "model.safetensors"))
    save_file({k.removeprefix("head."): torch.from_numpy(state[k]).contiguous()
               for k in ("head.weight", "head.bias")}, str(out / "head.safetensors"))
    for name in _COPIED:
        if (folder / name).exists():
            shutil.copy2(folder / name, out / name)
    card = json.loads((folder / "model_card.json").read_text()) \
        if (folder / "model_card.json").exists() else {}
    (out / "model_card.json").write_text(json.dumps(
        {"dequantized_from": str(folder), "recipe": card.get("recipe"),
         "licence": card.get("licence"), "by": "python -m rex_search.train.int8_to_torch"},
        indent=2) + "\n")
    return out


def agreement(folder: Path, converted: Path, queries: list[str], products: list,
              max_tokens: int = 64) -> dict[str, float]:
    """Spearman and max |diff| between the int8 graph's and the dequantized model's scores."""
    from rex_search.rerank.base import load_reranker
    from rex_search.rerank.export import spearman

    int8 = load_reranker(str(folder), runtime="onnx-int8", max_tokens=max_tokens)
    dequantized = load_reranker(str(converted), runtime="torch", max_tokens=max_tokens)
    onnx_scores: list[float] = []
    torch_scores: list[float] = []
    for query, items in zip(queries, products, strict=True):
        onnx_scores += int8.score(query, items)
        torch_scores += dequantized.score(query, items)
    diff = np.abs(np.array(onnx_scores) - np.array(torch_scores))
    return {"pairs": len(diff), "spearman": spearman(np.array(onnx_scores), np.array(torch_scores)),
            "max_abs_diff": float(diff.max())}


def main() -> None:
    from rex_search.model_files import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a bundled reranker name or an int8 reranker folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    folder = Path(resolve_model(args.model))
    convert(folder, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
