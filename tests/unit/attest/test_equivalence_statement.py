"""The content-equivalence statement: written strictly, read strictly, never counted as PASSED.

Every hostile case is a statement a trusted key really signed (deterministic Ed25519 keys): the signature is
valid, the content must still be refused (or, for a well-formed claim, counted only with ``accept``).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from compare.equivalence import MAX_MEMBERS, Equivalence, equivalence_streams
from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import LoadedEnvelope
from rebuild.attest.equivalence import content_equivalence_statement, parse_claim
from rebuild.attest.keys import PrivateKey, PublicKey, key_id
from rebuild.attest.policy import ACCEPTED, CONTENT_EQUIVALENT, Policy, verify_attestations
from rebuild.attest.statements import ResourceRef, Subject, serialize, statement, verification_summary
from rebuild.errors import InputError

PUBLISHED, REBUILT = "ab" * 32, "cd" * 32
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
VERIFIED = "2025-01-01T11:00:00Z"


def fixed_key(seed: int) -> PrivateKey:
    k = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return PrivateKey(k, key_id(k.public_key()))


def public(k: PrivateKey) -> PublicKey:
    return PublicKey(k.key.public_key(), k.keyid, "test")


ALICE, MALLORY = fixed_key(1), fixed_key(9)


def wheel(when: tuple[int, ...], body: bytes = b"x = 1\n") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("pkg/__init__.py", "pkg-1.0.dist-info/RECORD"):
            z.writestr(zipfile.ZipInfo(name, when), body if name.endswith(".py") else b"record")
    return buf.getvalue()


def equivalence() -> Equivalence:
    e = equivalence_streams(io.BytesIO(wheel((2021, 1, 1, 0, 0, 0))), io.BytesIO(wheel((2026, 1, 1, 0, 0, 0))))
    assert e.equivalent
    return e


def claim_doc(digest: str = PUBLISHED) -> dict[str, Any]:
    payload = content_equivalence_statement(
        Subject("pkg-1.0-py3-none-any.whl", {"sha256": digest}),
        Subject("pkg-1.0-py3-none-any.whl", {"sha256": REBUILT}),
        equivalence(),
        input_attestations=[ResourceRef("pypi-release.json", {"sha256": "ef" * 32})],
        time_verified=VERIFIED,
    )
    doc: dict[str, Any] = json.loads(payload)
    return doc


def signed(doc: dict[str, Any], key: PrivateKey = ALICE, origin: str = "line 1") -> LoadedEnvelope:
    return LoadedEnvelope(dsse.sign(serialize(doc), [key]), origin, "dsse")


def policy(*accept: str, verifier_id: str | None = None) -> Policy:
    return Policy((public(ALICE),), "sha256", PUBLISHED, accept=accept, verifier_id=verifier_id)


def failed_vsa(digest: str = PUBLISHED) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        verification_summary(
            Subject("pkg-1.0-py3-none-any.whl", {"sha256": digest}), False, "pkg-1.0-py3-none-any.whl", [],
            time_verified=VERIFIED,
        )
    )  # fmt: skip
    return doc


def test_the_statement_round_trips_and_says_what_it_claims() -> None:
    doc = claim_doc()
    assert doc["predicateType"] == uris.CONTENT_EQUIVALENCE_V1 == "https://rebuild-verifier.dev/content-equivalence/v1"
    assert doc["subject"] == [{"name": "pkg-1.0-py3-none-any.whl", "digest": {"sha256": PUBLISHED}}]
    p = doc["predicate"]
    assert p["bitForBit"] is False and p["result"] == "CONTENT_EQUIVALENT"
    assert p["rebuilt"]["digest"] == {"sha256": REBUILT}
    assert p["metadataKinds"] == ["timestamp"]
    assert {m["path"] for m in p["members"]} == {"pkg/__init__.py", "pkg-1.0.dist-info/RECORD"}
    assert {(d["kind"], d["member"]) for d in p["differences"]} == {
        ("timestamp", "pkg/__init__.py"), ("timestamp", "pkg-1.0.dist-info/RECORD")
    }  # fmt: skip
    claim = parse_claim(p, "test")
    assert claim.label == "content-equivalent (metadata differs: timestamps)"
    assert (claim.members, claim.differences, claim.rebuilt_sha256) == (2, 2, REBUILT)


def test_nothing_is_claimed_for_a_content_difference_or_identical_bytes() -> None:
    different = equivalence_streams(
        io.BytesIO(wheel((2021, 1, 1, 0, 0, 0))), io.BytesIO(wheel((2021, 1, 1, 0, 0, 0), b"x = 2\n"))
    )
    assert not different.equivalent
    with pytest.raises(InputError, match="not content-equivalent, nothing to claim"):
        content_equivalence_statement(Subject("w", {"sha256": PUBLISHED}), Subject("w", {"sha256": REBUILT}), different)
    with pytest.raises(InputError, match="identical bytes are reproduced"):
        content_equivalence_statement(
            Subject("w", {"sha256": PUBLISHED}), Subject("w", {"sha256": PUBLISHED}), equivalence()
        )


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(p: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = p
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _content_difference(p: dict[str, Any]) -> None:
    p["differences"].append(
        {"kind": "content", "member": "pkg/__init__.py", "field": "mtime", "published": "a", "rebuilt": "b"}
    )


def _duplicate_member(p: dict[str, Any]) -> None:
    p["members"].append(dict(p["members"][0]))


def _huge(p: dict[str, Any]) -> None:
    p["members"] = [{"path": f"m{i}", "type": "dir"} for i in range(MAX_MEMBERS + 1)]


def _mode(published: str, rebuilt: str, field: str = "mode") -> Callable[[dict[str, Any]], None]:
    return _set("differences.0", {"kind": "permissions", "member": "pkg/__init__.py", "field": field,
                                  "published": published, "rebuilt": rebuilt})  # fmt: skip


def _alias(p: dict[str, Any]) -> None:
    p["members"].append({**p["members"][0], "path": "./PKG/__init__.py"})


def _order_with_a_link(p: dict[str, Any]) -> None:
    p["members"][1] = {"path": p["members"][1]["path"], "type": "symlink", "digest": {"sha256": "ef" * 32}}
    p["differences"][0] = {"kind": "order", "member": None, "field": "order", "published": "0: 'a'",
                           "rebuilt": "0: 'b'"}  # fmt: skip


HOSTILE: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("mode-execute-bit", _mode("420", "493"), "changes more than the read/write bits"),
    ("mode-setuid", _mode("493", "2541"), "changes more than the read/write bits"),
    ("mode-not-a-number", _mode("0o644", "0o664"), "is not a mode"),
    ("dos-directory-bit", _mode("0", "16", "dos-attributes"), "changes more than the read/write bits"),
    ("members-that-extract-to-one-path", _alias, "extracts to the same path as 'pkg/__init__.py'"),
    ("order-with-a-link", _order_with_a_link, "an order difference in an archive with links"),
    ("lists-a-content-difference", _content_difference, "never lists a content difference"),
    ("unknown-kind", _set("differences.0.kind", "ownership"), "not a metadata kind"),
    ("kind-of-another-field", _set("differences.0.field", "mode"), "not a field of kind timestamp"),
    ("unhashable-field", _set("differences.0.field", ["mtime"]), "not a field of kind"),
    ("unlisted-member", _set("differences.0.member", "evil.py"), "not a listed member"),
    ("unhashable-member", _set("differences.0.member", {"a": 1}), "not a listed member"),
    ("duplicate-member", _duplicate_member, "listed twice"),
    ("huge-member-list", _huge, "more than the 20000 allowed"),
    ("no-members", _set("members", []), "members is empty"),
    ("bit-for-bit-true", _set("bitForBit", True), "bitForBit is not false"),
    ("another-result", _set("result", "PASSED"), "not CONTENT_EQUIVALENT"),
    ("kinds-not-the-differences", _set("metadataKinds", ["timestamp", "order"]), "metadataKinds"),
    ("unknown-field", _set("verificationResult", "PASSED"), "unknown field(s) verificationResult"),
    ("bad-member-digest", _set("members.0.digest", {"sha256": "zz"}), "64 lowercase hex"),
    ("file-without-digest", _set("members.0", {"path": "pkg/__init__.py", "type": "file"}), "a digest is required"),
    ("unknown-format", _set("format", "ar"), "format"),
    ("bad-time", _set("timeVerified", "yesterday"), "RFC 3339"),
    ("long-value", _set("differences.0.published", "x" * 201), "differences[0].published"),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_claim_signed_by_a_trusted_key_is_refused_even_when_accepted(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    doc = claim_doc()
    change(doc["predicate"])
    with pytest.raises(InputError, match="content-equivalence predicate"):
        parse_claim(doc["predicate"], "test")
    verdict = verify_attestations([signed(doc)], policy(CONTENT_EQUIVALENT), NOW)
    assert not verdict.passed
    assert message in verdict.message


def test_without_accept_a_claim_never_passes_and_the_verdict_says_it_exists() -> None:
    verdict = verify_attestations([signed(failed_vsa(), origin="line 1"), signed(claim_doc(), origin="line 2")],
                                  policy(), NOW)  # fmt: skip
    assert not verdict.passed
    assert "a content-equivalence claim exists for this artifact" in verdict.message
    assert "--accept content-equivalent" in verdict.message


def test_with_accept_a_claim_counts_labelled_as_what_it_is() -> None:
    verdict = verify_attestations([signed(failed_vsa()), signed(claim_doc())], policy(CONTENT_EQUIVALENT), NOW)
    assert verdict.passed
    assert verdict.message == "verified, counting content-equivalent (metadata differs: timestamps)"
    (summary,) = verdict.accepted
    assert summary["label"] == "content-equivalent (metadata differs: timestamps)"
    assert summary["result"] == "CONTENT_EQUIVALENT" and summary["verifiedLevels"] == []


def test_a_failed_summary_and_a_claim_for_another_digest_do_not_pass() -> None:
    verdict = verify_attestations([signed(failed_vsa()), signed(claim_doc("ee" * 32))], policy(CONTENT_EQUIVALENT), NOW)
    assert not verdict.passed
    assert "verification result is 'FAILED', not PASSED" in verdict.message
    assert "subject digest mismatch: the content-equivalence claim is about" in verdict.checks[1].problem
    assert all(c.stage < ACCEPTED for c in verdict.checks)


def test_a_claim_whose_rebuilt_digest_is_the_published_one_is_refused() -> None:
    doc = claim_doc()
    doc["predicate"]["rebuilt"]["digest"]["sha256"] = PUBLISHED
    verdict = verify_attestations([signed(doc)], policy(CONTENT_EQUIVALENT), NOW)
    assert not verdict.passed
    assert "names the published digest as the rebuilt one" in verdict.message


def test_a_claim_with_a_second_subject_is_refused() -> None:
    doc = claim_doc()
    doc["subject"].append({"name": "other", "digest": {"sha256": "ee" * 32}})
    verdict = verify_attestations([signed(doc)], policy(CONTENT_EQUIVALENT), NOW)
    assert not verdict.passed
    assert "not (only)" in verdict.message


def test_a_claim_signed_by_an_untrusted_key_does_not_count() -> None:
    verdict = verify_attestations([signed(claim_doc(), MALLORY)], policy(CONTENT_EQUIVALENT), NOW)
    assert not verdict.passed
    assert "no signature verifies with a trusted key" in verdict.message


def test_an_expected_verifier_and_the_time_apply_to_claims() -> None:
    other = verify_attestations([signed(claim_doc())], policy(CONTENT_EQUIVALENT, verifier_id="https://x/v"), NOW)
    assert not other.passed and "is not the expected" in other.message
    doc = claim_doc()
    doc["predicate"]["timeVerified"] = "2030-01-01T00:00:00Z"
    future = verify_attestations([signed(doc)], policy(CONTENT_EQUIVALENT), NOW)
    assert not future.passed and "in the future" in future.message


def test_a_claim_is_not_a_summary_and_a_summary_is_not_a_claim() -> None:
    """A claim's predicate under the VSA type is a summary without a PASSED result; and the reverse is refused."""
    doc = claim_doc()
    doc["predicateType"] = uris.SLSA_VSA_V1
    as_vsa = verify_attestations([signed(doc)], policy(CONTENT_EQUIVALENT), NOW)
    assert not as_vsa.passed and "not PASSED" in as_vsa.message
    vsa = failed_vsa()
    vsa["predicate"]["verificationResult"] = "PASSED"
    vsa["predicateType"] = uris.CONTENT_EQUIVALENCE_V1
    as_claim = verify_attestations([signed(vsa)], policy(CONTENT_EQUIVALENT), NOW)
    assert not as_claim.passed and "content-equivalence predicate" in as_claim.message


