"""Checking reproducibility attestations before trusting an artifact.

The policy is explicit, required and strict by default. It says which keys
are trusted (at least one), which artifact digest the attestations must be
about, how many distinct trusted signers must have attested PASSED for it,
which ``verifiedLevels`` count, and optionally which verifier (and so which
verifier policy) and how old a summary may be.

Decisions:
- The default required level is ``uris.LEVEL_REPRODUCED``: bit for bit,
  from the recorded inputs. ``LEVEL_REPRODUCED_WITH_DEVIATIONS`` (the same
  bytes, but built from inputs that differ from the record) does not satisfy
  it; a consumer who accepts deviations says so with ``required_levels``.
- ``timeVerified`` must be RFC 3339 and not more than ``CLOCK_SKEW`` in the
  future, with or without a maximum age: a summary dated ahead would
  otherwise outlive any ``max_age``.
- With an expected verifier id, the summary's ``policy.uri`` must be the
  expected policy too: one verifier may run several policies.
- A content-equivalence claim (``uris.CONTENT_EQUIVALENCE_V1``: the bytes
  differ, every member's content is the same) is never PASSED. It counts
  only when the consumer names it in ``accept`` (``--accept
  content-equivalent``), after the same signature, subject, verifier and
  time checks and a strict reading of its predicate; what counted is then
  labelled "content-equivalent (metadata differs: ...)". Not accepted, it
  is named in the verdict, so a consumer knows it exists. A claim carries
  no ``verifiedLevels``, so it can meet no level a consumer asks for:
  ``accept`` together with ``required_levels`` other than the default is
  refused (the policy would be asking for levels a claim cannot show).

Every envelope is checked in the same order (``STAGES``) and the verdict
names the check that failed furthest along, with the values it saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from compare.digest import digest_file
from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import LoadedEnvelope, read_envelopes
from rebuild.attest.equivalence import parse_claim
from rebuild.attest.keys import PublicKey
from rebuild.attest.statements import ParsedStatement, normalize_digest, parse_statement
from rebuild.errors import InputError
from rebuild.untrusted import dig, parse_rfc3339, printable

DEFAULT_LEVELS = (uris.LEVEL_REPRODUCED,)
CONTENT_EQUIVALENT = "content-equivalent"
ACCEPTABLE = (CONTENT_EQUIVALENT,)  # what --accept may name, beyond PASSED summaries
CLOCK_SKEW = timedelta(minutes=5)


def parse_digest(text: str) -> tuple[str, str]:
    """``ALGORITHM:VALUE`` as an in-toto DigestSet entry, e.g. ``sha256:<hex>`` or ``gce_image_id:123``.

    Raises:
        InputError: not ``ALGORITHM:VALUE``, or see ``normalize_digest``.
    """
    algorithm, colon, value = text.partition(":")
    if not colon:
        raise InputError(
            f"digest {printable(repr(text), 200)} is not ALGORITHM:VALUE", "for example sha256:<64 hex digits>"
        )
    return algorithm, normalize_digest(algorithm, value)


@dataclass(frozen=True)
class Policy:
    """What an attestation must show to be accepted. Refuses to exist when it would accept anything.

    ``required_levels`` is any-of. ``policy_uri`` is checked only together
    with ``verifier_id`` (it names that verifier's policy).

    Raises:
        InputError: no key, a threshold below 1, a negative ``max_age``, no
            required level, an empty verifier id or policy URI, or a bad digest.
    """

    keys: tuple[PublicKey, ...]
    algorithm: str  # of the artifact digest: sha256, sha512, or any DigestSet name
    digest: str
    threshold: int = 1
    max_age: timedelta | None = None
    required_levels: tuple[str, ...] = DEFAULT_LEVELS
    verifier_id: str | None = None
    policy_uri: str = uris.POLICY_URI
    accept: tuple[str, ...] = ()  # claims that count beside PASSED summaries: only CONTENT_EQUIVALENT exists

    def __post_init__(self) -> None:
        keys = tuple(self.keys)
        if not keys:
            raise InputError("a policy needs at least one trusted key", "give each trusted rebuilder's public key")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int) or self.threshold < 1:
            raise InputError(f"the threshold must be at least 1 (got {self.threshold!r})")
        if self.max_age is not None and self.max_age < timedelta(0):
            raise InputError(f"the maximum age must not be negative (got {self.max_age})")
        if isinstance(self.required_levels, str):
            raise InputError("required_levels is a tuple of level names, not one string")
        levels = tuple(self.required_levels)
        if not levels or not all(isinstance(level, str) and level for level in levels):
            raise InputError(f"a policy needs at least one required level (got {printable(repr(levels), 200)})")
        if self.verifier_id is not None and (not isinstance(self.verifier_id, str) or not self.verifier_id):
            raise InputError("the expected verifier id must not be empty")
        if not isinstance(self.policy_uri, str) or not self.policy_uri:
            raise InputError("the expected policy URI must not be empty")
        if isinstance(self.accept, str) or not all(a in ACCEPTABLE for a in self.accept):
            raise InputError(
                f"--accept {printable(', '.join(map(str, self.accept)), 200)}: only {', '.join(ACCEPTABLE)} may be "
                "accepted",
                "--accept content-equivalent counts content-equivalence claims (never as bit for bit)",
            )
        if self.accept and levels != DEFAULT_LEVELS:
            raise InputError(
                f"--accept {', '.join(self.accept)} cannot be combined with --require-level "
                f"{printable(', '.join(levels), 200)}: a content-equivalence claim carries no verified level",
                "drop --require-level to count claims beside bit-for-bit summaries, or drop --accept to require "
                "those levels",
            )
        object.__setattr__(self, "accept", tuple(self.accept))
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "required_levels", levels)
        object.__setattr__(self, "digest", normalize_digest(self.algorithm, self.digest))


def policy_from_options(
    keys: Sequence[PublicKey],
    artifact: Path | None,
    digest: str | None,
    threshold: int = 1,
    max_age_days: int | None = None,
    required_levels: Sequence[str] | None = None,
    verifier_id: str | None = None,
    policy_uri: str = uris.POLICY_URI,
    accept: Sequence[str] = (),
) -> Policy:
    """The policy a user asked for on the command line.

    Exactly one of ``artifact`` (hashed here, sha256) and ``digest``
    (``ALGORITHM:VALUE``). ``required_levels`` empty or None means
    ``DEFAULT_LEVELS``.

    Raises:
        InputError: both or neither of artifact and digest, an unreadable
            artifact, a bad digest, or anything ``Policy`` refuses.
    """
    if (artifact is None) == (digest is None):
        raise InputError(
            "give exactly one of --artifact PATH or --digest ALGORITHM:VALUE",
            "the policy must say which artifact the attestations are about",
        )
    if artifact is not None:
        try:
            algorithm, value = "sha256", digest_file(artifact).sha256
        except OSError as e:
            raise InputError(f"artifact {artifact} cannot be read: {e.strerror or e}") from e
    else:
        algorithm, value = parse_digest(digest or "")
    max_age = None
    if max_age_days is not None:
        if max_age_days < 0:
            raise InputError(f"the maximum age must not be negative (got {max_age_days} days)")
        try:
            max_age = timedelta(days=max_age_days)
        except OverflowError:
            raise InputError(f"the maximum age of {max_age_days} days is out of range") from None
    return Policy(
        tuple(keys),
        algorithm,
        value,
        threshold,
        max_age,
        tuple(required_levels) if required_levels else DEFAULT_LEVELS,
        verifier_id,
        policy_uri,
        tuple(accept),
    )


@dataclass
class EnvelopeCheck:
    origin: str
    stage: int = 0  # how far it got; see STAGES
    problem: str = ""
    signers: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    claim: str = ""  # the label of a trusted content-equivalence claim for the artifact (accepted or not)


@dataclass(frozen=True)
class AttestationVerdict:
    passed: bool
    message: str
    signers: tuple[str, ...]
    accepted: tuple[dict[str, Any], ...]
    checks: tuple[EnvelopeCheck, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "message": self.message,
            "signers": list(self.signers),
            "accepted": list(self.accepted),
            "envelopes": [
                {"origin": c.origin, "reached": STAGES[c.stage], "problem": c.problem, "signers": list(c.signers)}
                for c in self.checks
            ],
        }


# --- the checks of a verified summary's predicate -------------------------------


class _Missing:
    """What ``dig`` gives for a field that is not there, told apart from a JSON null in checks and messages."""

    def __repr__(self) -> str:
        return "(missing)"


MISSING = _Missing()


def _show(value: object) -> str:
    """An untrusted value in a message: its repr, escaped and bounded."""
    return printable(repr(value), 200)


def _required(levels: Sequence[str]) -> str:
    shown = ", ".join(printable(level) for level in levels)
    return f"the required {shown}" if len(levels) == 1 else f"any of the required {shown}"


def _duration(span: timedelta) -> str:
    for unit, name in ((timedelta(days=1), "day"), (timedelta(hours=1), "hour"), (timedelta(minutes=1), "minute")):
        if span % unit == timedelta(0):
            count = span // unit
            return f"{count} {name}{'' if count == 1 else 's'}"
    return str(span)


def _result(p: Mapping[str, Any], policy: Policy, now: datetime) -> str:
    result = dig(p, "verificationResult", default=MISSING)
    return "" if result == "PASSED" else f"verification result is {_show(result)}, not PASSED"


def _levels(p: Mapping[str, Any], policy: Policy, now: datetime) -> str:
    levels = dig(p, "verifiedLevels", default=MISSING)
    if not isinstance(levels, list) or not all(isinstance(level, str) for level in levels):
        return f"verifiedLevels {_show(levels)} is not a list of strings"
    if not set(levels) & set(policy.required_levels):
        return f"verifiedLevels {_show(levels)} does not include {_required(policy.required_levels)}"
    return ""


def _verifier(p: Mapping[str, Any], policy: Policy, now: datetime) -> str:
    if policy.verifier_id is None:
        return ""
    verifier_id = dig(p, "verifier", "id", default=MISSING)
    if verifier_id != policy.verifier_id:
        return f"verifier.id {_show(verifier_id)} is not the expected {_show(policy.verifier_id)}"
    policy_uri = dig(p, "policy", "uri", default=MISSING)
    if policy_uri != policy.policy_uri:
        return f"policy.uri {_show(policy_uri)} is not the expected {_show(policy.policy_uri)}"
    return ""


def _time(p: Mapping[str, Any], policy: Policy, now: datetime) -> str:
    text = dig(p, "timeVerified", default=MISSING)
    when = parse_rfc3339(text) if isinstance(text, str) else None
    if when is None:
        return f"timeVerified {_show(text)} is not an RFC 3339 date-time with an offset"
    if when - now > CLOCK_SKEW:
        return (
            f"timeVerified is in the future: {_show(text)}, now is {now:%Y-%m-%dT%H:%M:%SZ} "
            f"(with {_duration(CLOCK_SKEW)} allowed for clock skew)"
        )
    if policy.max_age is not None and now - when > policy.max_age:
        return f"summary expired: verified {_show(text)}, older than the allowed {_duration(policy.max_age)}"
    return ""


def _fields(p: Mapping[str, Any], policy: Policy, now: datetime) -> str:
    """The fields shown with an accepted summary have the types the VSA spec gives them."""
    verifier = dig(p, "verifier", default=MISSING)
    if verifier is not MISSING and not (isinstance(verifier, dict) and isinstance(verifier.get("id", ""), str)):
        return f"verifier {_show(verifier)} is not an object with a string id"
    policy_field = dig(p, "policy", default=MISSING)
    if policy_field is not MISSING and not (
        isinstance(policy_field, dict) and isinstance(policy_field.get("uri", ""), str)
    ):
        return f"policy {_show(policy_field)} is not an object with a string uri"
    resource = dig(p, "resourceUri", default=MISSING)
    if resource is not MISSING and not isinstance(resource, str):
        return f"resourceUri {_show(resource)} is not a string"
    inputs = p.get("inputAttestations", [])
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return f"inputAttestations {_show(inputs)} is not a list of objects"
    deviations = p.get("deviations", [])
    if not isinstance(deviations, list) or not all(isinstance(d, str) for d in deviations):
        return f"deviations {_show(deviations)} is not a list of strings"
    return ""


# (stage, check) in the order they run; a check returns why the summary fails it, or "".
SUMMARY_CHECKS: tuple[tuple[str, Callable[[Mapping[str, Any], Policy, datetime], str]], ...] = (
    ("result", _result),
    ("levels", _levels),
    ("verifier", _verifier),
    ("time", _time),
    ("fields", _fields),
)
STAGES = ("signature", "statement", "type", "subject", *(name for name, _ in SUMMARY_CHECKS), "accepted")
ACCEPTED = len(STAGES) - 1


def check_envelope(loaded: LoadedEnvelope, policy: Policy, now: datetime) -> EnvelopeCheck:
    check = EnvelopeCheck(loaded.origin)
    env = loaded.envelope
    if not env.signatures:
        check.problem = f"{loaded.origin}: envelope carries no signature"
        return check
    usable = [k for k in policy.keys if k.supported()]
    if not usable:
        algos = ", ".join(sorted({k.algorithm for k in policy.keys}))
        check.problem = f"trusted key algorithm not supported for verification ({algos})"
        return check
    verified = dsse.verify(env, usable)
    if not verified.signers:
        check.problem = (
            f"{loaded.origin}: no signature verifies with a trusted key (wrong key, or the envelope was altered)"
        )
        return check
    check.signers = tuple(k.keyid for k in verified.signers)
    check.stage = 1
    if verified.payload_type != dsse.INTOTO_PAYLOAD_TYPE:
        check.problem = f"{loaded.origin}: payloadType is {_show(verified.payload_type)}, not in-toto"
        return check
    try:
        stmt = parse_statement(verified.payload, loaded.origin)  # only the verified bytes
    except InputError as e:
        check.problem = e.message
        return check
    check.stage = 2
    if stmt.predicate_type == uris.CONTENT_EQUIVALENCE_V1:
        return _check_claim(check, loaded, stmt, policy, now)
    if stmt.predicate_type != uris.SLSA_VSA_V1:
        check.problem = f"{loaded.origin}: a {_show(stmt.predicate_type)} statement, not a verification summary"
        return check
    check.stage = 3
    subject = stmt.matches(policy.algorithm, policy.digest)
    if subject is None:
        about = ", ".join(f"{s.name} {dict(s.digest)}" for s in stmt.subjects) or "no subject"
        check.problem = (
            f"{loaded.origin}: subject digest mismatch: the summary is about {printable(about, 600)}, "
            f"not {policy.algorithm}:{policy.digest}"
        )
        return check
    p = stmt.predicate
    for stage, (_name, run) in enumerate(SUMMARY_CHECKS, start=STAGES.index("subject") + 1):
        check.stage = stage
        problem = run(p, policy, now)
        if problem:
            check.problem = f"{loaded.origin}: {problem}"
            return check
    check.stage = ACCEPTED
    verifier_id, policy_uri, levels = dig(p, "verifier", "id"), dig(p, "policy", "uri"), dig(p, "verifiedLevels")
    check.summary = {  # every value checked above: strings, lists of strings, lists of objects
        "subject": subject.name,
        "digest": f"{policy.algorithm}:{policy.digest}",
        "verifier": verifier_id if isinstance(verifier_id, str) else None,
        "policyUri": policy_uri if isinstance(policy_uri, str) else None,
        "timeVerified": dig(p, "timeVerified"),
        "resourceUri": p.get("resourceUri"),
        "verifiedLevels": list(levels) if isinstance(levels, list) else [],
        "inputAttestations": list(p.get("inputAttestations", [])),
        "deviations": list(p.get("deviations", [])),
        "signers": list(check.signers),
    }
    return check


def _check_claim(
    check: EnvelopeCheck, loaded: LoadedEnvelope, stmt: ParsedStatement, policy: Policy, now: datetime
) -> EnvelopeCheck:
    """A content-equivalence claim: the checks of a summary where they apply, and counted only when accepted."""
    check.stage = STAGES.index("subject")
    subject = stmt.matches(policy.algorithm, policy.digest)
    if subject is None or len(stmt.subjects) != 1:
        about = ", ".join(f"{s.name} {dict(s.digest)}" for s in stmt.subjects) or "no subject"
        check.problem = (
            f"{loaded.origin}: subject digest mismatch: the content-equivalence claim is about "
            f"{printable(about, 600)}, not (only) {policy.algorithm}:{policy.digest}"
        )
        return check
    check.stage = STAGES.index("result")
    try:
        claim = parse_claim(stmt.predicate, loaded.origin)
    except InputError as e:
        check.problem = e.message
        return check
    if policy.algorithm == "sha256" and claim.rebuilt_sha256 == policy.digest:
        check.problem = f"{loaded.origin}: the claim names the published digest as the rebuilt one (not a claim)"
        return check
    check.claim = claim.label
    if CONTENT_EQUIVALENT not in policy.accept:
        check.problem = (
            f"{loaded.origin}: a content-equivalence claim exists for this artifact ({claim.label}) but is not "
            "accepted: bit for bit it did not reproduce (count it with --accept content-equivalent)"
        )
        return check
    check.stage = STAGES.index("verifier")
    if policy.verifier_id is not None and claim.verifier_id != policy.verifier_id:
        check.problem = (
            f"{loaded.origin}: verifier.id {_show(claim.verifier_id)} is not the expected {_show(policy.verifier_id)}"
        )
        return check
    check.stage = STAGES.index("time")
    if problem := _time(stmt.predicate, policy, now):
        check.problem = f"{loaded.origin}: {problem}"
        return check
    check.stage = ACCEPTED
    inputs = stmt.predicate.get("inputAttestations", [])
    check.summary = {  # every value checked by parse_claim
        "subject": subject.name,
        "digest": f"{policy.algorithm}:{policy.digest}",
        "verifier": claim.verifier_id,
        "policyUri": None,
        "timeVerified": claim.time_verified,
        "resourceUri": claim.resource_uri,
        "verifiedLevels": [],
        "inputAttestations": list(inputs) if isinstance(inputs, list) else [],
        "deviations": [],
        "signers": list(check.signers),
        "result": "CONTENT_EQUIVALENT",
        "label": claim.label,
        "rebuilt": f"sha256:{claim.rebuilt_sha256}",
    }
    return check


def verify_attestations(
    envelopes: Sequence[LoadedEnvelope], policy: Policy, now: datetime | None = None
) -> AttestationVerdict:
    """Decide whether the attestations meet the policy."""
    now = now or datetime.now(UTC)
    checks = [check_envelope(e, policy, now) for e in envelopes]
    accepted = [c for c in checks if c.stage == ACCEPTED]
    signers = tuple(sorted({s for c in accepted for s in c.signers}))
    labels = sorted({c.summary["label"] for c in accepted if "label" in c.summary})
    if accepted and len(signers) >= policy.threshold:
        message = "verified" + (f", counting {'; '.join(labels)}" if labels else "")
        return AttestationVerdict(True, message, signers, tuple(c.summary for c in accepted), tuple(checks))
    unaccepted = [c for c in checks if c.claim and c.stage != ACCEPTED]
    if accepted:
        message = (
            f"too few distinct signers: {len(signers)} trusted key(s) attested PASSED for this artifact, "
            f"the policy requires {policy.threshold}"
        )
    elif unaccepted:  # a trusted claim for this artifact exists: say so, whatever else failed
        message = unaccepted[0].problem
    elif checks:
        message = max(checks, key=lambda c: c.stage).problem
    else:
        message = "no attestation to check"
    return AttestationVerdict(False, message, signers, tuple(c.summary for c in accepted), tuple(checks))


def verify_attestation_file(path: Path, policy: Policy, now: datetime | None = None) -> AttestationVerdict:
    """Read every envelope in ``path`` and decide whether they meet the policy.

    Raises:
        ProvenanceError: the file is unreadable or malformed (exit 2); a
            verdict that did not pass is returned, not raised.
    """
    return verify_attestations(read_envelopes(path), policy, now)
