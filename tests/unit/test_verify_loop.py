"""The verdict loop with a fake sandbox (no Docker): what is tried, what is decided, what is signed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.digest import sha256_bytes
from rebuild.attest import dsse
from rebuild.attest.keys import generate
from rebuild.build.images import BuilderImage, ImageSpec
from rebuild.build.sandbox import BuildRequest, BuildResult
from rebuild.errors import VerificationError
from rebuild.fetch.cache import BlobCache
from rebuild.plan import Environment, Output, Source
from rebuild.recipes import RecipeBook
from rebuild.resolution import Candidate, Resolution
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
