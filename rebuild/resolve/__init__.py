"""Resolving targets: one adapter per kind of target, each turning what the user holds into a
``Resolution`` (candidate plans, the published files, the origin document and its signature status).

This is where provenance formats are parsed. The registry, most specific first, is ``ADAPTERS`` below:
``pypi.py`` (``pypi:NAME==VERSION``), ``debian.py`` (``deb:SOURCE=VERSION``), ``buildinfo.py`` (a Debian
``.buildinfo``) and ``provenance.py`` (a provenance file in any wrapper; this project's own buildType reads
back exactly, foreign SLSA v0.2/v1 from GitHub, npm and PyPI goes through ``slsa.py``). ``context.py``,
``statements.py`` and ``published.py`` (finding the published files: a held file by digest only) are shared
by the adapters and import none of them. Every value an adapter yields is
checked again where the plan is made (``rebuild.fields``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rebuild.errors import InputError, VerificationError
from rebuild.resolution import Resolution
from rebuild.resolve.context import ResolveContext


def _pypi(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.resolve.pypi import resolve_pypi

    return resolve_pypi(target, ctx)


def _deb(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.resolve.debian import resolve_deb

    return resolve_deb(target, ctx)


def _buildinfo(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.resolve.buildinfo import resolve_buildinfo

    return resolve_buildinfo(Path(target), ctx)


def _provenance(target: str, ctx: ResolveContext) -> Resolution:
    from rebuild.resolve.provenance import resolve_provenance_file

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
