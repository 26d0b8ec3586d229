"""Which builder Pythons a release is rebuilt with, and how a py2.py3 tag is asked for; no Docker, no network."""

from __future__ import annotations

import io
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.version import Version

from rebuild.errors import FetchError, InputError, PlanError
from rebuild.plan import Inference, Input
from rebuild.python import distributions as dist
from rebuild.python.builders import PythonBuild, Release, python_builds
from rebuild.python.index import SimpleIndex
from rebuild.python.tags import universal_way
from rebuild.python.wheelhouse import DEFAULT_TARGET, PythonTarget
from rebuild.recipes import RecipeBook, RecipeImage

IMAGES = RecipeBook().get("python-wheel").builder_images  # bookworm (3.11.2), then trixie (3.13.5)
INDEX = SimpleIndex("https://pypi.example/simple")


def wheel_input(filename: str) -> Input:
    return Input("wheelhouse", filename, f"https://files.example/{filename}", "ab" * 32)


class FakeResolver:
    """Resolves to a fixed wheelhouse; refuses the Pythons in ``refuse`` as pip does when no wheel fits."""

    def __init__(self, wheels: tuple[str, ...] = ("flit_core-3.9.0-py3-none-any.whl",), refuse: tuple[str, ...] = ()):
        self.wheels = wheels
        self.refuse = refuse
        self.asked: list[PythonTarget] = []

    def __call__(
        self, requires: list[str], when: datetime | None, index: SimpleIndex, index_url: str, target: PythonTarget
    ) -> tuple[tuple[Input, ...], list[Inference]]:
        self.asked.append(target)
        if target.python in self.refuse:
            raise FetchError(f"could not resolve build requirements {requires} for {target.describe()}: no wheel")
        return tuple(wheel_input(w) for w in self.wheels), []


def release(
    requires_python: str = "", uploaded: datetime | None = datetime(2026, 1, 1, tzinfo=UTC), **kw: str
) -> Release:
    return Release(
        (("the sdist's PKG-INFO", requires_python), ("the wheel's METADATA", requires_python)),
        ["flit_core==3.9.0"],
        uploaded,
        kw.get("wheel", "demo-1.0-py3-none-any.whl"),
        kw.get("backend", "flit_core.buildapi"),
    )


def builds(rel: Release, resolver: FakeResolver | None = None) -> list[PythonBuild]:
    return python_builds(IMAGES, rel, INDEX, INDEX.url, resolve=resolver or FakeResolver())


def python_inference(build: PythonBuild) -> Inference:
    (found,) = [i for i in build.inferences if i.field == "python"]
    return found


def test_the_python_recipes_name_bookworm_then_trixie() -> None:
    for name in ("python-wheel", "python-build"):
        images = RecipeBook().get(name).builder_images
        assert [(i.spec.suite, i.python, i.platform) for i in images] == [
            ("bookworm", "3.11.2", "manylinux_2_36_x86_64"),
            ("trixie", "3.13.5", "manylinux_2_41_x86_64"),
        ]
    first = IMAGES[0]  # what callers that do not choose a Python (rebuild build, SLSA provenance) resolve for
    assert PythonTarget(first.python, first.platform) == DEFAULT_TARGET


