"""Export a cross-encoder to ONNX (optionally dynamic int8) and check it agrees with PyTorch.

The export runs in a child process: exporting inside a process that keeps using the PyTorch
model was seen to change that live model's outputs. A variant whose Spearman correlation with
PyTorch fp32 scores on the check set is below the floor is refused (its file is removed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rex_search.errors import ModelError
from rex_search.model_files import resolve_model


@dataclass(frozen=True)
class Agreement:
    variant: str
    file: str
    pairs: int
    spearman: float
    max_abs_diff: float
    accepted: bool


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of average ranks (ties share their mean rank)."""
    return float(np.corrcoef(_ranks(np.asarray(a)), _ranks(np.asarray(b)))[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks: tied values share the mean of the positions they occupy."""
    values, inverse, counts = np.unique(np.asarray(x), return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts  # first 0-based position of each distinct value
    return (starts + (counts - 1) / 2.0)[inverse].astype(np.float64)


def export_onnx(model: str, out: str | Path, quantize: bool = False, opset: int = 17,
                fp32_nodes: tuple[str, ...] = ()) -> Path:
    """Write ``out/model.onnx`` (and ``model.int8.onnx``), tokenizer and config files.

    ``fp32_nodes``: substrings of graph node names left unquantized. The FFN output matmul
    of a BERT layer reads GELU activations with large outliers, and per-tensor dynamic
    activation quantization loses most there (measured: keeping layer 0's in fp32 lifted our
    reranker's int8 Spearman from 0.989 to 0.995 for 1.7 MB).

    Weights are quantized to 7 bits (``reduce_range``): ONNX Runtime's AVX2 int8 kernel
    multiplies uint8 activations by int8 weights in pairs summed into int16, which saturates
    on full-range weights, while AVX-512 VNNI sums into int32 exactly; the same model then
    ranked differently by CPU (measured under an emulated Haswell: top-1 changed on 2 of 5 DEV
    queries). 7-bit weights cannot saturate, so both paths compute the same integers.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = resolve_model(model)
    result = subprocess.run([sys.executable, "-m", "rex_search.rerank.export", source, str(out),
                             str(opset)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelError(f"ONNX export of {model!r} failed: {result.stderr.strip()[-2000:]}")
    if quantize:
        kept = [_quantize(graph, fp32_nodes) for graph in _graphs(out)]
        if fp32_nodes and not any(kept):
            raise ModelError(f"no graph node name contains any of {list(fp32_nodes)}")
    return out


SPLIT_GRAPHS = ("prefix", "suffix")


def _graphs(out: Path) -> list[Path]:
    """The fp32 graphs an export wrote: ``model.onnx``, or a split model's two."""
    split = [out / f"{name}.onnx" for name in SPLIT_GRAPHS]
    return split if split[0].exists() else [out / "model.onnx"]


def _quantize(graph: Path, fp32_nodes: tuple[str, ...]) -> list[str]:
    """``graph`` -> ``*.int8.onnx`` beside it (see `export_onnx` for the settings); returns
    the nodes left in fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    exclude: list[str] = []
    if fp32_nodes:
        import onnx

        nodes = onnx.load(str(graph), load_external_data=False).graph.node
        exclude = [n.name for n in nodes if any(p in n.name for p in fp32_nodes)]
    quantize_dynamic(str(graph), str(graph.with_suffix(".int8.onnx")), per_channel=True,
                     weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=exclude)
    return exclude


def check_agreement(model: str, out: str | Path, queries_and_texts: list[tuple[str, str]],
                    min_spearman: float = 0.99) -> list[Agreement]:
    """Score the check pairs with PyTorch fp32 and each exported variant; refuse laggards."""
    from rex_search.rerank.cross_encoder import CrossEncoderReranker, OnnxCrossEncoder
    from rex_search.rerank.split_scorer import (
        PREFIX_FILE,
        PREFIX_FP32_FILE,
        SUFFIX_FILE,
        SplitOnnxCrossEncoder,
    )

    out = Path(out)
    reference = _scores(CrossEncoderReranker(model, cache_entries=0), queries_and_texts)

    def scorer(files: list[str]):
        if len(files) == 2:
            return SplitOnnxCrossEncoder(str(out), cache_entries=0, prefix=files[0])
        return OnnxCrossEncoder(str(out), file=files[0], cache_entries=0)

    # a split model runs its suffix int8 only; its prefix int8, or fp32 where int8 is refused
    split = [[prefix, SUFFIX_FILE] for prefix in (PREFIX_FILE, PREFIX_FP32_FILE)
             if (out / prefix).exists() and (out / SUFFIX_FILE).exists()]
    candidates = split or [[f] for f in ("model.onnx", "model.int8.onnx") if (out / f).exists()]
    results: list[Agreement] = []
    kept: set[str] = set()
    refused: set[str] = set()
    for files in candidates:
        if files[0] == PREFIX_FP32_FILE and results and results[-1].accepted:
            break  # the int8 prefix passed: the fp32 one is not needed
        scores = _scores(scorer(files), queries_and_texts)
        rho = spearman(reference, scores)
        agreement = Agreement("int8" if "int8" in files[0] else
                              "fp32" if len(files) == 1 else "fp32 prefix, int8 suffix",
                              "+".join(files), len(scores), rho,
                              float(np.max(np.abs(reference - scores))), rho >= min_spearman)
        (kept if agreement.accepted else refused).update(files)
        results.append(agreement)
    for file in refused - kept:
        (out / file).unlink()
    (out / "agreement.json").write_text(json.dumps(
        {"min_spearman": min_spearman, "variants": [asdict(a) for a in results]}, indent=2))
    return results


def _scores(scorer, pairs: list[tuple[str, str]]) -> np.ndarray:
    by_query: dict[str, list[int]] = {}
    for i, (query, _) in enumerate(pairs):
        by_query.setdefault(query, []).append(i)
    out = np.zeros(len(pairs))
    for query, idx in by_query.items():
        out[idx] = scorer.score_texts(query, [pairs[i][1] for i in idx])
    return out


def _export_in_this_process(source: str, out: str, opset: int) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rex_search.rerank.pooled import PooledCrossEncoder, is_pooled_model

    # Eager attention: the SDPA path traces shape-specialised mask logic that ignores padding.
    if is_pooled_model(source):
        model = PooledCrossEncoder.from_pretrained(source, attn_implementation="eager")
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    if getattr(model.config, "rex_split_layers", None):
        _export_split(model, out, opset)
        tokenizer.save_pretrained(out)
        model.config.save_pretrained(out)
        return
    sample = tokenizer(["Query: a", "Query: running shoes"], ["Title: b", "Title: c d e f"],
                       padding=True, return_tensors="pt")
    # ONNX input names bind to forward()'s arguments by position: list them in that order.
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["logits"] = {0: "batch"}
    with torch.inference_mode():
        torch.onnx.export(model, tuple(sample[n] for n in names), f"{out}/model.onnx",
                          input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=opset,
                          dynamo=False)
    tokenizer.save_pretrained(out)
    model.config.save_pretrained(out)
    for extra in ("LICENSE", "NOTICE", "README.md"):
        if (Path(source) / extra).exists():
            shutil.copy(Path(source) / extra, Path(out) / extra)


def _export_split(model, out: str, opset: int) -> None:
    """A split cross-encoder as two graphs: ``prefix.onnx`` (embeddings and the layers that
    run on one segment; input position_ids) -> hidden states, and ``suffix.onnx`` (query and
    product states joined -> the remaining layers -> logits)."""
    import torch

    class Prefix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids, position_ids):
            return self.model.split_forward(input_ids, attention_mask, token_type_ids,
                                            position_ids, last=self.model.split_layers)

    class Suffix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, hidden, attention_mask):
            states = self.model.split_forward(None, attention_mask, None, None,
                                              first=self.model.split_layers, hidden=hidden)
            return self.model.pool_and_score(states, attention_mask)

    ids = torch.tensor([[101, 2000, 2001, 102], [101, 2002, 102, 0]])
    mask = (ids > 0).long()
    seq = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        prefix_inputs = (ids, mask, torch.zeros_like(ids), torch.arange(4).expand(2, 4))
        names = ["input_ids", "attention_mask", "token_type_ids", "position_ids"]
        torch.onnx.export(Prefix(), prefix_inputs, f"{out}/prefix.onnx", input_names=names,
                          output_names=["hidden"], opset_version=opset, dynamo=False,
                          dynamic_axes={**{n: seq for n in names}, "hidden": seq})
        hidden = Prefix()(*prefix_inputs)
        torch.onnx.export(Suffix(), (hidden, mask), f"{out}/suffix.onnx",
                          input_names=["hidden", "attention_mask"], output_names=["logits"],
                          opset_version=opset, dynamo=False,
                          dynamic_axes={"hidden": seq, "attention_mask": seq,
                                        "logits": {0: "batch"}})


if __name__ == "__main__":
    _export_in_this_process(sys.argv[1], sys.argv[2], int(sys.argv[3]))
