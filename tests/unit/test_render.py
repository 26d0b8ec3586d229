"""Rendering: progress is plain text off a terminal, outside text is shown literally, machines get JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rebuild.cli import app
from rebuild.render.json import JsonRenderer
from rebuild.render.text import TextRenderer


def test_progress_off_a_terminal_is_plain_text_with_outside_text_made_visible() -> None:
    stream = io.StringIO()
    TextRenderer(err=Console(file=stream, force_terminal=False)).progress("target", "[bold]pypi:six==1.16.0[/] \x1b[2J")
    assert stream.getvalue() == "  target [bold]pypi:six==1.16.0[/] \\x1b[2J\n"  # literal: no markup was meant


def test_progress_on_a_terminal_keeps_outside_markup_literal() -> None:
    stream = io.StringIO()
    TextRenderer(err=Console(file=stream, force_terminal=True, color_system=None)).progress("fetch", "[red]x[/]\u202e")
    assert "[red]x[/]\\u202e" in stream.getvalue()


def test_machines_get_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    JsonRenderer().progress("build", "anything")
    assert capsys.readouterr() == ("", "")


def test_a_failed_verify_with_json_prints_its_failure_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["verify", str(tmp_path / "missing.intoto.jsonl"), "--out", str(tmp_path / "o"), "--json"]
    )
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "could not verify" and "does not exist" in doc["error"]


def test_two_targets_with_one_file_name_get_their_own_directories(tmp_path: Path) -> None:
    from rebuild.batch import target_directories

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        (tmp_path / d / "p.intoto.jsonl").write_text("{}")
    targets = [str(tmp_path / "a" / "p.intoto.jsonl"), str(tmp_path / "b" / "p.intoto.jsonl"), "pypi:x==1", ".."]
    dirs = target_directories(tmp_path / "out", targets)
    assert len(set(dirs.values())) == 4
    assert all(p.parent == tmp_path / "out" for p in dirs.values())
