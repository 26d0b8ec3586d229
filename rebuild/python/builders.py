"""Which builder Pythons a release is rebuilt with, in which order, and the wheelhouse for each.

A Python recipe names one builder image per Python version, most preferred
first (``recipes/python-wheel.toml``). A release rules some out:

- its ``Requires-Python`` (the sdist's ``PKG-INFO``, the wheel's ``METADATA``);
- its upload date: a Python first released after the wheel was uploaded
  cannot be the one its publisher used, so it is tried only when no Python
  here had been released by then (and then only the oldest: build
  requirements of that time often do not run on a newer Python);
- what its build requirements need: pip must resolve them, as of the
  release's date, to wheels for that Python and the image's glibc.

The first image left is tried first, the others after it. The plan records
which Python it ran on and why, and which were left out and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from rebuild.errors import FetchError, PlanError
from rebuild.plan import Inference, Input
from rebuild.python.index import SimpleIndex
from rebuild.python.pinning import resolve_as_of
from rebuild.python.tags import is_universal_setuptools_wheel, universal_way
from rebuild.python.wheelhouse import PythonTarget
from rebuild.recipes import RecipeImage
from rebuild.untrusted import printable

# When each Python X.Y was first released (python.org); a version not listed is taken as available
PYTHON_RELEASED = {
    "3.8": date(2019, 10, 14), "3.9": date(2020, 10, 5), "3.10": date(2021, 10, 4), "3.11": date(2022, 10, 24),
    "3.12": date(2023, 10, 2), "3.13": date(2024, 10, 7), "3.14": date(2025, 10, 7),
}  # fmt: skip


class Resolver(Protocol):
    """Resolves build requirements as of a date for one Python (``pinning.resolve_as_of``; tests pass a fake)."""

    def __call__(
        self, requires: list[str], when: datetime | None, index: SimpleIndex, index_url: str, target: PythonTarget
    ) -> tuple[tuple[Input, ...], list[Inference]]: ...


@dataclass(frozen=True)
class Release:
    """What a release says that decides its builder Pythons."""

    requires_python: Sequence[tuple[str, str]]  # (where it is written, the specifier as written)
    build_requirements: Sequence[str]
    uploaded: datetime | None
    wheel_filename: str
    backend: str


@dataclass(frozen=True)
class PythonBuild:
    """One builder Python a release can be built with: its image, its wheelhouse, and what was inferred."""

    image: RecipeImage
    wheelhouse: tuple[Input, ...]
    inferences: tuple[Inference, ...]
    parameters: Mapping[str, str] = field(default_factory=dict)  # recipe parameters this Python's build needs
    way: str = ""  # how the py2.py3 tag is asked for, when the wheel has it

    @property
    def label(self) -> str:
        return f"Python {_short(self.image.python)}" + (f", {self.way}" if self.way else "")


def python_builds(
    images: Sequence[RecipeImage],
    release: Release,
    index: SimpleIndex,
    index_url: str,
    progress: Callable[[str, str], None] = lambda s, m: None,
    resolve: Resolver = resolve_as_of,
) -> list[PythonBuild]:
    """The images the release can be built on, in the recipe's order, each with its wheelhouse.

    Raises:
        PlanError: no image's Python satisfies the release's Requires-Python (exit 2), or an image
            does not say its Python.
        FetchError: the build requirements resolve for none of them (exit 3), naming the first one's
            Python and platform.
    """
    for image in images:
        if not image.python or not image.platform:
            raise PlanError(
                f"recipe image {image.spec.tag} does not say its python and platform",
                "a Python recipe's images each need python = X.Y.Z and platform = manylinux_X_Y_ARCH",
            )
    specs, notes = python_constraints(release)
    satisfied = "; ".join(f"{w} says Requires-Python {str(s)!r}" for w, s in specs) or "no Requires-Python is given"
    left_out: list[str] = []
    allowed = []
    for image in images:
        refused = [f"{w} says {str(s)!r}" for w, s in specs if not s.contains(Version(image.python), prereleases=True)]
        if refused:
            left_out.append(f"{image.label}: {'; '.join(refused)}")
        else:
            allowed.append(image)
    if not allowed:
        raise PlanError(
            f"no builder Python satisfies the release: {'; '.join(left_out)}",
            f"the recipe's builder images have {', '.join(i.label for i in images)}",
        )
    allowed, by_date, dated = _by_upload_date(allowed, release.uploaded)
    left_out += by_date
    errors: list[FetchError] = []
    found: list[tuple[RecipeImage, tuple[Input, ...], list[Inference]]] = []
    for image in allowed:
        target = PythonTarget(image.python, image.platform)
        wanted = ", ".join(release.build_requirements)
        progress("resolve", f"resolving build requirements {wanted} for {target.describe()}")
        try:
            wheelhouse, held = resolve(list(release.build_requirements), release.uploaded, index, index_url, target)
        except FetchError as e:
            left_out.append(f"{image.label}: {e.message}")
            errors.append(e)
            continue
        found.append((image, wheelhouse, held))
    if not found:  # the first Python's resolver error names the Python and platform it asked for
        first = errors[0]
        others = [f"also left out: {entry}" for entry in left_out if first.message not in entry]
        raise FetchError(first.message, "; ".join(filter(None, [first.hint, *others]))) from first
    why = f"{satisfied}; {dated}; the build requirements resolve for it"
    if left_out:
        why += f"; left out: {'; '.join(left_out)}"
    builds = []
    for n, (image, wheelhouse, held) in enumerate(found):
        order = "the first Python here the release allows" if n == 0 else f"tried after {found[0][0].label}"
        python = Inference("python", f"{image.python} (Debian {image.spec.suite})", f"{order}: {why}")
        builds.append(_build(image, wheelhouse, [*notes, python, *held], release))
    return builds


def python_constraints(release: Release) -> tuple[list[tuple[str, SpecifierSet]], list[Inference]]:
    """The release's Requires-Python specifiers; one that does not parse is left out, and that is recorded."""
    specs, notes = [], []
    for where, text in release.requires_python:
        if not text:
            continue
        try:
            specs.append((where, SpecifierSet(text)))
        except InvalidSpecifier:
            notes.append(Inference("Requires-Python", printable(text, 100), f"{where}: not a specifier; ignored"))
    return specs, notes


