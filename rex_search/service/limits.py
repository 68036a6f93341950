"""The service's limits, in one place: the validators, the OpenAPI document and `serve`'s
options all read them from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how many run or wait at once."""

    max_query_chars: int = 512
    max_documents: int = 1000
    max_document_chars: int = 20_000
    max_body_bytes: int = 2_000_000
    max_page_size: int = 100
    workers: int = 2
    queue: int = 8
