"""Typed, frozen results: every hit carries the story of how it got its rank."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class SourceHit:
    """Where a retrieval source (bm25, dense) ranked the product, and its raw score."""

    rank: int
    score: float


@dataclass(frozen=True)
class Candidate:
    parent_asin: str
    fused_rank: int  # 1-based
    fused_score: float
    sources: dict[str, SourceHit]


@dataclass(frozen=True)
class RuleEffect:
    """What one business rule did to one product (e.g. demoted from rank 3 to 9)."""

    rule: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class Explanation:
    """Per-stage provenance of one hit."""

    retrieval: dict[str, SourceHit]
    fused_rank: int
    fused_score: float
    rerank_score: float | None
    rerank_rank: int | None
    # The model's score mapped by the model's calibration (None: not reranked, or the model
    # has no calibration): an estimate of graded relevance that [rerank] min_score applies to.
    calibrated_score: float | None = None
    rules: tuple[RuleEffect, ...] = ()
    # How the final score was made: signal -> weight * normalised signal ([rerank] combine).
    contributions: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    rank: int
    parent_asin: str
    title: str
    brand: str | None
    price: float | None
    in_stock: bool | None
    score: float
    explanation: Explanation
    image: str | None = None  # an http(s) URL from the catalog
    rating: float | None = None  # average rating, 0-5
    rating_count: int | None = None
    category: str | None = None  # the most specific catalog category
    # calibrated score below [rerank] min_score (None: no calibrated score to judge by)
    weak: bool | None = None


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet over the query's candidates: how many have it, whether chosen."""

    value: str
    count: int
    selected: bool = False


@dataclass(frozen=True)
class Hidden:
    """Candidates a filter kept out of the results, and why (``reason`` in plain words)."""

    filter: str  # "exclude_brands", "max_price", "min_price", "in_stock"
    reason: str
    count: int


@dataclass(frozen=True)
class Movement:
    """One product of the retrieval order and where it ended (None: a rule removed it)."""

    parent_asin: str
    title: str
    brand: str | None
    retrieval_rank: int
    final_rank: int | None
    removed_by: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """One page of results plus what the pipeline did to produce it."""

    query: str
    hits: tuple[Hit, ...]
    page: int
    size: int
    total_candidates: int
    reranker: str
    reranked: int
    degraded: bool = False
    degraded_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    removed: tuple[tuple[str, RuleEffect], ...] = ()
    constraints: dict[str, object] = field(default_factory=dict)
    # The page's views (empty unless asked for): facet counts over every candidate, how many
    # candidates the facet selection leaves, what the query's filters hid, retrieval vs final.
    facets: dict[str, tuple[FacetValue, ...]] = field(default_factory=dict)
    matching: int | None = None
    hidden: tuple[Hidden, ...] = ()
    before: tuple[Movement, ...] = ()
    # Candidates whose calibrated score reaches min_score (None: no calibration); 0 means no
    # good match: what is shown is only the closest the catalog has.
    good_matches: int | None = None
    min_score: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
