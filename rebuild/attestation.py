"""Checking reproducibility attestations before trusting an artifact.

The policy is explicit and required: which keys are trusted, which artifact
digest the attestations must be about, and how many distinct trusted
signers must have attested PASSED for it. Every envelope is checked in the
same order (signature, statement, type, subject, result, age) and the
verdict names the check that failed furthest along.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rebuild import dsse, uris
from rebuild.envelopes import LoadedEnvelope
from rebuild.errors import InputError
from rebuild.keys import PublicKey
from rebuild.statements import parse_statement


@dataclass(frozen=True)
class Policy:
    keys: tuple[PublicKey, ...]
    algorithm: str  # of the artifact digest: sha256, sha512
    digest: str
    threshold: int = 1
    max_age: timedelta | None = None


@dataclass
class EnvelopeCheck:
    origin: str
    stage: int = 0  # how far it got; see STAGES
    problem: str = ""
    signers: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)


STAGES = ("signature", "statement", "type", "subject", "result", "age", "accepted")


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


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
        check.problem = f"{loaded.origin}: payloadType is {verified.payload_type!r}, not in-toto"
        return check
    try:
        stmt = parse_statement(verified.payload, loaded.origin)  # only the verified bytes
    except InputError as e:
        check.problem = e.message
        return check
    check.stage = 2
    if stmt.predicate_type != uris.SLSA_VSA_V1:
        check.problem = f"{loaded.origin}: a {stmt.predicate_type} statement, not a verification summary"
        return check
    check.stage = 3
    subject = stmt.matches(policy.algorithm, policy.digest)
    if subject is None:
        about = ", ".join(f"{s.name} {dict(s.digest)}" for s in stmt.subjects) or "no subject"
        check.problem = f"subject digest mismatch: the summary is about {about}, not {policy.algorithm}:{policy.digest}"
        return check
    check.stage = 4
    p = stmt.predicate
    result = p.get("verificationResult")
    if result != "PASSED":
        check.problem = f"verification result is {result!r}, not PASSED"
        return check
    check.stage = 5
    verified_at = _parse_time(p.get("timeVerified"))
    if policy.max_age is not None and (verified_at is None or now - verified_at > policy.max_age):
        check.problem = (
            f"summary expired: verified {p.get('timeVerified')!r}, older than the allowed {policy.max_age.days} days"
        )
        return check
    check.stage = 6
    verifier = p.get("verifier", {})
    check.summary = {
        "subject": subject.name,
        "digest": f"{policy.algorithm}:{policy.digest}",
        "verifier": verifier.get("id") if isinstance(verifier, dict) else None,
        "timeVerified": p.get("timeVerified"),
        "resourceUri": p.get("resourceUri"),
        "verifiedLevels": p.get("verifiedLevels"),
        "inputAttestations": p.get("inputAttestations", []),
        "deviations": p.get("deviations", []),
        "signers": list(check.signers),
    }
    return check


def verify_attestations(
    envelopes: Sequence[LoadedEnvelope], policy: Policy, now: datetime | None = None
) -> AttestationVerdict:
    """Decide whether the attestations meet the policy."""
    if policy.threshold < 1:
        raise InputError("--threshold must be at least 1")
    now = now or datetime.now(UTC)
    checks = [check_envelope(e, policy, now) for e in envelopes]
    accepted = [c for c in checks if c.stage == 6]
    signers = tuple(sorted({s for c in accepted for s in c.signers}))
    if accepted and len(signers) >= policy.threshold:
        return AttestationVerdict(True, "verified", signers, tuple(c.summary for c in accepted), tuple(checks))
    if accepted:
        message = (
            f"too few distinct signers: {len(signers)} trusted key(s) attested PASSED for this artifact, "
            f"the policy requires {policy.threshold}"
        )
    else:
        furthest = max(checks, key=lambda c: c.stage)
        message = furthest.problem
    return AttestationVerdict(False, message, signers, tuple(c.summary for c in accepted), tuple(checks))
