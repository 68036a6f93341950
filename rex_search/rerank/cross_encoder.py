"""Cross-encoder scoring with transformers, for both RexReranker output heads.

* single-logit head (``num_labels == 1``, e.g. ms-marco MiniLM cross-encoders):
  score = sigmoid(logit), in [0, 1];
* distributional head (``num_labels == 11``, RexRerankers): p = softmax(logits) over bins with
  centres c_k = 0, 0.1, ..., 1.0, and score = E[relevance] = sum_k p_k c_k, in [0, 1].
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from rex_search.catalog.schema import Product
from rex_search.errors import ModelError
from rex_search.model_files import load_error, resolve_model
from rex_search.rerank.prompt import product_text, query_text

BIN_CENTRES = np.linspace(0.0, 1.0, 11)


def expected_relevance(logits: np.ndarray) -> np.ndarray:
    """Expected value over the 11 relevance bins of softmax(logits), row-wise."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ BIN_CENTRES


class CrossEncoderReranker:
    kind = "cross-encoder"

    def __init__(self, model: str, max_tokens: int = 256, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = resolve_model(model)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModelForSequenceClassification.from_pretrained(path).eval()
        except (OSError, ValueError) as exc:
            raise load_error(model, exc) from exc
        labels = int(self._model.config.num_labels)
        if labels not in (1, 11):
            raise ModelError(
                f"{model!r} has {labels} output labels; a reranker needs 1 (single-logit) or "
                "11 (distributional head over relevance bins 0, 0.1, ..., 1)"
            )
        self.head = "single-logit" if labels == 1 else "distributional-11"
        self.name = f"{model} ({self.head})"
        self._torch = torch
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def score(self, query: str, products: Sequence[Product],
              vectors: Sequence[np.ndarray | None] | None = None) -> list[float]:
        texts = [product_text(p) for p in products]
        return self.score_texts(query, texts)

    def score_texts(self, query: str, texts: Sequence[str]) -> list[float]:
        """Scores in [0, 1] for (query, product text) pairs, in input order."""
        out = np.zeros(len(texts), dtype=np.float64)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self._tokenizer(
                    [query_text(query)] * len(idx), [texts[i] for i in idx],
                    padding=True, truncation="only_second", max_length=self.max_tokens,
                    return_tensors="pt",
                )
                logits = self._model(**batch).logits.float().numpy()
                if self.head == "single-logit":
                    out[idx] = 1.0 / (1.0 + np.exp(-logits[:, 0]))
                else:
                    out[idx] = expected_relevance(logits)
        return out.tolist()
