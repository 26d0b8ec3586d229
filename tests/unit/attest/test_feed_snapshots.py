"""A tree's signed snapshot over time: expiry, versions, and the rollback state; and which word of a key is its
latest when a feed holds many, or a date that does not parse.

The attack behind each: a mirror that keeps serving an older snapshot, authentically signed, in which Bob said
PASSED, hiding the FAILED Bob published since (``--threshold 2`` with Alice would pass on it).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from rebuild.attest.feed_state import STATE_TYPE, load_state, save_state
from rebuild.attest.keys import write_keypair
from rebuild.attest.snapshot import parse_duration, parse_snapshot, parse_validity
from rebuild.errors import InputError, VerificationError
from tests.unit.attest.test_feeds import (
    ALICE,
    BOB,
    BUNDLE,
    DIGEST,
    MALLORY,
    NOW,
    in_a_week,
    invoke,
    policy,
    summary,
    tree,
    verify,
)  # fmt: skip

LATER = BUNDLE.replace("rebuild.intoto.jsonl", "rebuild.0123456789abcdef.intoto.jsonl")


def bob_then_and_now(root: Path) -> tuple[Path, Path]:
    """Bob's tree at version 1 (PASSED), and at version 2 (PASSED, then FAILED: a regression)."""
    old = tree(root / "bob-v1", BOB, [(BUNDLE, [summary(when="2025-01-01T11:00:00Z")], DIGEST)], version=1)
    new = tree(root / "bob-v2", BOB, [(BUNDLE, [summary(when="2025-01-01T11:00:00Z")], DIGEST),
                                      (LATER, [summary(False, when="2025-01-01T11:30:00Z")], DIGEST)],
               version=2)  # fmt: skip
    return old, new


def test_an_expired_snapshot_is_refused_naming_the_feed(tmp_path: Path) -> None:
    alice = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)])
    replayed = tree(tmp_path / "b", BOB, [(BUNDLE, [summary()], DIGEST)], published="2024-12-01T00:00:00Z",
                    expires="2024-12-08T00:00:00Z")  # fmt: skip
    verdict = verify(policy(ALICE, BOB, threshold=2), alice, replayed)
    assert not verdict.passed and verdict.feeds[1].status == "rejected"
    assert (f"{replayed}: rejected (snapshot.json: snapshot expired at 2024-12-08T00:00:00Z "
            "(now 2025-01-01T12:00:00Z; version 1))") in verdict.message  # fmt: skip
    assert verdict.signers == (ALICE.keyid,)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param({"expires": None}, "has no expiry ('expires')", id="no-expiry"),
        pytest.param({"version": None}, "has no version (a positive integer): None", id="no-version"),
        pytest.param({"version": 0}, "has no version (a positive integer): 0", id="version-0"),
        pytest.param({"version": True}, "has no version (a positive integer): True", id="version-bool"),
        pytest.param({"version": "2"}, "has no version (a positive integer): '2'", id="version-text"),
        pytest.param({"version": 2**53}, "has no version", id="version-huge"),
        pytest.param({"expires": "next week"}, "are not two RFC 3339 times in order", id="expires-not-a-time"),
        pytest.param({"expires": "2024-12-31T00:00:00Z"}, "are not two RFC 3339 times in order", id="before-published"),
        pytest.param({"published": None}, "are not two RFC 3339 times in order", id="no-published"),
        pytest.param({"files": ["changes.jsonl"]}, "no 'files' object of sha256 digests", id="files-a-list"),
        pytest.param({"files": {"changes.jsonl": "AB" * 32}}, "no 'files' object of sha256 digests", id="bad-sha"),
    ],
)
def test_a_snapshot_without_a_valid_expiry_or_version_is_refused(tmp_path: Path, fields: dict[str, object],
                                                                  problem: str) -> None:  # fmt: skip
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)], **fields)
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and verdict.feeds[0].status == "rejected"
    assert problem in verdict.feeds[0].problem, verdict.feeds[0].problem


def test_max_snapshot_age_refuses_an_old_snapshot_before_it_expires(tmp_path: Path) -> None:
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)])  # published 12 hours before NOW
    assert verify(policy(ALICE), a, max_snapshot_age=timedelta(days=1)).passed
    verdict = verify(policy(ALICE), a, max_snapshot_age=timedelta(hours=6))
    assert not verdict.passed and "older than --max-snapshot-age (6:00:00)" in verdict.feeds[0].problem


