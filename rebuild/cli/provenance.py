"""`rebuild provenance show`: what a provenance file claims, and what would run."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.render import renderer_for

provenance_app = typer.Typer(no_args_is_help=True, help="Read provenance written by anyone.")
app.add_typer(provenance_app, name="provenance")


@provenance_app.command("show")
def provenance_show(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="A provenance file in any wrapper (jsonl, DSSE, Sigstore bundle, npm, PEP 740)."
    ),
    provenance_key: list[Path] = typer.Option(None, "--provenance-key", help="Check signatures with this key."),
    as_json: bool = JsonOpt,
) -> None:
    """Print each statement's subjects, builder, buildType, source (repository + commit), and what would be rebuilt."""
    from rebuild.attest.keys import load_public_key
    from rebuild.resolve.show import describe_file

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        statements, problems = describe_file(file, [load_public_key(k) for k in provenance_key or []])
    render.provenance(file, statements, problems)
