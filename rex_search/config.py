"""Configuration: frozen dataclasses with defaults, read from one TOML file; CLI flags override.

Example ``rex-search.toml``::

    [index]
    path = "rex-index"
    embedding_model = "all-MiniLM-L6-v2"

    [retrieval]
    bm25_k = 200
    dense_k = 200
    fusion = "rrf"

    [rerank]
    model = "rex-reranker-minilm"   # bundled; or embedding-cosine, a model directory, a hub id
    window = 100
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rex_search.errors import ConfigError


@dataclass(frozen=True)
class IndexConfig:
    path: str = "rex-index"
    embedding_model: str = "all-MiniLM-L6-v2"
    vector_index: Literal["flat", "hnsw"] = "flat"
    batch_size: int = 256


@dataclass(frozen=True)
class RetrievalConfig:
    bm25_k: int = 200
    dense_k: int = 200
    fusion: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = 60
    weights: dict[str, float] = field(default_factory=lambda: {"bm25": 0.5, "dense": 0.5})


DEFAULT_COMBINE = {"rerank": 1.0}


@dataclass(frozen=True)
class RerankConfig:
    model: str = "rex-reranker-minilm"  # the trained cross-encoder shipped in the package
    runtime: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    window: int = 100  # how many fused candidates the reranker scores; the rest keep fused order
    max_tokens: int = 256
    batch_size: int = 32
    deadline_batch: int = 8  # candidates per step when a latency budget applies
    # Final score = weighted sum of min-max-normalised signals (rerank, dense, bm25, fused);
    # see rex_search/rerank/combine.py. {"rerank": 1.0} is the reranker's score alone.
    combine: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COMBINE))


@dataclass(frozen=True)
class RulesConfig:
    """Business rules, applied in ``order`` after reranking (see rex_search/rules/)."""

    order: tuple[str, ...] = ("brand_exclusion", "availability", "brand_preference",
                              "size_match", "diversity", "pinning")
    always_exclude_brands: tuple[str, ...] = ()  # e.g. a compliance list
    brand_aliases: dict[str, str] = field(default_factory=dict)  # alias -> catalog brand
    explicit_brands: Literal["boost", "filter", "off"] = "boost"
    availability: Literal["demote", "filter"] = "demote"
    unknown_stock: Literal["keep", "demote", "filter"] = "keep"
    demote_margin: float = 0.05
    intent_margin: float = 0.1  # non-branded intent, brands named in the query
    size_margin: float = 0.05  # products stating a compatible size
    diversity: Literal["cap", "mmr", "off"] = "cap"
    per_brand: int = 3
    diversity_window: int = 10
    max_relevance_drop: float = 0.1
    mmr_lambda: float = 0.7
    pins: dict[str, list[str]] = field(default_factory=dict)  # query -> product ids


@dataclass(frozen=True)
class Config:
    index: IndexConfig = field(default_factory=IndexConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)


_CLASSES = {"index": IndexConfig, "retrieval": RetrievalConfig, "rerank": RerankConfig,
            "rules": RulesConfig}


def load_config(path: str | Path | None = None) -> Config:
    """Read ``path`` (or ``$REX_CONFIG``); no file means defaults. Unknown keys are errors."""
    path = path or os.environ.get("REX_CONFIG")
    if not path:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return config_from_dict(data, source=str(path))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    sections: dict[str, Any] = {}
    for name, values in data.items():
        cls = _CLASSES.get(name)
        if cls is None:
            raise ConfigError(f"{source}: unknown section [{name}]; valid: {', '.join(_CLASSES)}")
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in [{name}]; "
                              f"valid: {', '.join(sorted(valid))}")
        values = {k: tuple(v) if isinstance(v, list) and k != "pins" else v
                  for k, v in values.items()}
        if name == "rerank" and "combine" in values:
            from rex_search.rerank.combine import check_weights

            if not isinstance(values["combine"], dict):
                raise ConfigError(f"{source}: [rerank] combine must be a table of signal "
                                  "weights, e.g. {{rerank = 0.7, dense = 0.3}}")
            check_weights(values["combine"])
        sections[name] = cls(**values)
    return Config(**sections)


def with_overrides(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy with some fields replaced, e.g. ``with_overrides(c, index={"path": "x"})``."""
    changes = {}
    for name, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            changes[name] = dataclasses.replace(getattr(config, name), **values)
    return dataclasses.replace(config, **changes)
