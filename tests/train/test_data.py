"""The default reranker's training data: query styles, text forms and the bi-encoder teacher."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np

from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import Product
from rex_search.train import distill
from rex_search.train.data import as_judgments, training_pairs
from rex_search.train.synth import Pair, _words, misspell, synthesize
from rex_search.train.text_forms import description_in_form
from tests.conftest import RULES_FIXTURE


def products() -> list[Product]:
    return [p for b in read_catalog(RULES_FIXTURE) for p in b.products]


def test_misspelling_drops_or_swaps_one_letter():
    rng = random.Random(0)
    for _ in range(50):  # (a word with no doubled letter: swapping "nn" would change nothing)
        typo = misspell("charger", rng)
        assert typo != "charger" and len(typo) in (6, 7) and Counter(typo) <= Counter("charger")
    assert misspell("shoe", rng) == "shoe"  # short words are left alone


def test_without_queries_grade_the_excluded_word():
    pairs = [p for p in synthesize(products(), queries=200, seed=1) if " without " in p.query]
    assert pairs, "the fixture catalog yields 'without' queries"
    for p in pairs:
        word = p.query.split(" without ")[1]
        if " " in word or word != word.strip():  # a typo may split nothing: skip odd cases
            continue
        if p.kind == "exact":
            assert word not in _words(p.title), p
        if p.kind == "attribute-mismatch":
            assert word in _words(p.title) or p.relevance_score == 0.5


def test_text_forms():
    product = Product("A", "Wool socks", brand="Acme", features=("Soft", "Warm"),
                      description="Machine washable")
    rng = random.Random(0)
    assert description_in_form(product, "title", rng) == ""
    assert description_in_form(product, "plain", rng) == "Soft Warm Machine washable"
    assert description_in_form(product, "attributes", rng).startswith("Brand: Acme.")
    html = description_in_form(product, "html", rng)
    assert html.startswith('<div class="description">') and "<li>Soft</li>" in html


def test_calibration_recovers_a_known_sigmoid_and_blend_mixes_by_alpha():
    cos = np.linspace(-0.2, 0.9, 200)
    grades = 1 / (1 + np.exp(-(6.0 * cos - 2.5)))
    a, b = distill.fit_calibration(cos, grades, steps=20000)
    assert abs(a - 6.0) < 0.3 and abs(b + 2.5) < 0.15
    pair = Pair("q", "A", "t", "", 1.0, "exact")
    (blended,) = distill.blend([pair], np.array([0.5]), 0.3, 6.0, -2.5)
    assert math.isclose(blended.relevance_score,
                        round(0.7 * 1.0 + 0.3 / (1 + math.exp(-0.5)), 4))
    assert blended.teacher == 0.5


def test_default_training_data_has_real_and_teacher_pairs(embedder, tmp_path):
    queries = tmp_path / "queries.txt"
    queries.write_text("running shoes\nlaptop bag 16 inch\n")
    pairs = training_pairs(products(), embedder, queries=30, real_queries=queries)
    kinds = {p.kind for p in pairs}
    assert {"exact", "real-exact", "teacher"} <= kinds
    teacher = [p for p in pairs if p.kind == "teacher"]
    assert {p.query for p in teacher} == {"running shoes", "laptop bag 16 inch"}
    assert all(0 <= p.relevance_score <= 1 and p.teacher is not None for p in pairs)
    best = max(teacher, key=lambda p: p.teacher if p.query == "running shoes" else -1)
    assert "shoe" in best.title.lower()  # the teacher's nearest product is a shoe
    judged = as_judgments(pairs)
    assert sum(len(q.docs) for q in judged) == len(pairs)
