"""Reading the statements in a provenance file: their signatures and their subjects.

Shared by the provenance adapters (ours and foreign SLSA); imports none of them. What is known of a
signature is a ``rebuild.resolution.Signature``, the type every adapter's ``Resolution`` carries.

The file is read once. Its envelopes come from ``parse_envelopes``; the Sigstore material beside
them (a bundle's verification material, a PEP 740 attestation's) is found in the same text by
``sigstore_materials`` and matched to an envelope by its payload and signature bytes, so what is
verified is exactly what is parsed. Sigstore verification runs offline under the context's
``SigstorePolicy`` (``rebuild.attest.sigstore``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import SIGSTORE_MEDIA_PREFIX, LoadedEnvelope, parse_envelopes, read_text
from rebuild.attest.keys import PublicKey
from rebuild.attest.sigstore import (
    BundleRef,
    IdentityMismatch,
    SigstorePolicy,
    SigstoreVerificationError,
    SigstoreVerifier,
    UnsupportedBundle,
)
from rebuild.attest.statements import ParsedStatement, Subject, parse_statement
from rebuild.errors import InputError
from rebuild.resolution import Signature, SignatureStatus
from rebuild.untrusted import dig, load_json, printable

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


@dataclass(frozen=True)
class SigstoreMaterial:
    """A Sigstore bundle or a PEP 740 attestation found in a file, with the envelope bytes it signs."""

    kind: str  # "bundle" or "pep740"
    doc: Mapping[str, Any]
    where: BundleRef
    payload: bytes
    signature: bytes


def signature_status(
    loaded: LoadedEnvelope,
    keys: Sequence[PublicKey],
    material: SigstoreMaterial | None = None,
    verifier: SigstoreVerifier | None = None,
) -> Signature:
    """What is known of one envelope's signature: by the given keys first, else by Sigstore."""
    if not loaded.signed or not loaded.envelope.signatures:
        return Signature(SignatureStatus.UNSIGNED)
    if keys:
        verified = dsse.verify(loaded.envelope, keys).signers
        if verified:
            return Signature(SignatureStatus.VERIFIED, verified[0].keyid)
        if material is None or verifier is None:
            return Signature(SignatureStatus.DOES_NOT_VERIFY)
    if material is not None and verifier is not None:
        return sigstore_signature(material, verifier)
    if loaded.certificate:
        return Signature(SignatureStatus.SIGSTORE_NOT_CHECKED)
    return Signature(SignatureStatus.NOT_CHECKED)


def sigstore_signature(material: SigstoreMaterial, verifier: SigstoreVerifier) -> Signature:
    """Verify one bundle or PEP 740 attestation; an unsupported one is "not checked", named, never invalid."""
    try:
        if material.kind == "pep740":
            result = verifier.verify_pep740(material.doc, material.where, material.payload)
        else:
            result = verifier.verify_bundle(material.doc, material.where, material.payload)
    except UnsupportedBundle as e:
        return Signature(SignatureStatus.SIGSTORE_NOT_CHECKED, detail=f"not checked: {e.message}")
    except IdentityMismatch as e:
        return Signature(SignatureStatus.IDENTITY_MISMATCH, detail=f"Sigstore: {e.message}; {e.hint}")
    except SigstoreVerificationError as e:
        return Signature(
            SignatureStatus.SIGSTORE_DOES_NOT_VERIFY, detail=f"Sigstore signature does NOT verify: {e.message}"
        )
    return Signature(SignatureStatus.SIGSTORE_VERIFIED, detail=result.describe(), sigstore=(result,))


