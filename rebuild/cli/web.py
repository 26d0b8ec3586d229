"""`rebuild serve`: the dashboard and the HTTP API over the service's store, served by uvicorn."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.cli.service import DataDirOpt, DbOpt
from rebuild.errors import InputError
from rebuild.render import renderer_for
from rebuild.render.service import show


@dataclass(frozen=True)
class Bind:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_bind(value: str) -> Bind:
    """``HOST:PORT`` (an IPv6 host in brackets) to a host and port; a host is an IP address or a DNS name.

    Raises:
        InputError: not HOST:PORT, or a port outside 1-65535.
    """
    hint = "give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or len(port) > 5 or not 0 < int(port) < 65536:
        raise InputError(f"--bind {value!r} is not HOST:PORT with a port from 1 to 65535", hint)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InputError(f"--bind {value!r}: {host!r} is not an IPv6 address", hint) from None
    elif not host or len(host) > 253 or not all(c.isalnum() or c in ".-" for c in host) or host.startswith("-"):
        raise InputError(f"--bind {value!r}: {host!r} is not a host name or IPv4 address", hint)
    return Bind(host, int(port))


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    bind: str = typer.Option("127.0.0.1:8080", "--bind", help="HOST:PORT to listen on ([::1]:PORT for IPv6)."),
    max_connections: int = typer.Option(
        64,
        "--max-connections",
        min=2,
        max=10_000,
        help="Open connections at most; past them a request is answered 503 at once.",
    ),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve the dashboard (HTML pages) and the HTTP API (/api/v1, described by /api/v1/openapi.json) until
    stopped.

    Binds 127.0.0.1 unless told otherwise. A request must arrive whole within 10 s and an idle connection is
    closed after 5 s, but anything beyond loopback belongs behind a reverse proxy (TLS, client_header_timeout,
    per-client connection limits): many slow clients can still take every connection.
    """
    from rebuild.service.config import ServicePaths
    from rebuild.service.store import Store, redact
    from rebuild.web.serve import serve

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        where = parse_bind(bind)
        paths = ServicePaths.of(db, data_dir)
        store = Store.open(paths.db)
        show("serve", {"url": where.url, "db": redact(paths.db), "blobs": str(paths.blobs.root),
                       "max_connections": max_connections}, as_json)  # fmt: skip
        serve(store, paths.blobs, where.host, where.port, max_connections)
