"""A provenance file, whatever its wrapper: find the statement about the artifact, and its plan.

``read_envelopes`` unwraps the file (jsonl, DSSE, Sigstore bundle, npm
response, PEP 740, bare statement); this module picks the SLSA provenance
statements among them, matches their subjects against the artifacts the
user holds (sha256 or sha512; npm's ``pkg:npm/...`` names), reports what is
known of each signature, and hands the statement to the right mapping: this
project's own buildType reads back exactly (``plan.plan_from_provenance``),
every other buildType goes through ``slsa.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compare.digest import digest_file
from rebuild import dsse, uris
from rebuild.adapters import ResolveContext
from rebuild.envelopes import LoadedEnvelope, read_envelopes
from rebuild.errors import InputError, ProvenanceError, VerificationError
from rebuild.keys import PublicKey
from rebuild.plan import Output, plan_from_provenance
from rebuild.resolution import Candidate, Resolution
from rebuild.statements import ParsedStatement, Subject, parse_statement
from rebuild.untrusted import printable

SLSA_PROVENANCE_TYPES = (
    uris.SLSA_PROVENANCE_V1,
    "https://slsa.dev/provenance/v0.2",
    "https://slsa.dev/provenance/v0.1",
)


class SignatureStatus(enum.Enum):
    """What is known of a statement's signature. Only VERIFIED counts when keys are given."""

    VERIFIED = "verified"
    DOES_NOT_VERIFY = "does not verify"
    SIGSTORE_NOT_CHECKED = "sigstore, not checked"
    NOT_CHECKED = "signed, not checked"
    UNSIGNED = "unsigned"


@dataclass(frozen=True)
class Signature:
    status: SignatureStatus
    keyid: str = ""  # the trusted key that verified it

    def __str__(self) -> str:
        return {
            SignatureStatus.VERIFIED: f"verified with key {self.keyid[:16]}",
            SignatureStatus.DOES_NOT_VERIFY: "signature does NOT verify with the given key(s)",
            SignatureStatus.SIGSTORE_NOT_CHECKED: (
                "signed with a Sigstore certificate: not checked (needs the Sigstore trust root; pass --provenance-key)"
            ),
            SignatureStatus.NOT_CHECKED: "signed, not checked (no --provenance-key)",
            SignatureStatus.UNSIGNED: "unsigned",
        }[self.status]


@dataclass(frozen=True)
class FoundStatement:
    statement: ParsedStatement
    loaded: LoadedEnvelope
    signature: Signature


def signature_status(loaded: LoadedEnvelope, keys: Sequence[PublicKey]) -> Signature:
    """What is known of one envelope's signature."""
    if not loaded.signed or not loaded.envelope.signatures:
        return Signature(SignatureStatus.UNSIGNED)
    if keys:
        verified = dsse.verify(loaded.envelope, keys).signers
        if verified:
            return Signature(SignatureStatus.VERIFIED, verified[0].keyid)
        return Signature(SignatureStatus.DOES_NOT_VERIFY)
    if loaded.certificate:
        return Signature(SignatureStatus.SIGSTORE_NOT_CHECKED)
    return Signature(SignatureStatus.NOT_CHECKED)


def read_statements(path: Path, keys: Sequence[PublicKey] = ()) -> tuple[list[FoundStatement], list[str]]:
    """Every in-toto statement in the file with its signature status, and why others could not be read.

    Raises:
        ProvenanceError/InputError: the file is unreadable or not any known wrapper (exit 2).
    """
    found = []
    problems = []
    for loaded in read_envelopes(path):
        try:
            stmt = parse_statement(loaded.envelope.payload, loaded.origin)
        except InputError as e:
            problems.append(e.message)
            continue
        if stmt.predicate_type in SLSA_PROVENANCE_TYPES and not isinstance(stmt.raw.get("predicate"), dict):
            problems.append(f"{loaded.origin}: field 'predicate' is missing from the SLSA provenance statement")
            continue
        found.append(FoundStatement(stmt, loaded, signature_status(loaded, keys)))
    return found, problems


