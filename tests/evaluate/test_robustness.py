from __future__ import annotations

import pytest

from rex_search.catalog.text import plain_text
from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments
from rex_search.evaluate.robustness import variant

QUERIES = [QueryJudgments("q", "wool socks", (
    JudgedDoc("A", "Wool socks", "Soft & warm\nMachine washable", 1.0),
    JudgedDoc("B", "Cotton shirt", "", 0.0)))]


def test_title_only_removes_every_description_and_keeps_grades():
    out = variant(QUERIES, "title-only")
    assert [(d.title, d.description, d.relevance) for d in out[0].docs] == [
        ("Wool socks", "", 1.0), ("Cotton shirt", "", 0.0)]
    assert QUERIES[0].docs[0].description == "Soft & warm\nMachine washable"  # input intact


def test_html_wraps_the_same_words_in_markup_and_boilerplate():
    out = variant(QUERIES, "html")
    html = out[0].docs[0].description
    assert html.startswith("<div") and "<li>Soft &amp; warm</li>" in html
    assert "Soft & warm Machine washable" in plain_text(html)
    assert variant(QUERIES, "html") == out  # seeded


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: as-is, title-only, html"):
        variant(QUERIES, "pdf")
