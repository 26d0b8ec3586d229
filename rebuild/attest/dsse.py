"""DSSE v1 envelopes: the exact PAE bytes, signing, and verification.

Verification never trusts a signature's ``keyid``: every signature is tried
against every trusted key. Only the verified payload bytes are handed on;
everything downstream reads those bytes and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rebuild.attest.keys import PublicKey, Signer
from rebuild.errors import InputError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
# Every signature is tried against every trusted key, so their number is bounded;
# real envelopes carry one, a threshold of rebuilders a handful.
MAX_SIGNATURES = 64


def pae(payload_type: str, payload: bytes) -> bytes:
    """Pre-Authentication Encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not.

    Raises:
        InputError: not base64.
    """
    if not isinstance(text, str):
        raise InputError(f"{what} is not a base64 string")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(f"{what} is not valid base64") from e


@dataclass(frozen=True)
class Signature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def from_dict(cls, doc: Any, where: str = "envelope") -> Envelope:
        """Parse an untrusted envelope, naming the field that is wrong.

        Raises:
            InputError: a field is missing, mistyped, or not base64.
        """
        if not isinstance(doc, Mapping):
            raise InputError(f"{where} is not a JSON object")
        payload_type = doc.get("payloadType")
        if not isinstance(payload_type, str):
            raise InputError(f"{where}: field 'payloadType' is missing or not a string")
        try:
            payload_type.encode("utf-8")  # PAE signs its UTF-8 bytes; a lone surrogate has none
        except UnicodeEncodeError:
            raise InputError(f"{where}: field 'payloadType' is not Unicode text (a lone surrogate)") from None
        payload = b64decode(doc.get("payload"), f"{where}: field 'payload'")
        raw_sigs = doc.get("signatures", [])
        if not isinstance(raw_sigs, list):
            raise InputError(f"{where}: field 'signatures' is not a list")
        if len(raw_sigs) > MAX_SIGNATURES:
            raise InputError(f"{where}: {len(raw_sigs)} signatures (at most {MAX_SIGNATURES})")
        sigs = []
        for i, s in enumerate(raw_sigs):
            if not isinstance(s, Mapping):
                raise InputError(f"{where}: signatures[{i}] is not an object")
            keyid = s.get("keyid", "")
            sigs.append(
                Signature(
                    b64decode(s.get("sig"), f"{where}: signatures[{i}].sig"), keyid if isinstance(keyid, str) else ""
                )
            )
        return cls(payload_type, payload, tuple(sigs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def sign(payload: bytes, signers: Sequence[Signer], payload_type: str = INTOTO_PAYLOAD_TYPE) -> Envelope:
    message = pae(payload_type, payload)
    sigs = tuple(Signature(s.sign(message), s.keyid) for s in signers)
    return Envelope(payload_type, payload, sigs)


@dataclass(frozen=True)
class Verified:
    """The payload bytes of an envelope, and the trusted keys whose signatures verified."""

    payload_type: str
    payload: bytes
    signers: tuple[PublicKey, ...]


def verify(envelope: Envelope, keys: Sequence[PublicKey]) -> Verified:
    """Return the verified payload, with each distinct trusted key that signed it.

    ``signers`` is empty when no signature verifies with any trusted key.
    """
    message = pae(envelope.payload_type, envelope.payload)
    signers: dict[str, PublicKey] = {}
    for signature in envelope.signatures:
        for key in keys:
            if key.keyid not in signers and key.verify(signature.sig, message):
                signers[key.keyid] = key
    return Verified(envelope.payload_type, envelope.payload, tuple(signers.values()))
