"""`rebuild token create | ls | revoke`: bearer tokens for the HTTP API's writes (see ``rebuild.service.tokens``)."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.cli.service import DataDirOpt, DbOpt, _paths
from rebuild.render import renderer_for
from rebuild.render.service import show

token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the HTTP API's writes (stored hashed).")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    scope: list[str] = typer.Option(..., "--scope", help="What the token may do (repeatable): queue."),
    name: str | None = typer.Option(None, "--name", help="A label to list and revoke it by."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make a token and print it once: the store keeps only its sha256."""
    from rebuild.service.store import Store
    from rebuild.service.tokens import create

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        made = create(Store.open(_paths(db, data_dir).db), scope, name)
    show("token", {"id": made.id, "name": made.name, "scopes": list(made.scopes), "token": made.secret}, as_json)


@token_app.command("ls")
def token_ls(
    ctx: typer.Context, db: str | None = DbOpt, data_dir: Path | None = DataDirOpt, as_json: bool = JsonOpt
) -> None:
    """List tokens (never their secrets: the store does not have them)."""
    from rebuild.service.store import Store
    from rebuild.service.tokens import listing

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        rows = listing(Store.open(_paths(db, data_dir).db))
    show("tokens", {"tokens": rows}, as_json)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="The token's id (or its name, if only one token has it)."),
    db: str | None = DbOpt,
    data_dir: Path | None = DataDirOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Revoke a token: the API refuses it from now on (401)."""
    from rebuild.service.store import Store
    from rebuild.service.tokens import revoke

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        doc = revoke(Store.open(_paths(db, data_dir).db), ref)
    show("revoked", doc, as_json)
