"""Wheel tags: how to ask a setuptools build for the ``py2.py3`` tag a publisher's wheel has.

A setuptools wheel tagged ``py2.py3-none-any`` was made universal by its
publisher: ``bdist_wheel --universal``, ``[bdist_wheel] universal = 1`` in a
config file, or ``--python-tag py2.py3``. The three give the same bytes; what
differs is which of them the setuptools of the build accepts through pip
(measured in the builder images with a one-module project, setuptools 58 to 84):

- before 64, setuptools' PEP 517 backend drops ``--build-option`` config
  settings: the wheel comes out ``py3`` ("the build did not produce ... py2.py3");
- from 64 to 68, it also gives them to ``egg_info``, which stops with
  "option --universal not recognized";
- from 69 they reach ``bdist_wheel`` alone; from 75.1 ``--universal`` is
  deprecated (due 2025-08-30), ``--python-tag`` is not.

A distutils config file (the build user's ``~/.pydistutils.cfg``) reaches
``bdist_wheel`` with every version, so it is the way for the older ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from packaging.version import Version

from rebuild.plan import Inference

BUILD_OPTIONS_REACH_BDIST_WHEEL_ONLY = Version("69")  # 64-68 also give them to egg_info; before 64 they are dropped
BUILD_OPTIONS_HONOURED = Version("64")
UNIVERSAL_DEPRECATED = Version("75.1")


@dataclass(frozen=True)
class TagWay:
    """One way to make a universal wheel: the recipe parameters that ask for it, and why it was chosen."""

    name: str  # as the report prints it: "--universal", "[bdist_wheel] universal = 1", "--python-tag py2.py3"
    parameters: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""

    def inference(self) -> Inference:
        return Inference("wheel tag py2.py3", self.name, self.reason)


def is_universal_setuptools_wheel(wheel_filename: str, backend: str) -> bool:
    return "-py2.py3-" in wheel_filename and backend.startswith("setuptools")


def universal_way(setuptools: Version | None) -> TagWay:
    """The way the given setuptools (None: not known) accepts, as pip's PEP 517 build calls it."""
    published = "the published wheel is tagged py2.py3"
    if setuptools is None or setuptools < BUILD_OPTIONS_REACH_BDIST_WHEEL_ONLY:
        if setuptools is None:
            why = "the build's setuptools version is not known"
        elif setuptools < BUILD_OPTIONS_HONOURED:
            why = f"setuptools {setuptools} drops pip's --build-option (the wheel would be py3)"
        else:
            why = f"setuptools {setuptools} also gives pip's --build-option to egg_info, which refuses --universal"
        return TagWay(
            "[bdist_wheel] universal = 1",
            {"bdist_wheel_universal": "1"},
            f"{published}; {why}: the build user's distutils config says it, as a setup.cfg would",
        )
    if setuptools < UNIVERSAL_DEPRECATED:
        return TagWay(
            "--universal",
            {"pip_args": "--config-settings=--build-option=--universal"},
            f"{published}; setuptools {setuptools} takes bdist_wheel --universal through pip",
        )
    return TagWay(
        "--python-tag py2.py3",
        {"pip_args": "--config-settings=--build-option=--python-tag=py2.py3"},
        f"{published}; setuptools {setuptools} deprecates --universal: the same tag by --python-tag",
    )
