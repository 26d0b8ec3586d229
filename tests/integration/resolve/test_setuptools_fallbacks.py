"""The setuptools fallbacks against the real index and real Docker: a refused --universal, pytz's wheel era."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rebuild.build.sandbox import Limits
from rebuild.errors import Error
from rebuild.fetch.cache import BlobCache
from rebuild.pipeline import connect_backends
from rebuild.recipes import RecipeBook
from rebuild.resolution import Candidate
from rebuild.resolve import resolve
from rebuild.resolve.context import ResolveContext
from rebuild.verify import verify_resolution
from tests.integration.test_pipeline import rebuild

pytestmark = [
    pytest.mark.docker,
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.usefixtures("builder_image", "no_leftover_containers"),
]

UNIVERSAL = "--config-settings=--build-option=--universal"


def with_universal(candidate: Candidate) -> Candidate:
    """The candidate as the adapter made it before it knew setuptools 64-68 give --build-option to egg_info."""
    plan, recipe = candidate.plan, RecipeBook().get(candidate.plan.recipe.name)
    params = {**plan.parameters, "pip_args": UNIVERSAL, "bdist_wheel_universal": ""}
    steps = recipe.render_steps(params, plan.environment.build_path)
    label = candidate.label.replace("[bdist_wheel] universal = 1", "--universal")
    return Candidate(label, dataclasses.replace(plan, parameters=params, steps=steps))


def test_a_refused_universal_is_retried_without_it_and_gives_a_real_verdict(tmp_path: Path, cache_dir: Path) -> None:
    """wcwidth 0.2.6 (setuptools 66.0.0, py2.py3): '--universal' fails the build; without it, it builds."""
    book = RecipeBook()
    out = tmp_path / "out"
    ctx = ResolveContext(BlobCache(cache_dir), book, out)
    resolution = resolve("pypi:wcwidth==0.2.6", ctx)
    resolution.candidates = [with_universal(c) for c in resolution.candidates]
    first = resolution.candidates[0].label
    report = verify_resolution(resolution, out, connect_backends(cache_dir, limits=Limits()), book, diffoscope=False)
    attempts = report.attempts
    assert attempts[0].label == first and attempts[0].outcome == "build failed", attempts[0]
    assert attempts[0].classification.startswith("build failed: ")
    retried = attempts[1]
    assert retried.label == f"{first}; without --universal: [bdist_wheel] universal = 1" and retried.fallback
    assert all(a.outcome != "build failed" for a in attempts[1:])  # the pending ones lost --universal too
    assert report.reproduced is False  # a real verdict: the publisher's file times are in its zip
    assert attempts[-1].classification.endswith("content identical, timestamps differ"), attempts[-1]
    # said only when the failed build's log had "error: option --universal not recognized"
    assert "setuptools 66.0.0 refused --universal: tried again without it" in report.notes
    written = json.loads((out / "verify-report.json").read_text())
    assert [a["outcome"] for a in written["attempts"]][:2] == ["build failed", "differs"]
    assert written["plan"]["parameters"]["pip_args"] == "" and written["plan"]["parameters"]["bdist_wheel_universal"]


def test_pytz_is_tried_with_the_setuptools_of_its_wheel_era(tmp_path: Path) -> None:
    """pytz 2024.1 says 'Generator: bdist_wheel (0.37.1)' in 2024; setuptools 69.0.3 writes its METADATA in
    another order. The setuptools of wheel 0.37.1's era is tried, and the report says which ones were."""
    r = rebuild("verify", "pypi:pytz==2024.1", "--json", "--no-diffoscope", "--out", str(tmp_path / "out"))
    assert r.returncode in (0, 1), r.stderr  # a verdict, never "could not rebuild"
    report = json.loads((tmp_path / "out" / "verify-report.json").read_text())
    labels = [a["label"] for a in report["attempts"]]
    assert "setuptools" not in labels[0]  # the newest setuptools before the upload: 69.0.3
    era = [a for a in report["attempts"] if a["fallback"]]
    assert era and era[0]["label"].startswith("Python 3.11, setuptools 65.5.0, [bdist_wheel] universal = 1, ")
    (note,) = [n for n in report["notes"] if n.startswith("setuptools 69.0.3 gave another wheel")]
    assert "trying setuptools 65.5.0: the newest uploaded while wheel 0.37.1 was current" in note
    tried = {a["label"].split(", ")[1] for a in report["attempts"] if "setuptools" in a["label"]}
    assert tried == {"setuptools 65.5.0"}
    if r.returncode == 1:  # what this rebuild finds (measured: METADATA's field order still differs)
        assert "pytz-2024.1.dist-info/METADATA" in json.dumps(report["artifacts"])


def test_an_unreachable_index_for_the_era_is_a_note_not_a_crash(tmp_path: Path, cache_dir: Path) -> None:
    """The fallback reads the index again; when it cannot, the run still ends in its verdict."""
    book = RecipeBook()
    out = tmp_path / "out"
    resolution = resolve("pypi:pytz==2024.1", ResolveContext(BlobCache(cache_dir), book, out))
    hook = resolution.fallback
    assert hook is not None and hasattr(hook, "index")

    class Unreachable:
        url = "https://unreachable.invalid/simple/"

        def files(self, name: str) -> list[object]:
            from rebuild.errors import FetchError

            raise FetchError(f"cannot reach the index for {name}")

    hook.index = Unreachable()  # type: ignore[attr-defined]
    hook.cache_dir = None  # type: ignore[attr-defined]
    resolution.candidates = resolution.candidates[:1]
    try:
        report = verify_resolution(
            resolution, out, connect_backends(cache_dir, limits=Limits()), book, diffoscope=False
        )
    except Error as e:  # pragma: no cover - the assertion below says what went wrong
        pytest.fail(f"the run ended in an error: {e.message}")
    assert report.reproduced is False and len(report.attempts) == 1
    assert any(n.startswith("no fallback after ") and "cannot reach the index" in n for n in report.notes)
