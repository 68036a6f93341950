"""Sentence embeddings for products and queries (mean-pooled, L2-normalised, so IP = cosine)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from rex_search.model_files import check_tokenizer, load_error, resolve_model


class Embedder:
    """A transformers encoder with mean pooling, loaded from local files.

    Example:
        >>> Embedder().encode(["running shoes"]).shape
        (1, 384)
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", max_tokens: int = 128,
                 batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = resolve_model(model)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()
        except (OSError, ValueError) as exc:
            raise load_error(model, exc) from exc
        check_tokenizer(model, self._tokenizer, self._model.config)
        self._torch = torch
        self.model_id = model
        self.dim = int(self._model.config.hidden_size)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._lock = threading.Lock()  # one inference at a time: no core oversubscription

    def encode(self, texts: Sequence[str],
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` as float32 rows of unit length, in input order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Sort by length so each batch pads to similar lengths (less wasted compute).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx], padding=True, truncation=True,
                    max_length=self.max_tokens, return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = self._torch.nn.functional.normalize(pooled, dim=-1)
                out[idx] = pooled.numpy()
                if progress:
                    progress(len(idx))
        return out
