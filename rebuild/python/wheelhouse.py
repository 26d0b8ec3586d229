"""Resolving a Python project's build requirements to exact, hash-pinned wheels.

pip's resolver does the work (``pip install --dry-run --report``), isolated
from this machine's pip configuration and for the builder image's Python and
C library (a ``PythonTarget``), so the plan names public URLs with their
sha256. Only wheels are taken (``--only-binary=:all:``: pip never builds an
sdist on this machine); a backend that ships only platform wheels (uv_build,
maturin) is found among the ``manylinux`` wheels the image's glibc runs. The
fetch stage then brings those wheels; the build itself installs them offline
with no index.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rebuild.errors import FetchError, InputError
from rebuild.plan import Inference, Input
from rebuild.python.distributions import check_requirement, read_build_system
from rebuild.untrusted import dig, dig_str

DEFAULT_INDEX = "https://pypi.org/simple"
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_([a-z0-9_]+)$")
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}  # PEP 599/571/513


@dataclass(frozen=True)
class PythonTarget:
    """The interpreter and platform build requirements are resolved for: a builder image's python3 and glibc."""

    python: str  # X.Y.Z, as the recipe states the image's python3
    platform: str  # manylinux_2_<glibc minor>_<arch>, the newest tag its glibc runs

    @property
    def abi(self) -> str:
        major, minor = self.python.split(".")[:2]
        return f"cp{major}{minor}"

    def platforms(self) -> list[str]:
        """Every platform tag the image runs, most specific first: pip does not widen ``--platform`` itself.

        Raises:
            InputError: the platform is not a ``manylinux_X_Y_ARCH`` tag.
        """
        match = _MANYLINUX.match(self.platform)
        if not match or not re.fullmatch(r"\d+\.\d+\.\d+", self.python):
            raise InputError(f"builder Python {self.python!r} on {self.platform!r} is not X.Y.Z on manylinux_X_Y_ARCH")
        major, minor, arch = int(match.group(1)), int(match.group(2)), match.group(3)
        tags = []
        for glibc in range(minor, 4, -1):  # manylinux_2_5 is the oldest (manylinux1)
            tags.append(f"manylinux_{major}_{glibc}_{arch}")
            legacy = _LEGACY_MANYLINUX.get((major, glibc))
            if legacy:
                tags.append(f"{legacy}_{arch}")
        return tags

    def describe(self) -> str:
        return f"Python {self.python} on {self.platform}"


# Debian bookworm's python3 and glibc 2.36: the first image of the python recipes (a unit test keeps them equal)
DEFAULT_TARGET = PythonTarget("3.11.2", "manylinux_2_36_x86_64")


def build_requirements(tree: Path) -> tuple[list[str], Inference | None]:
    """``build-system.requires`` of a tree (pip's legacy default when there is none, as inference)."""
    pyproject = tree / "pyproject.toml"
    try:
        text = pyproject.read_text("utf-8") if pyproject.is_file() else None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{pyproject}: {e}") from e
    system = read_build_system(text, str(tree))
    return system.requirements, system.inference()


def resolve_wheelhouse(
    requirements: list[str],
    index_url: str = DEFAULT_INDEX,
    constraints: Sequence[str] = (),
    target: PythonTarget = DEFAULT_TARGET,
) -> tuple[Input, ...]:
    """Exact wheels (URL + sha256) for the requirements and their dependencies (within ``constraints``),
    for ``target``'s Python and platform: pure wheels, or platform wheels its glibc runs.

    Raises:
        FetchError: pip could not resolve them (no network, no such version, no wheel for the target),
            naming the Python and platform asked for.
    """
    if not requirements:
        return ()  # e.g. a backend that builds itself from the sdist with no requirements
    requirements = [check_requirement(r, "build requirements") for r in requirements]  # never a URL or an option
    constraints = [check_requirement(c, "constraints") for c in constraints]
    with tempfile.TemporaryDirectory(prefix="rebuild-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        constraints_file = Path(tmp) / "constraints.txt"
        constraints_file.write_text("".join(f"{c}\n" for c in constraints))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "--isolated",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--only-binary=:all:",  # never an sdist: pip would run its setup.py here to build it
            f"--python-version={target.python}",
            "--implementation=cp",
            f"--abi={target.abi}",
            *(f"--platform={platform}" for platform in target.platforms()),
            "--target",
            str(Path(tmp) / "unused"),
            "--index-url",
            index_url,
            "--report",
            str(report),
            "--constraint",
            str(constraints_file),
            "--",
            *requirements,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-2:])
            raise FetchError(
                f"could not resolve build requirements {requirements} for {target.describe()}: {tail}",
                "only wheels are used: a requirement needs a pure wheel, or a platform wheel for that "
                "Python and a glibc no newer than the platform's",
            )
        doc = json.loads(report.read_text())
    inputs = []
    installed = dig(doc, "install")
    for item in installed if isinstance(installed, list) else []:
        info = dig(item, "download_info")
        url = dig_str(info, "url")
        sha = dig_str(info, "archive_info", "hashes", "sha256") or dig_str(info, "archive_info", "hash").removeprefix(
            "sha256="
        )
        if not url or not sha:
            raise FetchError(f"pip's resolver gave no URL and sha256 for {dig(item, 'metadata', 'name')}")
        inputs.append(Input("wheelhouse", url.rsplit("/", 1)[-1].split("#")[0], url, sha))
    return tuple(sorted(inputs, key=lambda i: i.filename))


def wheelhouse_for(
    tree: Path, index_url: str = DEFAULT_INDEX, target: PythonTarget = DEFAULT_TARGET
) -> tuple[tuple[Input, ...], tuple[Inference, ...]]:
    """The wheelhouse a tree's build needs, and what was inferred to choose it (recorded in the plan)."""
    requirements, inferred = build_requirements(tree)
    return resolve_wheelhouse(requirements, index_url, target=target), (inferred,) if inferred else ()
