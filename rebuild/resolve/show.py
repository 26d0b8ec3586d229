"""What `rebuild provenance show` prints: every statement in a file, described, and what could not be read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rebuild.attest.keys import PublicKey
from rebuild.attest.sigstore import SigstorePolicy
from rebuild.errors import ProvenanceError, VerificationError
from rebuild.resolution import SignatureStatus
from rebuild.resolve.slsa import describe
from rebuild.resolve.statements import read_statements

REFUSED = (SignatureStatus.SIGSTORE_DOES_NOT_VERIFY.value, SignatureStatus.IDENTITY_MISMATCH.value)


def describe_file(
    path: Path, keys: Sequence[PublicKey] = (), sigstore: SigstorePolicy | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each readable statement described (subjects, builder, source, signer, what would be rebuilt), and the problems.

    Raises:
        ProvenanceError: the file holds no readable in-toto statement (exit 2).
    """
    found, problems = read_statements(path, keys, sigstore)
    if not found:
        raise ProvenanceError(f"{path} holds no readable in-toto statement ({problems[0] if problems else 'empty'})")
    return [describe(f) for f in found], problems


def refusal(statements: Sequence[dict[str, Any]], pinned: bool) -> VerificationError | None:
    """Why `provenance show` exits 1 after printing: a Sigstore signature that does not verify or names
    another identity, or (with ``--expect-*``) no statement signed by the expected identity."""
    for doc in statements:
        if doc.get("signatureStatus") in REFUSED:
            return VerificationError(f"{doc['where']}: {doc['signature']}")
    verified = SignatureStatus.SIGSTORE_VERIFIED.value
    if pinned and not any(doc.get("signatureStatus") == verified for doc in statements):
        return VerificationError(
            "no statement is signed by the expected identity",
            "; ".join(dict.fromkeys(str(doc["signature"]) for doc in statements)),
        )
    return None
