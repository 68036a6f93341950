"""HTTP API over `SearchPipeline` (Starlette + uvicorn): /search, /rerank, /v1/embed, /health,
/metrics, /openapi.json and a small search page at /.

Overload policy: at most ``workers`` requests run the models at once (the CPU has few cores;
more threads only slow every request), at most ``queue`` more wait; beyond that a request gets
an immediate 503 with Retry-After instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from importlib import resources
from typing import Any

from pydantic import BaseModel, ValidationError

from rex_search.pipelines.documents import (
    DocumentError,
    capped_scores,
    positions,
    read_document,
)
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.service.cluster_endpoints import (
    HitError,
    ranked_hits,
    read_hits,
    understood_search,
)
from rex_search.service.limits import Limits
from rex_search.service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from rex_search.service.metrics import Metrics
from rex_search.service.models import (
    ClusterRankRequest,
    ClusterUnderstandRequest,
    EmbedRequest,
    RerankRequest,
    SearchRequest,
    first_error,
    openapi_document,
)

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def create_app(pipeline: SearchPipeline | None, limits: Limits | None = None,
               api_key: str | None = None):
    """The ASGI app. ``pipeline`` None means "still loading": /health answers 503. With
    ``api_key``, every POST needs ``Authorization: Bearer <api_key>`` (401 otherwise)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    limits = limits or Limits()
    metrics = Metrics()
    state: dict[str, Any] = {"pipeline": pipeline, "in_flight": 0}
    slots = asyncio.Semaphore(limits.workers)

    async def run_model(fn, *args, deadline: float | None = None, **kwargs):
        """Run blocking model work in a thread, bounded by the worker slots and queue. Work
        whose ``deadline`` (a perf_counter time) passed while it queued is refused at once."""
        if state["in_flight"] >= limits.workers + limits.queue:
            metrics.inc("rex_rejected_total", reason="overload")
            raise ApiError(503, "overloaded", "server is at capacity; retry shortly")
        state["in_flight"] += 1
        metrics.set("rex_in_flight", state["in_flight"])
        try:
            # A free worker runs the request even on a spent budget (the pipeline answers in
            # retrieval order, marked degraded); a busy one is awaited no longer than the
            # budget allows, so the answer comes at the deadline, never later.
            try:
                wait = None if deadline is None or not slots.locked() else \
                    max(0.0, deadline - time.perf_counter())
                await asyncio.wait_for(slots.acquire(), timeout=wait)
            except TimeoutError:
                metrics.inc("rex_rejected_total", reason="budget")
                raise ApiError(503, "budget_spent", "budget_ms was spent waiting for a "
                                                    "worker; retry or allow more time") from None
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            finally:
                slots.release()
        finally:
            state["in_flight"] -= 1
            metrics.set("rex_in_flight", state["in_flight"])

    async def json_body(request: Request) -> dict[str, Any]:
        """The JSON object body. Content-Length is checked before anything is read, and a
        chunked body is read only up to the limit, so an oversized upload costs no memory.
        Only ``application/json`` is accepted: a cross-site form post (text/plain) cannot
        start model work."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(415, "unsupported_media_type",
                           "send the body as JSON with Content-Type: application/json")
        declared = request.headers.get("content-length")
        too_large = ApiError(413, "too_large", f"request body over {limits.max_body_bytes} bytes")
        if declared is not None and (not declared.isdigit()
                                     or int(declared) > limits.max_body_bytes):
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise too_large
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            data = json.loads(raw or b"{}")
        except RecursionError:
            raise ApiError(400, "invalid_json", "request body is nested too deeply") from None
        except ValueError as exc:
            raise ApiError(400, "invalid_json", f"request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_request", "request body must be a JSON object")
        return data

    def ready() -> SearchPipeline:
        if state["pipeline"] is None:
            raise ApiError(503, "not_ready", "model and index are still loading")
        return state["pipeline"]

    def validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
        try:
            return model.model_validate(data, context={"limits": limits})
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", first_error(exc)) from None

    async def search(request: Request) -> JSONResponse:
        arrived = time.perf_counter()  # budget_ms counts from here: queueing included
        body = validated(SearchRequest, await json_body(request))
        query, page, size, budget = body.query, body.page, body.size, body.budget_ms
        filters = body.filters.to_filters() if body.filters is not None else None
        rerank = body.rerank
        pipe = ready()
        deadline = arrived + budget / 1000 if budget is not None else None
        facets = body.facets.to_selection() if body.facets is not None else None
        result = await run_model(pipe.search, query, filters=filters, page=page, size=size,
                                 budget_ms=budget, rerank=rerank, started=arrived,
                                 deadline=deadline, facets=facets, interpret=body.interpret,
                                 views=body.views)
        for stage, ms in result.timings_ms.items():
            if stage != "cached":
                metrics.observe("rex_stage_seconds", ms / 1000, stage=stage)
        if result.degraded:
            metrics.inc("rex_degraded_total")
        return JSONResponse(result.to_dict())

    async def rerank(request: Request) -> JSONResponse:
        """The hosted-rerank shape, at /rerank, /v1/rerank and /v2/rerank: {model?, query,
        documents, top_n?, return_documents?, max_tokens_per_doc?, rules?} -> {id, model,
        results: [{index, relevance_score, document?}], meta}. Documents: see
        `pipelines.documents`. The query is understood and the rules run as in /search (the
        model reads "running shoes", not "no skechers"); a document a rule removes is left out
        of ``results`` and listed in ``meta.removed``. ``rules: false``: the model alone.
        ``top_n`` is clamped to the number of documents, as the hosted APIs do."""
        body = validated(RerankRequest, await json_body(request))
        docs = body.documents
        try:
            items = [read_document(i, d, limits.max_document_chars) for i, d in enumerate(docs)]
            index_of = positions(items)
        except DocumentError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        pipe = ready()
        budget = getattr(pipe.reranker, "max_tokens", None)
        if body.max_tokens_per_doc is not None and budget is not None and \
                body.max_tokens_per_doc < budget:
            raise ApiError(422, "invalid_request", f"max_tokens_per_doc: this model reads up to "
                           f"{budget} tokens per (query, document) pair and cannot cut documents "
                           f"shorter; send shorter documents, or {budget} or more")
        result = await run_model(pipe.rerank, body.query, items, apply_rules=body.rules,
                                 candidate_brands=True)
        if result.degraded:  # no model scores: an order without scores is no rerank answer
            logger.warning("rerank %s: %s", request.state.request_id, result.degraded_reason)
            raise ApiError(500, "internal", "the reranker failed; see the server log")
        scores = capped_scores([h.explanation.rerank_score for h in result.hits])
        top_n = min(body.top_n or len(items), len(result.hits))
        results = []
        for hit, score in list(zip(result.hits, scores, strict=True))[:top_n]:
            i = index_of[hit.parent_asin]
            model = hit.explanation.rerank_score
            results.append({
                "index": i, "relevance_score": round(score, 6),
                **({"id": hit.parent_asin} if isinstance(docs[i], dict) and "id" in docs[i]
                   else {}),
                **({"document": {"text": docs[i]} if isinstance(docs[i], str) else docs[i]}
                   if body.return_documents else {}),
                **({"rerank_score": round(model, 6)} if model is not None
                   and round(model, 6) != round(score, 6) else {}),
                **({"rules": [{"rule": e.rule, "action": e.action, "detail": e.detail}
                              for e in hit.explanation.rules]} if hit.explanation.rules else {}),
                **({"weak": hit.weak} if hit.weak is not None else {}),
            })
        removed = [{"index": index_of[asin], **({"id": asin} if isinstance(docs[index_of[asin]],
                                                                          dict) else {}),
                    "rule": effect.rule, "reason": effect.detail or effect.action}
                   for asin, effect in result.removed if asin in index_of]
        version = "2" if request.url.path.startswith("/v2/") else "1"
        meta: dict[str, Any] = {"api_version": {"version": version}}
        if result.good_matches is not None:
            meta.update(good_matches=result.good_matches, min_score=result.min_score)
        if body.rules:
            meta.update(understood=result.constraints, removed=removed)
        return JSONResponse({"id": request.state.request_id, "model": pipe.reranker.name,
                             "results": results, "meta": meta})

    async def cluster_understand(request: Request) -> JSONResponse:
        body = validated(ClusterUnderstandRequest, await json_body(request))
        pipe = ready()
        return JSONResponse(await run_model(understood_search, pipe, body.query, body.size))

    async def cluster_rank(request: Request) -> JSONResponse:
        body = validated(ClusterRankRequest, await json_body(request))
        try:
            items = read_hits(body.ids, body.products, body.stocks)
        except HitError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        pipe = ready()
        return JSONResponse(await run_model(ranked_hits, pipe, body.query, items))

    async def embed(request: Request) -> JSONResponse:
        """Cohere's embed shape: {texts, input_type?} -> {id, texts, embeddings, meta}. An
        OpenSearch ingest pipeline's ``text_embedding`` processor and a ``neural`` query reach
        it through an ml-commons connector, and get the vectors `rex-search index` stores."""
        body = validated(EmbedRequest, await json_body(request))
        # Before its cluster index exists, `serve` embeds already (the cluster's ingest
        # pipeline needs this endpoint to build that index).
        embedder = state["pipeline"].embedder if state["pipeline"] is not None else \
            state.get("embedder")
        if embedder is None:
            raise ApiError(503, "not_ready", "the embedder is still loading")
        encode = embedder.encode_queries if body.input_type == "search_query" else \
            embedder.encode
        vectors = await run_model(encode, body.texts)
        return JSONResponse({
            "id": request.state.request_id, "texts": body.texts,
            "embeddings": [[float(x) for x in row] for row in vectors],
            "response_type": "embeddings_floats",
            "meta": {"api_version": {"version": "1"}, "model": embedder.model_id,
                     "dimension": int(embedder.dim), "input_type": body.input_type}})

    async def health(request: Request) -> JSONResponse:
        pipe = state["pipeline"]
        if pipe is None:
            waiting = state.get("waiting_for")
            return JSONResponse({"status": "waiting for the index", "index": waiting,
                                 "embed": "ready"} if waiting else {"status": "loading"},
                                status_code=503)
        try:  # off the event loop: a busy index must not stall every other request
            count = await asyncio.wait_for(asyncio.to_thread(pipe.backend.count), 2.0)
        except Exception as exc:  # noqa: BLE001 (health reports, never raises)
            return JSONResponse({"status": "degraded", "reranker": pipe.reranker.name,
                                 "reason": f"index not readable ({type(exc).__name__})"},
                                status_code=503)
        return JSONResponse({"status": "ready", "reranker": pipe.reranker.name,
                             "documents": count})

    async def metrics_endpoint(request: Request) -> Response:
        pipe = state["pipeline"]
        cache = getattr(pipe.reranker, "cache", None) if pipe else None
        if cache is not None:
            metrics.set("rex_rerank_cache_hit_rate", cache.hit_rate)
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    async def page(request: Request) -> HTMLResponse:
        html = resources.files("rex_search").joinpath("static/index.html").read_text()
        return HTMLResponse(html)

    routes = [Route("/search", search, methods=["POST"]),
              Route("/rerank", rerank, methods=["POST"]),
              Route("/v1/rerank", rerank, methods=["POST"]),
              Route("/v2/rerank", rerank, methods=["POST"]),
              Route("/opensearch/understand", cluster_understand, methods=["POST"]),
              Route("/opensearch/rank", cluster_rank, methods=["POST"]),
              Route("/v1/embed", embed, methods=["POST"]),
              Route("/health", health), Route("/metrics", metrics_endpoint),
              Route("/openapi.json", openapi), Route("/", page)]
    known_paths = {route.path for route in routes}

    async def observe(request: Request, call_next) -> Response:
        given = request.headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        started = time.perf_counter()
        # A bounded label: the route, never the raw path (every 404 path would add series).
        path = request.url.path if request.url.path in known_paths else "other"
        request.state.request_id = request_id
        try:
            if api_key is not None and request.method == "POST" and \
                    not _authorized(request.headers.get("authorization", ""), api_key):
                raise ApiError(401, "unauthorized", "send Authorization: Bearer <api key>")
            response = await call_next(request)
        except ApiError as exc:
            response = JSONResponse({"error": {"type": exc.kind, "message": exc.message},
                                     "request_id": request_id}, status_code=exc.status)
            if exc.status == 503:
                response.headers["Retry-After"] = "1"
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
        except ClientDisconnect:  # gone before its body arrived (or cut by the read timeout)
            logger.info("request %s %s: the client left before its request arrived",
                        request_id, path)
            response = Response(status_code=499)  # nginx's "client closed request"
        except Exception:
            logger.exception("request %s %s failed", request_id, path)
            response = JSONResponse({"error": {"type": "internal", "message":
                                               "internal error; see the server log",
                                               }, "request_id": request_id}, status_code=500)
        elapsed = time.perf_counter() - started
        response.headers["X-Request-ID"] = request_id
        response.headers.update(SECURITY_HEADERS)
        metrics.inc("rex_requests_total", path=path, status=str(response.status_code))
        metrics.observe("rex_request_seconds", elapsed, path=path)
        logger.info("%s %s %s %d %.1fms", request_id, request.method, path,
                    response.status_code, elapsed * 1000)
        return response

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 404)
        kind = "method_not_allowed" if status == 405 else "not_found"
        # Routing errors are answered inside the middleware, which has set the request id.
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex[:16]
        return JSONResponse({"error": {"type": kind, "message":
                                       f"{request.method} {request.url.path[:100]}: {kind}"},
                             "request_id": request_id}, status_code=status)

    app = Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=observe)],
                    exception_handlers={404: not_found, 405: not_found})
    app.state.rex = state
    app.state.metrics = metrics
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rex-search")
    except PackageNotFoundError:
        return "0+unknown"


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _authorized(header: str, api_key: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              api_key.encode())
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
                                "style-src 'self' 'unsafe-inline'; img-src * data:; "
                                "frame-ancestors 'none'"),
}


OPENAPI: dict[str, Any] = openapi_document(_version())
