"""Decoder-style rerankers (RexReranker-0.6B, Qwen3-Reranker): relevance = P("yes").

The pair is written into the Qwen3-Reranker chat template (a system turn that asks for a yes/no
judgment, a user turn with the instruction, query and document, an empty thinking block for the
assistant), the batch is padded on the left so every row's last position is its own last token,
and the score is softmax over the "no"/"yes" logits at that position, taking "yes".

RexReranker-0.6B's weights cannot be fetched on an offline machine; this path is tested for its
mechanics (format, padding, positions) with a tiny randomly initialised model only. Its ranking
quality here is untested.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from rex_search.catalog.prompt import product_text
from rex_search.catalog.schema import Product

SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the '
          'Instruct provided. Note that the answer can only be "yes" or "no".')
PREFIX = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
# Our wording of an e-commerce instruction; pass the one a model was trained with if it differs.
ECOMMERCE_INSTRUCTION = ("Given an e-commerce search query, judge whether the product "
                         "satisfies what the shopper asked for")


def format_pair(query: str, document: str, instruction: str = ECOMMERCE_INSTRUCTION) -> str:
    """The user turn's body, as Qwen3-Reranker writes it."""
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


def is_decoder_model(path: str) -> bool:
    """True when the model's config names a causal-LM architecture (a yes/no reranker). A
    local folder's config.json is read directly (no transformers needed to decide)."""
    config = Path(path) / "config.json"
    if config.is_file():
        architectures = json.loads(config.read_text()).get("architectures") or []
    else:
        from transformers import AutoConfig

        architectures = getattr(AutoConfig.from_pretrained(path), "architectures", None) or []
    return any(a.endswith("ForCausalLM") for a in architectures)


class DecoderReranker:
    """A causal LM scored through its "yes"/"no" logits at the last position (PyTorch)."""

    kind = "cross-encoder"

    def __init__(self, model: str | None = None, *, instruction: str = ECOMMERCE_INSTRUCTION,
                 max_tokens: int = 512, batch_size: int = 8, loaded: tuple | None = None) -> None:
        """``model``: a local directory or hub id; ``loaded``: an in-memory (model, tokenizer)
        pair instead (tests build a tiny one from a config)."""
        import torch

        if loaded is not None:
            self._model, self._tokenizer = loaded
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from rex_search.model_files import load_error, resolve_model

            path = resolve_model(model or "")
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                self._model = AutoModelForCausalLM.from_pretrained(path)
            except (OSError, ValueError) as exc:
                raise load_error(model or "", exc) from exc
        self._model.eval()
        self._torch = torch
        self.model_id = model or "in-memory"
        self.instruction, self.max_tokens, self.batch_size = instruction, max_tokens, batch_size
        self._prefix = self._tokenizer.encode(PREFIX, add_special_tokens=False)
        self._suffix = self._tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.yes_id = self._token_id("yes")
        self.no_id = self._token_id("no")

    @property
    def name(self) -> str:
        return f"{self.model_id} (decoder yes/no, torch)"

    def _token_id(self, token: str) -> int:
        token_id = self._tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self._tokenizer.unk_token_id:
            from rex_search.errors import ModelError

            raise ModelError(f"{self.model_id}: the tokenizer has no single token {token!r}; "
                             "a yes/no reranker needs one")
        return int(token_id)

    def encode(self, query: str, texts: Sequence[str]) -> dict:
        """Left-padded ids, attention mask and position ids (counting real tokens only)."""
        torch = self._torch
        budget = self.max_tokens - len(self._prefix) - len(self._suffix)
        rows = [self._prefix + self._tokenizer.encode(
            format_pair(query, text, self.instruction), add_special_tokens=False,
            truncation=True, max_length=budget) + self._suffix for text in texts]
        width = max(len(r) for r in rows)
        pad = self._tokenizer.pad_token_id
        pad = self._tokenizer.eos_token_id if pad is None else pad
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}

    def score_texts(self, query: str, texts: Sequence[str]) -> list[float]:
        out: list[float] = []
        with self._torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.encode(query, texts[start:start + self.batch_size])
                last = self._model(**batch).logits[:, -1, :].float()
                pair = self._torch.stack([last[:, self.no_id], last[:, self.yes_id]], dim=1)
                out += self._torch.softmax(pair, dim=1)[:, 1].tolist()
        return out

    def score(self, query: str, products: Sequence[Product]) -> list[float]:
        return self.score_texts(query, [product_text(p) for p in products])
