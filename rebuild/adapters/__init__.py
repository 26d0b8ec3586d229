"""Adapters: one per kind of target, each turning what the user holds into a ``Resolution``.

- ``provenance.py``: a provenance file in any wrapper (ours, or SLSA v0.2/v1 from GitHub, npm, PyPI)
- ``slsa.py``: mapping foreign SLSA provenance to a plan (git source, ecosystem, recipe)
- ``pypi.py``: ``pypi:NAME==VERSION``, a published wheel rebuilt from the sdist beside it
- ``buildinfo.py``: a Debian ``.buildinfo`` file; ``debian.py``: ``deb:SOURCE=VERSION``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebuild.cache import BlobCache
from rebuild.errors import InputError, VerificationError
from rebuild.keys import PublicKey
from rebuild.recipes import RecipeBook
from rebuild.resolution import Resolution
from rebuild.wheelhouse import DEFAULT_INDEX

DEFAULT_DEBIAN_ARCHIVE = "http://deb.debian.org/debian"


@dataclass
class ResolveContext:
    """What adapters may use: the cache (they fetch what they must inspect), recipes, and the user's options."""

    cache: BlobCache
    book: RecipeBook
    work_dir: Path  # where an adapter writes the documents it makes (the run's output directory)
    artifacts: Sequence[Path] = ()
    provenance_keys: Sequence[PublicKey] = ()
    index_url: str = DEFAULT_INDEX
    git_mirrors: Mapping[str, str] = field(default_factory=dict)
    archive: str = DEFAULT_DEBIAN_ARCHIVE
    suite: str = "bookworm"
    allow_newer_build_deps: bool = False
    progress: Callable[[str, str], None] = lambda s, m: None


def write_origin(ctx: ResolveContext, name: str, summary: Mapping[str, Any]) -> Path:
    """Write what an adapter found (files and their digests) as the document the attestations reference."""
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    origin = ctx.work_dir / name
    origin.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return origin


def _pypi(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.adapters.pypi import resolve_pypi

    return resolve_pypi(target, ctx)


def _deb(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.adapters.debian import resolve_deb

    return resolve_deb(target, ctx)


def _buildinfo(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.adapters.buildinfo import resolve_buildinfo

    return resolve_buildinfo(Path(target), ctx)


def _provenance(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.adapters.provenance import resolve_provenance_file

    return resolve_provenance_file(Path(target), ctx)


# The adapters, most specific first: (name, does it take this target?, resolve)
ADAPTERS: tuple[tuple[str, Callable[[str], bool], Callable[[str, ResolveContext], Resolution]], ...] = (
    ("pypi release", lambda t: t.startswith("pypi:"), _pypi),
    ("debian source package", lambda t: t.startswith("deb:"), _deb),
    ("debian .buildinfo", lambda t: t.endswith(".buildinfo"), _buildinfo),
    ("provenance file", lambda t: True, _provenance),
)


def resolve(target: str, ctx: ResolveContext) -> Resolution:
    """The first adapter that takes ``target`` turns it into a resolution.

    Raises:
        InputError: ``--provenance-key`` with a target that is not a provenance file.
        VerificationError: ``--provenance-key`` with a ``.buildinfo`` (its OpenPGP signature is not checked).
    """
    for name, takes, adapter in ADAPTERS:
        if takes(target):
            if ctx.provenance_keys and name in ("pypi release", "debian source package"):
                raise InputError(
                    f"--provenance-key does not apply to {target}",
                    "the index and archive are checked by their own digests and signatures",
                )
            if ctx.provenance_keys and name == "debian .buildinfo":
                raise VerificationError(
                    f"{target}: provenance is not signed by a trusted key",
                    "a .buildinfo carries an OpenPGP signature, which is not checked against --provenance-key",
                )
            return adapter(target, ctx)
    raise AssertionError("the provenance-file adapter takes every target")  # pragma: no cover
