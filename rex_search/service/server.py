"""The uvicorn server `rex-search serve` runs (and the tests run): its HTTP protocol bounds how
long a client may take to send a request.

uvicorn times out idle keep-alive connections but not a request that arrives slowly: ten
clients each sending half a header line held ten connections open indefinitely (slowloris).
`BoundedH11Protocol` gives every request ``read_timeout`` seconds, from the connection's
first byte or the previous response, to arrive whole (headers and body), as nginx's
``client_header_timeout``/``client_body_timeout`` do; then the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 10.0


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for receiving each request."""

    read_timeout: float = READ_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._arm()  # a connection that never sends a byte is bounded too

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not \
                h11.SEND_BODY:  # the request arrived whole (or the connection is done)
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if getattr(self, "_read_deadline", None) is not None:
            self._read_deadline.cancel()  # type: ignore[union-attr]
            self._read_deadline = None

    def _timed_out(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        logger.warning("closed a connection from %s: its request did not arrive within %.0f s",
                       self.client, self.read_timeout)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app reading the body sees a disconnect
        self.transport.close()


def server_config(app: Any, host: str, port: int, read_timeout: float = READ_TIMEOUT_S,
                  **options: Any) -> uvicorn.Config:
    """uvicorn's configuration with the bounded protocol and 16 KiB of headers at most."""
    protocol = type("BoundedH11Protocol", (BoundedH11Protocol,), {"read_timeout": read_timeout})
    return uvicorn.Config(app, host=host, port=port, http=protocol,
                          h11_max_incomplete_event_size=16 * 1024, **options)
