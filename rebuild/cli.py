"""The `rebuild` command: parse options, call one library function, render.

Errors from the library are printed as one line (plus a hint) and mapped to the documented exit codes
(``rebuild.errors``); a traceback appears only with ``--verbose``. Rendering lives in ``rebuild.render``.
"""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

from rebuild.errors import EXIT_ENVIRONMENT, Error
from rebuild.render import Renderer, renderer_for

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Rebuild a release from its provenance in a hermetic container, compare it byte "
    "for byte with the published artifact, and attest the result.",
)
image_app = typer.Typer(no_args_is_help=True, help="Builder images (reproducible, pinned by digest).")
key_app = typer.Typer(no_args_is_help=True, help="Signing keys (Ed25519 or ECDSA P-256).")
attestation_app = typer.Typer(no_args_is_help=True, help="Check or show attestations.")
provenance_app = typer.Typer(no_args_is_help=True, help="Read provenance written by anyone.")
for sub, name in ((image_app, "image"), (key_app, "key"), (attestation_app, "attestation")):
    app.add_typer(sub, name=name)
app.add_typer(provenance_app, name="provenance")

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


def _verbose(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("verbose"))


@contextmanager
def errors_to_exit(ctx: typer.Context, render: Renderer) -> Iterator[None]:
    """Turn the project's errors into one line and an exit code; anything else is an internal error (3)."""
    from compare.errors import CompareError

    try:
        yield
    except (Error, CompareError) as e:
        if _verbose(ctx):
            traceback.print_exc()
        render.error(e.message, e.hint)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        render.error("interrupted", "")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:
        if _verbose(ctx):
            traceback.print_exc()
        render.error(
            f"internal error: {type(e).__name__}: {e}", "run again with --verbose for the traceback, and report it"
        )
        raise typer.Exit(EXIT_ENVIRONMENT) from None


def _cache(cache_dir: Path | None) -> Path:
    from rebuild.fetch.cache import default_cache_dir

    return cache_dir or default_cache_dir()


def _signer(key: Path | None) -> Any:
    """A loaded private key (a ``Signer``), or None without --key."""
    from rebuild.attest.keys import load_private_key

    return load_private_key(key) if key else None


def _book(recipes: Path | None) -> Any:
    from rebuild.recipes import RecipeBook

    return RecipeBook([recipes] if recipes else [])


# --- doctor and images ---------------------------------------------------------------------------------


@app.command()
def doctor(ctx: typer.Context, as_json: bool = JsonOpt, cache_dir: Path | None = CacheOpt,
           recipes: Path | None = RecipesOpt) -> None:  # fmt: skip
    """Check Docker, builder images, diffoscope and the cache."""
    from rebuild.doctor import run_doctor

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        report = run_doctor(_cache(cache_dir), _book(recipes))
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
        specs = _book(recipes).fixed_images([] if all_ else recipe or [])
        images = ImageBuilder(connect(), _cache(cache_dir)).ensure_all(specs, render.progress)
    render.images(images)


# --- build and verify ----------------------------------------------------------------------------------


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
            connect_backends(_cache(cache_dir), limits=Limits(timeout_s=timeout)),
            _book(recipes),
            recipe_name=recipe,
            parameters=parse_parameters(param or []),
            source_date_epoch=source_date_epoch,
            signer=_signer(key),
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
    provenance_key: list[Path] = typer.Option(
        None, "--provenance-key", help="Use only provenance signed by this key (repeatable); others are refused."
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
    from rebuild.attest.keys import load_public_key
    from rebuild.build.sandbox import Limits
    from rebuild.fetch.git import parse_mirrors
    from rebuild.verify import Verifier

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        all_targets = batch.read_targets(targets or [], from_file)
        verifier = Verifier(
            _book(recipes), _cache(cache_dir), Limits(timeout_s=timeout, output_bytes=max_output_bytes),
            max_input_bytes, _signer(key), [load_public_key(k) for k in provenance_key or []], artifact or [],
            index_url, parse_mirrors(git_mirror or []), archive, allow_newer_build_deps, attest_failures,
            not no_diffoscope, verifier_id, render.progress,
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
    rows = batch.verify_batch(
        all_targets,
        lambda target: verifier.verify(target, batch.target_directory(out_dir, target)),
        on_error=lambda e: traceback.print_exception(e) if _verbose(ctx) else None,
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


# --- compare -------------------------------------------------------------------------------------------


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


# --- keys ----------------------------------------------------------------------------------------------


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
    """Show a key's type and id (the sha256 of its DER public key)."""
    from rebuild.attest.show import key_info

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        info = key_info(path)
    render.key(info)


# --- attestations --------------------------------------------------------------------------------------


@attestation_app.command("verify")
def attestation_verify(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An .intoto.jsonl bundle, DSSE envelope or Sigstore bundle."),
    key: list[Path] = typer.Option(..., "--key", help="A trusted public key (repeatable)."),
    artifact: Path | None = typer.Option(None, "--artifact", help="The artifact the attestations must be about."),
    digest: str | None = typer.Option(
        None, "--digest", help="Or its digest as ALGORITHM:VALUE (sha256:HEX, or any in-toto DigestSet name)."
    ),
    threshold: int = typer.Option(1, "--threshold", help="Distinct trusted signers required."),
    max_age_days: int | None = typer.Option(None, "--max-age-days", help="Reject summaries older than this."),
    require_level: list[str] = typer.Option(
        None,
        "--require-level",
        help="A verifiedLevels entry the policy accepts (repeatable; any of them). "
        "Default: REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED.",
    ),
    verifier_id: str | None = typer.Option(
        None, "--verifier-id", help="Accept only summaries by this verifier (and this tool's policy URI)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Verify that trusted rebuilders attested this artifact reproduced (PASSED)."""
    from rebuild.attest.keys import load_public_key
    from rebuild.attest.policy import policy_from_options, verify_attestation_file
    from rebuild.errors import VerificationError

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        policy = policy_from_options(
            [load_public_key(k) for k in key], artifact, digest, threshold=threshold, max_age_days=max_age_days,
            required_levels=require_level or None, verifier_id=verifier_id,
        )  # fmt: skip
        verdict = verify_attestation_file(file, policy)
        if as_json or verdict.passed:
            render.attestation_verdict(verdict, threshold)
        if not verdict.passed:
            raise VerificationError(f"attestation verification failed: {verdict.message}")


@attestation_app.command("show")
def attestation_show(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An attestation file in any supported wrapper."),
    as_json: bool = JsonOpt,
) -> None:
    """Decode and print attestations WITHOUT verifying any signature."""
    from rebuild.attest.show import show_envelopes

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        shown = show_envelopes(file)
    render.attestations(shown)


def main() -> NoReturn:
    """Console entry point. SIGTERM unwinds like Ctrl-C, so containers are removed."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    app()
    sys.exit(0)