@pytest.mark.parametrize(
    ("requires_python", "uploaded", "pythons", "left_out"),
    [
        ("", datetime(2026, 1, 1, tzinfo=UTC), ["3.11.2", "3.13.5"], ""),
        (">=3.12", datetime(2026, 1, 1, tzinfo=UTC), ["3.13.5"], "Python 3.11.2 (Debian bookworm): the sdist's"),
        (">=3.11.5", datetime(2026, 1, 1, tzinfo=UTC), ["3.13.5"], "says '>=3.11.5'"),  # bookworm has 3.11.2
        ("<3.13", datetime(2026, 1, 1, tzinfo=UTC), ["3.11.2"], "Python 3.13.5 (Debian trixie): the sdist's"),
        ("", datetime(2023, 6, 1, tzinfo=UTC), ["3.11.2"], "trixie): first released 2024-10-07, after the wheel's"),
        ("", datetime(2019, 6, 1, tzinfo=UTC), ["3.11.2"], "trixie): first released 2024-10-07"),  # the oldest
        (">=3.12", datetime(2023, 12, 1, tzinfo=UTC), ["3.13.5"], "bookworm): the sdist's PKG-INFO says '>=3.12'"),
        ("", None, ["3.11.2", "3.13.5"], ""),
    ],
    ids=["any", "needs-3.12", "needs-3.11.5", "below-3.13", "before-3.13", "before-both", "newer-only", "no-date"],
)
def test_the_order_of_pythons_comes_from_the_release(
    requires_python: str, uploaded: datetime | None, pythons: list[str], left_out: str
) -> None:
    resolver = FakeResolver()
    found = builds(release(requires_python, uploaded), resolver)
    assert [b.image.python for b in found] == pythons
    assert [t.python for t in resolver.asked] == pythons  # a Python left out is not even resolved for
    reason = python_inference(found[0]).reason
    assert reason.startswith("the first Python here the release allows")
    assert (left_out in reason) if left_out else "left out" not in reason
    assert python_inference(found[0]).value == f"{pythons[0]} (Debian {found[0].image.spec.suite})"
    if len(found) > 1:
        assert python_inference(found[1]).reason.startswith("tried after Python 3.11.2 (Debian bookworm)")
    assert [b.label for b in found] == [f"Python {p.rsplit('.', 1)[0]}" for p in pythons]


def test_no_python_satisfies_the_release() -> None:
    with pytest.raises(PlanError, match=r"no builder Python satisfies the release: Python 3.11.2 .*'<3.8'") as e:
        builds(release("<3.8"))
    assert "3.13.5" in e.value.hint


def test_a_python_the_build_requirements_do_not_resolve_for_is_left_out() -> None:
    found = builds(release(), FakeResolver(refuse=("3.11.2",)))
    assert [b.image.python for b in found] == ["3.13.5"]
    assert "left out: Python 3.11.2 (Debian bookworm): could not resolve" in python_inference(found[0]).reason


def test_when_nothing_resolves_the_error_names_the_python_and_platform() -> None:
    with pytest.raises(FetchError, match=r"for Python 3\.11\.2 on manylinux_2_36_x86_64: no wheel") as e:
        builds(release(), FakeResolver(refuse=("3.11.2", "3.13.5")))
    assert "also left out: Python 3.13.5 (Debian trixie): could not resolve" in e.value.hint


def test_an_unparseable_requires_python_is_noted_and_ignored() -> None:
    found = builds(release("not a specifier"))
    assert [b.image.python for b in found] == ["3.11.2", "3.13.5"]
    notes = [i for i in found[0].inferences if i.field == "Requires-Python"]
    assert [(n.value, n.reason) for n in notes] == [
        ("not a specifier", "the sdist's PKG-INFO: not a specifier; ignored"),
        ("not a specifier", "the wheel's METADATA: not a specifier; ignored"),
    ]


def test_an_image_that_does_not_say_its_python_is_refused() -> None:
    bare = RecipeImage(IMAGES[0].spec)
    with pytest.raises(PlanError, match="does not say its python and platform"):
        python_builds([bare], release(), INDEX, INDEX.url, resolve=FakeResolver())


