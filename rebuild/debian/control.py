"""Debian's deb822 control format (``.buildinfo``, ``.dsc``, ``Sources``, ``Packages``, ``Release``).

Paragraphs of ``Field: value`` lines, continuation lines starting with a
space, blank lines between paragraphs. A document may be wrapped in an
OpenPGP clearsigned message; ``unwrap_clearsigned`` takes the text out and
says whether a signature block was there. Nothing here checks a signature.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from rebuild.errors import InputError

Paragraph = dict[str, str]
BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = "-----END PGP SIGNATURE-----"
_FIELD = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*):[ \t]*(.*)$")


@dataclass(frozen=True)
class Unwrapped:
    text: str
    signed: bool  # a well-formed OpenPGP signature block was present (not checked here)


def unwrap_clearsigned(text: str, where: str) -> Unwrapped:
    """The signed text of an OpenPGP clearsigned message (or the text itself when not signed).

    Raises:
        InputError: a signature block is started but garbled (no end, no armor, bad base64).
    """
    if BEGIN_SIGNED not in text:
        if BEGIN_SIGNATURE in text:
            raise InputError(f"{where}: garbled OpenPGP signature block (a signature without a signed message)")
        return Unwrapped(text, False)
    lines = text.splitlines()
    start = lines.index(BEGIN_SIGNED)
    body_start = start + 1
    while body_start < len(lines) and lines[body_start].strip():  # armor headers ("Hash: SHA512")
        body_start += 1
    try:
        sig_start = lines.index(BEGIN_SIGNATURE, body_start)
        sig_end = lines.index(END_SIGNATURE, sig_start)
    except ValueError:
        raise InputError(
            f"{where}: garbled OpenPGP signature block (no complete signature after the message)"
        ) from None
    armor = [line for line in lines[sig_start + 1 : sig_end] if line and ":" not in line]
    payload = "".join(line for line in armor if not line.startswith("="))
    try:
        if not payload or not base64.b64decode(payload, validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: garbled OpenPGP signature block (its armor is not base64)") from None
    body = [line[2:] if line.startswith("- ") else line for line in lines[body_start + 1 : sig_start]]
    return Unwrapped("\n".join(body) + "\n", True)


def paragraphs(text: str) -> Iterator[Paragraph]:
    """Every paragraph, fields in order; continuation lines joined with newlines."""
    current: Paragraph = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                yield current
            current, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                continue  # a stray continuation line: tolerated, ignored
            current[last] += "\n" + line[1:]
            continue
        match = _FIELD.match(line)
        if match is None:
            continue
        last = match.group(1)
        current[last] = match.group(2)
    if current:
        yield current


def parse_one(text: str, where: str) -> Paragraph:
    """Raises: InputError: no paragraph at all."""
    for paragraph in paragraphs(text):
        return paragraph
    raise InputError(f"{where}: no deb822 fields found")


def lines_of(value: str) -> list[str]:
    """The non-empty lines of a multi-line field (after its first line)."""
    return [line.strip() for line in value.splitlines() if line.strip()]


def checksums(value: str, where: str) -> dict[str, tuple[str, int]]:
    """``Checksums-Sha256`` -> {filename: (sha256, size)}."""
    out = {}
    for line in lines_of(value):
        parts = line.split()
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not parts[1].isdigit():
            raise InputError(f"{where}: malformed Checksums-Sha256 line {line!r}")
        out[parts[2]] = (parts[0], int(parts[1]))
    return out


def relations(value: str) -> list[tuple[str, str]]:
    """``Installed-Build-Depends`` -> [(package, exact version)] (entries without ``(= v)`` have "")."""
    out = []
    for item in value.replace("\n", " ").split(","):
        item = item.strip()
        if not item:
            continue
        match = re.fullmatch(r"([a-z0-9][a-z0-9+.\-]*)(?::[a-z0-9]+)?\s*(?:\(\s*=\s*([^)\s]+)\s*\))?", item)
        if match is None:
            raise InputError(f"malformed package relation {item!r}")
        out.append((match.group(1), match.group(2) or ""))
    return out


def environment(value: str) -> dict[str, str]:
    """``Environment`` lines ``NAME="value"`` -> {NAME: value}."""
    out = {}
    for line in lines_of(value):
        name, sep, raw = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            out[name] = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return out
