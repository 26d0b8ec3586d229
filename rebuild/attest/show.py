"""What the `show` commands print, without verifying anything: attestations decoded, a key's type and id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from rebuild.attest import keys
from rebuild.attest.envelopes import read_envelopes
from rebuild.attest.statements import parse_statement
from rebuild.errors import InputError, KeyLoadError


def show_envelopes(path: Path) -> list[dict[str, Any]]:
    """Each envelope in the file: where, which wrapper, how many signatures (NOT checked), its statement.

    Raises:
        ProvenanceError: the file is unreadable or no known wrapper (exit 2).
    """
    shown = []
    for loaded in read_envelopes(path):
        item: dict[str, Any] = {
            "origin": loaded.origin,
            "wrapper": loaded.wrapper,
            "payloadType": loaded.envelope.payload_type,
            "signatures": len(loaded.envelope.signatures),
        }
        try:
            item["statement"] = parse_statement(loaded.envelope.payload, loaded.origin).raw
        except InputError as e:
            item["error"] = e.message
        shown.append(item)
    return shown


def key_info(path: Path) -> dict[str, Any]:
    """A key file of any supported kind (private or public PEM): its type, key id and in-toto form.

    ``in_toto`` is the key as an in-toto layout lists it (``keyid``, ``keytype``, ``scheme``, ``keyval``),
    or None for a key type in-toto has no form for.

    Raises:
        KeyLoadError: unreadable, malformed or unsupported (exit 2).
    """
    try:
        private = b"PRIVATE KEY" in path.read_bytes()
    except OSError:
        private = False  # load_public_key names the problem
    if private:
        key = keys.load_private_key(path)
        info = {"keyid": key.keyid, "type": keys.describe(key.key.public_key()), "private": True}
        return info | {"in_toto": _in_toto_form(key.key.public_key())}
    public = keys.load_public_key(path)
    return {"keyid": public.keyid, "type": public.algorithm, "private": False, "in_toto": _in_toto_form(public.key)}


def _in_toto_form(public_key: PublicKeyTypes) -> dict[str, Any] | None:
    """The key as a layout lists it (in-toto's key id, keytype, scheme, keyval), or None when it has none."""
    from rebuild.attest.intoto import in_toto_key  # imports in-toto: only when a key is shown

    try:
        return in_toto_key(public_key)
    except KeyLoadError:
        return None