@pytest.mark.parametrize(
    ("setuptools", "way", "parameters", "why"),
    [
        (None, "[bdist_wheel] universal = 1", {"bdist_wheel_universal": "1"}, "version is not known"),
        ("58.5.3", "[bdist_wheel] universal = 1", {"bdist_wheel_universal": "1"}, "drops pip's --build-option"),
        ("63.4.3", "[bdist_wheel] universal = 1", {"bdist_wheel_universal": "1"}, "drops pip's --build-option"),
        ("64.0.0", "[bdist_wheel] universal = 1", {"bdist_wheel_universal": "1"}, "to egg_info, which refuses"),
        ("68.2.2", "[bdist_wheel] universal = 1", {"bdist_wheel_universal": "1"}, "to egg_info, which refuses"),
        ("69.0.0", "--universal", {"pip_args": "--config-settings=--build-option=--universal"}, "takes bdist_wheel"),
        ("75.0.0", "--universal", {"pip_args": "--config-settings=--build-option=--universal"}, "takes bdist_wheel"),
        (
            "75.1.0",
            "--python-tag py2.py3",
            {"pip_args": "--config-settings=--build-option=--python-tag=py2.py3"},
            "deprecates --universal",
        ),
    ],
    ids=["unknown", "58", "63", "64", "68", "69", "75.0", "75.1"],
)
def test_the_universal_way_follows_the_setuptools_version(
    setuptools: str | None, way: str, parameters: dict[str, str], why: str
) -> None:
    chosen = universal_way(Version(setuptools) if setuptools else None)
    assert (chosen.name, dict(chosen.parameters)) == (way, parameters)
    assert why in chosen.reason and chosen.inference().field == "wheel tag py2.py3"


def test_a_universal_setuptools_wheel_gets_the_way_of_each_pythons_setuptools() -> None:
    rel = release(wheel="demo-1.0-py2.py3-none-any.whl", backend="setuptools.build_meta:__legacy__")
    resolver = FakeResolver(("setuptools-66.0.0-py3-none-any.whl", "wheel-0.38.4-py3-none-any.whl"))
    (bookworm, trixie) = builds(rel, resolver)
    assert bookworm.parameters == {"bdist_wheel_universal": "1"} and bookworm.way == "[bdist_wheel] universal = 1"
    assert bookworm.label == "Python 3.11, [bdist_wheel] universal = 1"
    assert any(i.field == "wheel tag py2.py3" and "setuptools 66.0.0" in i.reason for i in trixie.inferences)
    flit = builds(release(wheel="demo-1.0-py2.py3-none-any.whl"))  # flit makes its own tags: nothing to ask
    assert all(not b.parameters and not b.way for b in flit)


def test_the_platforms_a_target_runs_include_every_older_manylinux() -> None:
    platforms = DEFAULT_TARGET.platforms()
    assert platforms[:2] == ["manylinux_2_36_x86_64", "manylinux_2_35_x86_64"]
    assert platforms.index("manylinux2014_x86_64") == platforms.index("manylinux_2_17_x86_64") + 1
    assert platforms[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    assert "manylinux2010_x86_64" in platforms and DEFAULT_TARGET.abi == "cp311"
    assert PythonTarget("3.13.5", "manylinux_2_41_x86_64").abi == "cp313"
    for bad in (PythonTarget("3.11", "manylinux_2_36_x86_64"), PythonTarget("3.11.2", "linux_x86_64")):
        with pytest.raises(InputError, match=r"is not X\.Y\.Z on manylinux_X_Y_ARCH"):
            bad.platforms()


def test_requires_python_is_read_from_pkg_info_and_metadata(tmp_path: Path) -> None:
    sdist = tmp_path / "demo-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        data = b"Metadata-Version: 2.1\nName: demo\nRequires-Python: >=3.12\n\nRequires-Python: <2 (the description)\n"
        info = tarfile.TarInfo("demo-1.0/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    assert dist.read_sdist(sdist).requires_python == ">=3.12"
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo-1.0.dist-info/WHEEL", "Generator: uv 0.12.5\n")
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nrequires-python: >=3.10\n")
    facts = dist.read_wheel(wheel)
    assert facts.requires_python == ">=3.10"
    assert dist.GENERATOR_DISTRIBUTIONS[facts.generator_name] == "uv_build" and facts.generator_version == "0.12.5"
    with zipfile.ZipFile(bare := tmp_path / "bare.whl", "w") as zf:
        zf.writestr("demo/__init__.py", "")
    assert dist.read_wheel(bare).requires_python == ""
