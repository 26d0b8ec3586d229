"""Pinning a release's build requirements: the backend from the wheel, the rest as of its upload date."""

from __future__ import annotations

from datetime import datetime

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from rebuild.errors import FetchError, InputError, PlanError
from rebuild.plan import Inference, Input
from rebuild.python import distributions
from rebuild.python.index import SimpleIndex
from rebuild.python.wheelhouse import DEFAULT_TARGET, PythonTarget, resolve_wheelhouse


def pin_build_requirements(
    requires: list[str],
    wheel: distributions.WheelFacts | None,
    uploaded: datetime | None,
    index: SimpleIndex | None,
    in_tree_backend: bool = False,
) -> tuple[list[str], list[Inference]]:
    """``requires`` with the backend pinned from the wheel's Generator and the rest as of the upload time.

    Without a published wheel nothing is pinned from a Generator; without an upload time (and index)
    the other requirements are left to pip's newest match, and that is recorded.
    """
    inferences = []
    pinned: dict[NormalizedName, str] = {}
    wheel = wheel or distributions.WheelFacts("", "", "", ())
    generator_dist = distributions.GENERATOR_DISTRIBUTIONS.get(wheel.generator_name.lower())
    if in_tree_backend:
        inferences.append(
            Inference("backend", "in-tree", "build-system.backend-path: the sdist's own code is (part of) the backend")
        )
    if generator_dist and wheel.generator_version and "+" in wheel.generator_version:
        inferences.append(Inference("backend", wheel.generator, "a local version, not on the index: not pinned"))
    elif generator_dist and wheel.generator_version:
        pinned[canonicalize_name(generator_dist)] = wheel.generator_version
        inferences.append(
            Inference(
                generator_dist,
                wheel.generator_version,
                f"the published wheel's WHEEL file says 'Generator: {wheel.generator}'",
            )
        )
    elif wheel.generator:
        inferences.append(Inference("backend", "unpinned", f"Generator {wheel.generator!r} is not one this maps"))
    out = []
    names: set[NormalizedName] = set()
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement as e:
            raise PlanError(f"the build-system.requires entry {text!r} is invalid: {e}") from e
        key = canonicalize_name(req.name)
        names.add(key)
        if key in pinned:
            out.append(distributions.pin(text, pinned[key]))
            continue
        version = newest_before(index, req.name, req.specifier, uploaded) if uploaded and index else None
        if version:
            out.append(distributions.pin(text, version))
            inferences.append(
                Inference(req.name, version, f"newest release matching {text!r} uploaded before the wheel ({uploaded})")
            )
        else:
            out.append(text)
            inferences.append(Inference(req.name, text, "no release date to hold it to: pip's newest match"))
    for key, version in pinned.items():
        if key not in names:  # e.g. bdist_wheel's 'wheel' for a setuptools build
            out.append(f"{key}=={version}")
    return out, inferences


def newest_before(index: SimpleIndex, name: str, spec: SpecifierSet, when: datetime) -> str | None:
    try:
        files = index.files(name)
    except (InputError, FetchError):
        return None
    candidates = [
        f.version
        for f in files
        if f.version is not None
        and f.filename.endswith(".whl")
        and not f.yanked
        and f.upload_time is not None
        and f.upload_time <= when
        and not f.version.is_prerelease
        and spec.contains(f.version)
    ]
    return str(max(candidates)) if candidates else None


def resolve_as_of(
    requires: list[str],
    when: datetime | None,
    index: SimpleIndex,
    index_url: str,
    target: PythonTarget = DEFAULT_TARGET,
) -> tuple[tuple[Input, ...], list[Inference]]:
    """The wheelhouse for ``requires`` on ``target``, every dependency held to what was released before ``when``.

    pip resolves; any package it picks that was uploaded after ``when`` is constrained to the newest
    release before it, and pip resolves again (a few rounds at most: new dependencies can appear).
    """
    constraints: dict[str, str] = {}
    inputs = resolve_wheelhouse(requires, index_url, target=target)
    for _ in range(4):
        if when is None:
            break
        changed = False
        for item in inputs:
            name, version = parse_wheel_filename(item.filename)[:2]
            key = canonicalize_name(str(name))
            newest = newest_before(index, key, SpecifierSet(), when)
            if newest and version > Version(newest) and constraints.get(key) != newest:
                constraints[key] = newest
                changed = True
        if not changed:
            break
        held = [f"{k}<={v}" for k, v in sorted(constraints.items())]
        inputs = resolve_wheelhouse(requires, index_url, held, target)
    inferences = [
        Inference(name, f"<={version}", f"a dependency of the build held to its newest release before {when}")
        for name, version in sorted(constraints.items())
    ]
    return inputs, inferences


def epoch_candidates(
    sdist: distributions.SdistFacts, wheel: distributions.WheelFacts, zone: tuple[str, str] | None = None
) -> list[tuple[str, int | None, str]]:
    """The ordered (what it assumes, ``SOURCE_DATE_EPOCH``, ``TZ``) candidates to try."""
    wheel_time: list[tuple[str, int | None, str]] = []
    if wheel.entry_times:
        kind = "its" if len(wheel.entry_times) == 1 else f"the newest of its {len(wheel.entry_times)}"
        wheel_time = [(f"SOURCE_DATE_EPOCH = {kind} zip entry time(s)", wheel.entry_times[-1], "UTC")]
    pkg_info: list[tuple[str, int | None, str]] = []
    if sdist.pkg_info_mtime is not None:
        pkg_info = [("SOURCE_DATE_EPOCH = the sdist's PKG-INFO mtime", sdist.pkg_info_mtime, "UTC")]
    unset: list[tuple[str, int | None, str]] = [("SOURCE_DATE_EPOCH unset", None, "UTC")]
    if zone is not None:  # zip times are the files' mtimes in the publisher's local time
        unset.insert(0, (f"SOURCE_DATE_EPOCH unset, TZ of the publisher ({zone[1]})", None, zone[0]))
    ordered = (
        unset + wheel_time + pkg_info
        if distributions.is_fixed_time_backend(sdist.build_system.backend) or zone is not None
        else wheel_time + pkg_info + unset
    )
    seen: set[tuple[int | None, str]] = set()
    out = []
    for label, value, tz in ordered:
        if (value, tz) not in seen:
            seen.add((value, tz))
            out.append((label, value, tz))
    return out
