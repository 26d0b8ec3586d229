"""A real `rebuild serve` (uvicorn) against connections that hold it: the reviewer's connection exhaustion.

With ``--max-connections 3``, two clients that opened a connection and sent half a request head (and then
nothing) leave room for no more: the next request is answered 503 at once instead of the server taking
connections without end. A half head is closed by the server once the request deadline passes (the test
waits for the server's close, an event, not for a time). No Docker needed.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rebuild.service.config import ServicePaths, init_service
from tests.integration.service.servers import free_port, wait_for
from tests.integration.test_pipeline import REBUILD

HALF_HEAD = b"GET /api/v1/stats HTTP/1.1\r\nHost: dashboard\r\nX-Slow: "


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    data = tmp_path / "data"
    init_service(ServicePaths.of(None, data))
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen([REBUILD, "serve", "--bind", f"127.0.0.1:{port}", "--max-connections", "3",
                                 "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for(lambda: proc.poll() is None and status(port) == 200, "rebuild serve to answer")
            yield "127.0.0.1", port
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def status(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/stats", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError):
        return None


def half_open(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=60)
    sock.sendall(HALF_HEAD)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed (or reset) the connection; the socket's own timeout (60 s) raises instead."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_connections_past_the_cap_are_answered_503_not_held(served: tuple[str, int]) -> None:
    holders = [half_open(served) for _ in range(2)]
    try:
        assert status(served[1]) == 503
    finally:
        for sock in holders:
            sock.close()
    wait_for(lambda: status(served[1]) == 200, "the server to answer again once the holders left")


def test_a_request_that_never_arrives_whole_is_closed_by_the_server(served: tuple[str, int]) -> None:
    with half_open(served) as sock:
        for _ in range(3):  # a slowloris: more header bytes, never the end of the head
            sock.sendall(b"x")
        assert closed_by_server(sock)
    assert status(served[1]) == 200
