"""Run the real ASGI app under uvicorn on a loopback port, in a thread, for tests."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from rex_search.service.server import server_config
from tests.opensearch_node import free_port


@contextmanager
def running(app, read_timeout: float = 10.0):
    """The app served as `rex-search serve` serves it (its protocol and limits)."""
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, read_timeout,
                                          log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
