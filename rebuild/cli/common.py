"""What every command shares: the root app, its options, and the one place errors become exit codes.

Errors from the library are printed as one line (plus a hint) and mapped to the documented exit codes
(``rebuild.errors``); a traceback appears only with ``--verbose``.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from rebuild.errors import EXIT_ENVIRONMENT, Error
from rebuild.render import Renderer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Rebuild a release from its provenance in a hermetic container, compare it byte "
    "for byte with the published artifact, and attest the result.",
)

JsonOpt = typer.Option(False, "--json", help="Print a JSON document for machines.")
CacheOpt = typer.Option(None, "--cache-dir", help="Cache directory (default: ~/.cache/rebuild-verifier).")
RecipesOpt = typer.Option(None, "--recipes", help="A directory of your own recipes, searched first.")
TimeoutOpt = typer.Option(1800.0, "--timeout", help="Wall-clock limit of the build, in seconds.")
IndexOpt = typer.Option("https://pypi.org/simple", "--index-url", help="The Python package index.")


@app.callback()
def _global(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and more detail."),
) -> None:
    ctx.obj = {"verbose": verbose}


def verbose(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("verbose"))


@contextmanager
def errors_to_exit(ctx: typer.Context, render: Renderer) -> Iterator[None]:
    """Turn the project's errors into one line and an exit code; anything else is an internal error (3)."""
    from compare.errors import CompareError

    try:
        yield
    except (Error, CompareError) as e:
        if verbose(ctx):
            traceback.print_exc()
        render.error(e.message, e.hint)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        render.error("interrupted", "")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:
        if verbose(ctx):
            traceback.print_exc()
        render.error(
            f"internal error: {type(e).__name__}: {e}", "run again with --verbose for the traceback, and report it"
        )
        raise typer.Exit(EXIT_ENVIRONMENT) from None


def cache(cache_dir: Path | None) -> Path:
    from rebuild.fetch.cache import default_cache_dir

    return cache_dir or default_cache_dir()


def signer(key: Path | None) -> Any:
    """A loaded private key (a ``Signer``), or None without --key."""
    from rebuild.attest.keys import load_private_key

    return load_private_key(key) if key else None


def book(recipes: Path | None) -> Any:
    from rebuild.recipes import RecipeBook

    return RecipeBook([recipes] if recipes else [])
