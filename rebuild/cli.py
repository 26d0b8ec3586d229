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
from rich.markup import escape
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
key_app = typer.Typer(no_args_is_help=True, help="Signing keys (Ed25519 or ECDSA P-256).")
app.add_typer(key_app, name="key")
attestation_app = typer.Typer(no_args_is_help=True, help="Check or show attestations.")
app.add_typer(attestation_app, name="attestation")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

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
    from compare.errors import CompareError

    try:
        yield
    except (Error, CompareError) as e:
        if _verbose(ctx):
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {esc(e.message)}", soft_wrap=True)
        if e.hint:
            err.print(f"[dim]hint:[/] {esc(e.hint)}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as e:
        if _verbose(ctx):
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {esc(type(e).__name__)}: {esc(e)}", soft_wrap=True)
        err.print("[dim]hint:[/] run again with --verbose for the traceback, and report it")
        raise typer.Exit(EXIT_ENVIRONMENT) from None


def esc(value: Any) -> str:
    """Text from outside (messages, names, digests) printed literally: never read as rich markup, and
    without control characters or lone surrogates (``untrusted.printable``)."""
    from rebuild.untrusted import printable

    return escape(printable(value))


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _cache(cache_dir: Path | None) -> Path:
    from rebuild.fetch.cache import default_cache_dir

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
            table.add_row("[green]ok[/]" if check.ok else "[red]!![/]", esc(check.name), esc(check.detail))
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
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder

    with errors_to_exit(ctx):
        book = _book(recipes)
        every = [r for r in book.all() if not r.image_per_build]  # per-build images are made when needed
        chosen = every if all_ or not recipe else [book.get(name) for name in recipe]
        builder = ImageBuilder(connect(), _cache(cache_dir))
        results = []
        done: set[str] = set()
        for r in chosen:
            if r.image.tag in done:
                continue
            done.add(r.image.tag)
            if not as_json:
                err.print(f"[dim]image {esc(r.image.tag)}: checking (a first build takes about a minute)...[/]")
            image = builder.ensure(r.image)
            results.append({"image": image.reference, "digest": image.digest, "built": image.built})
            if not as_json:
                verb = "built" if image.built else "present"
                out.print(f"image {esc(image.reference)} {esc(verb)}: {esc(image.digest)}")
    if as_json:
        print_json({"images": results})


# --- build and verify ----------------------------------------------------------


def _engine(
    cache_dir: Path | None, timeout: float, max_input_bytes: int = 2 << 30, max_output_bytes: int = 4 << 30
) -> Any:
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder
    from rebuild.build.sandbox import DockerSandbox, Limits
    from rebuild.fetch.cache import BlobCache
    from rebuild.pipeline import Backends

    client = connect()
    cache = _cache(cache_dir)
    limits = Limits(timeout_s=timeout, output_bytes=max_output_bytes)
    return Backends(
        DockerSandbox(client), ImageBuilder(client, cache), BlobCache(cache), limits, max_input_bytes=max_input_bytes
    )


def _progress(quiet: bool) -> Any:
    def show(stage: str, message: str) -> None:
        if not quiet:
            err.print(f"[cyan]{stage:>8}[/] {esc(message)}", soft_wrap=True)

    return show


def _params(values: list[str] | None) -> dict[str, str]:
    from rebuild.errors import InputError

    params = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param {item!r} is not NAME=VALUE")
        params[key] = value
    return params


def _signer(key: Path | None) -> Any:
    from rebuild.attest.keys import load_private_key

    return load_private_key(key) if key is not None else None


TimeoutOpt = typer.Option(1800.0, "--timeout", help="Wall-clock limit of the build, in seconds.")


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
    index_url: str = typer.Option("https://pypi.org/simple", "--index-url", help="Where build requirements resolve."),
    timeout: float = TimeoutOpt,
    cache_dir: Path | None = CacheOpt,
    recipes: Path | None = RecipesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a release hermetically and write its provenance (for release teams)."""
    from rebuild.python.wheelhouse import wheelhouse_for
    from rebuild.release import build_release

    with errors_to_exit(ctx):
        signer = _signer(key)
        report = build_release(
            source,
            out_dir,
            _engine(cache_dir, timeout),
            _book(recipes),
            recipe_name=recipe,
            parameters=_params(param),
            source_date_epoch=source_date_epoch,
            signer=signer,
            requirements_resolver=lambda tree: wheelhouse_for(tree, index_url),
            progress=_progress(as_json),
        )
    if as_json:
        print_json(report.as_dict())
        return
    for name, sha in report.artifacts.items():
        out.print(f"[bold green]built[/] {esc(out_dir / name)}  sha256:{esc(sha)}")
    out.print(f"provenance {esc(report.provenance)} ({'signed' if report.signed else 'UNSIGNED: pass --key to sign'})")
    out.print(f"source     {esc(report.source_archive)}")


def _engine_with(
    cache_dir: Path | None, timeout: float, mirrors: dict[str, str], max_input_bytes: int, max_output_bytes: int
) -> Any:
    import dataclasses

    engine = _engine(cache_dir, timeout, max_input_bytes, max_output_bytes)
    return dataclasses.replace(engine, git_mirrors=mirrors)


def _targets(targets: list[str] | None, from_file: Path | None) -> list[str]:
    from rebuild.errors import InputError

    found = list(targets or [])
    if from_file is not None:
        try:
            lines = from_file.read_text("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read --from {from_file}: {e}") from e
        found += [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    if not found:
        raise InputError(
            "nothing to verify", "give a provenance file, pypi:NAME==VERSION, deb:SOURCE=VERSION or --from"
        )
    return found


def _slug(target: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", Path(target).name if Path(target).exists() else target).strip("_")


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
    provenance_key: list[Path] = typer.Option(None, "--provenance-key", help="Check the provenance's signature."),
    no_diffoscope: bool = typer.Option(False, "--no-diffoscope", help="Skip the diffoscope report."),
    verifier_id: str = typer.Option(
        "https://rebuild-verifier.dev/verifier/v1", "--verifier-id", help="Who you are, as written in the summaries."
    ),
    index_url: str = typer.Option("https://pypi.org/simple", "--index-url", help="The Python package index."),
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
    from rebuild.attest.keys import load_public_key
    from rebuild.fetch.cache import BlobCache
    from rebuild.fetch.git import parse_mirrors
    from rebuild.pipeline import Stages
    from rebuild.resolve import resolve
    from rebuild.resolve.context import ResolveContext
    from rebuild.verify import check_resolution, clear_verdicts, verify_resolution, write_failure_report

    with errors_to_exit(ctx):
        all_targets = _targets(targets, from_file)
        signer = _signer(key)
        trusted = [load_public_key(k) for k in provenance_key or []]
        mirrors = parse_mirrors(git_mirror or [])
        book = _book(recipes)
    batch = len(all_targets) > 1
    progress = _progress(as_json)
    engines: list[Any] = []  # connected once, after the first target resolves (bad input never waits on Docker)

    def run(target: str) -> Any:
        target_out = out_dir / _slug(target) if batch else out_dir
        clear_verdicts(target_out)  # before anything: no earlier verdict outlives this run
        try:
            return verify_one(target, target_out)
        except Error as e:
            write_failure_report(target_out, target, e)
            raise

    def verify_one(target: str, target_out: Path) -> Any:
        stages = Stages(progress)
        resolve_ctx = ResolveContext(
            cache=BlobCache(_cache(cache_dir)),
            book=book,
            work_dir=target_out,
            artifacts=artifact or [],
            provenance_keys=trusted,
            index_url=index_url,
            git_mirrors=mirrors,
            archive=archive,
            allow_newer_build_deps=allow_newer_build_deps,
            progress=progress,
        )
        with stages.stage("resolve", f"resolving {target}"):
            resolution = resolve(target, resolve_ctx)
            check_resolution(resolution, book)  # bad input is refused before any engine is asked
        if not engines:
            engines.append(_engine_with(cache_dir, timeout, mirrors, max_input_bytes, max_output_bytes))
        return verify_resolution(
            resolution,
            target_out,
            engines[0],
            book,
            signer=signer,
            attest_failures=attest_failures,
            diffoscope=not no_diffoscope,
            verifier_id=verifier_id,
            progress=progress,
            stages=stages,
        )

    if not batch:
        with errors_to_exit(ctx):
            try:
                report = run(all_targets[0])
            except Error:
                if as_json:  # machines get the failure report on stdout too: output is never lost
                    report_file = (out_dir / "verify-report.json").read_text()
                    sys.stdout.write(report_file)
                raise
        if as_json:
            print_json(report.as_dict())
        else:
            render_verify(report)
        raise typer.Exit(0 if report.reproduced else 1)
    rows = [_batch_row(ctx, target, run) for target in all_targets]
    if as_json:
        print_json({"results": rows})
    else:
        render_batch(rows)
    raise typer.Exit(max(row["exit_code"] for row in rows))


def _batch_row(ctx: typer.Context, target: str, run: Any) -> dict[str, Any]:
    """One target of a batch: its verdict, or why it could not be rebuilt (never a crash)."""
    import time

    from compare.errors import CompareError

    progress = _progress(False)
    progress("target", f"[bold]{target}[/]")
    started = time.monotonic()
    row: dict[str, Any] = {"target": target}
    try:
        report = run(target)
    except (Error, CompareError) as e:
        if _verbose(ctx):
            traceback.print_exc()
        row.update(verdict="could not rebuild", detail=e.message, exit_code=e.exit_code, attempts=0)
    except Exception as e:  # a bug in one target must not lose the others' results
        if _verbose(ctx):
            traceback.print_exc()
        row.update(verdict="could not rebuild", detail=f"internal error: {type(e).__name__}: {e}", exit_code=3)
        row["attempts"] = 0
    else:
        row.update(
            verdict="reproduced" if report.reproduced else "not reproduced",
            detail=report.attempts[-1].classification if report.attempts else "",
            exit_code=0 if report.reproduced else 1,
            attempts=len(report.attempts),
            matched=next((a.label for a in report.attempts if a.reproduced), None),
            report=str(report.report),
            attestation=str(report.attestation) if report.attestation else None,
            summary=report.resolution.summary,
        )
    row["seconds"] = round(time.monotonic() - started, 1)
    return row


def render_verify(report: Any) -> None:
    out.print(f"provenance {esc(report.provenance)} ({esc(report.provenance_signature)})")
    for inference in report.plan.inferences:
        out.print(f"  inferred {esc(inference.field)} = {esc(inference.value)} ({esc(inference.reason)})")
    if len(report.attempts) > 1 or (report.attempts and report.attempts[0].label != "as recorded"):
        for number, attempt in enumerate(report.attempts, start=1):
            mark = "[green]match[/]" if attempt.reproduced else f"[red]differs[/]: {attempt.classification}"
            out.print(f"  attempt {esc(number)}: {esc(attempt.label)}: {mark} ({attempt.seconds:.1f}s)")
    for c in report.comparisons:
        render_comparison(c)
    for note in report.notes:
        out.print(f"[yellow]note:[/] {esc(note)}")
    if report.reproduced:
        out.print("[bold green]REPRODUCED[/] bit for bit")
    else:
        out.print(f"[bold red]NOT REPRODUCED[/]; report: {esc(report.report.parent / 'compare-report.json')}")
    if report.attestation:
        out.print(f"attestation {esc(report.attestation)}")
    elif report.reproduced:
        out.print("[yellow]no --key given: nothing was attested[/]")
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.stages.items())
    out.print(
        f"[dim]{timings}; fetched {len(report.fetched)}, from cache {len(report.cached)}, "
        f"image {'built' if report.image_built else 'present'}[/]"
    )


def render_batch(rows: list[dict[str, Any]]) -> None:
    table = Table(title="rebuild verify")
    for column in ("target", "verdict", "classification / reason", "attempts", "seconds"):
        table.add_column(column)
    colours = {"reproduced": "green", "not reproduced": "red", "could not rebuild": "yellow"}
    for row in rows:
        verdict = f"[{colours[row['verdict']]}]{row['verdict']}[/]"
        table.add_row(esc(row["target"]), verdict, esc(row["detail"]), str(row["attempts"]), f"{row['seconds']:.1f}")
    out.print(table)
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in colours}
    out.print(", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(rows)}")


# --- buildinfo ---------------------------------------------------------------------


@app.command("buildinfo")
def buildinfo_cmd(
    ctx: typer.Context,
    run_dir: Path = typer.Argument(..., help="A `rebuild verify --out` directory of a Debian rebuild."),
    dest: Path = typer.Option(Path("."), "--out", help="A file, or a directory for SOURCE_VERSION_ARCH.buildinfo."),
    as_json: bool = JsonOpt,
) -> None:
    """Write the .buildinfo of a Debian rebuild (dpkg's own record: exact build dependencies, environment)."""
    from rebuild.resolve.buildinfo import write_buildinfo

    with errors_to_exit(ctx):
        written = write_buildinfo(run_dir, dest)
    if as_json:
        print_json({"buildinfo": str(written)})
    else:
        out.print(f"buildinfo {esc(written)}")


# --- provenance show -------------------------------------------------------------

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
    from rebuild.errors import ProvenanceError
    from rebuild.resolve.slsa import describe
    from rebuild.resolve.statements import read_statements

    with errors_to_exit(ctx):
        keys = [load_public_key(k) for k in provenance_key or []]
        found, problems = read_statements(file, keys)
        if not found:
            raise ProvenanceError(
                f"{file} holds no readable in-toto statement ({problems[0] if problems else 'empty'})"
            )
        docs = [describe(f) for f in found]
    if as_json:
        print_json({"file": str(file), "statements": docs, "problems": problems})
        return
    for doc in docs:
        out.print(f"[bold]{esc(doc['where'])}[/] ({esc(doc['wrapper'])}): {esc(doc['predicateType'])}")
        out.print(f"  signature   {esc(doc['signature'])}")
        for s in doc["subjects"]:
            digests = ", ".join(f"{k}:{v[:16]}..." for k, v in sorted(s["digest"].items()))
            out.print(f"  subject     {esc(s['name'])}  {esc(digests)}")
        for field, label in (("builder", "builder"), ("buildType", "buildType"), ("invocation", "invocation")):
            if doc.get(field):
                out.print(f"  {label:<11} {esc(doc[field])}")
        source = doc.get("source")
        if source:
            where = source.get("repository") or source.get("uri")
            ref = f" ({source['ref']})" if source.get("ref") else ""
            out.print(f"  source      {esc(where)}{esc(ref)} at commit {esc(source.get('commit') or '?')}")
        elif "source" in doc:
            out.print("  source      [yellow]none recorded[/]")
        rebuild = doc.get("rebuild", {})
        if rebuild.get("possible", True) and rebuild.get("recipe"):
            out.print(f"  rebuild     recipe {esc(rebuild['recipe'])} -> {esc(', '.join(rebuild.get('outputs', [])))}")
            for step in rebuild.get("willRun", []):
                out.print(f"  [bold]will run in the sandbox:[/] {esc(step)}")
        elif rebuild:
            out.print(f"  rebuild     [yellow]not possible:[/] {esc(rebuild.get('reason'))}")
    for problem in problems:
        out.print(f"[yellow]unreadable:[/] {esc(problem)}")


# --- compare -------------------------------------------------------------------


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
    import tempfile

    from compare.errors import CompareError
    from compare.report import compare_artifacts, write_report
    from compare.verdict import compare_sets, list_files

    with errors_to_exit(ctx):
        for p in (a, b):
            if not p.exists():
                raise CompareError(f"{p} does not exist")
        if a.is_dir() != b.is_dir():
            raise CompareError("compare two files or two directories, not one of each")
        formats = ("json",) + (("html",) if html else ()) + (("text",) if text else ())
        scratch = None
        if diffoscope and report_dir is None:
            scratch = tempfile.mkdtemp(prefix="rebuild-compare-")
        reports_root = report_dir or (Path(scratch) if scratch else None)
        if a.is_dir():
            files_a, files_b = list_files(a), list_files(b)
            sets = compare_sets(files_a, files_b)
            pairs = [(files_a[n], files_b[n], n) for n in sets.differing]
        else:
            sets = None
            pairs = [(a, b, b.name)]
        reports = []
        for pa, pb, name in pairs:
            ddir = (reports_root / f"diffoscope-{name.replace('/', '_')}") if diffoscope and reports_root else None
            reports.append(
                compare_artifacts(
                    pa,
                    pb,
                    name=name,
                    diffoscope_dir=ddir,
                    diffoscope_formats=formats,
                    diffoscope_timeout_s=diffoscope_timeout,
                    side_names=(str(a), str(b)),
                )
            )
        identical = all(r.identical for r in reports) and (sets is None or sets.identical)
        if report_dir is not None:
            write_report(reports, report_dir / "compare-report.json")
    if as_json:
        print_json(
            {
                "identical": identical,
                "sets": sets.as_dict() if sets else None,
                "comparisons": [r.as_dict() for r in reports],
            }
        )
    else:
        if sets is not None:
            out.print(
                f"{len(sets.matching)} identical, {len(sets.differing)} different, "
                f"{len(sets.only_a)} only in {a}, {len(sets.only_b)} only in {b}"
            )
            for name in sets.only_a:
                out.print(f"  only in {esc(a)}: {esc(name)}")
            for name in sets.only_b:
                out.print(f"  only in {esc(b)}: {esc(name)}")
        for r in reports:
            render_comparison(r)
    raise typer.Exit(0 if identical else 1)


def render_comparison(r: Any, top: int = 10) -> None:
    if r.identical:
        out.print(
            f"[bold green]identical[/] {esc(r.name)}  sha256:{esc(r.verdict.a.sha256)}  {esc(r.verdict.a.size)} bytes"
        )
        return
    out.print(
        f"[bold red]different[/] {esc(r.name)}: {r.verdict.a.size} vs {r.verdict.b.size} bytes, "
        f"sha256 {r.verdict.a.sha256[:16]}... vs {r.verdict.b.sha256[:16]}..."
    )
    e = r.explanation
    if e is not None:
        out.print(f"  [bold]{esc(e.classification)}[/]" + (f"  ({esc(e.format)})" if e.format else ""))
        for d in e.differences[:top]:
            out.print(
                f"    {d.status:9} {esc(d.path)}" + (f"  [dim]{esc(d.detail)}[/]" if d.detail else ""), soft_wrap=True
            )
        if len(e.differences) > top:
            out.print(f"    ... and {esc(len(e.differences) - top)} more")
        for note in e.notes:
            out.print(f"  [yellow]note:[/] {esc(note)}", soft_wrap=True)
    if r.diffoscope is not None and r.diffoscope.reports:
        for fmt, path in r.diffoscope.reports.items():
            out.print(f"  diffoscope {esc(fmt)}: {esc(path)}")


# --- key -----------------------------------------------------------------------


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

    with errors_to_exit(ctx):
        passphrase = None
        if encrypt:
            text = os.environ.get(keys.PASSPHRASE_ENV) or typer.prompt(
                "passphrase", hide_input=True, confirmation_prompt=True
            )
            passphrase = text.encode()
        key = keys.generate(key_type)  # type: ignore[arg-type]
        private_path, public_path = keys.write_keypair(key, out_prefix, passphrase)
    if as_json:
        print_json(
            {
                "keyid": key.keyid,
                "private": str(private_path),
                "public": str(public_path),
                "type": keys.describe(key.key.public_key()),
            }
        )
    else:
        out.print(f"wrote {esc(private_path)} (private, 0600) and {esc(public_path)}")
        out.print(f"keyid {esc(key.keyid)}")


@key_app.command("show")
def key_show(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A public or private key PEM file."),
    as_json: bool = JsonOpt,
) -> None:
    """Show a key's type and id (the sha256 of its DER public key)."""
    from rebuild.attest import keys

    with errors_to_exit(ctx):
        data = path.read_bytes() if path.is_file() else b""
        if b"PRIVATE KEY" in data:
            private = keys.load_private_key(path)
            info = {"keyid": private.keyid, "type": keys.describe(private.key.public_key()), "private": True}
        else:
            public = keys.load_public_key(path)
            info = {"keyid": public.keyid, "type": public.algorithm, "private": False}
    if as_json:
        print_json(info)
    else:
        out.print(
            f"{esc(info['type'])} {esc('private' if info['private'] else 'public')} key, keyid {esc(info['keyid'])}"
        )


# --- attestation ---------------------------------------------------------------


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
        help="A verifiedLevels entry that satisfies the policy (repeatable; any of them). "
        "Default: REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED.",
    ),
    verifier_id: str | None = typer.Option(
        None, "--verifier-id", help="Accept only summaries by this verifier (and this tool's policy URI)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Verify that trusted rebuilders attested this artifact reproduced (PASSED)."""
    from rebuild.attest import keys
    from rebuild.attest.policy import policy_from_options, verify_attestation_file
    from rebuild.errors import VerificationError

    with errors_to_exit(ctx):
        policy = policy_from_options(
            [keys.load_public_key(k) for k in key],
            artifact,
            digest,
            threshold=threshold,
            max_age_days=max_age_days,
            required_levels=require_level or None,
            verifier_id=verifier_id,
        )
        verdict = verify_attestation_file(file, policy)
        if as_json:
            print_json(verdict.as_dict())
        if not verdict.passed:
            raise VerificationError(f"attestation verification failed: {verdict.message}")
    if not as_json:
        for summary in verdict.accepted:
            out.print(f"[bold green]verified[/] {esc(summary['subject'])} ({esc(summary['digest'])})")
            out.print(f"  result    PASSED, levels {esc(', '.join(summary['verifiedLevels'] or []))}")
            out.print(
                f"  verifier  {esc(summary['verifier'])}, signed by {', '.join(k[:16] for k in summary['signers'])}"
            )
            out.print(f"  when      {esc(summary['timeVerified'])}")
            sources = [a.get("uri") for a in summary["inputAttestations"] if isinstance(a, dict)]
            out.print(
                f"  source    {esc(summary['resourceUri'])}; provenance {esc(', '.join(map(str, sources)) or '-')}"
            )
            for deviation in summary["deviations"]:
                out.print(f"  deviation {esc(deviation)}")
        out.print(f"{esc(len(verdict.signers))} distinct trusted signer(s); threshold {esc(threshold)} met")


@attestation_app.command("show")
def attestation_show(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An attestation file in any supported wrapper."),
    as_json: bool = JsonOpt,
) -> None:
    """Decode and print attestations WITHOUT verifying any signature."""
    from rebuild.attest.envelopes import read_envelopes
    from rebuild.attest.statements import parse_statement
    from rebuild.errors import InputError

    with errors_to_exit(ctx):
        shown = []
        for loaded in read_envelopes(file):
            item: dict[str, Any] = {
                "origin": loaded.origin,
                "wrapper": loaded.wrapper,
                "payloadType": loaded.envelope.payload_type,
                "signatures": len(loaded.envelope.signatures),
            }
            try:
                item["statement"] = parse_statement(loaded.envelope.payload, loaded.origin).raw
            except InputError as e:
                item["error"] = e.message
            shown.append(item)
    if as_json:
        print_json({"verified": False, "envelopes": shown})
        return
    err.print("[yellow]not verified:[/] signatures were not checked (use `rebuild attestation verify`)")
    for item in shown:
        out.print(f"[bold]{esc(item['origin'])}[/] {esc(item['wrapper'])}, {esc(item['signatures'])} signature(s)")
        if "statement" in item:
            out.print_json(data=item["statement"])
        else:
            out.print(f"  [red]{esc(item['error'])}[/]")


def main() -> NoReturn:
    """Console entry point. SIGTERM unwinds like Ctrl-C, so containers are removed."""

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    app()
    sys.exit(0)