def test_a_replayed_older_snapshot_is_refused_once_a_newer_was_seen(tmp_path: Path) -> None:
    """The reviewer's attack: Bob v2 says FAILED; a mirror then serves Bob v1 (PASSED, not expired)."""
    alice = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)])
    old, new = bob_then_and_now(tmp_path)
    state = tmp_path / "state" / "versions.json"
    both = policy(ALICE, BOB, threshold=2)
    first = verify(both, alice, new, state=state)
    assert not first.passed
    assert first.message.startswith(f"rebuilders disagree: {new}: key {BOB.keyid[:16]} said FAILED")
    assert json.loads(state.read_text()) == {"_type": STATE_TYPE, "versions": {ALICE.keyid: 1, BOB.keyid: 2}}
    replay = verify(both, alice, old, state=state)
    assert not replay.passed and replay.feeds[1].status == "rejected"
    assert (f"snapshot.json is version 1, older than version 2 already seen from key {BOB.keyid[:16]}"
            in replay.feeds[1].problem)  # fmt: skip
    # without the state, the replay is believed until it expires: what docs/feeds.md says is not defended
    assert verify(both, alice, old).passed
    assert json.loads(state.read_text())["versions"][BOB.keyid] == 2  # never lowered


def test_an_older_snapshot_of_a_key_read_in_the_same_run_is_refused(tmp_path: Path) -> None:
    old, new = bob_then_and_now(tmp_path)
    verdict = verify(policy(BOB), old, new)
    assert [f.status for f in verdict.feeds] == ["rejected", "read"]
    assert "version 1, older than version 2" in verdict.feeds[0].problem
    assert not verdict.passed and "rebuilders disagree" in verdict.message


def _symlink(path: Path) -> None:
    os.symlink(path.parent / "elsewhere.json", path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"{not json", "is not valid JSON", id="not-json"),
        pytest.param(b"\xff\xfe", "is not UTF-8", id="not-utf8"),
        pytest.param(b"[]", "is not a feed state file", id="a-list"),
        pytest.param(json.dumps({"versions": {}}).encode(), "is not a feed state file", id="no-type"),
        pytest.param(json.dumps({"_type": STATE_TYPE, "versions": {"k": -1}}).encode(), "entry 'k': -1", id="neg"),
        pytest.param(json.dumps({"_type": STATE_TYPE, "versions": {"k": True}}).encode(), "entry 'k': True", id="bool"),
        pytest.param(json.dumps({"_type": STATE_TYPE, "versions": {"k": 1.5}}).encode(), "entry 'k': 1.5", id="float"),
        pytest.param(
            json.dumps({"_type": STATE_TYPE, "versions": {"../\x1b[2J": 1}}).encode(),
            "entry '../\\x1b[2J'",
            id="hostile-key",
        ),
        pytest.param(b" " * (2 << 20), "is larger than 1048576 bytes", id="too-large"),
        pytest.param(_symlink, "is not a regular file", id="symlink"),
        pytest.param(os.mkdir, "is not a regular file", id="directory"),
        pytest.param(os.mkfifo, "is not a regular file", id="fifo"),
    ],
)
def test_a_hostile_state_file_is_refused_clearly(tmp_path: Path, content: object, problem: str) -> None:
    state = tmp_path / "versions.json"
    if isinstance(content, bytes):
        state.write_bytes(content)
    else:
        content(state)  # type: ignore[operator]
    with pytest.raises(InputError, match=r"^feed state .*versions\.json") as caught:
        load_state(state)
    assert problem in caught.value.message and "remove the file to start again" in caught.value.hint
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)], expires=in_a_week())
    write_keypair(ALICE, tmp_path / "alice")
    code, out = invoke("attestation", "verify", "--key", str(tmp_path / "alice.pub"), "--digest", f"sha256:{DIGEST}",
                       "--from-feed", str(a), "--feed-state", str(state))  # fmt: skip
    assert code == 2 and "feed state" in out and "Traceback" not in out, out


def test_the_state_is_merged_never_lowered_and_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "versions.json"
    state = save_state(load_state(path), {ALICE.keyid: 3, BOB.keyid: 1})
    state = save_state(load_state(path), {ALICE.keyid: 2, MALLORY.keyid: 7})
    assert load_state(path).versions == state.versions == {ALICE.keyid: 3, BOB.keyid: 1, MALLORY.keyid: 7}
    assert [p.name for p in path.parent.iterdir()] == ["versions.json"]  # no partial file left


def test_the_cli_remembers_versions_in_the_feed_state(tmp_path: Path) -> None:
    write_keypair(BOB, tmp_path / "bob")
    old = tree(tmp_path / "v1", BOB, [(BUNDLE, [summary()], DIGEST)], version=1, expires=in_a_week())
    new = tree(tmp_path / "v4", BOB, [(BUNDLE, [summary()], DIGEST)], version=4, expires=in_a_week())
    common = ("attestation", "verify", "--key", str(tmp_path / "bob.pub"), "--digest", f"sha256:{DIGEST}",
              "--feed-state", str(tmp_path / "state.json"))  # fmt: skip
    assert invoke(*common, "--from-feed", str(new))[0] == 0
    code, out = invoke(*common, "--from-feed", str(old))
    assert code == 1 and "older than version 4 already seen" in " ".join(out.split()), out
    code, out = invoke(*common, "--from-feed", str(new), "--max-snapshot-age", "soon")
    assert code == 2 and "--max-snapshot-age 'soon' is not a duration" in out
    code, out = invoke(*common, str(new / "changes.jsonl"))
    assert code == 2 and "--max-snapshot-age and --feed-state are for --from-feed" in out


