"""Debian control files (``.buildinfo``, ``.dsc``, ``InRelease``), read with python-debian.

python-debian (``debian.deb822``) parses the paragraphs, the multi-valued
checksum fields, the package relations (``PkgRelation``) and orders versions
(``debian_support.Version``). This module is the boundary around it: what it
raises becomes the project's ``InputError`` naming the file, and what it does
not check is checked here:

- the clearsigned framing. ``split_gpg_and_payload`` finds the armor lines
  but accepts text before the signed message (and would read it as signed
  fields), text after the signature, a missing or truncated signature,
  armor that is not base64, and an unescaped ``-`` line; all are refused.
  It also leaves dash-escaping in place: ``- `` is taken off here.
- a signed message holds one paragraph (as dpkg requires); python-debian
  would merge every paragraph of the signed text into one.
- relations python-debian cannot parse come back "raw" (the whole text as a
  package name, with a warning logged); they are refused here, and the
  warning, which would print hostile text unescaped, is not logged.

Nothing here checks a signature: ``archive.py`` runs gpgv on InRelease.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import stat
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from debian import deb822
from debian.debian_support import Version

from rebuild.errors import InputError
from rebuild.untrusted import printable

D = TypeVar("D", bound=deb822.Deb822)

BEGIN_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
BEGIN_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
END_SIGNATURE = "-----END PGP SIGNATURE-----"
_ARMOR = ("-----BEGIN PGP ", "-----END PGP ")  # every line python-debian takes for armor starts so
_HASH_HEADER = re.compile(r"^Hash:[ \t]*[A-Za-z0-9-]+([ \t]*,[ \t]*[A-Za-z0-9-]+)*$")
_ARMOR_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*: ")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SIZE = re.compile(r"^[0-9]{1,20}$")  # ASCII digits, short enough for int()
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BLANK = " \t\r\n\x0b\x0c"  # what python-debian counts as whitespace on a blank line
MAX_FILE_BYTES = 16 << 20  # a .buildinfo is some kB; an InRelease about 150 kB


@dataclass(frozen=True)
class Parsed(Generic[D]):
    fields: D  # python-debian's paragraph: field names are case-insensitive, as policy says
    signed: bool  # a well-formed OpenPGP clearsigned message (its signature is not checked here)


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a file from elsewhere: a regular file (a fifo must not block), bounded in size.

    Raises:
        InputError: missing, not a regular file, unreadable, or larger than ``max_bytes``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            chunks: list[bytes] = []
            while regular and sum(map(len, chunks)) <= max_bytes:  # bounded even if the file grows
                chunk = os.read(fd, max_bytes + 1)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    if not regular:
        raise InputError(f"{path} is not a regular file (a fifo, device or directory)")
    if len(data) > max_bytes:
        raise InputError(f"{path} is larger than {max_bytes >> 20} MiB")
    return data


def decode(data: bytes, where: str) -> str:
    """Control files are UTF-8 (policy 5.1); python-debian would guess another encoding instead.

    Raises:
        InputError: the bytes are not UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte {e.start} is {data[e.start : e.start + 1]!r})") from e


def read_document(text: str, where: str, kind: type[D]) -> Parsed[D]:
    """The first paragraph of a control file, or the signed paragraph of a clearsigned one.

    ``kind`` is the python-debian class that knows the file's multi-valued
    fields (``deb822.BuildInfo``, ``deb822.Dsc``, ``deb822.Release``).

    Raises:
        InputError: a garbled OpenPGP framing (naming what is wrong), or no fields at all.
    """
    lines = text.split("\n")  # OpenPGP's lines; str.splitlines would also split at \x0b, \x1c, \u2028 ...
    signed = any(line.startswith(_ARMOR) for line in lines)
    body = _signed_body(lines, where) if signed else lines
    try:
        fields = kind(body)
    except (ValueError, KeyError, TypeError, UnicodeError) as e:
        raise InputError(f"{where}: not a deb822 control file ({printable(str(e), 200)})") from e
    if not fields:
        raise InputError(f"{where}: no deb822 fields found")
    return Parsed(fields, signed)


def _garbled(where: str, what: str) -> InputError:
    return InputError(f"{where}: garbled OpenPGP signature block ({what})", "the file is damaged or was edited")


