"""`rebuild key`: signing keys (Ed25519 or ECDSA P-256)."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.render import renderer_for

key_app = typer.Typer(no_args_is_help=True, help="Signing keys (Ed25519 or ECDSA P-256).")
app.add_typer(key_app, name="key")


@key_app.command("generate")
def key_generate(
    ctx: typer.Context,
    out_prefix: Path = typer.Option(..., "--out", help="Writes PREFIX.key (0600) and PREFIX.pub."),
    key_type: str = typer.Option("ed25519", "--type", help="ed25519 or ecdsa-p256."),
    encrypt: bool = typer.Option(
        False, "--encrypt", help="Encrypt the private key; passphrase from $REBUILD_KEY_PASSPHRASE or a prompt."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Generate a signing key pair."""
    import os

    from rebuild.attest import keys

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        passphrase = None
        if encrypt:
            text = os.environ.get(keys.PASSPHRASE_ENV) or typer.prompt(
                "passphrase", hide_input=True, confirmation_prompt=True
            )
            passphrase = text.encode()
        key = keys.generate(key_type)  # type: ignore[arg-type]
        private, public = keys.write_keypair(key, out_prefix, passphrase)
    info = {
        "keyid": key.keyid,
        "private": str(private),
        "public": str(public),
        "type": keys.describe(key.key.public_key()),
    }
    render.key(info)


@key_app.command("show")
def key_show(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A public or private key PEM file."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a key's type, id (the sha256 of its DER public key) and in-toto form (in-toto's key id, keytype,
    scheme, keyval: what a layout lists for a rebuilder)."""
    from rebuild.attest.show import key_info

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        info = key_info(path)
    render.key(info)
