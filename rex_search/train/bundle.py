"""Copy an exported, agreement-checked reranker into the package as the shipped default.

    python -m rex_search.train.bundle TRAINED_DIR ONNX_DIR OUT_DIR [--metrics FILE.json]

OUT_DIR's name is the name the model is configured by (``rex_search/models/NAME``).

Only what inference needs goes in: the int8 ONNX file (fp32 where int8 was refused), the
tokenizer and config, the training model card extended with the sha256 of every shipped file
(checked on load), the export's agreement figures, the measured metrics and the base model's
licence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from rex_search.errors import ModelError

# The Apache-2.0 text (the same licence as the base model and this project).
APACHE_2 = Path(__file__).resolve().parents[2] / "data" / "esci-sample" / "LICENSE.txt"
NOTICE = """rex-reranker-minilm: a cross-encoder trained by the rex-search project.
Its encoder weights derive from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0,
https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), trained further on graded pairs
generated from the ESCI sample catalog (Amazon Science esci-data, Apache-2.0). See
model_card.json for how it was trained and what it measured.
"""
MODEL_FILES = Path(__file__).resolve().parents[1] / "model_files.py"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")


def bundle(trained: Path, exported: Path, out: Path, metrics: dict | None = None,
           robustness: dict | None = None) -> Path:
    onnx = next((f for f in ("model.int8.onnx", "model.onnx") if (exported / f).exists()), None)
    if onnx is None:
        raise ModelError(f"{exported} holds no agreement-checked ONNX model")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = [onnx, "config.json", *[f for f in TOKENIZER_FILES if (exported / f).exists()]]
    for file in files:
        shutil.copy(exported / file, out / file)
    card = json.loads((trained / "model_card.json").read_text())
    base_licence = _base_licence_file(card)
    (out / "LICENSE").write_text(base_licence.read_text() if base_licence else APACHE_2.read_text())
    (out / "NOTICE").write_text(_notice(out.name, card))
    card["validation_history_is_on"] = ("held-out queries of the training data (query-grouped "
                                        "split); see evaluation for real judgments")
    card["runtime_file"] = onnx
    card["export_agreement"] = json.loads((exported / "agreement.json").read_text())
    if metrics:
        card["evaluation"] = metrics
    if robustness:
        card["robustness"] = robustness
    card["files_sha256"] = {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in files}
    (out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    pin_hashes(out.name, card["files_sha256"])
    return out


def _base_licence_file(card: dict) -> Path | None:
    """The LICENSE of the weights' origin, when it has one: the base encoder's (the Maven
    Central encoders are MIT), or for a student, the bundled model it was cut from."""
    from rex_search.model_files import resolve_model

    for source in (_cut_from(card), card.get("base_model")):
        try:
            folder = Path(resolve_model(str(source))) if source else None
        except ModelError:
            continue
        if folder is not None and (folder / "LICENSE").is_file():
            return folder / "LICENSE"
    return None


def _cut_from(card: dict) -> str | None:
    """The bundled model a student's layers were cut from (its dequantized folder), if any."""
    return (card.get("initialised_from") or {}).get("dequantized_from")


def _notice(name: str, card: dict) -> str:
    base = str(card.get("base_model", ""))
    origin = _cut_from(card)
    if origin:
        return (f"{name}: a cross-encoder trained by the rex-search project: layers of "
                f"{Path(origin).name} (also shipped in rex-search), distilled on that model's "
                f"scores of catalog pairs. Its encoder weights derive from the "
                f"{card.get('licence')} (LICENSE beside this file). See model_card.json for "
                "how it was trained and what it measured.\n")
    if "minilm" in base.lower() or not base:
        return NOTICE
    return (f"{name}: a cross-encoder trained by the rex-search project.\n"
            f"Its encoder weights derive from the {card.get('licence')} (LICENSE beside this "
            "file), trained further on graded pairs generated from the ESCI sample catalog "
            "(Amazon Science esci-data, Apache-2.0). See model_card.json for how it was trained "
            "and what it measured.\n")


def pin_hashes(name: str, hashes: dict[str, str], source: Path = MODEL_FILES) -> None:
    """Write the shipped files' sha256s as ``name``'s entry of
    ``model_files.BUNDLED_RERANKERS_SHA256`` (replaced, or added): the loader trusts the
    code, not a card that could be edited along with the files."""
    text = source.read_text()
    start = text.index("BUNDLED_RERANKERS_SHA256 = {\n")
    close = text.index("\n}\n", start) + 1  # the line holding the table's closing brace
    key = f'    "{name}": {{\n'
    entry = key + "".join(f'        "{k}": "{v}",\n' for k, v in hashes.items()) + "    },\n"
    at = text.find(key, start, close)
    if at < 0:
        text = text[:close] + entry + text[close:]
    else:
        text = text[:at] + entry + text[text.index("    },\n", at) + len("    },\n"):]
    source.write_text(text)


def add_file(folder: Path, file: str, pin: bool = True) -> None:
    """List ``file`` (written beside a bundled model after bundling, e.g. its calibration)
    in the card's ``files_sha256``, and pin the new set when ``pin`` (the shipped model)."""
    card_file = folder / "model_card.json"
    card = json.loads(card_file.read_text())
    card["files_sha256"][file] = hashlib.sha256((folder / file).read_bytes()).hexdigest()
    card_file.write_text(json.dumps(card, indent=2) + "\n")
    if pin:
        pin_hashes(folder.name, card["files_sha256"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trained", type=Path)
    parser.add_argument("exported", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--metrics", type=Path, help="JSON of measured metrics for the card")
    parser.add_argument("--robustness", type=Path, help="JSON of benchmarks/robustness.py")
    args = parser.parse_args()
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    robustness = json.loads(args.robustness.read_text()) if args.robustness else None
    out = bundle(args.trained, args.exported, args.out, metrics, robustness)
    print(f"bundled into {out}; file hashes pinned in {MODEL_FILES}; refit its score "
          "calibration: python benchmarks/calibration.py --write")


if __name__ == "__main__":
    main()
