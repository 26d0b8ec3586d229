"""Debian version order (python-debian's, as dpkg's) where the verifier chooses a version."""

from __future__ import annotations

import pytest

from rebuild.debian import control
from rebuild.errors import InputError
from rebuild.resolve.buildinfo import pin_build_dependencies


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        pytest.param("1.9-1", "1.10-1", id="numeric-not-textual"),
        pytest.param("1.9", "2:1.0", id="epoch-wins"),
        pytest.param("1.0~rc1", "1.0", id="tilde-sorts-before-release"),
        pytest.param("1.0-1", "1.0-1+deb12u1", id="stable-update"),
        pytest.param("1.0-1", "1.0-1+b1", id="binnmu"),
        pytest.param("2.36-9+deb12u4", "2.36-9+deb12u10", id="numeric-suffix"),
        pytest.param("13.11.4", "13.11.10", id="native"),
        pytest.param("1.0-9", "1.0-10", id="revision"),
    ],
)
def test_debian_version_order(older: str, newer: str) -> None:
    assert control.newest([older, newer], "t") == newer
    assert control.newest([newer, older], "t") == newer
    assert control.debian_sorted([newer, older], "t") == [older, newer]


@pytest.mark.parametrize("bad", ["$(id)", "", "1.0 (= 2)", "1:", "\x1b[31m1"])
def test_a_version_that_is_not_debian_is_named(bad: str) -> None:
    with pytest.raises(InputError, match=r"^t: .* is not a Debian version$"):
        control.newest(["1.0", bad], "t")


def test_an_epoch_too_long_to_compare_is_input_not_a_crash() -> None:
    with pytest.raises(InputError, match=r"^t: versions that cannot be compared"):
        control.newest(["1.0", "9" * 5000 + ":1.0"], "t")


def test_no_versions_is_named() -> None:
    with pytest.raises(InputError, match="no versions to choose from"):
        control.newest([], "t")


def test_upstream_version() -> None:
    assert control.upstream_version("1:2.10-3", "t") == "2.10"
    assert control.upstream_version("12.4+deb12u5", "t") == "12.4+deb12u5"
    assert control.upstream_version("1.2-3-4", "t") == "1.2-3"


ARCHIVE = {"debhelper": {"13.9-1", "13.11.4", "13.10-1"}, "libc6": {"2.36-9+deb12u4", "2.36-9+deb12u10"}}


def test_allow_newer_build_deps_uses_the_newest_in_debian_order() -> None:
    """The archive's newest: 13.11.4 (a text sort would pick 13.9-1) and +deb12u10 (not +deb12u4)."""
    pins = pin_build_dependencies(
        [("debhelper", "1.0-old"), ("libc6", "2.36-9"), ("gone", "1.0"), ("make", "4.3-4.1")],
        {**ARCHIVE, "make": {"4.3-4.1"}},
        allow_newer=True,
        where="t",
    )
    assert pins.packages == ["debhelper=13.11.4", "libc6=2.36-9+deb12u10", "make=4.3-4.1"]
    assert pins.deviations == [
        "build dependency debhelper: recorded 1.0-old, used the archive's 13.11.4",
        "build dependency libc6: recorded 2.36-9, used the archive's 2.36-9+deb12u10",
        "build dependency gone (= 1.0) is not in the archive: left out",
    ]
    assert pins.missing == []


def test_without_allow_newer_the_missing_are_listed_with_what_the_archive_has_in_order() -> None:
    pins = pin_build_dependencies(
        [("debhelper", "1.0-old"), ("gone", "1.0"), ("libc6", "2.36-9+deb12u4")], ARCHIVE, allow_newer=False, where="t"
    )
    assert pins.packages == ["libc6=2.36-9+deb12u4"] and pins.deviations == []
    assert pins.missing == ["debhelper (= 1.0-old) [archive has 13.9-1, 13.10-1, 13.11.4]", "gone (= 1.0)"]
