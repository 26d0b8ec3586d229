"""`rebuild serve` cannot be held by anonymous clients: a deadline for each request to arrive whole, a cap
on connections, the OpenAPI document without a third party's script, strict headers on the API.

The deadline is tested on uvicorn's real h11 protocol (``DeadlineH11Protocol``) over an event loop whose
timers are fired by the test, not by a clock: deterministic. The real server (connection cap, the deadline
end to end) is in tests/integration/web/test_serve_limits.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from uvicorn.server import ServerState

from rebuild.cli import app as cli
from rebuild.service.blobs import BlobStore
from rebuild.service.config import ServicePaths, init_service
from rebuild.service.store import Store
from rebuild.web.app import API_CSP, create_app
from rebuild.web.serve import REQUEST_SECONDS, DeadlineH11Protocol

HEAD = b"GET / HTTP/1.1\r\nHost: dashboard\r\n"


class ManualTimers(asyncio.SelectorEventLoop):
    """An event loop whose ``call_later`` timers wait for the test to fire them."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[tuple[float, asyncio.TimerHandle]] = []

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:
        handle = asyncio.TimerHandle(self.time() + delay, callback, args, self, context)
        self.timers.append((delay, handle))
        return handle

    def pending(self, delay: float) -> list[asyncio.TimerHandle]:
        return [h for d, h in self.timers if d == delay and not h.cancelled()]


class Transport(asyncio.Transport):
    """What the protocol writes to and closes: the socket's side, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture()
def connection() -> Iterator[tuple[ManualTimers, DeadlineH11Protocol, Transport, ServerState]]:
    loop = ManualTimers()
    config = uvicorn.Config(hello, http=DeadlineH11Protocol, ws="none", lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    protocol = DeadlineH11Protocol(config, state, {}, _loop=loop)
    transport = Transport()
    protocol.connection_made(transport)
    yield loop, protocol, transport, state
    loop.close()


def test_a_head_trickled_byte_by_byte_gains_no_time(connection: Any) -> None:
    loop, protocol, transport, _ = connection
    (deadline,) = loop.pending(REQUEST_SECONDS)
    for byte in HEAD:  # a slowloris: every byte arrives in time for any per-read timeout
        protocol.data_received(bytes([byte]))
    assert loop.pending(REQUEST_SECONDS) == [deadline] and not transport.is_closing()
    deadline._run()  # the deadline passes
    assert transport.aborted and transport.written == b""


def test_an_idle_connection_that_never_sends_is_closed_at_the_deadline(connection: Any) -> None:
    loop, _, transport, _ = connection
    (deadline,) = loop.pending(REQUEST_SECONDS)
    deadline._run()
    assert transport.aborted


def test_a_whole_request_stops_the_deadline_and_the_next_one_gets_its_own(connection: Any) -> None:
    loop, protocol, transport, state = connection
    (first,) = loop.pending(REQUEST_SECONDS)
    protocol.data_received(HEAD + b"\r\n")
    assert first.cancelled() and loop.pending(REQUEST_SECONDS) == []
    loop.run_until_complete(asyncio.gather(*state.tasks))  # the application answers, however long it takes
    assert transport.written.startswith(b"HTTP/1.1 200") and not transport.is_closing()
    (second,) = loop.pending(REQUEST_SECONDS)  # the connection stays open: the next request has a deadline
    assert second is not first
    protocol.data_received(HEAD)
    second._run()
    assert transport.aborted


def test_a_closed_connection_leaves_no_timer(connection: Any) -> None:
    loop, protocol, _, _ = connection
    protocol.connection_lost(None)
    assert loop.pending(REQUEST_SECONDS) == []


# --- the application's headers and the OpenAPI document -----------------------------------------------


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    paths = ServicePaths.of(None, tmp_path / "data")
    init_service(paths)
    store = Store.open(paths.db)
    with TestClient(create_app(store, BlobStore(paths.blobs.root))) as client:
        yield client
    store.close()


@pytest.mark.parametrize("path", ["/api/docs", "/api/redoc", "/docs", "/redoc", "/api/docs/oauth2-redirect"])
def test_no_swagger_or_redoc_page_runs_a_third_partys_script(client: TestClient, path: str) -> None:
    got = client.get(path)
    assert got.status_code == 404 and "cdn.jsdelivr.net" not in got.text and "<script" not in got.text


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/openapi.json", 200), ("/api/v1/stats", 200), ("/api/v1/attempts/99", 404),
     ("/api/v1/targets?limit=0", 422), ("/api/v1/verify?purl=pkg:npm/x@1", 400)],
)  # fmt: skip
def test_every_api_answer_has_a_strict_csp_and_nosniff(client: TestClient, path: str, status: int) -> None:
    got = client.get(path)
    assert got.status_code == status and got.headers["content-type"].startswith("application/json")
    assert got.headers["content-security-policy"] == API_CSP and "default-src 'none'" in API_CSP
    assert got.headers["x-content-type-options"] == "nosniff" and got.headers["x-frame-options"] == "DENY"
    if path.endswith("openapi.json"):
        assert "/api/v1/verify" in got.json()["paths"]


def test_serve_help_names_the_limits_and_the_reverse_proxy() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--max-connections" in result.output
    assert "reverse proxy" in result.output and "client_header_timeout" in result.output
    assert f"within {REQUEST_SECONDS:g} s" in result.output


@pytest.mark.parametrize("value", ["1", "0", "-5", "many", "10001"])
def test_serve_refuses_a_bad_max_connections_with_exit_2(tmp_path: Path, value: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--max-connections", value, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--max-connections" in result.output
