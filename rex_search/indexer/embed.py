"""Sentence embeddings for products and queries (pooled, L2-normalised, so IP = cosine).

Products are embedded with `Embedder.encode`, queries with `Embedder.encode_queries`: asymmetric
models expect a different prefix on each side (e5: ``query: `` / ``passage: ``; bge: an
instruction before the query) and their own pooling (mean or the [CLS] token). Both come from
the model folder's ``embedding.json``; a folder without one is mean-pooled with no prefixes
(all-MiniLM-L6-v2). The default is bge-small-en-v1.5 (`benchmarks/embedders.py` chose it).

The bundled models (``model_files.BUNDLED_EMBEDDERS``) run on ONNX Runtime from folders inside
the package (weights stored fp16, computed fp32), as does any local folder holding
``model.onnx``: indexing and serving need no torch. Any other model (a local transformers
directory or a hub id), or ``runtime="torch"``, runs on transformers + PyTorch (the ``train``
extra).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rex_search.errors import ConfigError, ModelError
from rex_search.model_files import (
    BUNDLED_EMBEDDERS,
    BUNDLED_MINILM,
    DEFAULT_EMBEDDER,
    bundled_embedder,
    bundled_embedder_name,
    check_tokenizer,
    load_error,
    resolve_model,
)

RUNTIMES = ("auto", "onnx", "torch")
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class Prompting:
    """How a model wants its inputs and outputs treated (its ``embedding.json``)."""

    pooling: str = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""

    @classmethod
    def of_folder(cls, folder: Path) -> Prompting:
        """The folder's ``embedding.json``, or mean pooling without prefixes when absent."""
        file = folder / "embedding.json"
        if not file.exists():
            return cls()
        try:
            data = json.loads(file.read_text())
            prompting = cls(str(data.get("pooling", "mean")), str(data.get("query_prefix", "")),
                            str(data.get("passage_prefix", "")))
        except (ValueError, AttributeError) as exc:
            raise ModelError(f"{file}: not a JSON object with pooling, query_prefix and "
                             f"passage_prefix ({exc})") from None
        if prompting.pooling not in POOLINGS:
            raise ModelError(f"{file}: pooling must be one of {', '.join(POOLINGS)}, got "
                             f"{prompting.pooling!r}")
        return prompting


class Encoder(Protocol):
    """What embeds text: the bundled `Embedder`, or a cache in front of one."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length vectors of product texts, one row per text."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of queries, one row per query."""
        ...


class _OnnxEncoder:
    """Tokenizers + ONNX Runtime: the token states of a BERT graph, pooled here."""

    def __init__(self, folder: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

        self.prompting = Prompting.of_folder(folder)

        from rex_search.onnx_session import open_session

        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        config = json.loads((folder / "config.json").read_text())
        if abs(self._tokenizer.get_vocab_size() - config["vocab_size"]) > 1000:
            raise ModelError(f"{folder}: tokenizer.json does not belong to its model")
        self.dim = int(config["hidden_size"])
        self._session = open_session(folder / "model.onnx")

    def encode(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
        (hidden,) = self._session.run(None, feed)
        return _pool(hidden, feed["attention_mask"], self.prompting.pooling)


class _TorchEncoder:
    """transformers + PyTorch, for any other encoder (and to check the ONNX copy)."""

    def __init__(self, model: str, max_tokens: int) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise ModelError(f"embedding model {model!r} runs on PyTorch, which is not "
                             "installed: pip install 'rex-search[train]' (the bundled "
                             f"{', '.join(BUNDLED_EMBEDDERS)} need no torch)") from exc
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        path = resolve_model(model)
        self.prompting = Prompting.of_folder(Path(path)) if Path(path).is_dir() else Prompting()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()
        except (OSError, ValueError) as exc:
            raise load_error(model, exc) from exc
        check_tokenizer(model, self._tokenizer, self._model.config)
        self._torch, self._max_tokens = torch, max_tokens
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        with self._torch.inference_mode():
            batch = self._tokenizer(texts, padding=True, truncation=True,
                                    max_length=self._max_tokens, return_tensors="pt")
            hidden = self._model(**batch).last_hidden_state
            return _pool(hidden.numpy(), batch["attention_mask"].numpy(),
                         self.prompting.pooling)


def _pool(hidden: np.ndarray, mask: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """Mean over real tokens (or the [CLS] token's state), then unit length."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    return np.asarray(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12,
                                       None))


class Embedder:
    """Sentence embeddings from local files: products with `encode`, queries with
    `encode_queries` (each with the prefix the model expects).

    Example:
        >>> Embedder().encode_queries(["running shoes"]).shape
        (1, 384)
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, max_tokens: int = 128,
                 batch_size: int = 32, runtime: str = "auto",
                 folder: Path | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"embedding runtime must be one of {', '.join(RUNTIMES)}, "
                              f"got {runtime!r}")
        bundled = bundled_embedder_name(model)
        if folder is None and bundled is None and (Path(model).expanduser() / "model.onnx"
                                                    ).is_file():
            folder = Path(model).expanduser()  # a local ONNX embedder folder
        if runtime == "onnx" and bundled is None and folder is None:
            raise ConfigError(f"{model!r} has no ONNX copy (bundled: "
                              f"{', '.join(BUNDLED_EMBEDDERS)}, or a folder with "
                              "model.onnx); it runs on torch")
        use_onnx = runtime == "onnx" or (runtime == "auto" and (bundled or folder))
        self._encoder: _OnnxEncoder | _TorchEncoder = (
            _OnnxEncoder(folder or bundled_embedder(bundled or BUNDLED_MINILM), max_tokens)
            if use_onnx else _TorchEncoder(model, max_tokens))
        self.prompting = self._encoder.prompting
        self.runtime = "onnx" if isinstance(self._encoder, _OnnxEncoder) else "torch"
        self.model_id = model
        self.dim = self._encoder.dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one inference at a time: no core oversubscription

    def encode(self, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed product ``texts`` as float32 rows of unit length, in input order."""
        return self._encode([self.prompting.passage_prefix + t for t in texts], progress)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries (with the model's query prefix) as float32 rows of unit length."""
        return self._encode([self.prompting.query_prefix + t for t in texts], None)

    def _encode(self, texts: Sequence[str],
                progress: Callable[[int], None] | None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads to similar lengths (less wasted compute).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                out[idx] = self._encoder.encode([texts[i] for i in idx])
                if progress:
                    progress(len(idx))
        return out