def _signed_body(lines: list[str], where: str) -> list[str]:
    """The signed paragraph's lines, dash-escaping undone, after checking the whole framing."""
    seen: list[str] = []

    def feed() -> Iterator[str]:  # python-debian stops reading at the END line: what follows is checked below
        for line in lines:
            seen.append(line)
            yield line

    try:
        raw_pre, raw_payload, raw_post = deb822.Deb822.split_gpg_and_payload(feed())
    except EOFError:  # python-debian found no line of signed text
        raise _garbled(where, "no signed text after its armor headers and an empty line") from None
    except UnicodeError as e:  # it encodes each line to UTF-8: a lone surrogate cannot be
        raise InputError(f"{where}: not UTF-8 text ({printable(str(e), 200)})") from e
    pre, payload, post = (
        [line.decode("utf-8").rstrip(_BLANK) for line in part] for part in (raw_pre, raw_payload, raw_post)
    )
    if not pre or pre[0] != BEGIN_SIGNED:
        if not any(line.rstrip(_BLANK) == BEGIN_SIGNED for line in lines):
            raise _garbled(where, "a signature without a signed message")
        raise _garbled(where, "text before the signed message")
    if not all(_HASH_HEADER.match(header) for header in pre[1:]):
        raise _garbled(where, "its armor headers are not 'Hash:' lines followed by an empty line")
    if len(post) < 2 or post[0] != BEGIN_SIGNATURE or post[-1] != END_SIGNATURE:
        raise _garbled(where, "no complete signature after the message")
    _check_armor(post[1:-1], where)
    if any(line.strip(_BLANK) for line in lines[len(seen) :]):
        raise _garbled(where, "text after the signature")
    _check_one_paragraph(seen, len(pre), len(post), where)
    body = []
    for line in payload:
        if line.startswith("- "):
            line = line[2:]
        elif line.startswith("-"):
            raise _garbled(where, "a line of the signed message starts with '-' but is not dash-escaped")
        if not line.startswith("-"):  # policy 5.1: no field starts with '-'; python-debian would re-read armor
            body.append(line)
    return body


def _check_armor(armor: list[str], where: str) -> None:
    """Armor headers, an empty line, base64 lines, an optional ``=`` checksum line (RFC 4880 6.2)."""
    if "" in armor:
        headers, data = armor[: armor.index("")], armor[armor.index("") + 1 :]
    else:
        headers, data = [], armor
    if not all(_ARMOR_HEADER.match(header) for header in headers):
        raise _garbled(where, "its armor is not base64")
    if data and data[-1].startswith("="):
        data = data[:-1]
    try:
        if not data or not base64.b64decode("".join(data), validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError):
        raise _garbled(where, "its armor is not base64") from None


def _check_one_paragraph(seen: list[str], headers: int, signature: int, where: str) -> None:
    """python-debian skips the blank lines of a signed message, merging its paragraphs; dpkg refuses them."""
    start = next(i for i, line in enumerate(seen) if line.strip(_BLANK)) + headers
    message = [bool(line.strip(_BLANK)) for line in seen[start : len(seen) - signature]]
    while message and not message[-1]:
        message.pop()
    while message and not message[0]:
        message.pop(0)
    if not all(message):
        raise _garbled(where, "the signed message holds more than one paragraph")


# --- multi-valued fields ------------------------------------------------------------------


def checksums(fields: deb822.Deb822, name: str, where: str) -> dict[str, tuple[str, int]]:
    """A ``sha256 size name`` field (``Checksums-Sha256``, InRelease's ``SHA256``) -> {name: (sha256, size)}.

    python-debian splits the lines (for the classes that declare the field
    multi-valued); the values are checked here.

    Raises:
        InputError: a line is not a lowercase sha256, a size and a file name.
    """
    value = fields.get(name)
    if value is None:
        return {}
    entries = [value] if isinstance(value, Mapping) else value
    if not isinstance(entries, list):
        raise InputError(f"{where}: {name} is not a multi-line field")
    out = {}
    for entry in entries:
        sha, size, filename = (str(entry.get(key, "")) for key in ("sha256", "size", "name"))
        if not _SHA256.match(sha) or not _SIZE.match(size) or not filename or any(c.isspace() for c in filename):
            line = " ".join(str(v) for v in entry.values())
            raise InputError(f"{where}: malformed {name} line {printable(repr(line), 200)}")
        out[filename] = (sha, int(size))
    return out


