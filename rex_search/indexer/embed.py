"""Sentence embeddings for products and queries (mean-pooled, L2-normalised, so IP = cosine).

The default model, all-MiniLM-L6-v2, runs on ONNX Runtime from the copy bundled with the
package (``models/all-minilm-l6-v2-onnx``: weights stored fp16, computed fp32; agreement with
PyTorch in its model card): indexing and serving need no torch. Any other model (a local
directory or a hub id), or ``runtime="torch"``, runs on transformers + PyTorch (the ``train``
extra).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from rex_search.errors import ConfigError, ModelError
from rex_search.model_files import (
    BUNDLED_MINILM,
    bundled_embedder,
    check_tokenizer,
    load_error,
    resolve_model,
)

RUNTIMES = ("auto", "onnx", "torch")


class Encoder(Protocol):
    """What embeds text: the bundled `Embedder`, or a cache in front of one."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit-length vectors, one row per text."""
        ...


class _OnnxEncoder:
    """Tokenizers + ONNX Runtime: the token states of a BERT graph, pooled here."""

    def __init__(self, folder: Path, max_tokens: int) -> None:
        from tokenizers import Tokenizer

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
        return _pool(hidden, feed["attention_mask"])


class _TorchEncoder:
    """transformers + PyTorch, for any other encoder (and to check the ONNX copy)."""

    def __init__(self, model: str, max_tokens: int) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise ModelError(f"embedding model {model!r} runs on PyTorch, which is not "
                             "installed: pip install 'rex-search[train]' (the default "
                             f"{BUNDLED_MINILM} needs no torch)") from exc
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        path = resolve_model(model)
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
            return _pool(hidden.numpy(), batch["attention_mask"].numpy())


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens, then unit length."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    return np.asarray(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12,
                                       None))


class Embedder:
    """Mean-pooled sentence embeddings from local files.

    Example:
        >>> Embedder().encode(["running shoes"]).shape
        (1, 384)
    """

    def __init__(self, model: str = BUNDLED_MINILM, max_tokens: int = 128,
                 batch_size: int = 32, runtime: str = "auto",
                 folder: Path | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ConfigError(f"embedding runtime must be one of {', '.join(RUNTIMES)}, "
                              f"got {runtime!r}")
        bundled = model in (BUNDLED_MINILM, f"sentence-transformers/{BUNDLED_MINILM}")
        if runtime == "onnx" and not bundled and folder is None:
            raise ConfigError(f"only {BUNDLED_MINILM} ships as ONNX; {model!r} runs on torch")
        self._encoder: _OnnxEncoder | _TorchEncoder = (
            _OnnxEncoder(folder or bundled_embedder(), max_tokens)
            if runtime == "onnx" or (runtime == "auto" and bundled)
            else _TorchEncoder(model, max_tokens))
        self.runtime = "onnx" if isinstance(self._encoder, _OnnxEncoder) else "torch"
        self.model_id = model
        self.dim = self._encoder.dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one inference at a time: no core oversubscription

    def encode(self, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` as float32 rows of unit length, in input order."""
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
