"""The HTTP API's request and response models (pydantic): requests are validated by them, and
the OpenAPI document is generated from them and from the result dataclasses, so the two cannot
drift apart.

Limits that the operator can change (`Limits`) reach the validators through the validation
context; the document shows the defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rex_search.backends.base import Filters
from rex_search.pipelines.facets import FacetSelection
from rex_search.query import check_query
from rex_search.results import SearchResult
from rex_search.service.limits import Limits

Number = StrictFloat  # strict: ints are numbers, strings and booleans are not
MAX_BUDGET_MS = 600_000.0  # ten minutes: beyond it a budget is a mistake (Infinity)


DEFAULTS = Limits()  # what the OpenAPI document shows; an operator's limits come per request


def _limit(info: ValidationInfo, name: str) -> int:
    limits = (info.context or {}).get("limits") or DEFAULTS
    return int(getattr(limits, name))


def _checked_query(value: str, info: ValidationInfo) -> str:
    return check_query(value, _limit(info, "max_query_chars"))


# The one query check of the CLI and the Python API, at the operator's length limit.
Query = Annotated[StrictStr, AfterValidator(_checked_query),
                  Field(description="the shopper's query",
                        json_schema_extra={"maxLength": DEFAULTS.max_query_chars})]


class FilterFields(BaseModel):
    """Hard constraints pushed into retrieval."""

    model_config = ConfigDict(extra="forbid")

    brands: list[StrictStr] = Field(default_factory=list, description="only these brands")
    exclude_brands: list[StrictStr] = Field(default_factory=list)
    categories: list[StrictStr] = Field(default_factory=list)
    min_price: Number | None = Field(None, ge=0)
    max_price: Number | None = Field(None, ge=0)
    in_stock: StrictBool | None = Field(None, description="true: only products known in stock")
    exclude_out_of_stock: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> FilterFields:
        self.to_filters()  # FilterError (a ValueError) for min_price > max_price
        return self

    def to_filters(self) -> Filters:
        return Filters(**self.model_dump())


class FacetFields(BaseModel):
    """Facet values to narrow the hits to (values of one facet are alternatives)."""

    model_config = ConfigDict(extra="forbid")

    brand: list[StrictStr] = Field(default_factory=list, max_length=100)
    category: list[StrictStr] = Field(default_factory=list, max_length=100)
    price: list[StrictStr] = Field(default_factory=list, max_length=100,
                                   description="price bands, e.g. 'under $25', 'no price'")
    stock: list[StrictStr] = Field(default_factory=list, max_length=3,
                                   description="'in stock', 'out of stock', 'stock unknown'")

    @model_validator(mode="after")
    def _known_values(self) -> FacetFields:
        self.to_selection()  # QueryError (a ValueError) for a price band or stock value it lacks
        return self

    def to_selection(self) -> FacetSelection:
        return FacetSelection(**{k: tuple(v) for k, v in self.model_dump().items()})


class SearchRequest(BaseModel):
    """POST /search."""

    query: Query
    page: StrictInt = Field(1, ge=1, le=10_000)
    size: StrictInt = Field(10, ge=1, json_schema_extra={"maximum": DEFAULTS.max_page_size})
    budget_ms: Number | None = Field(None, gt=0, le=MAX_BUDGET_MS, allow_inf_nan=False,
                                     description="latency budget, queueing included")
    filters: FilterFields | None = None
    rerank: StrictBool = Field(True, description="false: retrieval order, for comparison")
    facets: FacetFields | None = None
    interpret: StrictBool = Field(True, description="false: search the text literally (no "
                                  "brands, prices or sizes understood from it)")
    views: StrictBool = Field(False, description="add facet counts, what the query's filters "
                              "hid, and the retrieval order beside the final one")

    @field_validator("size")
    @classmethod
    def _size(cls, value: int, info: ValidationInfo) -> int:
        most = _limit(info, "max_page_size")
        if value > most:
            raise ValueError(f"at most {most}")
        return value


class RerankRequest(BaseModel):
    """POST /rerank, /v1/rerank, /v2/rerank (the hosted-rerank shape). Documents are strings
    (one already in the product format is read back as title and description) or objects
    with id/title/text/description."""

    model: StrictStr | None = Field(None, description="accepted and ignored")
    query: Query
    documents: list[Any] = Field(json_schema_extra={
        "minItems": 1, "maxItems": DEFAULTS.max_documents,
        "items": {"oneOf": [{"type": "string"}, {"type": "object"}]}})
    top_n: StrictInt | None = Field(None, ge=1, description="clamped to len(documents)")
    return_documents: StrictBool = False
    max_tokens_per_doc: StrictInt | None = Field(
        None, ge=1, description="honoured up to the model's own per-pair budget (a larger value "
        "changes nothing); below it the request is refused")
    rules: StrictBool = Field(True, description="false: the model alone, on the query as typed "
                              "(no understanding, no business rules)")

    @field_validator("documents")
    @classmethod
    def _count(cls, value: list, info: ValidationInfo) -> list:
        most = _limit(info, "max_documents")
        if not value:
            raise ValueError("must be a non-empty list")
        if len(value) > most:
            raise ValueError(f"at most {most} documents per call, got {len(value)}")
        for i, doc in enumerate(value):
            if not isinstance(doc, str | dict):
                raise ValueError(f"documents[{i}] must be a string or an object")
        return value


class ClusterUnderstandRequest(BaseModel):
    """POST /opensearch/understand (an OpenSearch search pipeline's request processor)."""

    query: Query
    size: StrictInt = Field(10, ge=0, le=10_000, description="the search's size")
    start: StrictInt = Field(0, ge=0, le=0, alias="from", description="the search's from: "
                             "the pipeline serves the first page only")


class ClusterRankRequest(BaseModel):
    """POST /opensearch/rank (an OpenSearch search pipeline's response processor): the query
    as typed and, per hit in the cluster's order, its id, product and stock fields."""

    query: Query
    ids: list[StrictStr] = Field(max_length=DEFAULTS.max_documents)
    products: list[StrictStr] = Field(max_length=DEFAULTS.max_documents)
    stocks: list[StrictStr] = Field(max_length=DEFAULTS.max_documents)


class EmbedRequest(BaseModel):
    """POST /v1/embed (Cohere's embed shape, which OpenSearch's ml-commons connector blueprints
    speak): the texts embedded with the index's own embedder. ``search_query`` embeds them as
    queries (the model's query instruction); the other input types as documents."""

    model: StrictStr | None = Field(None, description="accepted and ignored: meta.model names "
                                    "the embedder the index was built with")
    texts: list[StrictStr] = Field(json_schema_extra={"minItems": 1,
                                                      "maxItems": DEFAULTS.max_documents})
    input_type: Literal["search_document", "search_query", "classification",
                        "clustering"] = "search_document"
    truncate: Literal["END"] | None = Field(None, description="long texts are cut at the end to "
                                            "the model's token budget (the only mode served)")
    embedding_types: list[Literal["float"]] | None = Field(None, description="float only")

    @field_validator("texts")
    @classmethod
    def _count(cls, value: list[str], info: ValidationInfo) -> list[str]:
        most, longest = _limit(info, "max_documents"), _limit(info, "max_document_chars")
        if not value:
            raise ValueError("must be a non-empty list")
        if len(value) > most:
            raise ValueError(f"at most {most} texts per call, got {len(value)}")
        for i, text in enumerate(value):
            if len(text) > longest:
                raise ValueError(f"texts[{i}] has {len(text)} characters, at most {longest}")
        return value


class ApiVersion(BaseModel):
    version: str


class EmbedMeta(BaseModel):
    api_version: ApiVersion
    model: str = Field(description="the embedder the vectors come from")
    dimension: int
    input_type: str


class EmbedResponse(BaseModel):
    id: str = Field(description="the request id")
    texts: list[str]
    embeddings: list[list[float]] = Field(description="one unit-length vector per text, in "
                                          "order: the vectors `rex-search index` stores")
    response_type: Literal["embeddings_floats"] = "embeddings_floats"
    meta: EmbedMeta


class RerankResult(BaseModel):
    index: int
    relevance_score: float = Field(description="in [0, 1]; with rules, the model's score "
                                   "capped by the result above it, so results read best-first")
    id: str | None = Field(None, description="the document's id, when it had one")
    document: dict[str, Any] | None = Field(None, description="with return_documents")
    rerank_score: float | None = Field(None, description="the model's own score, when a rule "
                                       "moved the document below a lower-scored one")
    rules: list[dict[str, str]] | None = Field(None, description="what each rule did to it")
    weak: bool | None = Field(None, description="its calibrated model score is below the "
                              "service's min_score (absent: the model has no calibration)")


class RerankRemoved(BaseModel):
    index: int
    id: str | None = None
    rule: str
    reason: str


class RerankMeta(BaseModel):
    api_version: ApiVersion
    understood: dict[str, Any] | None = Field(None, description="the query as the model read "
                                              "it, and the constraints taken from it")
    removed: list[RerankRemoved] = Field(default_factory=list, description="documents a rule "
                                         "removed (an excluded brand, a collapsed variant): "
                                         "not in results")
    good_matches: int | None = Field(None, description="documents whose calibrated score "
                                     "reaches min_score; 0: none matches the query well "
                                     "(absent: the model has no calibration)")
    min_score: float | None = None


class RerankResponse(BaseModel):
    id: str = Field(description="the request id")
    model: str
    results: list[RerankResult]
    meta: RerankMeta


def first_error(exc: ValidationError) -> str:
    """The first problem, naming its field: ``size: Input should be ...``."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    adapters: list[tuple[str, Literal["validation", "serialization"], TypeAdapter[Any]]] = [
                ("SearchRequest", "validation", TypeAdapter(SearchRequest)),
                ("SearchResult", "serialization", TypeAdapter(SearchResult)),
                ("RerankRequest", "validation", TypeAdapter(RerankRequest)),
                ("ClusterUnderstandRequest", "validation", TypeAdapter(ClusterUnderstandRequest)),
                ("ClusterRankRequest", "validation", TypeAdapter(ClusterRankRequest)),
                ("RerankResponse", "serialization", TypeAdapter(RerankResponse)),
                ("EmbedRequest", "validation", TypeAdapter(EmbedRequest)),
                ("EmbedResponse", "serialization", TypeAdapter(EmbedResponse))]
    refs, definitions = TypeAdapter.json_schemas(
        adapters, ref_template="#/components/schemas/{model}")
    return ({key: schema for (key, _), schema in refs.items()},
            definitions.get("$defs", {}))


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document, generated from the models above."""
    refs, components = _schemas()

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": refs[name]}}}

    def answer(name: str, description: str) -> dict[str, Any]:
        return {"200": {"description": description,
                        "content": {"application/json": {"schema": refs[name]}}},
                "422": {"description": "invalid request: the message names the field"}}

    cluster = {
        "/opensearch/understand": {"post": {
            "summary": "An OpenSearch search pipeline's request processor: the query "
                       "understood, as rex-search's hybrid retrieval query",
            "requestBody": body("ClusterUnderstandRequest"),
            "responses": {"200": {"description": "{query, size}"},
                          "422": {"description": "invalid request: the message names the "
                                                 "field"}}}},
        "/opensearch/rank": {"post": {
            "summary": "An OpenSearch search pipeline's response processor: one score and "
                       "explanation per hit, reranked and ruled",
            "requestBody": body("ClusterRankRequest"),
            "responses": {"200": {"description": "{scores, explanations}"},
                          "422": {"description": "invalid request: the message names the "
                                                 "hit or field"}}}}}
    rerank = {"post": {"summary": "Score documents for a query (hosted-rerank shape)",
                       "requestBody": body("RerankRequest"),
                       "responses": answer("RerankResponse", "documents, best first")}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rex-search", "version": version},
        "paths": {
            "/search": {"post": {"summary": "Retrieve, rerank, apply rules; explained results",
                                 "requestBody": body("SearchRequest"),
                                 "responses": answer("SearchResult", "one page of results")}},
            "/rerank": rerank, "/v1/rerank": rerank, "/v2/rerank": rerank, **cluster,
            "/v1/embed": {"post": {"summary": "Embed texts with the index's embedder (Cohere's "
                                              "embed shape, for OpenSearch connectors)",
                                   "requestBody": body("EmbedRequest"),
                                   "responses": answer("EmbedResponse", "one vector per text")}},
            "/health": {"get": {"summary": "200 when model and index are loaded, else 503",
                                "responses": {"200": {"description": "ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "text format"}}}},
            "/openapi.json": {"get": {"summary": "this document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": components},
    }
