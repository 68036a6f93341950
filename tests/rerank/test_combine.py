from __future__ import annotations

import re

import pytest

from rex_search.config import config_from_dict
from rex_search.errors import ConfigError
from rex_search.rerank.combine import check_weights, combine


def test_rerank_only_keeps_the_model_score_unnormalised():
    out = combine({"rerank": [0.9, 0.2]}, {"rerank": 1.0})
    assert [c.score for c in out] == [0.9, 0.2]
    assert out[0].contributions == {"rerank": 0.9}


def test_weighted_minmax_by_hand():
    # rerank [0.2, 0.6, 1.0] -> [0, .5, 1]; dense [0.5, 0.1, 0.3] -> [1, 0, .5]; weights .75/.25
    out = combine({"rerank": [0.2, 0.6, 1.0], "dense": [0.5, 0.1, 0.3]},
                  {"rerank": 3, "dense": 1})
    assert [round(c.score, 6) for c in out] == [0.25, 0.375, 0.875]
    assert out[2].contributions == pytest.approx({"rerank": 0.75, "dense": 0.125})
    assert all(abs(sum(c.contributions.values()) - c.score) < 1e-12 for c in out)


def test_constant_signal_counts_fully_for_everyone():
    out = combine({"rerank": [0.4, 0.4], "bm25": [3.0, 1.0]}, {"rerank": 0.5, "bm25": 0.5})
    assert [c.score for c in out] == [1.0, 0.5]


@pytest.mark.parametrize(("weights", "message", "in_config"), [
    ({"rerank": 1, "price": 1}, "unknown signal(s) price; valid: rerank, dense, bm25, fused",
     "unknown signal(s) price"),
    ({"rerank": -1}, "weights must be finite numbers >= 0",
     "[rerank] combine.rerank must be >= 0"),
    ({"rerank": float("nan")}, "weights must be finite numbers >= 0",
     "[rerank] combine.rerank must be >= 0 (a finite number), got nan"),
    ({"rerank": 0}, "at least one weight must be > 0", "at least one weight must be > 0"),
    ({"rerank": "high"}, "weights must be finite numbers >= 0",
     "[rerank] combine.rerank must be a number"),
])
def test_bad_weights_are_config_errors(weights, message, in_config):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_weights(weights)
    with pytest.raises(ConfigError, match=re.escape(in_config)):
        config_from_dict({"rerank": {"combine": weights}})


def test_config_reads_a_combination():
    config = config_from_dict({"rerank": {"combine": {"rerank": 0.7, "dense": 0.3}}})
    assert config.rerank.combine == {"rerank": 0.7, "dense": 0.3}
    with pytest.raises(ConfigError, match=r"\[rerank\] combine must be a table"):
        config_from_dict({"rerank": {"combine": "dense"}})
