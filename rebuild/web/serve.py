"""Run the application under uvicorn on a socket bound here, so a busy port is one clear error.

Anonymous clients must not be able to hold the server: connections are capped (``--max-connections``;
past the cap a request is answered 503 at once), an idle keep-alive connection is closed after
``KEEP_ALIVE_SECONDS``, and a request must arrive whole (head and body) within ``REQUEST_SECONDS`` of
the connection opening or of the previous answer, or the connection is closed. uvicorn's h11 protocol has
no such deadline of its own (a client sending a header line every few seconds kept a connection forever),
so ``DeadlineH11Protocol`` adds it. A request head is at most ``MAX_HEAD_BYTES``.
"""

from __future__ import annotations

import asyncio
import socket

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rebuild.errors import EnvironmentFailure
from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store
from rebuild.web.app import create_app

MAX_CONNECTIONS = 64
KEEP_ALIVE_SECONDS = 5
REQUEST_SECONDS = 10.0
MAX_HEAD_BYTES = 16 << 10
_RECEIVING = (h11.IDLE, h11.SEND_BODY)  # the client's side of h11's state machine, while a request arrives


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request to arrive whole.

    The deadline is armed when the connection opens and again when an answer has been sent (if the
    connection stays open), and is not moved by bytes arriving: trickling a head byte by byte gains
    nothing. It is cancelled once the request is in (the application may take its time to answer).
    """

    request_seconds = REQUEST_SECONDS
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state in _RECEIVING:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in _RECEIVING and not self.transport.is_closing():
            self.logger.info("closed a connection whose request did not arrive within %ss", self.request_seconds)
            self.transport.abort()  # nothing to say: the request never came whole


def listen(host: str, port: int) -> socket.socket:
    """Raises: EnvironmentFailure: the address cannot be bound (in use, not this machine's, not allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise EnvironmentFailure(f"cannot listen on {host}:{port}: {e.strerror}") from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise EnvironmentFailure(f"cannot listen on {host}:{port}: {e.strerror}", "choose another --bind") from e
    sock.set_inheritable(True)
    return sock


def serve(store: Store, blobs: BlobStore, host: str, port: int, max_connections: int = MAX_CONNECTIONS) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM).

    Raises:
        EnvironmentFailure: the address cannot be bound.
    """
    import uvicorn

    sock = listen(host, port)
    config = uvicorn.Config(create_app(store, blobs), log_level="warning", access_log=False, server_header=False,
                            proxy_headers=False, http=DeadlineH11Protocol, ws="none",
                            limit_concurrency=max_connections, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                            h11_max_incomplete_event_size=MAX_HEAD_BYTES)  # fmt: skip
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
