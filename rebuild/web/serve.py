"""Run the application under uvicorn on a socket bound here, so a busy port is one clear error."""

from __future__ import annotations

import socket

from rebuild.errors import EnvironmentFailure
from rebuild.service.blobs import BlobStore
from rebuild.service.store import Store
from rebuild.web.app import create_app


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


def serve(store: Store, blobs: BlobStore, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM).

    Raises:
        EnvironmentFailure: the address cannot be bound.
    """
    import uvicorn

    sock = listen(host, port)
    config = uvicorn.Config(create_app(store, blobs), log_level="warning", access_log=False,
                            server_header=False, proxy_headers=False)  # fmt: skip
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()
