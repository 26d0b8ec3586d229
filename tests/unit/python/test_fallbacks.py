"""The setuptools fallbacks: a refused option dropped, the setuptools of the wheel's era; no Docker, no network.

The index is a local PEP 503 tree (file://) with PEP 700 upload times; pip is a fake resolver.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packaging.version import Version

from compare.report import compare_artifacts
from rebuild.plan import Environment, Inference, Input, Output, Source
from rebuild.python.era import Era, setuptools_of_era
from rebuild.python.fallbacks import SetuptoolsFallback, metadata_differs, refused_option, without_option
from rebuild.python.index import SimpleIndex
from rebuild.python.wheelhouse import PythonTarget
from rebuild.recipes import RecipeBook
from rebuild.resolution import Candidate, Outcome

RECIPE = RecipeBook().get("python-wheel")
WHEEL = "demo-1.0-py2.py3-none-any.whl"
UNIVERSAL = "--config-settings=--build-option=--universal"
UPLOADED = datetime(2024, 2, 2, tzinfo=UTC)

# (project, filename, upload time, yanked)
FILES = [
    ("wheel", "wheel-0.37.1-py2.py3-none-any.whl", "2021-12-22T10:00:00Z", False),
    ("wheel", "wheel-0.38.0rc1-py3-none-any.whl", "2022-06-01T10:00:00Z", False),  # a pre-release ends no era
    ("wheel", "wheel-0.38.0-py3-none-any.whl", "2022-11-01T10:00:00Z", True),  # yanked: as if never released
    ("wheel", "wheel-0.38.1-py3-none-any.whl", "2022-11-05T10:00:00Z", False),
    ("wheel", "wheel-0.42.0-py3-none-any.whl", "2023-11-26T10:00:00Z", False),
    ("setuptools", "setuptools-59.6.0-py3-none-any.whl", "2021-12-12T10:00:00Z", False),
    ("setuptools", "setuptools-65.5.0-py3-none-any.whl", "2022-10-15T10:00:00Z", False),
    ("setuptools", "setuptools-65.5.1-py3-none-any.whl", "2022-11-04T10:00:00Z", False),
    ("setuptools", "setuptools-65.6.0-py3-none-any.whl", "2022-11-20T10:00:00Z", False),
    ("setuptools", "setuptools-69.0.3-py3-none-any.whl", "2023-12-21T10:00:00Z", False),
]


@pytest.fixture()
def index(tmp_path: Path) -> SimpleIndex:
    root = tmp_path / "simple"
    for project in {f[0] for f in FILES}:
        links = "".join(
            f'<a href="../../files/{name}#sha256={"ab" * 32}" data-upload-time="{when}"{" data-yanked" if y else ""}>'
            f"{name}</a>\n"
            for p, name, when, y in FILES
            if p == project
        )
        (root / project).mkdir(parents=True)
        (root / project / "index.html").write_text(f"<html><body>\n{links}</body></html>")
    return SimpleIndex(root.as_uri())


class FakeResolver:
    """pip, resolving to the setuptools it was asked to pin (and recording what and as of when)."""

    def __init__(self) -> None:
        self.asked: list[tuple[list[str], datetime | None, PythonTarget]] = []

    def __call__(
        self, requires: list[str], when: datetime | None, index: SimpleIndex, index_url: str, target: PythonTarget
    ) -> tuple[tuple[Input, ...], list[Inference]]:
        self.asked.append((requires, when, target))
        version = next(r.split("==")[1] for r in requires if r.startswith("setuptools=="))
        names = [f"setuptools-{version}-py3-none-any.whl", "wheel-0.37.1-py2.py3-none-any.whl"]
        held = [Inference("packaging", "<=21.3", f"a dependency of the build held to its newest release before {when}")]
        return tuple(wheel_input(n) for n in names), held


def wheel_input(name: str) -> Input:
    return Input("wheelhouse", name, f"https://files.example/{name}", "cd" * 32)


def candidate(epoch: int, setuptools: str = "69.0.3", pip_args: str = UNIVERSAL, image: int = 0) -> Candidate:
    inputs = (
        wheel_input(f"setuptools-{setuptools}-py3-none-any.whl"),
        wheel_input("wheel-0.37.1-py2.py3-none-any.whl"),
    )
    plan = RECIPE.plan(
        Source("https://files.example/demo-1.0.tar.gz", "ef" * 32, "sdist"),
        {"source_strip": "1", "pip_args": pip_args},
        Environment(epoch),
        inputs=inputs,
        outputs=(Output(WHEEL, "01" * 32),),
        inferences=(
            Inference("setuptools", setuptools, "newest release matching 'setuptools>=40.8.0' uploaded before"),
            Inference("wheel tag py2.py3", "--universal", "setuptools takes bdist_wheel --universal through pip"),
            Inference("SOURCE_DATE_EPOCH", str(epoch), f"the epoch {epoch}"),
        ),
        image=RECIPE.builder_images[image].spec,
    )
    return Candidate(f"Python 3.11, --universal, the epoch {epoch}", plan)


def fallback(index: SimpleIndex, tmp_path: Path, generator: str = "bdist_wheel (0.37.1)") -> SetuptoolsFallback:
    return SetuptoolsFallback(
        RECIPE, index, index.url, ["setuptools==69.0.3", "wheel==0.37.1"], WHEEL,
        "setuptools.build_meta:__legacy__", generator, UPLOADED, tmp_path / "cache", FakeResolver(),
    )  # fmt: skip


def failed(c: Candidate, log: str) -> Outcome:
    return Outcome(c, "the build exited 1", log)


# --- a refused option ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("usage: ...\nerror: option --universal not recognized\n", "--universal"),
        ("error: option --python-tag not recognized", "--python-tag"),
        ("error: option --x$(touch /tmp/p) not recognized", None),  # not an option name: nothing matches
        ("error: option --universal is deprecated", None),
        ("", None),
    ],
    ids=["universal", "python-tag", "shell-in-name", "other-error", "empty"],
)
def test_the_refused_option_is_read_from_the_log(log: str, expected: str | None) -> None:
    assert refused_option(Outcome(candidate(1), "the build exited 1", log)) == expected


def test_a_build_that_did_not_fail_refused_nothing() -> None:
    assert refused_option(Outcome(candidate(1), "", "error: option --universal not recognized")) is None


@pytest.mark.parametrize(
    ("args", "option", "expected"),
    [
        (UNIVERSAL, "--universal", ""),
        (f"--no-build-isolation {UNIVERSAL}", "--universal", "--no-build-isolation"),
        ("--config-settings=--build-option=--python-tag=py2.py3", "--python-tag", ""),
        (UNIVERSAL, "--universal-x", None),
        ("--config-settings=--build-option=--universalx", "--universal", None),
        ("", "--universal", None),
    ],
    ids=["alone", "with-another", "with-value", "other-option", "longer-name", "empty"],
)
def test_without_option(args: str, option: str, expected: str | None) -> None:
    assert without_option(args, option) == expected


def test_a_refused_universal_is_dropped_from_the_attempt_and_every_pending_candidate(
    index: SimpleIndex, tmp_path: Path
) -> None:
    hook = fallback(index, tmp_path)
    first, pending = candidate(1), (candidate(2), candidate(3, pip_args=""))
    followup = hook(failed(first, "error: option --universal not recognized"), pending)
    (retried,) = followup.extra
    assert retried.plan.parameters["pip_args"] == ""
    assert retried.plan.parameters["bdist_wheel_universal"] == "1"  # the tag by the distutils config
    assert retried.plan.environment == first.plan.environment and retried.plan.inputs == first.plan.inputs
    assert retried.label == "Python 3.11, --universal, the epoch 1; without --universal: [bdist_wheel] universal = 1"
    (tag,) = [i for i in retried.plan.inferences if i.field == "wheel tag py2.py3"]
    assert tag.value == "[bdist_wheel] universal = 1" and "setuptools 69.0.3 refused --universal" in tag.reason
    assert retried.plan.inferences[-1].field == "SOURCE_DATE_EPOCH"
    assert followup.pending is not None
    assert [c.plan.parameters["pip_args"] for c in followup.pending] == ["", ""]
    assert followup.pending[1] == pending[1]  # it had no --universal: left as it was
    assert followup.notes == ("setuptools 69.0.3 refused --universal: tried again without it",)
    for c in (retried, *followup.pending):
        RECIPE.check_plan(c.plan)  # the steps are the recipe's own for the new parameters


def test_an_option_the_plan_does_not_hold_is_not_acted_on(index: SimpleIndex, tmp_path: Path) -> None:
    """The log is the build's (hostile): it can only make the fallback drop what the adapter added."""
    hook = fallback(index, tmp_path)
    outcome = failed(candidate(1), "error: option --no-deps not recognized\nerror: option --index-url not recognized")
    followup = hook(outcome, (candidate(2),))
    assert followup.extra == () and followup.pending is None


