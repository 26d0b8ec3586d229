"""The attestation policy against hostile summaries: every attack a case, every verdict a named check.

Summaries are made with ``statements.verification_summary`` (what this
project writes), then changed and signed with deterministic Ed25519 keys, so
each case is a summary a trusted key really signed: the signature is valid,
the content must still be refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import parse_envelopes, read_envelopes
from rebuild.attest.keys import PrivateKey, PublicKey, key_id, load_public_key
from rebuild.attest.policy import (
    STAGES,
    Policy,
    parse_digest,
    policy_from_options,
    verify_attestation_file,
    verify_attestations,
)
from rebuild.attest.statements import ResourceRef, Subject, serialize, verification_summary
from rebuild.errors import Error, InputError, ProvenanceError
from rebuild.untrusted import parse_rfc3339, printable
from tests.conftest import VECTORS

DIGEST = "ab" * 32
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
VERIFIED = "2025-01-01T11:00:00Z"
GCE = VECTORS / "slsa-verifier/vsa/gce/v1"
GCE_VERIFIER = "https://bcid.corp.google.com/verifier/bcid_package_enforcer/v0.1"
GCE_POLICY = (
    "googlefile:/google_src/files/642513192/depot/google3/production/security/bcid/software/gce_image/gke/"
    "vm_images.sw_policy.textproto"
)


def fixed_key(seed: int) -> PrivateKey:
    k = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return PrivateKey(k, key_id(k.public_key()))


def public(k: PrivateKey) -> PublicKey:
    return PublicKey(k.key.public_key(), k.keyid, "test")


ALICE, BOB = fixed_key(1), fixed_key(2)


def summary(deviations: tuple[str, ...] = (), passed: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        verification_summary(
            Subject("demo-1.0.tar.gz", {"sha256": DIGEST}),
            passed,
            "file:release/demo-1.0.tar.gz",
            [ResourceRef("file:release/demo.provenance.intoto.jsonl", {"sha256": "cd" * 32})],
            deviations=deviations,
            time_verified=VERIFIED,
        )
    )
    return doc


def envelope_line(payload: bytes, signers: tuple[PrivateKey, ...] = (ALICE,)) -> str:
    return dsse.sign(payload, list(signers)).to_json()


def policy(**overrides: Any) -> Policy:
    fields: dict[str, Any] = {"keys": (public(ALICE),), "algorithm": "sha256", "digest": DIGEST}
    fields.update(overrides)
    return Policy(**fields)


def one_clean_line(message: str) -> bool:
    """Untrusted text in ``message`` went through ``printable`` (it is its own escape) and it is one line."""
    return printable(message, len(message)) == message and "\n" not in message


def check(payload: bytes, pol: Policy, now: datetime = NOW) -> tuple[bool, str, str]:
    verdict = verify_attestations(parse_envelopes(envelope_line(payload), "vsa.intoto.jsonl"), pol, now)
    (one,) = verdict.checks
    return verdict.passed, STAGES[one.stage], verdict.message


# --- changes to a signed summary ----------------------------------------------------


def predicate(**fields: Any) -> Callable[[dict[str, Any]], bytes]:
    """Set (or with ``...``, delete) predicate fields."""

    def change(doc: dict[str, Any]) -> bytes:
        for name, value in fields.items():
            if value is ...:
                del doc["predicate"][name]
            else:
                doc["predicate"][name] = value
        return serialize(doc)

    return change


def at(path: str, value: Any) -> Callable[[dict[str, Any]], bytes]:
    """Set a dotted path (list indexes as numbers) anywhere in the statement."""

    def change(doc: dict[str, Any]) -> bytes:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return serialize(doc)

    return change


def textual(old: bytes, new: bytes) -> Callable[[dict[str, Any]], bytes]:
    """Edit the serialised bytes: for what ``json.dumps`` cannot write (duplicate keys, long integers)."""

    def change(doc: dict[str, Any]) -> bytes:
        data = serialize(doc)
        assert old in data
        return data.replace(old, new, 1)

    return change


def unchanged(doc: dict[str, Any]) -> bytes:
    return serialize(doc)


def deep(levels: int) -> Any:
    node: Any = "x"
    for _ in range(levels):
        node = [node]
    return node


R, RWD = uris.LEVEL_REPRODUCED, uris.LEVEL_REPRODUCED_WITH_DEVIATIONS
SOON = (NOW + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
LATER = (NOW + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")

# id, change, policy fields, summary with deviations, the stage reached, a part of the message
SUMMARY_CASES: list[tuple[str, Callable[[dict[str, Any]], bytes], dict[str, Any], bool, str, str]] = [
    ("accepted", unchanged, {}, False, "accepted", "verified"),
    ("deviations-refused-by-default", unchanged, {}, True, "levels", f"verifiedLevels ['{RWD}'] does not include"),
    ("deviations-accepted-when-asked", unchanged, {"required_levels": (R, RWD)}, True, "accepted", "verified"),
    ("levels-other", predicate(verifiedLevels=["X"]), {}, False, "levels", f"['X'] does not include the required {R}"),
    ("levels-empty", predicate(verifiedLevels=[]), {}, False, "levels", "verifiedLevels [] does not include"),
    ("levels-missing", predicate(verifiedLevels=...), {}, False, "levels", "(missing) is not a list of strings"),
    ("levels-a-string", predicate(verifiedLevels=R), {}, False, "levels", f"'{R}' is not a list of strings"),
    ("levels-not-strings", predicate(verifiedLevels=[R, 3]), {}, False, "levels", "is not a list of strings"),
    ("levels-an-object", predicate(verifiedLevels={R: 1}), {}, False, "levels", "is not a list of strings"),
    ("levels-any-of", predicate(verifiedLevels=["L3"]), {"required_levels": ("L2", "L3")}, False, "accepted", ""),
    (
        "levels-none-of",
        predicate(verifiedLevels=["L1"]),
        {"required_levels": ("L2", "L3")},
        False,
        "levels",
        "does not include any of the required L2, L3",
    ),
    ("result-failed", predicate(verificationResult="FAILED"), {}, False, "result", "'FAILED', not PASSED"),
    ("result-lowercase", predicate(verificationResult="passed"), {}, False, "result", "'passed', not PASSED"),
    ("result-a-list", predicate(verificationResult=["PASSED"]), {}, False, "result", "['PASSED'], not PASSED"),
    ("result-missing", predicate(verificationResult=...), {}, False, "result", "(missing), not PASSED"),
    (
        "verifier-other-id",
        at("predicate.verifier.id", "https://evil.example/v"),
        {"verifier_id": uris.VERIFIER_ID},
        False,
        "verifier",
        f"verifier.id 'https://evil.example/v' is not the expected '{uris.VERIFIER_ID}'",
    ),
    (
        "verifier-missing",
        predicate(verifier=...),
        {"verifier_id": uris.VERIFIER_ID},
        False,
        "verifier",
        "verifier.id (missing) is not the expected",
    ),
    (
        "verifier-not-an-object",
        predicate(verifier=uris.VERIFIER_ID),
        {"verifier_id": uris.VERIFIER_ID},
        False,
        "verifier",
        "verifier.id (missing)",
    ),
    (
        "verifier-id-unchecked-when-not-expected",
        at("predicate.verifier.id", "https://other/v"),
        {},
        False,
        "accepted",
        "",
    ),
    ("verifier-expected-and-ours", unchanged, {"verifier_id": uris.VERIFIER_ID}, False, "accepted", ""),
    (
        "policy-uri-other",
        at("predicate.policy.uri", "https://evil.example/anything-goes"),
        {"verifier_id": uris.VERIFIER_ID},
        False,
        "verifier",
        f"policy.uri 'https://evil.example/anything-goes' is not the expected '{uris.POLICY_URI}'",
    ),
    (
        "policy-missing",
        predicate(policy=...),
        {"verifier_id": uris.VERIFIER_ID},
        False,
        "verifier",
        "policy.uri (missing)",
    ),
    ("time-future-beyond-skew", predicate(timeVerified=LATER), {}, False, "time", "timeVerified is in the future"),
    ("time-future-within-skew", predicate(timeVerified=SOON), {}, False, "accepted", ""),
    (
        "time-future-with-max-age",
        predicate(timeVerified="2026-01-01T00:00:00Z"),
        {"max_age": timedelta(days=30)},
        False,
        "time",
        "timeVerified is in the future: '2026-01-01T00:00:00Z'",
    ),
    ("time-far-future", predicate(timeVerified="9999-12-31T23:59:59Z"), {}, False, "time", "in the future"),
    ("time-unparseable", predicate(timeVerified="yesterday"), {}, False, "time", "'yesterday' is not an RFC 3339"),
    ("time-no-offset", predicate(timeVerified="2025-01-01T11:00:00"), {}, False, "time", "is not an RFC 3339"),
    ("time-date-only", predicate(timeVerified="2025-01-01"), {}, False, "time", "is not an RFC 3339"),
    ("time-february-30", predicate(timeVerified="2025-02-30T00:00:00Z"), {}, False, "time", "is not an RFC 3339"),
    ("time-overflows-utc", predicate(timeVerified="9999-12-31T23:59:59-23:59"), {}, False, "time", "not an RFC 3339"),
    (
        "time-non-ascii-digits",
        predicate(timeVerified="\uff12025-01-01T11:00:00Z"),
        {},
        False,
        "time",
        "not an RFC 3339",
    ),
    ("time-a-number", predicate(timeVerified=1735729200), {}, False, "time", "1735729200 is not an RFC 3339"),
    ("time-missing", predicate(timeVerified=...), {}, False, "time", "timeVerified (missing) is not"),
    ("time-with-offset", predicate(timeVerified="2025-01-01T13:00:00+02:00"), {}, False, "accepted", ""),
    ("time-leap-second", predicate(timeVerified="2024-12-31T23:59:60.123456789Z"), {}, False, "accepted", ""),
    (
        "time-expired",
        predicate(timeVerified="2020-01-01T00:00:00Z"),
        {"max_age": timedelta(days=30)},
        False,
        "time",
        "summary expired: verified '2020-01-01T00:00:00Z', older than the allowed 30 days",
    ),
    ("time-within-max-age", unchanged, {"max_age": timedelta(days=30)}, False, "accepted", ""),
    ("inputs-not-a-list", predicate(inputAttestations="x"), {}, False, "fields", "inputAttestations 'x' is not a list"),
    ("inputs-a-number", predicate(inputAttestations=5), {}, False, "fields", "inputAttestations 5 is not a list"),
    ("inputs-not-objects", predicate(inputAttestations=["x"]), {}, False, "fields", "is not a list of objects"),
    ("deviations-not-strings", predicate(deviations=[1]), {}, False, "fields", "deviations [1] is not a list"),
    ("resource-uri-not-a-string", predicate(resourceUri={"a": 1}), {}, False, "fields", "resourceUri {'a': 1}"),
    ("verifier-a-string", predicate(verifier="me"), {}, False, "fields", "verifier 'me' is not an object"),
    ("verifier-id-a-number", at("predicate.verifier.id", 7), {}, False, "fields", "with a string id"),
    ("subject-other-digest", at("subject.0.digest.sha256", "cd" * 32), {}, False, "subject", "subject digest mismatch"),
    ("subject-uppercase-hex", at("subject.0.digest.sha256", DIGEST.upper()), {}, False, "accepted", ""),
    ("subject-other-algorithm", at("subject.0.digest", {"sha512": DIGEST}), {}, False, "subject", "mismatch"),
    ("subject-name-a-number", at("subject.0.name", 5), {}, False, "statement", "subject[0].name is 5, not a string"),
    ("subject-digest-not-strings", at("subject.0.digest", {"sha256": 5}), {}, False, "statement", "map of strings"),
    ("subject-digest-a-list", at("subject.0.digest", [DIGEST]), {}, False, "statement", "map of strings"),
    ("subject-not-an-object", at("subject.0", DIGEST), {}, False, "statement", "subject[0] is not an object"),
    ("subject-lone-surrogate", at("subject.0.name", "demo\ud800"), {}, False, "statement", "lone surrogate"),
    ("payload-lone-surrogate-anywhere", predicate(note="\udfff"), {}, False, "statement", "lone surrogate"),
    (
        "payload-duplicate-result",
        textual(b'"verificationResult":"PASSED"', b'"verificationResult":"FAILED","verificationResult":"PASSED"'),
        {},
        False,
        "statement",
        "duplicate key 'verificationResult'",
    ),
    (
        "payload-duplicate-subject",
        textual(b'"subject":[', b'"subject":[{"name":"evil","digest":{"sha256":"' + b"cd" * 32 + b'"}}],"subject":['),
        {},
        False,
        "statement",
        "duplicate key 'subject'",
    ),
    ("payload-deep-nesting", predicate(extra=deep(100)), {}, False, "statement", "nested too deeply"),
    (
        "payload-5000-digit-integer",
        textual(b'"slsaVersion":"1.0"', b'"slsaVersion":' + b"9" * 5000),
        {},
        False,
        "statement",
        "an integer of 5000 digits",
    ),
    (
        "payload-huge-float",
        textual(b'"slsaVersion":"1.0"', b'"slsaVersion":1e999'),
        {},
        False,
        "statement",
        "too large",
    ),
    ("payload-nan", textual(b'"slsaVersion":"1.0"', b'"slsaVersion":NaN'), {}, False, "statement", "NaN is not JSON"),
    (
        "payload-not-utf8",
        lambda doc: serialize(doc).replace(b"demo-1.0", b"demo-\xff"),
        {},
        False,
        "statement",
        "UTF-8",
    ),
    ("payload-utf16", lambda doc: serialize(doc).decode().encode("utf-16"), {}, False, "statement", "UTF-8"),
    ("payload-an-array", lambda doc: b"[]", {}, False, "statement", "not a JSON object"),
    ("payload-truncated", lambda doc: serialize(doc)[:-1], {}, False, "statement", "not valid JSON"),
    ("not-a-summary", at("predicateType", uris.SLSA_PROVENANCE_V1), {}, False, "type", "not a verification summary"),
]


@pytest.mark.parametrize(
    "change, fields, deviations, reached, message",
    [case[1:] for case in SUMMARY_CASES],
    ids=[case[0] for case in SUMMARY_CASES],
)
def test_signed_summaries(
    change: Callable[[dict[str, Any]], bytes], fields: dict[str, Any], deviations: bool, reached: str, message: str
) -> None:
    payload = change(summary(("inputs differ",) if deviations else ()))
    passed, stage, text = check(payload, policy(**fields))
    assert (stage, passed) == (reached, reached == "accepted"), text
    assert message in text
    assert one_clean_line(text), text


def test_a_message_never_carries_control_characters_or_bidi_overrides() -> None:
    payload = predicate(verifiedLevels=["\x1b[2J\x1b[32mPASSED\u202e"], verificationResult="PASSED")(summary())
    passed, stage, text = check(payload, policy())
    assert (passed, stage) == (False, "levels")
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J" in text


def test_writer_output_meets_the_strict_default() -> None:
    """What ``rebuild verify`` writes today is what the default policy accepts (at the real current time)."""
    payload = verification_summary(
        Subject("demo-1.0.tar.gz", {"sha256": DIGEST}), True, "file:demo-1.0.tar.gz", [], verifier_id="https://me/v"
    )
    verdict = verify_attestations(parse_envelopes(envelope_line(payload), "vsa"), policy())
    assert verdict.passed, verdict.message
    (accepted,) = verdict.accepted
    assert accepted["verifiedLevels"] == [R] and accepted["verifier"] == "https://me/v"
    assert accepted["policyUri"] == uris.POLICY_URI


def test_threshold_counts_distinct_trusted_signers() -> None:
    payload = unchanged(summary())
    two = parse_envelopes(envelope_line(payload, (ALICE, BOB)), "vsa")
    both = policy(keys=(public(ALICE), public(BOB)), threshold=2)
    assert verify_attestations(two, both, NOW).passed
    same_twice = parse_envelopes("\n".join([envelope_line(payload)] * 2), "vsa")
    verdict = verify_attestations(same_twice, both, NOW)
    assert not verdict.passed and "too few distinct signers: 1" in verdict.message


def test_no_envelopes_is_a_failed_verdict() -> None:
    verdict = verify_attestations([], policy(), NOW)
    assert not verdict.passed and verdict.message == "no attestation to check"


# --- the slsa-verifier VSA vector ----------------------------------------------------


def gce_policy(**overrides: Any) -> Policy:
    fields: dict[str, Any] = {
        "keys": (load_public_key(GCE / "vsa_signing_public_key.pem"),),
        "algorithm": "gce_image_id",
        "digest": "8970095005306000053",
        "required_levels": ("SLSA_BUILD_LEVEL_2",),
        "verifier_id": GCE_VERIFIER,
        "policy_uri": GCE_POLICY,
    }
    fields.update(overrides)
    return Policy(**fields)


@pytest.mark.parametrize(
    "overrides, reached, message",
    [
        ({}, "accepted", "verified"),
        ({"verifier_id": None}, "accepted", "verified"),
        (
            {"required_levels": (R,)},
            "levels",
            f"verifiedLevels ['BCID_L1', 'SLSA_BUILD_LEVEL_2'] does not include the required {R}",
        ),
        ({"digest": "8970095005306000054"}, "subject", "subject digest mismatch"),
        ({"algorithm": "sha256", "digest": DIGEST}, "subject", "subject digest mismatch"),
        ({"verifier_id": "https://other/v"}, "verifier", "verifier.id"),
        ({"policy_uri": uris.POLICY_URI}, "verifier", "policy.uri 'googlefile:"),
        ({"max_age": timedelta(days=30)}, "time", "summary expired: verified '2024-06-12T07:24:34.351608Z'"),
    ],
    ids=["accepted", "any-verifier", "default-level", "other-image", "sha256", "other-verifier", "other-policy", "old"],
)
def test_the_slsa_verifier_vsa_vector(overrides: dict[str, Any], reached: str, message: str) -> None:
    verdict = verify_attestation_file(GCE / "gke-gce-pre.bcid-vsa.jsonl", gce_policy(**overrides), NOW)
    (one,) = verdict.checks
    assert (STAGES[one.stage], verdict.passed) == (reached, reached == "accepted"), verdict.message
    assert message in verdict.message
    if verdict.passed:
        (accepted,) = verdict.accepted
        assert accepted["digest"] == "gce_image_id:8970095005306000053" and accepted["subject"] == "_"


# --- envelope files -----------------------------------------------------------------

GOOD = envelope_line(unchanged(summary()))
ENVELOPE = json.loads(GOOD)


def with_field(text: str, field: str) -> str:
    """``text`` (a JSON object) with ``field`` (raw JSON ``"key":value``) added first."""
    return "{" + field + "," + text[1:]


def pretty_with_duplicate() -> str:
    return with_field(json.dumps(ENVELOPE, indent=2), '\n  "payloadType": "text/plain"')


FILE_CASES = [
    ("duplicate-payloadType", with_field(GOOD, '"payloadType":"text/plain"'), "duplicate key 'payloadType'"),
    ("duplicate-payload", with_field(GOOD, '"payload":"e30="'), "duplicate key 'payload'"),
    ("duplicate-in-signature", GOOD.replace('"keyid":', '"sig":"AAAA","keyid":'), "duplicate key 'sig'"),
    ("duplicate-pretty-printed", pretty_with_duplicate(), "duplicate key 'payloadType'"),
    ("duplicate-on-line-2", GOOD + "\n" + with_field(GOOD, '"payload":"e30="'), "line 2 is malformed: duplicate key"),
    ("deep-nesting", with_field(GOOD, '"x":' + "[" * 100 + "]" * 100), "nested too deeply"),
    ("deep-nesting-beyond-recursion", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ("5000-digit-integer", with_field(GOOD, '"x":' + "9" * 5000), "an integer of 5000 digits"),
    ("nan", with_field(GOOD, '"x":NaN'), "NaN is not JSON"),
    ("lone-surrogate-in-payloadType", json.dumps({**ENVELOPE, "payloadType": "\udc00"}), "lone surrogate"),
    ("lone-surrogate-in-keyid", GOOD.replace('"keyid":"', '"keyid":"\\ud800'), "lone surrogate"),
    ("lone-surrogate-in-bundle", json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle\ud800"}), "surrogate"),
    ("too-many-signatures", json.dumps({**ENVELOPE, "signatures": ENVELOPE["signatures"] * 65}), "65 signatures"),
    ("signatures-not-a-list", json.dumps({**ENVELOPE, "signatures": {"sig": "AAAA"}}), "'signatures' is not a list"),
    ("payloadType-a-number", json.dumps({**ENVELOPE, "payloadType": 1}), "'payloadType' is missing or not a string"),
    ("payload-not-base64", json.dumps({**ENVELOPE, "payload": "é"}), "not valid base64"),
    ("top-level-array", "[" + GOOD + "]", "is not a JSON object"),
    ("truncated", GOOD[:-1], "not valid JSON"),
    ("unicode-whitespace-around", "\u2028" + GOOD, "not valid JSON"),
]


@pytest.mark.parametrize("text, message", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_malformed_files_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(ProvenanceError) as caught:
        parse_envelopes(text, "vsa.intoto.jsonl")
    assert caught.value.exit_code == 2
    assert message in caught.value.message and one_clean_line(caught.value.message), caught.value.message


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "vsa.intoto.jsonl"
    bad.write_bytes(GOOD.encode().replace(b'"keyid"', b'"k\xffeyid"'))
    with pytest.raises(ProvenanceError, match="is not UTF-8 text"):
        read_envelopes(bad)


def test_json_lines_split_only_at_newlines() -> None:
    """U+2028 is allowed unescaped inside a JSON string; ``str.splitlines`` would cut the line there."""
    line = with_field(GOOD, '"note":"a\u2028b"')
    loaded = parse_envelopes(line + "\r\n" + line + "\n\n", "vsa.intoto.jsonl")
    assert [e.origin for e in loaded] == ["line 1", "line 2"]
    assert verify_attestations(loaded, policy(), NOW).passed


def test_a_bare_statement_keeps_its_bytes() -> None:
    """What is shown or hashed is the statement as written, not a re-serialisation of it."""
    text = '{ "_type": "https://in-toto.io/Statement/v1",\n  "predicateType": "x", "subject": [], "n": 1.50 }'
    (loaded,) = parse_envelopes(text, "statement.json")
    assert loaded.envelope.payload == text.encode() and not loaded.signed


# --- policies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"keys": ()}, "at least one trusted key"),
        ({"threshold": 0}, "threshold must be at least 1"),
        ({"threshold": -1}, "threshold must be at least 1"),
        ({"required_levels": ()}, "at least one required level"),
        ({"required_levels": ("",)}, "at least one required level"),
        ({"required_levels": R}, "not one string"),
        ({"verifier_id": ""}, "verifier id must not be empty"),
        ({"policy_uri": ""}, "policy URI must not be empty"),
        ({"max_age": timedelta(days=-1)}, "must not be negative"),
        ({"digest": "zz" * 32}, "is not 64 hex digits"),
        ({"digest": DIGEST[:-1]}, "is not 64 hex digits"),
        ({"algorithm": "md5", "digest": "ab" * 16}, "too weak"),
        ({"algorithm": "SHA256"}, "is not a DigestSet name"),
    ],
    ids=[
        "no-keys",
        "threshold-0",
        "threshold-negative",
        "no-levels",
        "empty-level",
        "levels-a-string",
        "empty-verifier-id",
        "empty-policy-uri",
        "negative-max-age",
        "sha256-not-hex",
        "sha256-too-short",
        "md5",
        "uppercase-algorithm",
    ],
)
def test_a_policy_that_would_accept_too_much_cannot_be_made(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        policy(**fields)


def test_a_policy_normalises_hex() -> None:
    assert policy(digest=DIGEST.upper()).digest == DIGEST


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"sha256:{DIGEST.upper()}", ("sha256", DIGEST)),
        ("sha384:" + "cd" * 48, ("sha384", "cd" * 48)),
        ("sha512:" + "ef" * 64, ("sha512", "ef" * 64)),
        ("gce_image_id:8970095005306000053", ("gce_image_id", "8970095005306000053")),
        ("my-alg_2:AbC/+=", ("my-alg_2", "AbC/+=")),
    ],
    ids=["sha256-uppercase", "sha384", "sha512", "gce-image-id", "opaque-kept-exactly"],
)
def test_parse_digest_accepts(text: str, expected: tuple[str, str]) -> None:
    assert parse_digest(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        (DIGEST, "is not ALGORITHM:VALUE"),
        ("sha256:" + "zz" * 32, "is not 64 hex digits"),
        ("sha256:" + "ab" * 31, "is not 64 hex digits"),
        ("sha256:" + DIGEST + "\n", "is not 64 hex digits"),
        ("sha512:" + DIGEST, "is not 128 hex digits"),
        ("SHA256:" + DIGEST, "is not a DigestSet name"),
        ("a" * 65 + ":x", "is not a DigestSet name"),
        ("gce image:1", "is not a DigestSet name"),
        ("sha1:" + "ab" * 20, "too weak"),
        ("gce_image_id:", "not a printable ASCII value"),
        ("gce_image_id:8 9", "not a printable ASCII value"),
        ("gce_image_id:89\n", "not a printable ASCII value"),
        ("gce_image_id:é", "not a printable ASCII value"),
        ("gce_image_id:\x1b[2J", "not a printable ASCII value"),
    ],
    ids=[
        "no-algorithm",
        "bad-sha256-hex",
        "short-sha256",
        "sha256-newline",
        "sha512-short",
        "uppercase-algorithm",
        "long-algorithm",
        "space-in-algorithm",
        "sha1",
        "empty-value",
        "space-in-value",
        "newline-in-value",
        "non-ascii-value",
        "escape-in-value",
    ],
)
def test_parse_digest_refuses(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_digest(text)
    assert one_clean_line(caught.value.message)


def test_opaque_digests_compare_exactly() -> None:
    doc = summary()
    doc["subject"][0]["digest"] = {"gce_image_id": "AbC"}
    payload = serialize(doc)
    assert check(payload, policy(algorithm="gce_image_id", digest="AbC"))[:2] == (True, "accepted")
    assert check(payload, policy(algorithm="gce_image_id", digest="abc"))[1] == "subject"


def test_policy_from_options(tmp_path: Path) -> None:
    keys = [public(ALICE)]
    artifact = tmp_path / "demo-1.0.tar.gz"
    artifact.write_bytes(b"release bytes")
    made = policy_from_options(keys, artifact, None)
    assert (made.algorithm, made.digest) == ("sha256", hashlib.sha256(b"release bytes").hexdigest())
    assert made.required_levels == (R,) and made.threshold == 1 and made.max_age is None
    assert made.verifier_id is None and made.policy_uri == uris.POLICY_URI
    made = policy_from_options(keys, None, "gce_image_id:1", 1, 30, [R, RWD], "https://me/v")
    assert made.max_age == timedelta(days=30) and made.required_levels == (R, RWD)
    assert made.verifier_id == "https://me/v" and made.digest == "1"
    assert policy_from_options(keys, None, f"sha256:{DIGEST}", required_levels=[]).required_levels == (R,)


@pytest.mark.parametrize(
    "artifact, digest, extra, message",
    [
        ("demo", f"sha256:{DIGEST}", {}, "exactly one of --artifact"),
        (None, None, {}, "exactly one of --artifact"),
        ("missing", None, {}, "artifact .*missing cannot be read"),
        (".", None, {}, "cannot be read"),
        (None, "sha256:xyz", {}, "is not 64 hex digits"),
        (None, f"sha256:{DIGEST}", {"threshold": 0}, "threshold must be at least 1"),
        (None, f"sha256:{DIGEST}", {"max_age_days": -1}, "must not be negative"),
        (None, f"sha256:{DIGEST}", {"max_age_days": 10**12}, "out of range"),
        (None, f"sha256:{DIGEST}", {"keys": []}, "at least one trusted key"),
    ],
    ids=[
        "both",
        "neither",
        "missing-artifact",
        "artifact-a-directory",
        "bad-digest",
        "threshold",
        "age",
        "huge-age",
        "no-keys",
    ],
)
def test_policy_from_options_refuses(
    tmp_path: Path, artifact: str | None, digest: str | None, extra: dict[str, Any], message: str
) -> None:
    (tmp_path / "demo").write_bytes(b"x")
    options: dict[str, Any] = {"keys": [public(ALICE)], **extra}
    with pytest.raises(InputError, match=message):
        policy_from_options(artifact=tmp_path / artifact if artifact else None, digest=digest, **options)


# --- properties ------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(blacklist_categories=()), max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(blacklist_categories=()), max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
VSA_FIELDS = (
    "verifier",
    "timeVerified",
    "resourceUri",
    "policy",
    "inputAttestations",
    "verificationResult",
    "verifiedLevels",
    "deviations",
    "slsaVersion",
)
PLAUSIBLE = {
    "verifier": st.fixed_dictionaries({"id": st.sampled_from([uris.VERIFIER_ID, "x"])}) | JSON_VALUES,
    "timeVerified": st.sampled_from([VERIFIED, LATER, "2020-01-01T00:00:00Z", "now"]) | JSON_VALUES,
    "policy": st.fixed_dictionaries({"uri": st.sampled_from([uris.POLICY_URI, "x"])}) | JSON_VALUES,
    "verificationResult": st.sampled_from(["PASSED", "FAILED"]) | JSON_VALUES,
    "verifiedLevels": st.lists(st.sampled_from([R, RWD, "X"]), max_size=3) | JSON_VALUES,
}
STRICT = policy(verifier_id=uris.VERIFIER_ID, max_age=timedelta(days=30))


def _never_crashes(text: str, pol: Policy = STRICT) -> None:
    """Parse and verify; only the project's own errors may come out, and a pass must be sound."""
    try:
        verdict = verify_attestations(parse_envelopes(text, "fuzz.jsonl"), pol, NOW)
    except Error as e:
        assert one_clean_line(e.message), e.message
        return
    assert one_clean_line(verdict.message), verdict.message
    json.dumps(verdict.as_dict())
    for accepted in verdict.accepted:
        assert set(accepted["verifiedLevels"]) & set(pol.required_levels)
        assert accepted["digest"] == f"{pol.algorithm}:{pol.digest}"
        assert pol.verifier_id is None or accepted["verifier"] == pol.verifier_id


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_arbitrary_json_files(doc: Any) -> None:
    _never_crashes(json.dumps(doc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {
            "_type": st.sampled_from([uris.STATEMENT_V1, uris.STATEMENT_V01]) | JSON_VALUES,
            "predicateType": st.sampled_from([uris.SLSA_VSA_V1]) | JSON_VALUES,
            "subject": st.just([{"name": "demo", "digest": {"sha256": DIGEST}}]) | JSON_VALUES,
        },
        optional={
            "predicate": st.fixed_dictionaries(
                {},
                optional={name: PLAUSIBLE.get(name, JSON_VALUES) for name in VSA_FIELDS},
            )
            | JSON_VALUES
        },
    )
)
def test_arbitrary_signed_statements(statement: dict[str, Any]) -> None:
    """The signature verifies, so every check past it sees arbitrary, trusted-key-signed content."""
    _never_crashes(envelope_line(json.dumps(statement).encode()))


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=()), max_size=200))
def test_arbitrary_text(text: str) -> None:
    """Not even JSON: raw lone surrogates, U+2028, NUL and friends."""
    _never_crashes(text)


