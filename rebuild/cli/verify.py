"""`rebuild build` (a release team's hermetic build), `rebuild verify` and `rebuild buildinfo`."""

from __future__ import annotations

import traceback
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
    verbose,
)
from rebuild.cli.provenance import (
    ExpectIdentityOpt,
    ExpectIssuerOpt,
    ExpectRepoOpt,
    ExpectWorkflowOpt,
    TrustRootOpt,
    sigstore_policy,
)
from rebuild.errors import Error
from rebuild.render import renderer_for


@app.command()
def build(
    ctx: typer.Context,
    source: Path = typer.Argument(..., help="The source tree to build."),
    out_dir: Path = typer.Option(..., "--out", help="Where the artifacts, source archive and provenance go."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe name (default: [build] recipe in rebuild.toml)."),
    param: list[str] = typer.Option(None, "--param", help="Recipe parameter NAME=VALUE (repeatable)."),
    key: Path | None = typer.Option(None, "--key", help="Sign the provenance with this private key."),
    source_date_epoch: int | None = typer.Option(
        None, "--source-date-epoch", help="Default: rebuild.toml, git, mtime."
    ),
    index_url: str = IndexOpt,
    timeout: float = TimeoutOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a release hermetically and write its provenance (for release teams)."""
    from rebuild.build.sandbox import Limits
    from rebuild.pipeline import connect_backends
    from rebuild.python.wheelhouse import wheelhouse_for
    from rebuild.recipes import parse_parameters
    from rebuild.release import build_release

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        report = build_release(
            source,
            out_dir,
            connect_backends(cache(cache_dir), limits=Limits(timeout_s=timeout)),
            book(recipes),
            recipe_name=recipe,
            parameters=parse_parameters(param or []),
            source_date_epoch=source_date_epoch,
            signer=signer(key),
            requirements_resolver=lambda tree: wheelhouse_for(tree, index_url),
            progress=render.progress,
        )
    render.build(report, out_dir)


@app.command()
def verify(
    ctx: typer.Context,
    targets: list[str] = typer.Argument(
        None, help="Provenance file(s) (any wrapper), .buildinfo files, pypi:NAME[==VERSION], deb:SOURCE=VERSION."
    ),
    from_file: Path | None = typer.Option(None, "--from", help="Read more targets from a file, one per line."),
    artifact: list[Path] = typer.Option(
        None, "--artifact", help="A published artifact (default: beside the provenance)."
    ),
    key: Path | None = typer.Option(None, "--key", help="Sign the attestations with this private key."),
    out_dir: Path = typer.Option(Path("rebuild-out"), "--out", help="Reports, rebuilt files and attestations."),
    attest_failures: bool = typer.Option(False, "--attest-failures", help="Also sign a FAILED summary on a mismatch."),
    content_equivalence: bool = typer.Option(
        False,
        "--content-equivalence",
        help="On a mismatch, check whether every member's content is identical and only archive metadata "
        "(timestamps, permissions, order, compression) differs; with --key, sign that as a separate "
        "content-equivalence statement beside a FAILED summary. The exit code stays 1.",
    ),
    in_toto_link: bool = typer.Option(
        False, "--in-toto-link", help="On a full match, also sign an in-toto link (STEP.KEYID8.link) with --key."
    ),
    in_toto_step: str = typer.Option("rebuild", "--in-toto-step", help="The link's step name, as the layout has it."),
    provenance_key: list[Path] = typer.Option(
        None, "--provenance-key", help="Use only provenance signed by this key (repeatable); others are refused."
    ),
    trust_root: Path | None = TrustRootOpt,
    expect_repo: str | None = ExpectRepoOpt,
    expect_workflow: str | None = ExpectWorkflowOpt,
    expect_issuer: str = ExpectIssuerOpt,
    expect_identity: str | None = ExpectIdentityOpt,
    trusted_builder: list[str] = typer.Option(
        None, "--trusted-builder", help="A builder (workflow URL[@REF]) whose verified signature is SLSA Build L3."
    ),
    no_diffoscope: bool = typer.Option(False, "--no-diffoscope", help="Skip the diffoscope report."),
    verifier_id: str = typer.Option(
        "https://rebuild-verifier.dev/verifier/v1", "--verifier-id", help="Who you are, as written in the summaries."
    ),
    index_url: str = IndexOpt,
    git_mirror: list[str] = typer.Option(
        None, "--git-mirror", help="FROM=TO: fetch git repositories under FROM from TO instead (repeatable)."
    ),
    archive: str = typer.Option(
        "http://deb.debian.org/debian", "--archive", help="The Debian archive (a snapshot URL for old versions)."
    ),
    allow_newer_build_deps: bool = typer.Option(
        False, "--allow-newer-build-deps", help="Debian: use the archive's versions where recorded ones are gone."
    ),
    timeout: float = TimeoutOpt,
    max_input_bytes: int = typer.Option(2 << 30, "--max-input-bytes", help="Refuse any input larger than this."),
    max_output_bytes: int = typer.Option(
        4 << 30, "--max-output-bytes", help="Stop a build that writes more than this to its output directory."
    ),
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rebuild, compare byte for byte, attest. Exit 0 reproduced, 1 not, 2 bad input, 3 could not rebuild.

    With several targets (or --from), each gets its own directory under --out, one failure does not stop
    the others, a summary table follows, and the exit code is the highest of theirs.
    """
    from rebuild import batch
    from rebuild.attest.intoto import link_step
    from rebuild.attest.keys import load_public_key
    from rebuild.build.sandbox import Limits
    from rebuild.fetch.git import parse_mirrors
    from rebuild.report import clear_verdicts
    from rebuild.verify import Verifier

    render = renderer_for(as_json)
    clear_verdicts(out_dir)  # before anything, even a bad option: no earlier verdict outlives this run
    with errors_to_exit(ctx, render):
        all_targets = batch.read_targets(targets or [], from_file)
        verifier = Verifier(
            book(recipes), cache(cache_dir), Limits(timeout_s=timeout, output_bytes=max_output_bytes),
            max_input_bytes, signer(key), [load_public_key(k) for k in provenance_key or []], artifact or [],
            index_url, parse_mirrors(git_mirror or []), archive, allow_newer_build_deps, attest_failures,
            not no_diffoscope, verifier_id, render.progress,
            in_toto_step=link_step(in_toto_step, key) if in_toto_link else None,
            content_equivalence=content_equivalence,
            sigstore=sigstore_policy(
                trust_root, expect_repo, expect_workflow, expect_issuer, expect_identity, trusted_builder
            ),
        )  # fmt: skip
    if len(all_targets) == 1:
        with errors_to_exit(ctx, render):
            try:
                report = verifier.verify(all_targets[0], out_dir)
            except Error:
                render.verify_failed(out_dir / "verify-report.json")  # output is never lost
                raise
        render.verify(report)
        raise typer.Exit(0 if report.reproduced else 1)
    directories = batch.target_directories(out_dir, all_targets)
    rows = batch.verify_batch(
        all_targets,
        lambda target: verifier.verify(target, directories[target]),
        on_error=lambda e: traceback.print_exception(e) if verbose(ctx) else None,
        progress=render.progress,
    )
    render.batch(rows)
    raise typer.Exit(batch.exit_code(rows))


@app.command("buildinfo")
def buildinfo_cmd(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A `rebuild verify --out` directory of a Debian rebuild."),
    dest: Path = typer.Option(Path("."), "--out", help="A file, or a directory for SOURCE_VERSION_ARCH.buildinfo."),
    as_json: bool = JsonOpt,
) -> None:
    """Write the .buildinfo of a Debian rebuild (dpkg's own record: exact build dependencies, environment)."""
    from rebuild.resolve.buildinfo import write_buildinfo

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        written = write_buildinfo(run_dir, dest)
    render.buildinfo(written)
