"""How an extractor sees an archive's metadata: where a member lands, and what its mode lets it do.

A content-equivalence claim (``compare.equivalence``) says that extracting
either archive gives the same files. Two things in the metadata change what
extraction gives even when every member's bytes are the same:

- names that differ as text but land on the same path (``a`` and ``./a``,
  ``x/y`` and ``x//y``, ``README`` and ``readme`` on a case-insensitive file
  system, ``d\\f`` and ``d/f`` for a zip extracted on Windows, NFC and NFD
  forms of one name on macOS): the one written last wins, so their order
  decides the content. ``extraction_key`` gives each name the path it lands
  on; two members with one key make an archive that is never claimed.
- mode bits beyond reading and writing: an execute bit, setuid, setgid or
  sticky changes what a file can do once extracted. Only a change of the
  read/write bits (``RW_BITS``) is a "permissions" difference
  (``mode_change``); in a zip's external attributes the same holds for the
  unix mode (the high 16 bits), and a change of the MS-DOS read-only,
  hidden, system or archive bits (``DOS_PERMISSION_BITS``) is permissions
  too; the MS-DOS directory bit (and any other) is not.
"""

from __future__ import annotations

import posixpath
import unicodedata

RW_BITS = 0o666  # the bits a "permissions" difference may change
DOS_PERMISSION_BITS = 0x27  # MS-DOS read-only, hidden, system, archive


def extraction_key(name: str, fmt: str) -> str:
    """The path ``name`` lands on when extracted, folded so that aliases compare equal.

    Backslashes are separators in a zip (as extractors on Windows read them);
    a leading ``/``, ``./`` and empty or ``.`` components are dropped, ``..``
    is resolved where it can be, the name is case-folded and put in Unicode
    NFC. A directory's trailing ``/`` is dropped too: ``d/`` and ``d`` land on
    the same path.
    """
    path = name.replace("\\", "/") if fmt == "zip" else name
    path = posixpath.normpath("/" + path).lstrip("/")  # '//', '/./', './', '..' within the name
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", path).casefold())
    return folded or "."


def mode_change(a: int, b: int) -> bool:
    """True when a mode changes beyond the read/write bits (execute, setuid, setgid, sticky, file type)."""
    return bool((a ^ b) & ~RW_BITS)


def dos_change(a: int, b: int) -> bool:
    """True when MS-DOS attributes change beyond read-only, hidden, system and archive (e.g. the directory bit)."""
    return bool((a ^ b) & ~DOS_PERMISSION_BITS)
