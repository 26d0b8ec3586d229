"""`rebuild check`: build twice and more under variations, and name what makes the bytes differ."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer

from rebuild.cli.common import (
    CacheOpt,
    IndexOpt,
    JsonOpt,
    RecipesOpt,
    TimeoutOpt,
    app,
    book,
    cache,
    errors_to_exit,
    signer,
)
from rebuild.errors import InputError
from rebuild.render import renderer_for


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="The source tree to check (as for `rebuild build`)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe name (default: [build] recipe in rebuild.toml)."),
    param: list[str] = typer.Option(None, "--param", help="Recipe parameter NAME=VALUE (repeatable)."),
    vary: str = typer.Option(
        "all",
        "--vary",
        help="all, or a comma-separated list of: time, sde, tz, locale, umask, build-path, user, home, "
        "hostname, domain, cpus, env, file-order.",
    ),
    key: Path | None = typer.Option(None, "--key", help="Sign a statement of the check (needs --out)."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Keep every build, its log and check-report.json here (default: nothing is kept)."
    ),
    index_url: str = IndexOpt,
    timeout: float = TimeoutOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Is the build reproducible under other times, paths, users, locales...? Exit 0 yes, 1 no, 3 could not tell."""
    from rebuild.build.sandbox import Limits
    from rebuild.check import check_release, parse_vary
    from rebuild.pipeline import connect_backends
    from rebuild.python.wheelhouse import wheelhouse_for
    from rebuild.recipes import parse_parameters

    render = renderer_for(as_json)
    work = out_dir
    with errors_to_exit(ctx, render):
        names = parse_vary(vary)
        if key is not None and out_dir is None:
            raise InputError("--key writes a signed statement: pass --out DIR for it")
        key_signer = signer(key)
        work = out_dir or Path(tempfile.mkdtemp(prefix="rebuild-check-"))
        try:
            report = check_release(
                source,
                work,
                connect_backends(cache(cache_dir), limits=Limits(timeout_s=timeout)),
                book(recipes),
                vary=names,
                recipe_name=recipe,
                parameters=parse_parameters(param or []),
                signer=key_signer,
                keep=out_dir is not None,
                requirements_resolver=lambda tree: wheelhouse_for(tree, index_url),
                progress=render.progress,
            )
        finally:
            if out_dir is None and work is not None:
                shutil.rmtree(work, ignore_errors=True)
    render.check(report)
    raise typer.Exit(report.exit_code)
