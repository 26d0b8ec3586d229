"""The stages every run shares, in order: fetch -> image -> build (``run_plan``).

``build_release`` runs a project's build hermetically and writes its
provenance; ``verify_provenance`` rebuilds from a provenance, compares with
the published artifacts, and attests. Both share ``run_plan`` (fetch, image,
build). Where the verdict is decided: ``_decide`` below, from bytes only.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rebuild.attest import dsse
from rebuild.attest.keys import Signer
from rebuild.build.images import BuilderImage, ImageSpec
from rebuild.build.sandbox import BuildRequest, BuildResult, Limits, Mount, Sandbox, safe_output_name
from rebuild.errors import SandboxError
from rebuild.fetch.cache import BlobCache
from rebuild.fetch.fetcher import Fetcher
from rebuild.fetch.git import export_commit
from rebuild.npm import cache as npm_cache
from rebuild.plan import BuildPlan

Progress = Callable[[str, str], None]
DEFAULT_MAX_INPUT_BYTES = 2 << 30


class Images(Protocol):
    def ensure(self, spec: ImageSpec, expected_digest: str | None = None) -> BuilderImage: ...
    def pull_pinned(self, reference: str) -> BuilderImage: ...


@dataclass
class Stages:
    """Per-stage wall times, and the progress lines people see."""

    progress: Progress
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self.progress(name, message)
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - started, 3)


@dataclass(frozen=True)
class Backends:
    """The swappable parts a run needs: the sandbox, the builder images, the cache (tests pass fakes)."""

    sandbox: Sandbox
    images: Images
    cache: BlobCache
    limits: Limits = field(default_factory=Limits)
    git_mirrors: Mapping[str, str] = field(default_factory=dict)  # URL prefix -> replacement
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES  # per fetched input, when the plan declares no size


@dataclass
class RunResult:
    outputs: dict[str, Path]
    build: BuildResult
    image: BuilderImage
    fetched: list[str]
    cached: list[str]
    source_sha256: str = ""  # for a git source: the sha256 of the tree exported at the commit
    extras: dict[str, Path] = field(default_factory=dict)  # other files the build wrote (dpkg's .buildinfo)


# --- shared: fetch -> image -> build --------------------------------------------


def connect_backends(
    cache_dir: Path,
    *,
    limits: Limits,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    git_mirrors: Mapping[str, str] | None = None,
) -> Backends:
    """The real backends: the Docker engine's sandbox and images, and the cache at ``cache_dir``.

    Raises:
        DockerUnavailableError: no engine answers.
    """
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder
    from rebuild.build.sandbox import DockerSandbox

    client = connect()
    return Backends(
        DockerSandbox(client),
        ImageBuilder(client, cache_dir),
        BlobCache(cache_dir),
        limits,
        dict(git_mirrors or {}),
        max_input_bytes,
    )


def run_plan(
    plan: BuildPlan,
    engine: Backends,
    work: Path,
    stages: Stages,
    base_dir: Path | None,
    log_path: Path,
    byproducts: tuple[str, ...] = (),
) -> RunResult:
    fetcher = Fetcher(engine.cache, base_dir, max_bytes=engine.max_input_bytes)
    inputs_root = work / "inputs"
    with stages.stage("fetch", f"fetching {1 + len(plan.inputs)} input(s), each checked against its sha256"):
        source_sha = ""
        if plan.source.kind == "git":
            source, source_sha = export_commit(
                plan.source.uri,
                plan.source.commit,
                engine.cache.root / "git",
                engine.git_mirrors,
                stages.progress,
                max_bytes=engine.max_input_bytes,
            )
        else:
            source = fetcher.fetch(plan.source.uri, plan.source.sha256, "source")
        # a Debian .dsc keeps its own name: dpkg-source finds the files it names beside it
        source_name = plan.source.uri.rsplit("/", 1)[-1] if plan.source.kind == "dsc" else "source.tar"
        _place(source, inputs_root / "source" / safe_output_name(source_name).name)
        for item in plan.inputs:
            path = fetcher.fetch(item.uri, item.sha256, f"input {item.group}/{item.filename}")
            _place(path, inputs_root / item.group / safe_output_name(item.filename).name)
        if any(item.group == npm_cache.GROUP for item in plan.inputs):  # what `npm ci --offline` reads
            npm_cache.lay_out_offline_cache(
                sorted((inputs_root / npm_cache.GROUP).iterdir()), inputs_root / npm_cache.CACHE_GROUP
            )
    with stages.stage("image", f"builder image {plan.image.digest[:19] or plan.image.reference}"):
        if plan.image.spec:
            image = engine.images.ensure(
                ImageSpec.from_dict(plan.image.spec), expected_digest=plan.image.digest or None
            )
        else:
            image = engine.images.pull_pinned(plan.image.reference)
    mounts = tuple(Mount(d, f"/inputs/{d.name}") for d in sorted(inputs_root.iterdir()))
    request = BuildRequest(
        image=image.digest,
        steps=plan.steps,
        env=plan.environment.variables(),
        inputs=mounts,
        build_path=plan.environment.build_path,
        umask=plan.environment.umask,
        limits=engine.limits,
        outputs=tuple(o.name for o in plan.outputs),
        byproducts=byproducts,
    )
    out = work / "outputs"
    out.mkdir()
    with stages.stage("build", f"building offline in the sandbox ({len(plan.steps)} steps)"):
        try:
            result = engine.sandbox.run(request, out)
        except SandboxError as e:
            log_path.write_text(e.log)  # the log of a failed build is kept, never lost
            e.hint = f"the build log is {log_path}"
            raise
    log_path.write_text(result.log)
    produced = {p.as_posix(): out / p for p in result.outputs}
    expected = [o.name for o in plan.outputs]
    missing = [name for name in expected if name not in produced]
    if missing:
        made = ", ".join(sorted(produced)) or "nothing"
        raise SandboxError(
            f"the build did not produce {', '.join(missing)} (it made: {made})",
            f"see the build log {log_path}",
            log=result.log,
        )
    if not produced:
        raise SandboxError("the build produced no output files", "the recipe's steps must write into /out")
    chosen = {name: produced[name] for name in expected} if expected else produced
    extras = {name: path for name, path in produced.items() if name not in chosen}
    return RunResult(chosen, result, image, fetcher.stats.fetched, fetcher.stats.cached, source_sha, extras)


def _place(blob: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob, dest)
    except OSError:
        shutil.copyfile(blob, dest)


def sign(payload: bytes, signer: Signer | None) -> dsse.Envelope:
    return dsse.sign(payload, [signer] if signer else [])
