"""Robustness variants of a judgment set: the same queries and grades, product text in the
forms other retailers' catalogs have, so generalisation is measured here and not only on
held-out sets we cannot see.

* ``as-is``: the judgments unchanged;
* ``title-only``: every description removed (catalogs that index titles only);
* ``html``: each description as an HTML list wrapped in shop boilerplate, as feeds export it.

The leave-category-out variant needs training and lives in ``benchmarks/robustness.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace

from rex_search.errors import ConfigError
from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments

BOILERPLATE = (
    "Shop with confidence: 30-day hassle-free returns.",
    "Please allow 1-3 business days for processing.",
    "We are committed to 100% customer satisfaction!",
    "Actual colors may vary from the picture.",
    "Questions? Contact our friendly support team.",
)


def _title_only(doc: JudgedDoc, rng: random.Random) -> JudgedDoc:
    return replace(doc, description="")


def _html(doc: JudgedDoc, rng: random.Random) -> JudgedDoc:
    lines = [line for line in doc.description.split("\n") if line.strip()]
    items = "".join(f"<li>{line.replace('&', '&amp;')}</li>" for line in lines)
    return replace(doc, description=(
        f'<div class="product-info"><p><strong>{rng.choice(BOILERPLATE)}</strong></p>'
        f'<ul class="features">{items}</ul><p><em>{rng.choice(BOILERPLATE)}</em>&nbsp;</p>'
        "</div>"))


VARIANTS: dict[str, Callable[[JudgedDoc, random.Random], JudgedDoc] | None] = {
    "as-is": None, "title-only": _title_only, "html": _html}


def variant(queries: Sequence[QueryJudgments], name: str, seed: int = 0) -> list[QueryJudgments]:
    """``queries`` with every doc rewritten by the named variant (seeded, deterministic)."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    change = VARIANTS[name]
    if change is None:
        return list(queries)
    rng = random.Random(seed)
    return [replace(q, docs=tuple(change(d, rng) for d in q.docs)) for q in queries]