# --- the setuptools of the wheel's era ------------------------------------------------


def test_the_era_is_before_the_next_final_release_and_cached(index: SimpleIndex, tmp_path: Path) -> None:
    era = setuptools_of_era(index, Version("0.37.1"), UPLOADED, tmp_path)
    # 0.38.0rc1 is a pre-release and 0.38.0 yanked: 0.38.1 (2022-11-05) ended 0.37.1's era
    assert era == Era(Version("0.37.1"), Version("65.5.1"), Version("0.38.1"), datetime(2022, 11, 5, 10, tzinfo=UTC))
    assert "wheel 0.38.1, 2022-11-05" in era.describe()
    cached = json.loads((tmp_path / "setuptools-era.json").read_text())
    assert [e["setuptools"] for e in cached.values()] == ["65.5.1"]
    import shutil

    shutil.rmtree(Path(index.url.removeprefix("file://")))  # the second answer comes from the cache alone
    assert setuptools_of_era(SimpleIndex(index.url), Version("0.37.1"), UPLOADED, tmp_path) == era


def test_no_era_for_the_newest_wheel_or_an_unknown_one(index: SimpleIndex, tmp_path: Path) -> None:
    assert setuptools_of_era(index, Version("0.42.0"), UPLOADED, tmp_path) is None  # still current
    assert setuptools_of_era(index, Version("0.30.0"), UPLOADED, tmp_path) is None  # not on the index
    assert not (tmp_path / "setuptools-era.json").exists()


