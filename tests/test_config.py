"""Configuration is checked when it is loaded: every invalid value names its key and what is
allowed (before: a KeyError at the first query, a silent fallback, or a traceback)."""

from __future__ import annotations

import re

import pytest

from rex_search.config import config_from_dict, load_config
from rex_search.errors import ConfigError


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": {"unknown_stock": "Keep"}}, "[rules] unknown_stock = 'Keep'; allowed: 'keep'"),
    ({"rules": {"availability": "drop"}}, "[rules] availability = 'drop'; allowed: 'demote'"),
    ({"rules": {"diversity": "MMR"}}, "[rules] diversity = 'MMR'; allowed: 'cap', 'mmr'"),
    ({"retrieval": {"fusion": "RRF"}}, "[retrieval] fusion = 'RRF'; allowed: 'rrf'"),
    ({"rerank": {"window": "abc"}}, "[rerank] window must be an integer, got 'abc'"),
    ({"rerank": {"window": 0}}, "[rerank] window must be in [1, 10000] (a finite number), got 0"),
    ({"retrieval": {"bm25_k": 100000000000}},
     "[retrieval] bm25_k must be in [0, 10000] (a finite number), got 100000000000"),
    ({"rerank": {"combine": {"rerank": float("nan")}}},
     "[rerank] combine.rerank must be >= 0 (a finite number), got nan"),
    ({"rules": {"demote_margin": float("inf")}},
     "[rules] demote_margin must be >= 0 (a finite number), got inf"),
    ({"rerank": {"max_tokens": True}}, "[rerank] max_tokens must be an integer"),
    ({"rules": {"mmr_lambda": 2}}, "[rules] mmr_lambda must be in [0, 1] (a finite number), got 2"),
    ({"rerank": {"min_score": 1.5}},
     "[rerank] min_score must be in [0, 1] (a finite number), got 1.5"),
    ({"rules": {"order": ["brand_exclusion", "typo"]}}, "unknown rule(s) typo; allowed:"),
    ({"retrieval": {"weights": {"bm25": "x"}}}, "[retrieval] weights.bm25 must be a number"),
    ({"rules": {"pins": {"running shoes": "B01"}}}, "pins.running shoes must be a list"),
    ({"index": {"path": ""}}, "[index] path must be a non-empty string"),
    ({"rules": "cap"}, "[rules] must be a table"),
])
def test_invalid_values_are_refused_at_load_time_naming_the_key(data, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(data)


def test_valid_values_load(tmp_path):
    path = tmp_path / "rex-search.toml"
    path.write_text('[rules]\norder = ["diversity"]\npins = {"shoes" = ["B01"]}\n'
                    '[retrieval]\nweights = {bm25 = 1, dense = 0.5}\n')
    config = load_config(path)
    assert config.rules.order == ("diversity",)
    assert config.rules.pins == {"shoes": ["B01"]}
    assert config.retrieval.weights == {"bm25": 1, "dense": 0.5}


def test_the_index_environment_variable_reaches_the_python_api(monkeypatch, tmp_path):
    monkeypatch.delenv("REX_CONFIG", raising=False)
    monkeypatch.delenv("REX_BACKEND", raising=False)
    monkeypatch.setenv("REX_INDEX", str(tmp_path / "shop-index"))
    assert load_config().index.path == str(tmp_path / "shop-index")


def test_queries_are_embedded_with_the_index_model_not_the_configured_one(small_index_dir,
                                                                        caplog):
    from rex_search.pipelines.pipeline import SearchPipeline

    config = config_from_dict({"index": {"path": str(small_index_dir),
                                         "embedding_model": "some-other-model"},
                               "rerank": {"model": "embedding-cosine"}})
    pipeline = SearchPipeline.from_config(config)
    assert pipeline.embedder.model_id == "bge-small-en-v1.5"  # recorded in the index
    assert "embedded with bge-small-en-v1.5; using it for queries" in caplog.text
    assert pipeline.search("running shoes", size=3).hits
    pipeline.backend.close()


def test_a_config_that_is_a_directory_or_not_utf8_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"config {tmp_path} is a directory")):
        load_config(tmp_path)
    latin = tmp_path / "c.toml"
    latin.write_bytes(b'[index]\npath = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=re.escape("c.toml is not UTF-8 text (byte 19)")):
        load_config(latin)