def test_a_read_write_mode_difference_is_still_read_as_permissions() -> None:
    doc = claim_doc()
    _mode("420", "436")(doc["predicate"])  # 0644 -> 0664
    doc["predicate"]["metadataKinds"] = ["timestamp", "permissions"]
    claim = parse_claim(doc["predicate"], "test")
    assert claim.label == "content-equivalent (metadata differs: timestamps, permissions)"


def test_accept_with_a_required_level_is_refused() -> None:
    """A claim carries no verifiedLevels: a policy that asks for levels cannot be met by one."""
    with pytest.raises(InputError, match="cannot be combined with --require-level"):
        Policy((public(ALICE),), "sha256", PUBLISHED, required_levels=(uris.LEVEL_REPRODUCED_WITH_DEVIATIONS,),
               accept=(CONTENT_EQUIVALENT,))  # fmt: skip
    levels = (uris.LEVEL_REPRODUCED_WITH_DEVIATIONS,)
    assert Policy((public(ALICE),), "sha256", PUBLISHED, required_levels=levels).required_levels == levels


def test_accept_names_only_what_exists() -> None:
    with pytest.raises(InputError, match="only content-equivalent may be accepted"):
        policy("anything")
    with pytest.raises(InputError, match="only content-equivalent"):
        Policy((public(ALICE),), "sha256", PUBLISHED, accept="content-equivalent")  # type: ignore[arg-type]


def test_statement_bytes_are_an_in_toto_statement() -> None:
    doc = claim_doc()
    again = statement([Subject(doc["subject"][0]["name"], doc["subject"][0]["digest"])], doc["predicateType"],
                      doc["predicate"])  # fmt: skip
    assert json.loads(again) == doc
