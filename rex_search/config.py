"""Configuration: frozen dataclasses with defaults, read from one TOML file; CLI flags override.

Example ``rex-search.toml``::

    [index]
    path = "rex-index"
    embedding_model = "bge-small-en-v1.5"

    [retrieval]
    bm25_k = 200
    dense_k = 200
    fusion = "rrf"

    [rerank]
    model = "rex-reranker-bge-small-6l"  # bundled; or embedding-cosine, a model directory, a hub id
    window = 20
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rex_search.errors import ConfigError


@dataclass(frozen=True)
class IndexConfig:
    path: str = "rex-index"
    embedding_model: str = "bge-small-en-v1.5"
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
    # the 6-layer student shipped in the package (rex-reranker-bge-small: its 12-layer teacher)
    model: str = "rex-reranker-bge-small-6l"
    runtime: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    # how many fused candidates the reranker scores; the rest keep fused order. 20: the
    # student on the top 20 keeps the 12-layer model's gain on the top 100 at an eighth of
    # its time (benchmarks/bench_latency.py; README "The default since issue #23")
    window: int = 20
    max_tokens: int = 256
    batch_size: int = 32
    deadline_batch: int = 8  # candidates per step when a latency budget applies
    # Final score = weighted sum of min-max-normalised signals (rerank, dense, bm25, fused);
    # see rex_search/rerank/combine.py. {"rerank": 1.0} is the reranker's score alone.
    combine: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_COMBINE))
    # A hit whose calibrated model score (rex_search/rerank/calibration.py: about the chance
    # it is an exact match) is below this is marked weak; none above it: "no good match".
    min_score: float = 0.5


RULE_NAMES = ("brand_exclusion", "availability", "collapse", "brand_preference", "size_match",
              "diversity", "pinning")


@dataclass(frozen=True)
class RulesConfig:
    """Business rules, applied in ``order`` after reranking (see rex_search/rules/)."""

    order: tuple[str, ...] = ("brand_exclusion", "availability", "collapse",
                              "brand_preference", "size_match", "diversity", "pinning")
    always_exclude_brands: tuple[str, ...] = ()  # e.g. a compliance list
    brand_aliases: dict[str, str] = field(default_factory=dict)  # alias -> catalog brand
    explicit_brands: Literal["boost", "filter", "off"] = "boost"
    availability: Literal["demote", "filter"] = "demote"
    unknown_stock: Literal["keep", "demote", "filter"] = "keep"
    demote_margin: float = 0.05
    intent_margin: float = 0.1  # non-branded intent, brands named in the query
    size_margin: float = 0.05  # products stating a compatible size
    # colour/size variants shown once (rex_search/rules/collapse.py); collapse_field: a
    # details key to group by where products have it (e.g. "Model Name")
    collapse: Literal["title", "off"] = "title"
    collapse_field: str | None = None
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


# Numeric fields with a floor other than 0, and fields in [0, 1].
_AT_LEAST_ONE = {"window", "max_tokens", "batch_size", "deadline_batch", "per_brand",
                 "diversity_window", "rrf_k"}
_FRACTIONS = {"mmr_lambda", "min_score"}
# Upper bounds where a huge value is a mistake that would exhaust memory or abort the process
# (bm25_k = 100000000000 once did): candidates per source and reranked, tokens per input.
_AT_MOST = {"bm25_k": 10_000, "dense_k": 10_000, "window": 10_000, "max_tokens": 512,
            "batch_size": 100_000, "deadline_batch": 10_000, "rrf_k": 1_000_000,
            "diversity_window": 10_000, "per_brand": 10_000}


def _check(section: str, key: str, value: Any, hint: Any, source: str) -> Any:
    """``value`` as the field's type wants it, or a ConfigError naming the key and what is
    allowed: checked when the file is loaded, not at the first query."""
    where = f"{source}: [{section}] {key}"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if type(None) in args and len(args) == 2:  # optional: TOML has no null, so a set value
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r}; allowed: "
                              f"{', '.join(repr(a) for a in args)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                (hint is int and not isinstance(value, int)):
            raise ConfigError(f"{where} must be {'an integer' if hint is int else 'a number'}, "
                              f"got {value!r}")
        low = 1 if key in _AT_LEAST_ONE else 0
        high = 1 if key in _FRACTIONS else _AT_MOST.get(key.split(".")[-1], math.inf)
        if not math.isfinite(value) or not low <= value <= high:
            bounds = (f"in [{low}, {high}]" if math.isfinite(high) else f">= {low}") + \
                " (a finite number)"
            raise ConfigError(f"{where} must be {bounds}, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        if key == "order":
            unknown = [v for v in value if v not in RULE_NAMES]
            if unknown:
                raise ConfigError(f"{where}: unknown rule(s) {', '.join(unknown)}; allowed: "
                                  f"{', '.join(RULE_NAMES)}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        value_hint = args[1]
        for name, item in value.items():
            _check(section, f"{key}.{name}", item, value_hint, source)
        return value
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings, got {value!r}")
        return value
    return value


def _env_index(config: Config) -> Config:
    """``$REX_BACKEND`` / ``$REX_INDEX`` name the index for every entry point, as for the CLI."""
    path = os.environ.get("REX_BACKEND") or os.environ.get("REX_INDEX")
    return with_overrides(config, index={"path": path}) if path else config


def load_config(path: str | Path | None = None) -> Config:
    """Read ``path`` (or ``$REX_CONFIG``); no file means defaults. Unknown keys and invalid
    values are a ConfigError naming the key; ``$REX_BACKEND``/``$REX_INDEX`` set the index."""
    path = path or os.environ.get("REX_CONFIG")
    if not path:
        return _env_index(Config())
    if Path(path).is_dir():
        raise ConfigError(f"config {path} is a directory: give a TOML file")
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return _env_index(config_from_dict(data, source=str(path)))


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    sections: dict[str, Any] = {}
    for name, values in data.items():
        cls = _CLASSES.get(name)
        if cls is None:
            raise ConfigError(f"{source}: unknown section [{name}]; valid: {', '.join(_CLASSES)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in [{name}]; "
                              f"valid: {', '.join(sorted(valid))}")
        hints = typing.get_type_hints(cls)
        values = {k: _check(name, k, v, hints[k], source) for k, v in values.items()}
        if name == "rerank" and "combine" in values:
            from rex_search.rerank.combine import check_weights

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
