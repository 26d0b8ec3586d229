"""Reading the statements in a provenance file: their signatures and their subjects.

Shared by the provenance adapters (ours and foreign SLSA); imports none of them. What is known of a
signature is a ``rebuild.resolution.Signature``, the type every adapter's ``Resolution`` carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import LoadedEnvelope, read_envelopes
from rebuild.attest.keys import PublicKey
from rebuild.attest.statements import ParsedStatement, Subject, parse_statement
from rebuild.errors import InputError
from rebuild.resolution import Signature, SignatureStatus

SLSA_PROVENANCE_TYPES = (
    uris.SLSA_PROVENANCE_V1,
    "https://slsa.dev/provenance/v0.2",
    "https://slsa.dev/provenance/v0.1",
)


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
