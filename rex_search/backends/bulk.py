"""Bulk writes to a search cluster, shaped like opensearch-py's ``helpers.streaming_bulk``:
bounded chunks; items rejected with 429/502/503/504, and chunks hit by a connection error, are
resent (only those) with capped exponential backoff; everything else that fails is reported per
item; a caller for whom any failure is an error raises one :class:`BulkError` listing them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rex_search.backends.connection import redact
from rex_search.errors import BackendError

logger = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 502, 503, 504})
Operation = tuple[dict[str, Any], dict[str, Any] | None]  # (action, source or None)
Failure = tuple[str, str]  # (document id, reason)


class BulkError(BackendError):
    """Some items failed for good; ``failures`` lists each (id, reason)."""

    def __init__(self, failures: list[Failure]) -> None:
        shown = "; ".join(f"{i}: {r}" for i, r in failures[:3])
        super().__init__(f"{len(failures)} document(s) failed ({shown}"
                         f"{', ...' if len(failures) > 3 else ''})")
        self.failures = failures


def equal_jitter(delay: float) -> float:
    """Half the delay plus a random half: writers that were throttled together do not all
    come back at the same instant (AWS Architecture Blog, "Exponential Backoff and Jitter")."""
    return delay / 2 + random.uniform(0, delay / 2)


def backoff_delay(attempt: int, backoff: float, max_backoff: float,
                  jitter: Callable[[float], float] = equal_jitter) -> float:
    """Capped exponential backoff with jitter for retry ``attempt`` (0-based)."""
    return jitter(min(max_backoff, backoff * 2 ** attempt))


def streaming_bulk(send: Callable[[list[dict[str, Any]]], dict[str, Any]],
                   operations: Sequence[Operation], chunk_size: int = 500,
                   max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                   connection_errors: tuple[type[BaseException], ...] = (ConnectionError,),
                   sleep: Callable[[float], None] = time.sleep,
                   jitter: Callable[[float], float] = equal_jitter) -> list[Failure]:
    """Send ``operations`` through ``send`` (one ``_bulk`` request body -> its response);
    returns the (id, reason) of items that failed after the retries."""
    failures: list[Failure] = []
    for chunk in _chunks(operations, chunk_size):
        failures += _send_with_retries(send, chunk, max_retries, backoff, max_backoff,
                                       connection_errors, sleep, jitter)
    return failures


def _chunks(operations: Sequence[Operation], size: int) -> Iterator[list[Operation]]:
    for start in range(0, len(operations), size):
        yield list(operations[start:start + size])


def _body(operations: list[Operation]) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = []
    for action, source in operations:
        body.append(action)
        if source is not None:
            body.append(source)
    return body


def _doc_id(action: dict[str, Any]) -> str:
    return str(next(iter(action.values()))["_id"])


def _outcome(response: dict[str, Any], pending: list[Operation]
             ) -> tuple[list[Operation], list[Failure], str]:
    """(operations to resend, permanent failures, last retryable reason) of one response."""
    retry: list[Operation] = []
    failed: list[Failure] = []
    last = ""
    for operation, item in zip(pending, response.get("items", []), strict=True):
        result = next(iter(item.values()))
        status = int(result.get("status", 500))
        if status < 300:
            continue
        error = result.get("error", {})
        reason = f"{status} {error.get('type', '')}: {error.get('reason', '')}" \
            if isinstance(error, dict) else f"{status} {error}"
        if status in RETRY_STATUSES:
            retry.append(operation)
            last = reason
        else:
            failed.append((_doc_id(operation[0]), reason))
    return retry, failed, last


def _send_with_retries(send: Callable[[list[dict[str, Any]]], dict[str, Any]],
                       chunk: list[Operation], max_retries: int, backoff: float,
                       max_backoff: float, connection_errors: tuple[type[BaseException], ...],
                       sleep: Callable[[float], None],
                       jitter: Callable[[float], float]) -> list[Failure]:
    pending, failures, last = chunk, [], ""
    for attempt in range(max_retries + 1):
        try:
            response = send(_body(pending))
        except connection_errors as exc:
            retry, last = list(pending), f"connection error: {redact(str(exc))}"
        else:
            retry, failed, last = _outcome(response, pending)
            failures += failed
        if not retry:
            return failures
        pending = retry
        if attempt < max_retries:
            delay = backoff_delay(attempt, backoff, max_backoff, jitter)
            logger.warning("bulk: retrying %d item(s) in %.1f s (%s)", len(retry), delay, last)
            sleep(delay)
    return failures + [(_doc_id(a), f"gave up after {max_retries} retries: {last}")
                       for a, _ in pending]
