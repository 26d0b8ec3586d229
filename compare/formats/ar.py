"""ar (the outer layer of a .deb): fixed 60-byte member headers, read one after the other."""

from __future__ import annotations

import io
from typing import IO, Any

from compare.formats.base import Archive, Budget, Content, Limited, Unreadable, add_file, hash_member

MAGIC = b"!<arch>\n"
HEADER = 60


def _decimal(field: bytes, what: str) -> int:
    text = field.decode("latin-1").strip()
    if text and not (text.isascii() and text.isdigit()):
        raise Unreadable(f"ar: member {what} {text!r} is not a number")
    return int(text or 0)


def read_ar(data: IO[bytes], archive: Archive, budget: Budget, depth: int) -> None:
    """Members in order; GNU and BSD long names are left as the header writes them.

    Raises:
        Unreadable: a header that is truncated or not one, or a member that ends early or is unreadable.
    """
    data.read(len(MAGIC))
    offset = len(MAGIC)
    while header := data.read(HEADER):
        if len(header) < HEADER or header[58:60] != b"`\n":
            raise Unreadable(f"ar: the member header at byte {offset} is truncated or not one")
        if archive.full(budget):
            return
        name = header[0:16].decode("latin-1").rstrip()
        if name.endswith("/") and name != "/":
            name = name[:-1]
        size = _decimal(header[48:58], "size")
        meta: dict[str, Any] = {
            "mtime": _decimal(header[16:28], "mtime"),
            "ownership": (header[28:34].decode("latin-1").strip(), header[34:40].decode("latin-1").strip()),
            "mode": header[40:48].decode("latin-1").strip(),
        }
        content = hash_member(io.BufferedReader(Limited(data, size)), budget, depth < budget.max_depth)
        if content.error is None and not content.over_limit and content.size < size:
            content = Content(size, None, None, f"truncated ({content.size} of {size} bytes)")
        add_file(archive, name, meta, content)
        if content.over_limit:
            archive.limit("expansion limit reached; the rest of the archive was not read")
            return
        if content.error is not None:
            raise Unreadable(f"ar: could not read past member {name!r}")
        offset += HEADER + size + size % 2
        if size % 2:
            data.read(1)