def read_statements(
    path: Path, keys: Sequence[PublicKey] = (), sigstore: SigstorePolicy | None = None
) -> tuple[list[FoundStatement], list[str]]:
    """Every in-toto statement in the file with its signature status, and why others could not be read.

    Sigstore material is verified under ``sigstore`` (default: the pinned trust root, no identity pinned).

    Raises:
        ProvenanceError/InputError: the file is unreadable or not any known wrapper (exit 2).
        InputError: the trust root cannot be used (exit 2).
    """
    text = read_text(path)
    loaded_envelopes = parse_envelopes(text, str(path))
    materials: list[SigstoreMaterial] = []
    verifier = None
    if any(loaded.wrapper.startswith(("sigstore", "pep740")) for loaded in loaded_envelopes):
        materials = sigstore_materials(text, path.name)
        verifier = SigstoreVerifier(sigstore or SigstorePolicy())
    found = []
    problems = []
    for loaded in loaded_envelopes:
        if loaded.envelope.payload_type != dsse.INTOTO_PAYLOAD_TYPE:  # a signature over other bytes is no statement
            shown = printable(repr(loaded.envelope.payload_type), 200)
            problems.append(f"{loaded.origin}: payloadType {shown} is not {dsse.INTOTO_PAYLOAD_TYPE}")
            continue
        try:
            stmt = parse_statement(loaded.envelope.payload, loaded.origin)
        except InputError as e:
            problems.append(e.message)
            continue
        if stmt.predicate_type in SLSA_PROVENANCE_TYPES and not isinstance(stmt.raw.get("predicate"), dict):
            problems.append(f"{loaded.origin}: field 'predicate' is missing from the SLSA provenance statement")
            continue
        material = _material_for(loaded, materials)
        found.append(FoundStatement(stmt, loaded, signature_status(loaded, keys, material, verifier)))
    return found, problems


def _material_for(loaded: LoadedEnvelope, materials: Sequence[SigstoreMaterial]) -> SigstoreMaterial | None:
    if not loaded.envelope.signatures:
        return None
    signature = loaded.envelope.signatures[0].sig
    return next((m for m in materials if m.payload == loaded.envelope.payload and m.signature == signature), None)


def sigstore_materials(text: str, uri: str) -> list[SigstoreMaterial]:
    """Every Sigstore bundle and PEP 740 attestation in ``text`` (one JSON document, or JSON Lines).

    Parsed with ``untrusted.load_json``, as the envelopes were; anything unreadable is skipped (the
    envelope it would sign is then reported as not checked).
    """
    found = []
    for document, doc, raw in _documents(text):
        digest = hashlib.sha256(raw).hexdigest()
        for kind, path, item in _wrapped(doc):
            try:
                if kind == "pep740":
                    payload = dsse.b64decode(dig(item, "envelope", "statement"), "statement")
                    signature = dsse.b64decode(dig(item, "envelope", "signature"), "signature")
                else:
                    payload = dsse.b64decode(dig(item, "dsseEnvelope", "payload"), "payload")
                    signatures = dig(item, "dsseEnvelope", "signatures")
                    first = signatures[0] if isinstance(signatures, list) and signatures else None
                    signature = dsse.b64decode(dig(first, "sig"), "signature")
            except InputError:
                continue
            found.append(SigstoreMaterial(kind, item, BundleRef(uri, digest, document, path), payload, signature))
    return found


def _documents(text: str) -> Iterator[tuple[str, Any, bytes]]:
    space = " \t\r\n"
    stripped = text.strip(space)
    try:
        yield "document", load_json(stripped, "document"), stripped.encode()
        return
    except InputError:
        pass
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip(space)
        if not line:
            continue
        try:
            yield f"line {number}", load_json(line, f"line {number}"), line.encode()
        except InputError:
            continue


def _wrapped(doc: Any) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(kind, path inside the document, the bundle or attestation): the wrappers ``envelopes`` reads."""
    if not isinstance(doc, Mapping):
        return
    if str(doc.get("mediaType", "")).startswith(SIGSTORE_MEDIA_PREFIX):
        yield "bundle", "", doc
    elif isinstance(doc.get("attestations"), list):
        for i, item in enumerate(doc["attestations"]):
            bundle = item.get("bundle") if isinstance(item, Mapping) else None
            if isinstance(bundle, Mapping):
                yield "bundle", f"attestations[{i}].bundle", bundle
    elif isinstance(doc.get("attestation_bundles"), list):
        for i, group in enumerate(doc["attestation_bundles"]):
            attestations = group.get("attestations") if isinstance(group, Mapping) else None
            for j, att in enumerate(attestations if isinstance(attestations, list) else []):
                if isinstance(att, Mapping):
                    yield "pep740", f"attestation_bundles[{i}].attestations[{j}]", att
    elif isinstance(doc.get("envelope"), Mapping):
        yield "pep740", "", doc


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