def file_digests(path: Path) -> dict[str, str]:
    """sha256 and sha512 of a file the user holds, in one read (subjects use either)."""
    try:
        return digest_file(path, ("sha256", "sha512")).digests
    except OSError as e:
        raise InputError(f"cannot read artifact {path}: {e.strerror}") from e


def subject_for(stmt: ParsedStatement, digests: Mapping[str, str]) -> Subject | None:
    """The subject with one of these digests (sha256 or sha512), if any."""
    for algorithm, value in digests.items():
        match = stmt.matches(algorithm, value)
        if match is not None:
            return match
    return None


def names_artifact(stmt: ParsedStatement, artifact: Path) -> bool:
    """Whether a subject is named like the file (a tampered file still meets its statement, to be compared)."""
    return any(s.name == artifact.name or s.name.rsplit("/", 1)[-1] == artifact.name for s in stmt.subjects)


def resolve_provenance_file(path: Path, ctx: ResolveContext) -> Resolution:
    """Raises: ProvenanceError/PlanError (exit 2) with the reason the file cannot be rebuilt from."""
    from rebuild.adapters.slsa import resolve_foreign

    found, problems = read_statements(path, ctx.provenance_keys)
    provenance = [f for f in found if f.statement.predicate_type in SLSA_PROVENANCE_TYPES]
    if not provenance:
        kinds = sorted({f.statement.predicate_type for f in found})
        detail = problems[0] if problems else (f"it holds {', '.join(kinds)}" if kinds else "it is empty")
        raise ProvenanceError(f"{path} holds no SLSA provenance statement ({detail})")
    if ctx.provenance_keys:  # only statements signed by a trusted key are used, never one ahead of them
        provenance = [f for f in provenance if f.signature.status is SignatureStatus.VERIFIED]
        if not provenance:
            raise VerificationError(
                f"{path}: provenance is not signed by a trusted key",
                "every SLSA statement in it is unsigned, or signed by another key (--provenance-key)",
            )
    held = {p: file_digests(p) for p in ctx.artifacts}  # each file the user holds is read once
    for artifact, digests in held.items():
        if not any(subject_for(f.statement, digests) for f in provenance):
            named = any(names_artifact(f.statement, artifact) for f in provenance)
            names = ", ".join(printable(s.name) for f in provenance for s in f.statement.subjects) or "none"
            raise VerificationError(
                f"{artifact.name} is not an artifact {path.name} names"
                + (" (a subject has its name, but not its digest: the file was altered)" if named else ""),
                f"no subject has its sha256 {digests['sha256']}; the subjects are: {names}",
            )
    if held:
        provenance = [f for f in provenance if any(subject_for(f.statement, d) for d in held.values())]
    chosen = provenance[0]
    build_type = str(chosen.statement.predicate.get("buildDefinition", {}).get("buildType", ""))
    if chosen.statement.predicate_type == uris.SLSA_PROVENANCE_V1 and build_type == uris.BUILD_TYPE:
        plan = plan_from_provenance(chosen.statement)
        return Resolution(
            target=str(path),
            candidates=[Candidate("as recorded", plan)],
            published=_published_beside(plan.outputs, path, ctx.artifacts),
            origin=path,
            signature_status=str(chosen.signature),
            summary={"buildType": build_type, "subjects": [s.name for s in chosen.statement.subjects]},
        )
    return resolve_foreign(path, chosen, ctx, held)


def _published_beside(outputs: Sequence[Output], provenance: Path, given: Sequence[Path]) -> dict[str, Path]:
    """The published artifacts to compare against: given files, else the outputs beside the provenance."""
    names = [o.name for o in outputs]
    if given:
        by_name = {p.name: p for p in given}
        unknown = sorted(set(by_name) - set(names))
        if unknown:
            raise InputError(
                f"--artifact {', '.join(unknown)} is not an output of this provenance",
                f"its outputs are: {', '.join(names)}",
            )
        chosen = by_name
    else:
        chosen = {name: provenance.parent / name for name in names}
    for name, path in chosen.items():
        if not path.is_file():
            raise InputError(f"published artifact {name} not found at {path}", "pass it with --artifact FILE")
    return chosen