def environment(info: deb822.BuildInfo, where: str) -> dict[str, str]:
    """A .buildinfo's ``Environment``: ``NAME="value"`` lines, quotes unescaped as deb-buildinfo(5) says.

    Raises:
        InputError: improper quoting, or a name that is not a variable name.
    """
    try:
        env = info.get_environment()
    except ValueError as e:
        raise InputError(f"{where}: Environment: {printable(str(e), 200)}") from e
    bad = [name for name in env if not _ENV_NAME.match(name)]
    if bad:
        raise InputError(f"{where}: Environment: {printable(repr(bad[0]), 100)} is not a variable name")
    return {str(name): str(value) for name, value in env.items()}


# --- relations ------------------------------------------------------------------------------


@contextmanager
def _relation_warnings_dropped() -> Iterator[None]:
    """python-debian logs each relation it cannot parse, raw; they are refused instead (see ``relations``)."""
    logger = logging.getLogger(deb822.__name__)

    def drop(record: logging.LogRecord) -> bool:
        return False

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def relations(value: str, where: str) -> list[list[deb822.PkgRelation.ParsedRelation]]:
    """A relation field (``Build-Depends``, ``Installed-Build-Depends``): alternatives within each entry.

    Empty entries (a trailing comma, an empty field) are left out.

    Raises:
        InputError: an entry python-debian cannot parse, or a package name outside policy 5.6.1.
    """
    with _relation_warnings_dropped():
        try:
            parsed = deb822.PkgRelation.parse_relations(value)
        except (ValueError, IndexError) as e:
            raise InputError(f"{where}: malformed package relations ({printable(str(e), 200)})") from e
    out = []
    for alternatives in parsed:
        if len(alternatives) == 1 and not alternatives[0]["name"]:
            continue
        for relation in alternatives:
            if not _PACKAGE.match(relation["name"]):
                raise InputError(f"{where}: malformed package relation {printable(repr(relation['name']), 200)}")
        out.append(alternatives)
    return out


def exact_versions(value: str, where: str) -> list[tuple[str, str]]:
    """``Installed-Build-Depends`` -> [(package, exact version)]; an entry without ``(= v)`` has "".

    An architecture qualifier (``libc6:amd64``) is dropped: the image is of one architecture.

    Raises:
        InputError: alternatives, another operator, or restrictions: not a record of what was installed.
    """
    out = []
    for alternatives in relations(value, where):
        (relation, *others) = alternatives
        version = relation["version"]
        if others or relation["arch"] or relation["restrictions"] or (version and version[0] != "="):
            text = deb822.PkgRelation.str([alternatives])
            raise InputError(f"{where}: {printable(repr(text), 200)} is not 'package (= version)'")
        out.append((relation["name"], version[1] if version else ""))
    return out


# --- versions -------------------------------------------------------------------------------


def _version(text: str, where: str) -> Version:
    try:
        return Version(text)
    except ValueError as e:
        raise InputError(f"{where}: {printable(repr(text), 100)} is not a Debian version") from e


def debian_sorted(versions: Iterable[str], where: str) -> list[str]:
    """Oldest first, in dpkg's order (``1.9-1 < 1.10-1``, ``1.0~rc1 < 1.0``, ``1.9 < 2:1.0``).

    Raises:
        InputError: a version policy 5.6.12 does not allow.
    """
    keyed = [(_version(v, where), v) for v in versions]
    try:
        keyed.sort(key=lambda pair: pair[0])
    except ValueError as e:  # an epoch too long for int()
        raise InputError(f"{where}: versions that cannot be compared ({printable(str(e), 100)})") from e
    return [v for _, v in keyed]


def newest(versions: Collection[str], where: str) -> str:
    """The highest version in dpkg's order (never a text sort: that ranks 1.9-1 above 1.10-1).

    Raises:
        InputError: no versions, or one that is not a Debian version.
    """
    if not versions:
        raise InputError(f"{where}: no versions to choose from")
    return debian_sorted(versions, where)[-1]


def upstream_version(version: str, where: str) -> str:
    """The version without its epoch and Debian revision (``1:2.10-3`` -> ``2.10``)."""
    return str(_version(version, where).upstream_version)
