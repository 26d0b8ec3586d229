"""Reading attestation files, whatever the wrapper.

One function, ``read_envelopes``, turns a file into the DSSE envelopes it
holds. It understands: ``.intoto.jsonl`` (one document per line), a single
DSSE envelope, a Sigstore bundle (v0.1-v0.3 media types; its
``dsseEnvelope``), npm's registry attestations response
(``{"attestations": [{"predicateType", "bundle"}]}``), PyPI's PEP 740
provenance object (``attestation_bundles``) and a single PEP 740
attestation, and a bare in-toto Statement (reported as unsigned). Wrappers
are an explicit ordered registry, most specific first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebuild.attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, b64decode
from rebuild.attest.statements import load_document
from rebuild.errors import InputError, ProvenanceError
from rebuild.untrusted import dig

SIGSTORE_MEDIA_PREFIX = "application/vnd.dev.sigstore.bundle"
MAX_FILE_BYTES = 64 << 20
MAX_LINES = 10_000  # documents in one JSON Lines file; each is parsed and checked before the next
_JSON_SPACE = " \t\r\n"  # JSON's whitespace; str.strip() would also take U+2028 and friends


@dataclass(frozen=True)
class LoadedEnvelope:
    envelope: Envelope
    origin: str  # where in the file, for messages: "line 2", "attestations[0].bundle"
    wrapper: str  # "dsse", "sigstore-bundle v0.3", "pep740", "statement (unsigned)"
    signed: bool = True
    certificate: str | None = None  # base64 DER leaf certificate from a Sigstore/PEP 740 wrapper


def read_envelopes(path: Path) -> list[LoadedEnvelope]:
    """Every envelope in the file, in order.

    Raises:
        ProvenanceError: unreadable, not UTF-8, not strict JSON, or no known wrapper (exit 2).
    """
    return parse_envelopes(read_text(path), str(path))


def read_text(path: Path) -> str:
    """A document's text: a fifo never blocks the open, only a regular file is read, bounded even if it grows.

    Raises:
        ProvenanceError: missing, not a regular file, unreadable, too large or not UTF-8 (exit 2).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a fifo must not block the open
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ProvenanceError(f"{path} is not a regular file")
            os.set_blocking(fd, True)
            data = f.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows
    except FileNotFoundError as e:
        raise ProvenanceError(f"{path} does not exist") from e
    except OSError as e:
        raise ProvenanceError(f"{path} cannot be read: {e.strerror or e}") from e
    if len(data) > MAX_FILE_BYTES:
        raise ProvenanceError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProvenanceError(f"{path} is not UTF-8 text (byte {e.start})") from e


def parse_envelopes(text: str, name: str) -> list[LoadedEnvelope]:
    """Every envelope in ``text`` (one JSON document, or JSON Lines), in order.

    Raises:
        ProvenanceError: not strict JSON (duplicate keys, deep nesting, long
            integers, lone surrogates are refused), or no known wrapper.
    """
    if not text.strip(_JSON_SPACE):
        raise ProvenanceError(f"{name} is empty")
    docs = list(_json_documents(text, name))
    found: list[LoadedEnvelope] = []
    for origin, doc, raw in docs:
        try:
            found.extend(_unwrap(doc, origin, raw))
        except InputError as e:
            raise ProvenanceError(f"{name}: {e.message}", e.hint) from e
    if not found:
        raise ProvenanceError(f"{name} holds no attestation envelope or statement")
    return found


def _json_documents(text: str, name: str) -> Iterator[tuple[str, Any, bytes]]:
    """``(origin, document, its exact bytes)`` for the one document, or for each JSON line.

    A file is one document if it parses as one; otherwise it is JSON Lines
    (lines end in ``\\n``; ``splitlines`` would also split inside strings at
    U+2028). When the first line is not JSON either, the whole-document error
    is the one worth reading (a pretty-printed document with a duplicate key).
    """
    stripped = text.strip(_JSON_SPACE)
    try:
        yield "document", load_document(stripped, name), stripped.encode()
        return
    except InputError as e:
        whole = e
    lines = [(n, line.strip(_JSON_SPACE)) for n, line in enumerate(text.split("\n"), 1)]
    lines = [(n, line) for n, line in lines if line]
    if len(lines) < 2:
        raise ProvenanceError(whole.message) from None
    if len(lines) > MAX_LINES:
        raise ProvenanceError(f"{name} holds more than {MAX_LINES} JSON lines")
    for index, (number, line) in enumerate(lines):
        try:
            doc = load_document(line, f"{name}: line {number}")
        except InputError as e:
            raise ProvenanceError(whole.message if index == 0 else e.message) from None
        yield f"line {number}", doc, line.encode()


def _is_envelope(doc: Mapping[str, Any]) -> bool:
    return "payloadType" in doc and "payload" in doc


def _from_envelope(doc: Mapping[str, Any], origin: str, raw: bytes) -> list[LoadedEnvelope]:
    return [LoadedEnvelope(Envelope.from_dict(doc, origin), origin, "dsse")]