def _mutate(data: st.DataObject, text: str) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        at_ = data.draw(st.integers(0, max(len(text) - 1, 0)))
        op = data.draw(st.sampled_from(["delete", "insert", "replace", "repeat"]))
        piece = data.draw(st.sampled_from(['"', "{", "}", "[", "]", ",", ":", "\\", "\\ud800", "9" * 50, "\n", "e9"]))
        if op == "delete":
            text = text[:at_] + text[at_ + 1 :]
        elif op == "insert":
            text = text[:at_] + piece + text[at_:]
        elif op == "replace":
            text = text[:at_] + piece + text[at_ + 1 :]
        else:
            text = text[:at_] + text[at_ : at_ + 40] + text[at_:]
    return text


REAL_FILES = [
    GOOD,
    (GCE / "gke-gce-pre.bcid-vsa.jsonl").read_text(),
    (VECTORS / "dsse/spec-vector.envelope.json").read_text(),
    (VECTORS / "slsa-verifier/npm/gha/gundam-visor-cli-v1-tag.tgz.json").read_text(),
    (VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance").read_text(),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_FILES), st.data())
def test_mutated_real_envelopes(text: str, data: st.DataObject) -> None:
    _never_crashes(_mutate(data, text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_payloads_signed_again(data: st.DataObject) -> None:
    """Near-valid statements that a trusted key signed: the parser and the checks, not the signature, decide."""
    payload = _mutate(data, base64.b64decode(ENVELOPE["payload"]).decode()).encode()
    _never_crashes(envelope_line(payload), policy())


@given(st.text(st.characters(blacklist_categories=()), max_size=80))
def test_parse_digest_and_time_never_crash(text: str) -> None:
    with contextlib.suppress(InputError):
        parse_digest(text)
    parse_rfc3339(text)
