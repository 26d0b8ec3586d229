"""`rebuild serve`: what it refuses, with the documented exit code and one line naming the problem."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebuild.cli import app
from rebuild.cli.web import parse_bind
from rebuild.errors import InputError
from rebuild.service.config import ServicePaths, init_service


@pytest.mark.parametrize(
    ("bind", "host", "port"),
    [("127.0.0.1:8080", "127.0.0.1", 8080), ("[::1]:9", "::1", 9), ("localhost:65535", "localhost", 65535)],
    ids=["ipv4", "ipv6", "name"],
)
def test_bind_parses(bind: str, host: str, port: int) -> None:
    parsed = parse_bind(bind)
    assert (parsed.host, parsed.port) == (host, port)


@pytest.mark.parametrize(
    "bind",
    ["8080", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", ":8080", "[nope]:80", "-x:80", "a b:80", "h:123456"],
)
def test_bad_binds_are_refused(bind: str) -> None:
    with pytest.raises(InputError, match="--bind"):
        parse_bind(bind)


def test_serve_refuses_a_bad_bind_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["serve", "--bind", "nowhere", "--data-dir", "/nonexistent"])
    assert result.exit_code == 2 and "is not HOST:PORT" in result.output


def test_serve_refuses_a_store_that_is_not_initialized(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--bind", "127.0.0.1:1", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "is not initialized" in result.output and "rebuild init" in result.output


def test_serve_says_when_the_port_is_taken(tmp_path: Path) -> None:
    init_service(ServicePaths.of(None, tmp_path))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--bind", f"127.0.0.1:{port}", "--data-dir", str(tmp_path)])
    assert result.exit_code == 3 and f"cannot listen on 127.0.0.1:{port}" in result.output
