"""The files some variations mount read-only, made once per builder image and kept in the cache.

- ``time`` and ``locale``: Debian's libfaketime and two locales compiled by Debian's ``localedef``,
  copied out of a tools image (``check-tools``: the builder image's suite and mirror, packages
  ``libfaketime`` and ``locales``) made by mmdebstrap like every builder image, so the same suite's
  glibc built both. The tools image never runs a project's build: the library and the locales are
  mounted read-only into the plan's own builder image, whose ID stays what the plan says.
- ``user``: the builder image's own ``/etc/passwd`` and ``/etc/group`` with one more user.

Each is made by a run of the hardened sandbox (network off, non-root), never on the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rebuild.build.images import ImageSpec
from rebuild.build.sandbox import BuildRequest, Limits, Sandbox
from rebuild.check.variations import VARIED_LOCALES, VARIED_UID, VARIED_USER, Tools
from rebuild.errors import ImageError, SandboxError
from rebuild.pipeline import Backends
from rebuild.plan import BuildPlan

TOOLS_IMAGE = "check-tools"
TOOLS_PACKAGES = ("libfaketime", "locales")
TOOLS_EPOCH = 1700000000
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PREPARE_LIMITS = Limits(timeout_s=300.0, output_bytes=256 << 20)


def tools_spec(plan: BuildPlan) -> ImageSpec:
    """The tools image for a plan: its builder image's suite and mirror (bookworm for a registry image)."""
    if plan.image.spec:
        base = ImageSpec.from_dict(plan.image.spec)
        return ImageSpec(TOOLS_IMAGE, TOOLS_PACKAGES, base.suite, base.mirror, "minbase", TOOLS_EPOCH)
    return ImageSpec(TOOLS_IMAGE, TOOLS_PACKAGES, epoch=TOOLS_EPOCH)


def tools_steps() -> tuple[str, ...]:
    steps = [
        "mkdir -p /out/faketime /out/locale",
        # one architecture directory per image: the glob names it
        "cp /usr/lib/*/faketime/libfaketime.so.1 /out/faketime/",
    ]
    for locale in VARIED_LOCALES:
        language, _, charset = locale.partition(".")
        steps.append(f"localedef -i {language} -f {charset} /out/locale/{locale}")
    return tuple(steps)


def prepare(
    engine: Backends,
    plan: BuildPlan,
    *,
    need_tools: bool,
    need_passwd: bool,
    progress: Callable[[str, str], None] = lambda s, m: None,
) -> Tools:
    """What the chosen variations need; a problem making it is recorded (those variations are not applied).

    Raises:
        DockerUnavailableError: the engine went away (anything else is recorded in ``Tools.problem``).
    """
    root = engine.cache.root / "check-tools"
    directory = passwd = group = None
    problems = []
    made_from = ""
    if need_tools:
        try:
            spec = tools_spec(plan)
            progress("tools", f"libfaketime and locales from {spec.tag} (a first build takes about 2 minutes)")
            image = engine.images.ensure(spec)
            directory = _made_once(
                root / f"{spec.suite}-{image.digest.removeprefix('sha256:')[:16]}",
                lambda out: _run(engine.sandbox, image.digest, tools_steps(), out),
            )
            made_from = f"{spec.tag}@{image.digest}"
        except (ImageError, SandboxError) as e:
            problems.append(e.message)
    if need_passwd:
        try:
            digest = plan.image.digest.removeprefix("sha256:")[:16]
            made = _made_once(root / f"passwd-{digest}", lambda out: _passwd(engine.sandbox, plan.image.digest, out))
            passwd, group = made / "passwd", made / "group"
        except SandboxError as e:
            problems.append(e.message)
    return Tools(directory, passwd, group, os.cpu_count() or 1, "; ".join(problems), made_from)


def _run(sandbox: Sandbox, image: str, steps: tuple[str, ...], out: Path) -> None:
    sandbox.run(BuildRequest(image=image, steps=steps, env={"PATH": PATH}, limits=PREPARE_LIMITS), out)


def _passwd(sandbox: Sandbox, image: str, out: Path) -> None:
    """The image's own user and group files, and the varied user appended to them."""
    _run(sandbox, image, ("cp /etc/passwd /etc/group /out/",), out)
    for name, line in (
        ("passwd", f"{VARIED_USER}:x:{VARIED_UID}:{VARIED_UID}:rebuild check:/nonexistent:/usr/sbin/nologin"),
        ("group", f"{VARIED_USER}:x:{VARIED_UID}:"),
    ):
        path = out / name
        text = path.read_text()
        taken = {entry.split(":")[2] for entry in text.splitlines() if entry.count(":") >= 3}
        if str(VARIED_UID) in taken:
            raise SandboxError(f"the builder image already has id {VARIED_UID} in /etc/{name}")
        path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + line + "\n")
        path.chmod(0o644)


def _made_once(final: Path, make: Callable[[Path], None]) -> Path:
    """``final``, made by ``make`` into a fresh directory first (so a half-made one is never used)."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        make(staging)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # readable by any build uid
        staging.chmod(0o755)
        with contextlib.suppress(OSError):  # another run made it meanwhile: theirs is as good
            staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it became ``final``
    return final
