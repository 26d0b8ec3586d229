"""The service commands' unhappy paths: one line, a hint, the documented exit code, no traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebuild.cli import app


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(["status", "--db", "mysql://h/d"], 2, "is not a database URL", id="bad-url"),
        pytest.param(["queue", "ls", "--status", "sleeping"], 2, "unknown status sleeping", id="bad-status"),
        pytest.param(["queue", "add", "pypi:x==1", "--tag", "mem high"], 2, "is not KEY=VALUE", id="bad-tag"),
        pytest.param(["queue", "retry", "deadbeefdeadbeef"], 2, "no job is 'deadbeefdeadbeef'", id="no-job"),
        pytest.param(["history", "pypi:never-queued==1"], 2, "is not in the store", id="no-target"),
        pytest.param(["dispatch", "--broker", "http://x"], 2, "is not a Redis URL", id="not-redis"),
    ],
)
def test_bad_usage(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--data-dir", data)[0] == 0
    exit_code, output = run(*args, "--data-dir", data)
    assert exit_code == code and message in output and "Traceback" not in output


def test_a_store_that_was_never_made(tmp_path: Path) -> None:
    exit_code, output = run("status", "--data-dir", str(tmp_path / "none"))
    assert exit_code == 2 and "is not initialized" in output and "rebuild init" in output


def test_a_broker_that_does_not_answer_is_an_environment_failure(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert run("init", "--data-dir", data)[0] == 0
    exit_code, output = run("dispatch", "--broker", f"redis://127.0.0.1:{closed_port()}/0", "--data-dir", data)
    assert exit_code == 3 and "does not answer" in output


def test_init_json_and_status_json(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    exit_code, output = run("init", "--data-dir", data, "--json")
    assert exit_code == 0 and json.loads(output)["revision"] == "0003"
    exit_code, output = run("status", "--data-dir", data, "--json")
    assert exit_code == 0 and json.loads(output)["jobs"] == {}