def test_the_era_never_ends_after_the_published_wheel(index: SimpleIndex, tmp_path: Path) -> None:
    era = setuptools_of_era(index, Version("0.37.1"), datetime(2022, 1, 1, tzinfo=UTC), tmp_path)
    assert era is not None and era.setuptools == Version("59.6.0")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"k": {"wheel": "0.37.1", "setuptools": "1; rm", "successor": "0.38.1", "until": "2022-11-05T10:00:00Z"}}',
        '{"k": {"wheel": "0.37.1", "setuptools": "65.5.1", "successor": "0.30", "until": "2022-11-05T10:00:00Z"}}',
        '{"k": {"wheel": "0.37.1", "setuptools": "65.5.1", "successor": "0.38.1", "until": "yesterday"}}',
        '{"k": ["a list"]}',
        "[1, 2]",
    ],
    ids=["not-json", "bad-version", "successor-older", "bad-time", "entry-not-object", "not-object"],
)
def test_a_tampered_cache_is_not_believed(index: SimpleIndex, tmp_path: Path, content: str) -> None:
    key = f"{index.url} wheel==0.37.1 not-after {UPLOADED.isoformat()}"
    (tmp_path / "setuptools-era.json").write_text(content.replace('"k"', json.dumps(key)))
    era = setuptools_of_era(index, Version("0.37.1"), UPLOADED, tmp_path)
    assert era is not None and era.setuptools == Version("65.5.1")  # read again from the index


def wheel_file(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 2, 2, 1, 18, 8)), text)
    return path


def mismatch(tmp_path: Path, rebuilt: dict[str, str]) -> Outcome:
    published = {"demo/__init__.py": "x = 1\n", "demo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\n"}
    a = wheel_file(tmp_path / "a.whl", published)
    b = wheel_file(tmp_path / "b.whl", {**published, **rebuilt})
    return Outcome(candidate(1), comparisons=(compare_artifacts(a, b, name=WHEEL),))


@pytest.mark.parametrize(
    ("rebuilt", "expected"),
    [
        ({"demo-1.0.dist-info/METADATA": "Metadata-Version: 2.2\n"}, "METADATA's content differs"),
        ({"demo-1.0.dist-info/licenses/LICENSE": "MIT\n"}, "is in one wheel only"),
        ({"demo/__init__.py": "x = 2\n"}, None),  # the project's own code: not the metadata's writer
    ],
    ids=["metadata-version", "license-moved", "code"],
)
def test_what_counts_as_metadata_written_by_another_setuptools(
    tmp_path: Path, rebuilt: dict[str, str], expected: str | None
) -> None:
    why = metadata_differs(mismatch(tmp_path, rebuilt))
    assert (why is None) if expected is None else (why is not None and why.endswith(expected))


