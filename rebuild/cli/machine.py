"""`rebuild doctor` and `rebuild image`: is this machine ready, and its builder images."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import CacheOpt, JsonOpt, RecipesOpt, app, book, cache, errors_to_exit
from rebuild.errors import EXIT_ENVIRONMENT
from rebuild.render import renderer_for

image_app = typer.Typer(no_args_is_help=True, help="Builder images (reproducible, pinned by digest).")
app.add_typer(image_app, name="image")


@app.command()
def doctor(ctx: typer.Context, as_json: bool = JsonOpt, cache_dir: Path | None = CacheOpt,
           recipes: Path | None = RecipesOpt) -> None:  # fmt: skip
    """Check Docker, builder images, diffoscope and the cache."""
    from rebuild.doctor import run_doctor

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        report = run_doctor(cache(cache_dir), book(recipes))
    render.doctor(report)
    raise typer.Exit(0 if report.ok else EXIT_ENVIRONMENT)


@image_app.command("build")
def image_build(
    ctx: typer.Context,
    recipe: list[str] = typer.Argument(None, help="Recipes whose builder images to build (default: all)."),
    all_: bool = typer.Option(False, "--all", help="Build the images of every known recipe."),
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build builder images from Debian packages (present ones are kept)."""
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        specs = book(recipes).fixed_images([] if all_ else recipe or [])
        images = ImageBuilder(connect(), cache(cache_dir)).ensure_all(specs, render.progress)
    render.images(images)
