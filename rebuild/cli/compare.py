"""`rebuild compare`: two files or directories, byte for byte, explained."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.render import renderer_for


@app.command("compare")
def compare_cmd(
    ctx: typer.Context,
    a: Path = typer.Argument(..., help="A file or directory (e.g. the published artifact)."),
    b: Path = typer.Argument(..., help="Another file or directory (e.g. the rebuilt one)."),
    diffoscope: bool = typer.Option(False, "--diffoscope", help="Also run diffoscope (JSON report)."),
    html: bool = typer.Option(False, "--html", help="With --diffoscope: an HTML report too."),
    text: bool = typer.Option(False, "--text", help="With --diffoscope: a text report too."),
    report_dir: Path | None = typer.Option(
        None, "--report-dir", help="Write compare-report.json (and diffoscope's) here."
    ),
    diffoscope_timeout: float = typer.Option(
        600.0, "--diffoscope-timeout", help="Seconds before diffoscope is killed."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Compare byte for byte; explain any difference. Exit 0 identical, 1 different, 2 unreadable."""
    from compare.report import compare_paths

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        formats = ("json",) + (("html",) if html else ()) + (("text",) if text else ())
        result = compare_paths(
            a, b, report_dir=report_dir, diffoscope=diffoscope, diffoscope_formats=formats,
            diffoscope_timeout_s=diffoscope_timeout,
        )  # fmt: skip
    render.comparison(result)
    raise typer.Exit(0 if result.identical else 1)