def _from_sigstore_bundle(doc: Mapping[str, Any], origin: str, raw: bytes = b"") -> list[LoadedEnvelope]:
    media = str(doc.get("mediaType", ""))
    version = media.split("version=")[-1] if "version=" in media else media.removeprefix(SIGSTORE_MEDIA_PREFIX)
    env = doc.get("dsseEnvelope")
    if not isinstance(env, Mapping):
        raise InputError(f"{origin}: Sigstore bundle has no 'dsseEnvelope' (message signatures are not attestations)")
    return [
        LoadedEnvelope(
            Envelope.from_dict(env, f"{origin}.dsseEnvelope"),
            origin,
            f"sigstore-bundle {version.strip('.+json') or '?'}",
            certificate=_bundle_certificate(doc.get("verificationMaterial")),
        )
    ]


def _bundle_certificate(material: object) -> str | None:
    cert = dig(material, "certificate", "rawBytes")
    if isinstance(cert, str):
        return cert
    chain = dig(material, "x509CertificateChain", "certificates")
    first = dig(chain[0], "rawBytes") if isinstance(chain, list) and chain else None
    return first if isinstance(first, str) else None


def _from_npm_response(doc: Mapping[str, Any], origin: str, raw: bytes) -> list[LoadedEnvelope]:
    items = doc.get("attestations")
    if not isinstance(items, list):
        raise InputError(f"{origin}: 'attestations' is not a list")
    found = []
    for i, item in enumerate(items):
        bundle = item.get("bundle") if isinstance(item, Mapping) else None
        if not isinstance(bundle, Mapping):
            raise InputError(f"{origin}: attestations[{i}] has no 'bundle' object")
        found.extend(_from_sigstore_bundle(bundle, f"{origin}: attestations[{i}].bundle"))
    return found


def _from_pep740_attestation(doc: Mapping[str, Any], origin: str, raw: bytes = b"") -> list[LoadedEnvelope]:
    env = doc.get("envelope")
    if not isinstance(env, Mapping):
        raise InputError(f"{origin}: PEP 740 attestation has no 'envelope' object")
    statement = b64decode(env.get("statement"), f"{origin}: envelope.statement")
    signature = b64decode(env.get("signature"), f"{origin}: envelope.signature")
    cert = dig(doc, "verification_material", "certificate")
    return [
        LoadedEnvelope(
            Envelope(INTOTO_PAYLOAD_TYPE, statement, (Signature(signature),)),
            origin,
            "pep740",
            certificate=cert if isinstance(cert, str) else None,
        )
    ]


def _from_pep740_provenance(doc: Mapping[str, Any], origin: str, raw: bytes) -> list[LoadedEnvelope]:
    bundles = doc.get("attestation_bundles")
    if not isinstance(bundles, list):
        raise InputError(f"{origin}: 'attestation_bundles' is not a list")
    found = []
    for i, bundle in enumerate(bundles):
        atts = bundle.get("attestations") if isinstance(bundle, Mapping) else None
        if not isinstance(atts, list):
            raise InputError(f"{origin}: attestation_bundles[{i}].attestations is not a list")
        for j, att in enumerate(atts):
            if not isinstance(att, Mapping):
                raise InputError(f"{origin}: attestation_bundles[{i}].attestations[{j}] is not an object")
            found.extend(_from_pep740_attestation(att, f"{origin}: attestation_bundles[{i}].attestations[{j}]"))
    return found


def _from_statement(doc: Mapping[str, Any], origin: str, raw: bytes) -> list[LoadedEnvelope]:
    # the statement's own bytes, never a re-serialisation of what was parsed from them
    return [LoadedEnvelope(Envelope(INTOTO_PAYLOAD_TYPE, raw, ()), origin, "statement (unsigned)", signed=False)]


# (name, does this document look like it, unwrap(document, origin, its exact bytes)). Most specific first.
Unwrap = Callable[[Mapping[str, Any], str, bytes], list[LoadedEnvelope]]
WRAPPERS: tuple[tuple[str, Callable[[Mapping[str, Any]], bool], Unwrap], ...] = (
    ("sigstore bundle", lambda d: str(d.get("mediaType", "")).startswith(SIGSTORE_MEDIA_PREFIX), _from_sigstore_bundle),
    ("npm attestations", lambda d: "attestations" in d and isinstance(d.get("attestations"), list), _from_npm_response),
    ("PEP 740 provenance", lambda d: "attestation_bundles" in d, _from_pep740_provenance),
    (
        "PEP 740 attestation",
        lambda d: isinstance(d.get("envelope"), Mapping) and "statement" in d["envelope"],
        _from_pep740_attestation,
    ),
    ("DSSE envelope", _is_envelope, _from_envelope),
    ("in-toto statement", lambda d: "_type" in d and "predicateType" in d, _from_statement),
)


def _unwrap(doc: Any, origin: str, raw: bytes) -> list[LoadedEnvelope]:
    if not isinstance(doc, Mapping):
        raise InputError(f"{origin} is not a JSON object")
    for _name, matches, unwrap in WRAPPERS:
        if matches(doc):
            return unwrap(doc, origin, raw)
    raise InputError(
        f"{origin} is not a DSSE envelope, Sigstore bundle, npm or PEP 740 attestation, or in-toto statement",
        "expected a field such as payloadType, dsseEnvelope, attestations or _type",
    )


def write_jsonl(path: Path, envelopes: list[Envelope]) -> None:
    """Write an ``.intoto.jsonl`` bundle atomically (never a partial file)."""
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("".join(e.to_json() + "\n" for e in envelopes))
    tmp.replace(path)
