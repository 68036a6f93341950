# mypy: disable-error-code="union-attr,arg-type,index,operator"
# (transformers types a model's config and submodules as Tensor | Module)
"""A cross-encoder with an explicit pooling choice: encoder -> mean or [CLS] pooling -> linear head.

RexRerankers' encoder recipe pools by the mean over tokens by default; transformers' BERT
sequence-classification model can only use its [CLS] pooler, so models trained here are this
module. On disk it is a transformers encoder directory plus ``head.safetensors``; config.json
carries ``rex_pooling``, ``num_labels`` (1 or 11) and ``rex_max_tokens`` (the input length it
was trained with), so any scorer can tell how to load and run it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch

Pooling = Literal["mean", "cls"]


def is_pooled_model(path: str | Path) -> bool:
    """True for a directory written by :meth:`PooledCrossEncoder.save_pretrained`."""
    config = Path(path) / "config.json"
    return config.exists() and "rex_pooling" in json.loads(config.read_text())


class PooledCrossEncoder(torch.nn.Module):
    """``forward`` returns logits of shape (batch, num_labels); no wrapper object, so the same
    module trains, scores and exports to ONNX unchanged."""

    def __init__(self, encoder: torch.nn.Module, labels: int, pooling: Pooling = "mean",
                 dropout: float = 0.1) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.encoder, self.pooling = encoder, pooling
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, labels)
        encoder.config.num_labels = labels
        encoder.config.rex_pooling = pooling

    @property
    def config(self):
        return self.encoder.config

    @property
    def split_layers(self) -> int:
        """Layers that run on query and product apart (0: an ordinary cross-encoder); see
        `rex_search.rerank.split_inputs`."""
        return int(getattr(self.config, "rex_split_layers", 0) or 0)

    def make_split(self, layers: int, query_tokens: int, product_tokens: int) -> None:
        """Turn this model into a split cross-encoder (before training it as one)."""
        if not 0 < layers < len(self.encoder.encoder.layer):
            raise ValueError(f"split layers must be 1..{len(self.encoder.encoder.layer) - 1}")
        self.config.rex_split_layers = layers
        self.config.rex_query_tokens, self.config.rex_product_tokens = query_tokens, product_tokens

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.split_layers:
            hidden = self.split_forward(input_ids, attention_mask, token_type_ids, position_ids)
        else:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
        return self.pool_and_score(hidden, attention_mask)

    def split_forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      token_type_ids: torch.Tensor, position_ids: torch.Tensor,
                      first: int = 0, last: int | None = None,
                      hidden: torch.Tensor | None = None) -> torch.Tensor:
        """Layers ``first``..``last``: below ``split_layers`` a token attends to its own
        segment only (token type), from there on to every real token."""
        if hidden is None:
            hidden = self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                             position_ids=position_ids)
        keys = attention_mask[:, None, None, :].bool()
        layers = self.encoder.encoder.layer
        last = len(layers) if last is None else last
        full = _additive(keys, hidden.dtype)
        apart = full if first >= self.split_layers else _additive(
            keys & (token_type_ids[:, None, :, None] == token_type_ids[:, None, None, :]),
            hidden.dtype)
        for i in range(first, last):
            out = layers[i](hidden, attention_mask=apart if i < self.split_layers else full)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def pool_and_score(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens: padding must not dilute the average
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))

    @classmethod
    def from_base(cls, path: str, labels: int, pooling: Pooling = "mean",
                  layers: int | tuple[int, ...] | None = None,
                  **kwargs) -> PooledCrossEncoder:
        """A new head on a pretrained encoder; ``layers`` keeps the first N encoder layers, or
        the listed ones (e.g. every other layer of a deeper teacher: a smaller student that
        still spans the whole depth)."""
        encoder = _encoder(path, **kwargs)
        _keep_layers(encoder, layers, path)
        return cls(encoder, labels, pooling)

    @classmethod
    def from_pretrained(cls, path: str | Path, layers: int | tuple[int, ...] | None = None,
                        **kwargs) -> PooledCrossEncoder:
        """A model trained here; ``layers`` as in `from_base` (a student cut from it)."""
        from safetensors.torch import load_file

        encoder = _encoder(str(path), **kwargs)
        _keep_layers(encoder, layers, str(path))
        model = cls(encoder, int(encoder.config.num_labels), encoder.config.rex_pooling)
        model.head.load_state_dict(load_file(str(Path(path) / "head.safetensors")))
        return model.eval()

    def save_pretrained(self, out: str | Path, max_tokens: int | None = None) -> None:
        from safetensors.torch import save_file

        if max_tokens:
            self.config.rex_max_tokens = max_tokens
        self.encoder.save_pretrained(str(out))
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()},
                  str(Path(out) / "head.safetensors"))


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An attention mask to add to the scores: 0 where allowed, the dtype's minimum elsewhere."""
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def _keep_layers(encoder: torch.nn.Module, layers: int | tuple[int, ...] | None,
                 path: str) -> None:
    """Keep the first N encoder layers, or the listed ones."""
    if not layers:
        return
    keep = list(range(layers)) if isinstance(layers, int) else list(layers)
    have = encoder.encoder.layer  # type: ignore[union-attr]
    if max(keep) >= len(have):
        raise ValueError(f"{path} has {len(have)} layers; asked for layer {max(keep)}")
    encoder.encoder.layer = torch.nn.ModuleList([have[i] for i in keep])  # type: ignore[union-attr, misc]
    encoder.config.num_hidden_layers = len(keep)  # type: ignore[union-attr]


def _encoder(path: str, **kwargs) -> torch.nn.Module:
    """The bare encoder; BERT's unused [CLS] pooler is left out where the class allows it."""
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except TypeError:  # architectures without a pooler option (ModernBERT, ...)
        return AutoModel.from_pretrained(path, **kwargs)
