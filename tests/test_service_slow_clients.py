"""Slow and half-sent requests cannot hold the server's connections (slowloris): each request
has `read_timeout` seconds to arrive whole; a slow *answer* is not cut."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit

import httpx

from rex_search.service import create_app
from tests.service_server import running


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 answer (headers and its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(4096)
    return head


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(3)
    try:
        while chunk := sock.recv(4096):
            if chunk.startswith(b"HTTP/1.1 "):  # an answer: it was served, not held
                continue
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_half_sent_requests_are_closed_and_others_are_served_meanwhile():
    with running(create_app(None), read_timeout=1.0) as url:
        half_headers = [_connect(url) for _ in range(10)]
        for sock in half_headers:
            sock.sendall(b"POST /search HTTP/1.1\r\nHost: rex\r\nContent-Le")
        half_body = _connect(url)
        half_body.sendall(b"POST /search HTTP/1.1\r\nHost: rex\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        silent = _connect(url)
        assert httpx.get(url + "/health", timeout=5).status_code in (200, 503)
        time.sleep(1.5)
        slow = (*half_headers, half_body, silent)
        held = [s for s in slow if not _closed_by_server(s)]
        for sock in slow:
            sock.close()
        assert not held, f"{len(held)} of 12 slow connections still open after the timeout"
        assert httpx.get(url + "/health", timeout=5).status_code in (200, 503)


def test_a_request_sent_in_pieces_within_the_timeout_is_answered_and_kept_alive():
    with running(create_app(None), read_timeout=1.0) as url:
        sock = _connect(url)
        for _ in range(2):  # two requests on one connection, each arriving in two pieces
            sock.sendall(b"GET /health HTTP/1.1\r\nHo")
            time.sleep(0.6)
            sock.sendall(b"st: rex\r\n\r\n")
            answer = _answer(sock)
            assert answer.startswith(b"HTTP/1.1 503"), answer  # /health: loading
            time.sleep(0.6)  # 1.2 s in all on this connection: each request has its own clock
        sock.close()


async def _slow_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] != "/openapi.json":  # the test server's readiness probe is answered
        await asyncio.sleep(2.0)  # longer than the read timeout: computing, not reading
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


def test_a_slow_answer_is_not_cut_by_the_read_timeout():
    with running(_slow_app, read_timeout=1.0) as url:
        response = httpx.get(url + "/anything", timeout=10)
        assert response.status_code == 200 and response.text == "done"
