"""The content-equivalence statement: a signed claim kept apart from PASSED.

When a rebuild does not reproduce the published bytes but every member's
content is identical and only named kinds of archive metadata differ
(``compare.equivalence``), ``rebuild verify --content-equivalence`` signs
this statement beside a FAILED verification summary. It has its own
predicate type (``uris.CONTENT_EQUIVALENCE_V1``, docs/content-equivalence.md)
so that nothing that counts PASSED summaries can mistake it for one.

The statement is written strictly, and read strictly: ``parse_claim`` refuses
unknown fields, unknown kinds, a "content" kind, duplicate members, a
difference about an unlisted member, oversized lists and malformed digests;
a claim that does not parse is never counted. The reader holds a claim to the
rules its writer follows, so that a claim signed by an older or another
writer is not counted for what this version refuses: two members that
extract to the same path, an order difference in an archive with links, a
mode difference beyond the read/write bits (``compare.extraction``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compare.equivalence import FORMATS, KINDS, LABELS, MAX_DIFFERENCES, MAX_MEMBERS, MEMBER_TYPES, Equivalence
from compare.extraction import dos_change, extraction_key, mode_change
from rebuild import __version__
from rebuild.attest import uris
from rebuild.attest.statements import ResourceRef, Subject, now_rfc3339, statement
from rebuild.errors import InputError
from rebuild.untrusted import parse_rfc3339, printable

RESULT = "CONTENT_EQUIVALENT"
FIELDS = {  # the field a difference was read from -> the only kind it may be
    "mtime": "timestamp", "gzip-mtime": "timestamp", "pax": "timestamp", "mode": "permissions",
    "dos-attributes": "permissions", "compression": "compression", "gzip-level": "compression",
    "compressed-data": "compression", "order": "order",
}  # fmt: skip
MAX_PATH = 4096
MAX_VALUE = 200
MAX_INPUTS = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PREDICATE_KEYS = {
    "verifier", "timeVerified", "result", "bitForBit", "resourceUri", "rebuilt", "format", "metadataKinds",
    "members", "differences", "inputAttestations",
}  # fmt: skip


def content_equivalence_statement(
    subject: Subject,
    rebuilt: Subject,
    equivalence: Equivalence,
    *,
    verifier_id: str = uris.VERIFIER_ID,
    input_attestations: Sequence[ResourceRef] = (),
    time_verified: str | None = None,
) -> bytes:
    """The statement's bytes; ``subject`` is the published artifact, ``rebuilt`` what the rebuild made.

    Raises:
        InputError: the equivalence does not hold (there is nothing to claim), or a digest is invalid.
    """
    if not equivalence.equivalent:
        raise InputError(f"{subject.name}: not content-equivalent, nothing to claim: {equivalence.label}")
    if subject.digest.get("sha256") == rebuilt.digest.get("sha256"):
        raise InputError(f"{subject.name}: identical bytes are reproduced, not a content-equivalence claim")
    predicate: dict[str, Any] = {
        "verifier": {"id": verifier_id, "version": {"rebuild-verifier": __version__}},
        "timeVerified": time_verified or now_rfc3339(),
        "result": RESULT,
        "bitForBit": False,
        "resourceUri": subject.name,
        "rebuilt": rebuilt.to_dict(),
        "format": equivalence.format,
        "metadataKinds": list(equivalence.kinds),
        "members": [m.as_dict() for m in equivalence.members],
        "differences": [d.as_dict(("published", "rebuilt")) for d in equivalence.differences],
        "inputAttestations": [a.to_dict() for a in input_attestations],
    }
    payload = statement([subject], uris.CONTENT_EQUIVALENCE_V1, predicate)
    parse_claim(predicate, "the statement written")  # what this writes, its reader must accept
    return payload


@dataclass(frozen=True)
class Claim:
    """A content-equivalence predicate that passed ``parse_claim``."""

    verifier_id: str
    time_verified: str
    resource_uri: str
    rebuilt_sha256: str
    format: str
    kinds: tuple[str, ...]
    members: int
    differences: int

    @property
    def label(self) -> str:
        return f"content-equivalent (metadata differs: {', '.join(LABELS[k] for k in self.kinds)})"


class _Bad(Exception):
    pass


def _object(value: object, where: str, keys: set[str], optional: frozenset[str] = frozenset()) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    unknown = set(value) - keys
    if unknown:
        raise _Bad(f"{where} has unknown field(s) {printable(', '.join(sorted(unknown)), 200)}")
    missing = keys - optional - set(value)
    if missing:
        raise _Bad(f"{where} is missing field(s) {', '.join(sorted(missing))}")
    return value


def _text(value: object, where: str, limit: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty) or len(value) > limit or "\x00" in value:
        raise _Bad(f"{where} is {printable(repr(value), 120)}, not a string of 1 to {limit} characters")
    return value


def _sha256(value: object, where: str) -> str:
    digest = _object(value, where, {"sha256"})
    hex_ = digest["sha256"]
    if not isinstance(hex_, str) or not _SHA256.fullmatch(hex_):
        raise _Bad(f"{where}.sha256 is not 64 lowercase hex digits")
    return hex_


def _list(value: object, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where} is not a list")
    if len(value) > limit:
        raise _Bad(f"{where} has {len(value)} entries, more than the {limit} allowed")
    return value


def parse_claim(predicate: object, where: str) -> Claim:
    """A content-equivalence predicate, checked field by field (docs/content-equivalence.md).

    Raises:
        InputError: any field missing, unknown, mistyped, out of range or inconsistent; the message names it.
    """
    try:
        return _parse(predicate)
    except _Bad as e:
        raise InputError(f"{where}: content-equivalence predicate: {e}") from None


def _parse(predicate: object) -> Claim:
    p = _object(predicate, "predicate", _PREDICATE_KEYS)
    verifier = _object(p["verifier"], "verifier", {"id", "version"}, frozenset({"version"}))
    verifier_id = _text(verifier["id"], "verifier.id", 2048)
    version = verifier.get("version", {})
    if not isinstance(version, dict) or len(version) > 16 or not all(isinstance(v, str) for v in version.values()):
        raise _Bad("verifier.version is not a small map of strings")
    time_verified = _text(p["timeVerified"], "timeVerified", 64)
    if parse_rfc3339(time_verified) is None:
        raise _Bad(f"timeVerified {printable(repr(time_verified), 80)} is not an RFC 3339 date-time with an offset")
    if p["result"] != RESULT:
        raise _Bad(f"result is {printable(repr(p['result']), 80)}, not {RESULT}")
    if p["bitForBit"] is not False:
        raise _Bad("bitForBit is not false (a content-equivalence claim never says the bytes are the same)")
    resource_uri = _text(p["resourceUri"], "resourceUri", MAX_PATH)
    rebuilt = _object(p["rebuilt"], "rebuilt", {"name", "digest"})
    _text(rebuilt["name"], "rebuilt.name", MAX_PATH)
    rebuilt_sha256 = _sha256(rebuilt["digest"], "rebuilt.digest")
    fmt = p["format"]
    if fmt not in FORMATS:
        raise _Bad(f"format {printable(repr(fmt), 80)} is not one of {', '.join(FORMATS)}")
    paths = _members(_list(p["members"], "members", MAX_MEMBERS), fmt)
    kinds_seen = _differences(_list(p["differences"], "differences", MAX_DIFFERENCES), paths)
    kinds = _list(p["metadataKinds"], "metadataKinds", len(KINDS))
    expected = [k for k in KINDS if k in kinds_seen]
    if kinds != expected or not kinds:
        raise _Bad(
            f"metadataKinds {printable(repr(kinds), 200)} is not the (non-empty) list of the differences' kinds "
            f"{expected}"
        )
    inputs = _list(p["inputAttestations"], "inputAttestations", MAX_INPUTS)
    if not all(isinstance(i, dict) for i in inputs):
        raise _Bad("inputAttestations is not a list of objects")
    return Claim(verifier_id, time_verified, resource_uri, rebuilt_sha256, fmt, tuple(kinds), len(paths),
                 len(p["differences"]))  # fmt: skip


def _members(members: list[Any], fmt: str) -> dict[str, str]:
    """Path -> type of every listed member; no path twice, and no two paths that extract to the same one."""
    if not members:
        raise _Bad("members is empty (a claim names every member's content)")
    paths: dict[str, str] = {}
    keys: dict[str, str] = {}
    for i, m in enumerate(members):
        entry = _object(m, f"members[{i}]", {"path", "type", "digest", "size"}, frozenset({"digest", "size"}))
        path = _text(entry["path"], f"members[{i}].path", MAX_PATH)
        if path in paths:
            raise _Bad(f"members[{i}].path {printable(repr(path), 200)} is listed twice")
        key = extraction_key(path, fmt)
        if key in keys:
            raise _Bad(
                f"members[{i}].path {printable(repr(path), 200)} extracts to the same path as "
                f"{printable(repr(keys[key]), 200)}"
            )
        paths[path], keys[key] = str(entry["type"]), path
        if entry["type"] not in MEMBER_TYPES:
            raise _Bad(f"members[{i}].type {printable(repr(entry['type']), 80)} is not one of {MEMBER_TYPES}")
        if (entry["type"] == "dir") == ("digest" in entry):
            raise _Bad(f"members[{i}]: a digest is required for a {entry['type']} (and only then)")
        if "digest" in entry:
            _sha256(entry["digest"], f"members[{i}].digest")
        size = entry.get("size", 0)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise _Bad(f"members[{i}].size is not a non-negative integer")
    return paths


def _mode(value: str, where: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise _Bad(f"{where} {printable(repr(value), 80)} is not a mode (a decimal number)")
    return int(value)


def _differences(differences: list[Any], paths: dict[str, str]) -> set[str]:
    kinds: set[str] = set()
    for i, d in enumerate(differences):
        entry = _object(d, f"differences[{i}]", {"kind", "member", "field", "published", "rebuilt"})
        if entry["kind"] not in KINDS:
            raise _Bad(
                f"differences[{i}].kind {printable(repr(entry['kind']), 80)} is not a metadata kind "
                f"({', '.join(KINDS)}): a claim never lists a content difference"
            )
        member = entry["member"]
        if member is not None and (not isinstance(member, str) or member not in paths):
            raise _Bad(f"differences[{i}].member {printable(repr(member), 200)} is not a listed member")
        if not isinstance(entry["field"], str) or FIELDS.get(entry["field"]) != entry["kind"]:
            raise _Bad(
                f"differences[{i}].field {printable(repr(entry['field']), 80)} is not a field of kind "
                f"{entry['kind']} ({', '.join(f for f, k in FIELDS.items() if k == entry['kind'])})"
            )
        published = _text(entry["published"], f"differences[{i}].published", MAX_VALUE, allow_empty=True)
        rebuilt = _text(entry["rebuilt"], f"differences[{i}].rebuilt", MAX_VALUE, allow_empty=True)
        if entry["field"] in ("mode", "dos-attributes"):
            changed = mode_change if entry["field"] == "mode" else dos_change
            if changed(_mode(published, f"differences[{i}].published"), _mode(rebuilt, f"differences[{i}].rebuilt")):
                raise _Bad(
                    f"differences[{i}]: {entry['field']} {printable(published, 20)} -> {printable(rebuilt, 20)} "
                    "changes more than the read/write bits (not a permissions difference)"
                )
        if entry["kind"] == "order" and (links := [p for p, t in paths.items() if t in ("symlink", "hardlink")]):
            raise _Bad(
                f"differences[{i}]: an order difference in an archive with links ({printable(repr(links[0]), 200)})"
            )
        kinds.add(entry["kind"])
    return kinds
