"""`rebuild doctor`: is this machine ready to rebuild?"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rebuild.errors import DockerUnavailableError, InputError
from rebuild.recipes import RecipeBook


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    trust_root: dict[str, Any] = field(default_factory=dict)  # the Sigstore root in use, its date and age

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
            "images": self.images,
            "sigstore_trust_root": self.trust_root,
        }


def _tool_version(tool: str, *args: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        out = subprocess.run([path, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return f"{path} (version unknown)"
    first = (out.stdout or out.stderr).strip().splitlines()
    return f"{first[0] if first else 'version unknown'} ({path})"


TRUST_ROOT_MAX_AGE_DAYS = 365  # older: keys rotated since are unknown to it (docs/sigstore.md)


def trust_root_check(path: Path | None = None) -> tuple[Check, dict[str, Any]]:
    """Which Sigstore trust root verification uses (pinned, or ``--trust-root``), its date and its age."""
    from rebuild.attest.sigstore import load_trust_root

    try:
        root = load_trust_root(path)
    except InputError as e:
        return Check("sigstore trust root", False, e.message), {}
    age = root.age_days()
    detail = (
        f"{root.source}: {root.path}, of {root.taken.isoformat()} ({age} days old), sha256 {root.sha256[:16]}...; "
        "another with --trust-root FILE"
    )
    if age > TRUST_ROOT_MAX_AGE_DAYS:
        detail += f"; older than {TRUST_ROOT_MAX_AGE_DAYS} days: update rebuild-verifier or pass a newer root"
    return Check("sigstore trust root", age <= TRUST_ROOT_MAX_AGE_DAYS, detail), {**root.as_dict(), "age_days": age}


def run_doctor(cache_dir: Path, recipes: RecipeBook) -> DoctorReport:
    from rebuild.build.docker import connect, engine_version
    from rebuild.build.images import ImageBuilder, mmdebstrap_mode

    report = DoctorReport()
    client = None
    try:
        client = connect(timeout=10)
        report.checks.append(Check("docker", True, f"engine {engine_version(client)} answers"))
    except DockerUnavailableError as e:
        report.checks.append(Check("docker", False, f"{e.message}; {e.hint}"))
    for tool, args in (("mmdebstrap", ("--version",)), ("diffoscope", ("--version",))):
        version = _tool_version(tool, *args)
        report.checks.append(Check(tool, version is not None, version or f"{tool} not found"))
    # Informational: root mode still builds the same images, only with less defence in depth.
    report.checks.append(Check("mmdebstrap mode", True, mmdebstrap_mode().describe()))
    helpers = [t for t in ("zipinfo", "tar", "xz", "bzip2", "ar", "readelf") if shutil.which(t) is None]
    report.checks.append(
        Check("diffoscope tools", not helpers, "all found" if not helpers else "missing: " + ", ".join(helpers))
    )
    check, report.trust_root = trust_root_check()
    report.checks.append(check)
    cache_dir.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(cache_dir)
    free_gib = usage.free / (1 << 30)
    report.checks.append(Check("cache", free_gib > 2, f"{cache_dir} ({free_gib:.1f} GiB free)"))
    seen: set[str] = set()
    for recipe in recipes.all():
        spec = recipe.image
        if spec.tag in seen:
            continue
        seen.add(spec.tag)
        if recipe.image_per_build:
            made = "made for each build from its package set, when first needed"
            report.images.append({"image": spec.name, "digest": made, "recipes": recipe.name})
            report.checks.append(Check(f"image {spec.name}", True, made))
            continue
        digest = "unknown (no engine)"
        if client is not None:
            found = ImageBuilder(client, cache_dir).find_local(spec.tag)
            digest = found.id if found is not None else "not built (run: rebuild image build --all)"
        report.images.append({"image": spec.tag, "digest": digest, "recipes": recipe.name})
        if client is not None:
            report.checks.append(Check(f"image {spec.name}", digest.startswith("sha256:"), digest))
    return report
