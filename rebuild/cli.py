"""The `rebuild` command: parse options, call one library function, render.

Errors from the library are printed as one line (plus a hint) and mapped to
the documented exit codes; a traceback appears only with ``--verbose``.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from rebuild.errors import EXIT_ENVIRONMENT, Error

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Rebuild a release from its provenance in a hermetic container, compare it byte "
    "for byte with the published artifact, and attest the result.",
)
image_app = typer.Typer(no_args_is_help=True, help="Builder images (reproducible, pinned by digest).")
app.add_typer(image_app, name="image")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = typer.Option(False, "--json", help="Print a JSON document for machines.")
CacheOpt = typer.Option(None, "--cache-dir", help="Cache directory (default: ~/.cache/rebuild-verifier).")
RecipesOpt = typer.Option(None, "--recipes", help="A directory of your own recipes, searched first.")


@app.callback()
def _global(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and more detail."),
) -> None:
    ctx.obj = {"verbose": verbose}


def _verbose(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("verbose"))


@contextmanager
def errors_to_exit(ctx: typer.Context) -> Iterator[None]:
    """Turn the project's errors into one line and an exit code."""
    try:
        yield
    except Error as e:
        if _verbose(ctx):
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {e.message}", soft_wrap=True)
        if e.hint:
            err.print(f"[dim]hint:[/] {e.hint}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:
        if _verbose(ctx):
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(e).__name__}: {e}", soft_wrap=True)
        err.print("[dim]hint:[/] run again with --verbose for the traceback, and report it")
        raise typer.Exit(EXIT_ENVIRONMENT) from None


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _cache(cache_dir: Path | None) -> Path:
    from rebuild.cache import default_cache_dir

    return cache_dir or default_cache_dir()


def _book(recipes: Path | None) -> Any:
    from rebuild.recipes import RecipeBook

    return RecipeBook([recipes] if recipes else [])


# --- doctor --------------------------------------------------------------------


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: bool = JsonOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
) -> None:
    """Check Docker, builder images, diffoscope and the cache."""
    from rebuild.doctor import run_doctor

    with errors_to_exit(ctx):
        report = run_doctor(_cache(cache_dir), _book(recipes))
    if as_json:
        print_json(report.as_dict())
    else:
        table = Table(show_header=False, box=None)
        for check in report.checks:
            table.add_row("[green]ok[/]" if check.ok else "[red]!![/]", check.name, check.detail)
        out.print(table)
    raise typer.Exit(0 if report.ok else EXIT_ENVIRONMENT)


# --- image ---------------------------------------------------------------------


@image_app.command("build")
def image_build(
    ctx: typer.Context,
    recipe: list[str] = typer.Argument(None, help="Recipes whose builder images to build."),
    all_: bool = typer.Option(False, "--all", help="Build the images of every known recipe."),
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build builder images from Debian packages (present ones are kept)."""
    from rebuild.engine import connect
    from rebuild.image import ImageBuilder

    with errors_to_exit(ctx):
        book = _book(recipes)
        chosen = book.all() if all_ or not recipe else [book.get(name) for name in recipe]
        builder = ImageBuilder(connect(), _cache(cache_dir))
        results = []
        done: set[str] = set()
        for r in chosen:
            if r.image.tag in done:
                continue
            done.add(r.image.tag)
            if not as_json:
                err.print(f"[dim]image {r.image.tag}: checking (a first build takes about a minute)...[/]")
            image = builder.ensure(r.image)
            results.append({"image": image.reference, "digest": image.digest, "built": image.built})
            if not as_json:
                verb = "built" if image.built else "present"
                out.print(f"image {image.reference} {verb}: {image.digest}")
    if as_json:
        print_json({"images": results})


def main() -> NoReturn:
    """Console entry point. SIGTERM unwinds like Ctrl-C, so containers are removed."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    app()
    sys.exit(0)

