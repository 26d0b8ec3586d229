"""Resolving a Python project's build requirements to exact, hash-pinned wheels.

pip's resolver does the work (``pip install --dry-run --report``), isolated
from this machine's pip configuration and for the builder image's Python, so
the plan names public URLs with their sha256. The fetch stage then brings
those wheels; the build itself installs them offline with no index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rebuild.errors import FetchError, InputError
from rebuild.plan import Inference, Input
from rebuild.python.distributions import check_requirement, read_build_system
from rebuild.untrusted import dig, dig_str

DEFAULT_INDEX = "https://pypi.org/simple"
BUILDER_PYTHON = "3.11"  # Debian bookworm's python3


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
    requirements: list[str], index_url: str = DEFAULT_INDEX, constraints: Sequence[str] = ()
) -> tuple[Input, ...]:
    """Exact wheels (URL + sha256) for the requirements and their dependencies (within ``constraints``).

    Raises:
        FetchError: pip could not resolve them (no network, no such version).
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
            "--only-binary=:all:",
            f"--python-version={BUILDER_PYTHON}",
            "--implementation=py",
            "--platform=any",
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
            raise FetchError(f"could not resolve build requirements {requirements}: {tail}")
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


def wheelhouse_for(tree: Path, index_url: str = DEFAULT_INDEX) -> tuple[tuple[Input, ...], tuple[Inference, ...]]:
    """The wheelhouse a tree's build needs, and what was inferred to choose it (recorded in the plan)."""
    requirements, inferred = build_requirements(tree)
    return resolve_wheelhouse(requirements, index_url), (inferred,) if inferred else ()
