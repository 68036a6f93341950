from __future__ import annotations

import pytest

from rex_search.backends.base import ScoredId
from rex_search.pipelines.fusion import fuse


def ids(*names: str, scores: tuple[float, ...] | None = None) -> list[ScoredId]:
    scores = scores or tuple(float(len(names) - i) for i in range(len(names)))
    return [ScoredId(n, s) for n, s in zip(names, scores, strict=True)]


def test_rrf_hand_worked():
    fused = fuse({"bm25": ids("a", "b", "c"), "dense": ids("c", "a", "d")}, "rrf", rrf_k=60)
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62, d: 1/63
    assert [c.parent_asin for c in fused] == ["a", "c", "b", "d"]
    assert fused[0].fused_score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].fused_score == pytest.approx(1 / 63 + 1 / 61)
    assert [c.fused_rank for c in fused] == [1, 2, 3, 4]
    a = fused[0].sources
    assert (a["bm25"].rank, a["dense"].rank) == (1, 2)
    assert set(fused[3].sources) == {"dense"}


def test_weighted_minmax_hand_worked():
    lists = {"bm25": ids("a", "b", scores=(10.0, 5.0)),
             "dense": ids("b", "c", scores=(0.9, 0.5))}
    fused = fuse(lists, "weighted", weights={"bm25": 0.25, "dense": 0.75})
    # a: .25*1 = .25 ; b: .25*0 + .75*1 = .75 ; c: .75*0 = 0
    assert [(c.parent_asin, round(c.fused_score, 6)) for c in fused] == [
        ("b", 0.75), ("a", 0.25), ("c", 0.0)]


def test_ties_break_by_id_and_empty_sources():
    fused = fuse({"bm25": ids("z"), "dense": ids("y")}, "rrf")
    assert [c.parent_asin for c in fused] == ["y", "z"]
    assert fuse({"bm25": [], "dense": []}) == []


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="'rrf' or 'weighted', got 'sum'"):
        fuse({}, "sum")  # type: ignore[arg-type]