# --- what publish writes, and verify_snapshot ------------------------------------------------------------


def test_publish_writes_growing_versions_and_an_expiry(tmp_path: Path) -> None:
    from rebuild.service.publish import _write_snapshot, verify_snapshot
    from tests.unit.attest.test_feeds import public, sha

    out = tmp_path / "tree"
    out.mkdir()
    (out / "changes.jsonl").write_bytes(b"")
    files = {"changes.jsonl": sha(b"")}
    for expected in (1, 2, 3):
        _write_snapshot(out, files, ALICE, timedelta(days=7))
        checked = verify_snapshot(out, [public(ALICE)])
        assert (checked["version"], checked["files"]) == (expected, 1)
    from datetime import UTC, datetime

    expires = datetime.fromisoformat(checked["expires"].replace("Z", "+00:00"))
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)
    with pytest.raises(VerificationError, match="snapshot expired at"):
        verify_snapshot(out, [public(ALICE)], now=expires)
    tree(tmp_path / "old", ALICE, [], expires=None)  # as publish wrote it before snapshots expired
    with pytest.raises(VerificationError, match=r"has no expiry \('expires'\)"):
        verify_snapshot(tmp_path / "old", [public(ALICE)], now=NOW)
    (out / "snapshot.json").write_text("{garbage")
    with pytest.raises(VerificationError, match="is not a snapshot this tool can read"):
        _write_snapshot(out, files, ALICE, timedelta(days=7))


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("60", 60)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "--x").total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0d", "7w", "-1d", "1.5d", "7 days", "9999999d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InputError, match="is not a duration"):
        parse_duration(text, "--x")


@pytest.mark.parametrize("text", ["30s", "367d"])
def test_publish_validity_is_bounded(text: str) -> None:
    with pytest.raises(InputError, match="validity period must be from 1 minute to 366 days"):
        parse_validity(text)


def test_publish_valid_for_is_checked_before_anything_is_signed(tmp_path: Path) -> None:
    code, out = invoke("publish", "--out", str(tmp_path / "out"), "--valid-for", "400d",
                       "--data-dir", str(tmp_path / "nothing"))  # fmt: skip
    assert code == 2 and "validity period must be from 1 minute to 366 days" in out
    assert not (tmp_path / "out").exists() and not (tmp_path / "nothing").exists()


def test_parse_snapshot_reads_only_the_verified_bytes() -> None:
    with pytest.raises(VerificationError, match=r"snapshot\.json's payload is not valid JSON"):
        parse_snapshot(b"{", "snapshot.json", NOW)


# --- a key's latest word -----------------------------------------------------------------------------------


def test_a_passed_whose_time_does_not_parse_never_hides_a_newer_failed(tmp_path: Path) -> None:
    bundles = [(BUNDLE, [summary(when="2025-01-01T10:00:00Z"), summary(False, when="2025-01-01T11:00:00Z"),
                         summary(when="not a time")], DIGEST)]  # fmt: skip
    verdict = verify(policy(BOB), tree(tmp_path / "b", BOB, bundles))
    assert not verdict.passed and verdict.message.startswith("rebuilders disagree:")
    assert [c.result for c in verdict.conflicts] == ["FAILED"]


def test_a_failed_whose_time_does_not_parse_is_the_latest_word(tmp_path: Path) -> None:
    bundles = [(BUNDLE, [summary(False, when="yesterday"), summary(when="2025-01-01T11:00:00Z")], DIGEST)]
    assert not verify(policy(BOB), tree(tmp_path / "b", BOB, bundles)).passed


def test_a_key_with_more_bundles_than_are_read_keeps_its_newest_failed(tmp_path: Path) -> None:
    """70 bundles: the 64 newest in the listing's (signed) order are read, the FAILED published last among them."""
    passed = [(BUNDLE.replace("rebuild.intoto", f"rebuild.{i:016x}.intoto"),
               [summary(when=f"2025-01-01T{i // 60:02d}:{i % 60:02d}:00Z")], DIGEST) for i in range(69)]  # fmt: skip
    bob = tree(tmp_path / "b", BOB, [*passed, (LATER, [summary(False, when="2025-01-01T11:30:00Z")], DIGEST)])
    alice = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)])
    mallory = tree(tmp_path / "m", MALLORY, [(BUNDLE, [summary()], DIGEST)])
    verdict = verify(policy(ALICE, BOB, MALLORY, threshold=2), alice, mallory, bob)
    assert not verdict.passed and [(c.signer, c.result) for c in verdict.conflicts] == [(BOB.keyid, "FAILED")]
    assert verdict.feeds[2].status == "read" and len(verdict.feeds[2].said) == 64
    assert verdict.feeds[2].notes == ("the 64 newest of 70 bundles for this artifact read (by the listing's order); "
                                      "6 older ones not read",)  # fmt: skip
