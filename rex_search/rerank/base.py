"""The reranker protocol and the factory that turns a configured name into a reranker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rex_search.catalog.schema import Product
from rex_search.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from rex_search.indexer.embed import Encoder
    from rex_search.rerank.cosine import StoredVectors

EMBEDDING_COSINE = "embedding-cosine"


class Reranker(Protocol):
    """Scores (query, product) pairs in [0, 1]; higher is more relevant.

    Every caller treats every reranker alike: what a scorer needs beyond the query and the
    products (an embedder, stored vectors, a model file) it is given when constructed.
    """

    @property
    def name(self) -> str:
        """What results report as the reranker (model name or path)."""

    @property
    def kind(self) -> str:
        """"cross-encoder", "embedding-cosine", ...: a label reported, never branched on."""

    def score(self, query: str, products: Sequence[Product]) -> list[float]:
        """One score in [0, 1] per product, in input order."""
        ...


def load_reranker(name: str, embedder: Encoder | None = None, max_tokens: int = 256,
                  batch_size: int = 32, runtime: str = "auto",
                  stored_vectors: StoredVectors | None = None) -> Reranker:
    """``embedding-cosine`` (needs ``embedder``; reuses ``stored_vectors``, e.g. the index's
    ``vectors``, when given), or any cross-encoder: a local directory or a Hugging Face id
    (e.g. ``thebajajra/RexReranker-mini``).

    ``runtime``: ``torch``, ``onnx`` (``model.onnx``), ``onnx-int8`` (``model.int8.onnx``), or
    ``auto``: ONNX when the directory holds an exported model (a split model's two int8
    graphs, else fp32 first, else int8), else PyTorch. A causal-LM directory
    (RexReranker-0.6B, Qwen3-Reranker) is scored as a yes/no decoder on PyTorch.
    """
    if name == EMBEDDING_COSINE:
        if embedder is None:
            raise ConfigError("the embedding-cosine reranker needs the index's embedder")
        from rex_search.rerank.cosine import EmbeddingCosineReranker

        return EmbeddingCosineReranker(embedder, stored_vectors)
    from rex_search.rerank.cross_encoder import CrossEncoderReranker, OnnxCrossEncoder

    if runtime not in ("auto", "torch", "onnx", "onnx-int8"):
        raise ConfigError(f"runtime must be auto, torch, onnx or onnx-int8, got {runtime!r}")
    from rex_search.model_files import BUNDLED_RERANKERS_SHA256, resolve_model

    path = Path(resolve_model(name))
    if name in BUNDLED_RERANKERS_SHA256:  # only the verified file, whatever else lies beside it
        runtime = "onnx-int8"
    from rex_search.rerank.split_scorer import SplitOnnxCrossEncoder, is_split_model

    if is_split_model(path) and runtime in ("auto", "onnx-int8"):
        return SplitOnnxCrossEncoder(name)
    exported = (path / "model.onnx").exists() or (path / "model.int8.onnx").exists()
    if runtime == "torch" or (runtime == "auto" and not exported):
        _require_torch(name)
    if runtime in ("auto", "torch") and _is_decoder(path):
        from rex_search.rerank.decoder import DecoderReranker

        return DecoderReranker(name, max_tokens=max_tokens, batch_size=batch_size)
    if runtime == "auto":
        runtime = ("onnx" if (path / "model.onnx").exists() else
                   "onnx-int8" if (path / "model.int8.onnx").exists() else "torch")
    if runtime == "torch":
        return CrossEncoderReranker(name, max_tokens=max_tokens, batch_size=batch_size)
    file = "model.int8.onnx" if runtime == "onnx-int8" else "model.onnx"
    return OnnxCrossEncoder(name, max_tokens=max_tokens, batch_size=batch_size, file=file)


def _require_torch(name: str) -> None:
    """A reranker without an ONNX export runs on PyTorch + transformers (the ``train`` extra),
    which a default install does not have: say so instead of an ImportError traceback."""
    from importlib.util import find_spec

    missing = [m for m in ("torch", "transformers") if find_spec(m) is None]
    if missing:
        raise ModelError(
            f"reranker {name!r} has no ONNX export, so it runs on PyTorch and transformers "
            f"({' and '.join(missing)} not installed): pip install 'rex-search[train]', or use "
            "a bundled rex-reranker-bge-small(-6l), embedding-cosine, or a directory exported with "
            "`rex-search export-onnx`")


def _is_decoder(path: Path) -> bool:
    from rex_search.rerank.decoder import is_decoder_model

    try:
        return is_decoder_model(str(path))
    except (OSError, ValueError):  # unreadable: the cross-encoder loader explains the failure
        return False