def test_metadata_that_differs_brings_the_setuptools_of_the_wheels_era(index: SimpleIndex, tmp_path: Path) -> None:
    hook = fallback(index, tmp_path)
    outcome = mismatch(tmp_path, {"demo-1.0.dist-info/METADATA": "Metadata-Version: 2.2\n"})
    pending = (candidate(2), candidate(3, image=1))
    followup = hook(outcome, pending)
    (retried,) = followup.extra
    assert version_in(retried) == "65.5.1"
    assert retried.label == "Python 3.11, setuptools 65.5.1, [bdist_wheel] universal = 1, the epoch 1"
    assert retried.plan.parameters["bdist_wheel_universal"] == "1" and retried.plan.parameters["pip_args"] == ""
    (setuptools,) = [i for i in retried.plan.inferences if i.field == "setuptools"]
    assert setuptools.value == "65.5.1" and "while wheel 0.37.1 was current" in setuptools.reason
    assert any(i.field == "packaging" for i in retried.plan.inferences)  # what pip held to the era
    assert retried.plan.inferences[-1].field == "SOURCE_DATE_EPOCH"
    assert followup.pending is not None and [version_in(c) for c in followup.pending] == ["65.5.1", "65.5.1"]
    assert followup.pending[1].plan.image == pending[1].plan.image  # each keeps its own Python
    assert followup.notes == (
        "setuptools 69.0.3 gave another wheel (demo-1.0.dist-info/METADATA's content differs); trying "
        "setuptools 65.5.1: the newest uploaded while wheel 0.37.1 was current (before wheel 0.38.1, 2022-11-05)",
    )
    resolver = hook.resolve
    assert isinstance(resolver, FakeResolver)
    assert [(r, w) for r, w, _ in resolver.asked] == [
        (["setuptools==65.5.1", "wheel==0.37.1"], datetime(2022, 11, 5, 10, tzinfo=UTC)),
        (["setuptools==65.5.1", "wheel==0.37.1"], datetime(2022, 11, 5, 10, tzinfo=UTC)),
    ]  # once per Python: 3.11, then 3.13
    for c in (retried, *followup.pending):
        RECIPE.check_plan(c.plan)
    # the era's own attempt differing again brings nothing more: at most one setuptools of an era
    again = Outcome(retried, comparisons=outcome.comparisons)
    assert hook(again, followup.pending).extra == ()


def version_in(c: Candidate) -> str:
    return next(i.filename.split("-")[1] for i in c.plan.inputs if i.filename.startswith("setuptools-"))


@pytest.mark.parametrize(
    "generator",
    ["bdist_wheel (0.37.1; rm -rf /)", "bdist_wheel (" + "9" * 100 + ")", "bdist_wheel ()", "flit 3.9.0",
     "setuptools (70.2.0)", "bdist_wheel (0.42.0)"],
    ids=["shell", "long", "empty", "flit", "setuptools-generator", "still-current"],
)  # fmt: skip
def test_no_era_from_a_generator_that_names_none(index: SimpleIndex, tmp_path: Path, generator: str) -> None:
    hook = fallback(index, tmp_path, generator)
    outcome = mismatch(tmp_path, {"demo-1.0.dist-info/METADATA": "Metadata-Version: 2.2\n"})
    assert hook(outcome, (candidate(2),)).extra == ()


def test_the_era_is_not_tried_when_it_is_the_setuptools_already_used(index: SimpleIndex, tmp_path: Path) -> None:
    hook = fallback(index, tmp_path)
    outcome = mismatch(tmp_path, {"demo-1.0.dist-info/METADATA": "Metadata-Version: 2.2\n"})
    same = Outcome(candidate(1, setuptools="65.5.1"), comparisons=outcome.comparisons)
    assert hook(same, ()).extra == ()


def test_a_mismatch_of_timestamps_only_brings_nothing(index: SimpleIndex, tmp_path: Path) -> None:
    a = wheel_file(tmp_path / "a.whl", {"demo/__init__.py": "x = 1\n"})
    with zipfile.ZipFile(tmp_path / "b.whl", "w") as zf:
        zf.writestr(zipfile.ZipInfo("demo/__init__.py", (2026, 1, 1, 0, 0, 0)), "x = 1\n")
    outcome = Outcome(candidate(1), comparisons=(compare_artifacts(a, tmp_path / "b.whl", name=WHEEL),))
    hook = fallback(index, tmp_path)
    pending: Sequence[Candidate] = (candidate(2),)
    assert hook(outcome, pending).extra == ()
