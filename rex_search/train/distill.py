"""Keep what the bi-encoder knows: its cosine as a soft teacher for the cross-encoder.

A cross-encoder fine-tuned from all-MiniLM-L6-v2 on one catalog's weak labels learns that
catalog and forgets the general semantic similarity the bi-encoder was trained for on a
billion pairs, so it ranks other retailers' products worse than the cosine it reranks. Two
measures keep that knowledge (Hinton et al. 2015, knowledge distillation with soft targets):

* every graded pair's target becomes ``(1 - alpha) * grade + alpha * teacher``, where
  ``teacher = sigmoid(a * cosine + b)`` is the bi-encoder cosine calibrated to the grades
  (a, b fitted by least squares on the same pairs);
* real shoppers' queries (which have no graded products) are paired with their nearest and
  some random catalog products, labelled by the teacher alone.

The teacher reads clean text (``embedding_text``), while the student reads the pair in the
form the synthesiser chose (title only, HTML, ...): the student learns to reach the same
judgment from poorer text.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from rex_search.catalog.schema import Product, embedding_text
from rex_search.train.synth import Pair
from rex_search.train.text_forms import description_in_form, pick_form


def fit_calibration(cosines: np.ndarray, grades: np.ndarray,
                    steps: int = 2000, lr: float = 0.5) -> tuple[float, float]:
    """(a, b) minimising mean (sigmoid(a * cos + b) - grade)^2, by gradient descent."""
    a, b = 5.0, -2.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(a * cosines + b)))
        g = 2 * (p - grades) * p * (1 - p)
        a -= lr * float((g * cosines).mean()) * 10
        b -= lr * float(g.mean())
    return a, b


def calibrated(cosine: float, a: float, b: float) -> float:
    return 1.0 / (1.0 + math.exp(-(a * cosine + b)))


def blend(pairs: Sequence[Pair], cosines: np.ndarray, alpha: float,
          a: float, b: float) -> list[Pair]:
    """Each pair's relevance moved ``alpha`` of the way to the calibrated teacher."""
    return [replace(p, relevance_score=round((1 - alpha) * p.relevance_score
                                             + alpha * calibrated(float(c), a, b), 4),
                    teacher=round(float(c), 4))
            for p, c in zip(pairs, cosines, strict=True)]


def pair_cosines(embedder, pairs: Sequence[Pair], products: dict[str, Product]) -> np.ndarray:
    """Bi-encoder cosine of each pair, on the clean text of the product (teacher's view)."""
    queries = sorted({p.query for p in pairs})
    q_vec = dict(zip(queries, embedder.encode_queries(queries), strict=True))
    texts = sorted({_clean(p, products) for p in pairs})
    t_vec = dict(zip(texts, embedder.encode(texts), strict=True))
    return np.array([float(q_vec[p.query] @ t_vec[_clean(p, products)]) for p in pairs])


def _clean(pair: Pair, products: dict[str, Product]) -> str:
    product = products.get(pair.parent_asin)
    return embedding_text(product or Product(pair.parent_asin, pair.title,
                                             description=pair.description))


def teacher_pairs(embedder, queries: Sequence[str], products: Sequence[Product],
                  a: float, b: float, nearest: int = 6, random_count: int = 2,
                  seed: int = 0) -> list[Pair]:
    """Real query strings with their ``nearest`` catalog products by cosine and a few random
    ones, each labelled by the calibrated teacher alone."""
    rng = random.Random(seed)
    matrix = embedder.encode([embedding_text(p) for p in products])
    pairs: list[Pair] = []
    for query, vector in zip(queries, embedder.encode_queries(list(queries)),
                             strict=True):
        cos = matrix @ vector
        picks = list(np.argsort(-cos)[:nearest]) + rng.sample(range(len(products)), random_count)
        for i in dict.fromkeys(int(i) for i in picks):
            product = products[i]
            body = description_in_form(product, pick_form(rng), rng)
            pairs.append(Pair(query, product.parent_asin, product.title, body,
                              round(calibrated(float(cos[i]), a, b), 4), "teacher",
                              round(float(cos[i]), 4)))
    return pairs


def real_exact_pairs(rows: Sequence[dict], negatives: Sequence[Product],
                     per_query_negatives: int = 3, seed: int = 0) -> list[Pair]:
    """Real (query, product) Exact pairs (ESCI rows with title, description, bullet points,
    brand) at grade 1.0, plus random catalog products at 0.0 for each query."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for row in rows:
        bullets = [b for b in str(row.get("bullet_points") or "").split("\n") if b.strip()]
        product = Product(str(row["parent_asin"]), str(row["title"]),
                          brand=row.get("brand") or None, features=tuple(bullets),
                          description=str(row.get("description") or ""))
        body = description_in_form(product, pick_form(rng), rng)
        pairs.append(Pair(str(row["query_string"]), product.parent_asin, product.title, body,
                          1.0, "real-exact"))
    for query in sorted({p.query for p in pairs}):
        for product in rng.sample(list(negatives), per_query_negatives):
            body = description_in_form(product, pick_form(rng), rng)
            pairs.append(Pair(query, product.parent_asin, product.title, body, 0.0,
                              "real-random-negative"))
    return pairs