def _by_upload_date(images: list[RecipeImage], uploaded: datetime | None) -> tuple[list[RecipeImage], list[str], str]:
    """The images whose Python existed when the wheel was uploaded (else the oldest), those left out, and why."""
    if uploaded is None:
        return images, [], "the wheel's upload date is not known"
    day = uploaded.date()
    existed = [i for i in images if PYTHON_RELEASED.get(_short(i.python), date.min) <= day]
    kept = existed or [min(images, key=lambda i: PYTHON_RELEASED.get(_short(i.python), date.min))]
    why = (
        f"released by the wheel's upload ({day})"
        if existed
        else f"no Python here was released by the wheel's upload ({day}): the oldest"
    )
    left = [
        f"{i.label}: first released {PYTHON_RELEASED[_short(i.python)]}, after the wheel's upload"
        for i in images
        if i not in kept
    ]
    return kept, left, why


def _build(
    image: RecipeImage, wheelhouse: tuple[Input, ...], inferences: list[Inference], release: Release
) -> PythonBuild:
    """A py2.py3 setuptools wheel also needs the way its setuptools takes to make one (``tags``)."""
    if not is_universal_setuptools_wheel(release.wheel_filename, release.backend):
        return PythonBuild(image, wheelhouse, tuple(inferences))
    way = universal_way(version_of("setuptools", wheelhouse))
    return PythonBuild(image, wheelhouse, (*inferences, way.inference()), way.parameters, way.name)


def _short(python: str) -> str:
    return ".".join(python.split(".")[:2])


def version_of(name: str, wheelhouse: Sequence[Input]) -> Version | None:
    """The version of ``name`` among the wheelhouse's wheels (None when it is not there)."""
    for item in wheelhouse:
        try:
            dist, version = parse_wheel_filename(item.filename)[:2]
        except ValueError:
            continue
        if canonicalize_name(str(dist)) == canonicalize_name(name):
            return version
    return None
