"""What the pages read out of blobs and JSON columns: all of it hostile, checked field by field, capped.

A compare report, a build log and the digests an attempt recorded were written by a worker from what a
build and an archive produced: a member name, a changed line or a log line can hold anything (markup,
control characters, megabytes). Here they become bounded, printable text; the templates escape it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rebuild.build.sandbox import MAX_LOG_BYTES as SANDBOX_LOG_BYTES
from rebuild.errors import InputError
from rebuild.service.blobs import BlobStore
from rebuild.untrusted import dig, load_json, printable

MAX_REPORT_BYTES = 16 << 20
# what a worker can store: the sandbox keeps the last 16 MiB of output, decoded with U+FFFD (3 bytes in UTF-8)
# for each byte that is not UTF-8
MAX_LOG_BYTES = 3 * SANDBOX_LOG_BYTES
LOG_CHUNK = 64 << 10  # bytes read at a time: a page costs O(page + chunk) memory, whatever the log's size
MAX_LISTED = 100  # member differences shown per artifact
MAX_NOTES = 20
LOG_LINES = 500  # lines per log page
LOG_LINE_CHARS = 4000
_LOG_LINE_BYTES = 4 * LOG_LINE_CHARS  # kept of a line: enough for LOG_LINE_CHARS characters of any UTF-8
_SHA256 = re.compile(r"[0-9a-f]{64}")
_QUOTED = re.compile(r"line [0-9]+: .*")
# control characters but the tab, bidi and invisible format characters, lone surrogates
_LOG_UNSAFE = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]"
)


@dataclass(frozen=True)
class MemberDifference:
    path: str
    status: str
    detail: str
    quoted: str  # "line N: 'old' -> 'new'" when the explanation quotes the changed line


@dataclass(frozen=True)
class ArtifactExplanation:
    name: str
    identical: bool
    published_sha256: str
    rebuilt_sha256: str
    classification: str
    kind: str
    differences: list[MemberDifference]
    differences_total: int
    notes: list[str]


@dataclass(frozen=True)
class LogPage:
    lines: list[tuple[int, str]]  # (line number, text)
    page: int
    pages: int
    total_lines: int


def _text(value: object, limit: int = 2000) -> str:
    return printable(value, limit) if isinstance(value, str) else ""


def _sha(value: object) -> str:
    return value if isinstance(value, str) and _SHA256.fullmatch(value) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def explanation(blobs: BlobStore, digest: str) -> list[ArtifactExplanation]:
    """The compare report's artifacts, what differs in each and the quoted changed lines.

    Raises:
        InputError: the blob is missing, altered, too large or not a compare report.
    """
    path = blobs.path(digest)
    if path.is_file() and path.stat().st_size > MAX_REPORT_BYTES:
        raise InputError(f"compare report {digest} is larger than {MAX_REPORT_BYTES} bytes")
    doc = load_json(blobs.read_bytes(digest), f"compare report {digest}", max_bytes=MAX_REPORT_BYTES)
    comparisons = dig(doc, "comparisons")
    if not isinstance(comparisons, list):
        raise InputError(f"compare report {digest} has no list of comparisons")
    out = []
    for item in comparisons[:MAX_LISTED]:
        if not isinstance(item, Mapping):
            continue
        differences = dig(item, "explanation", "differences", default=[])
        notes = dig(item, "explanation", "notes", default=[])
        listed = [d for d in differences if isinstance(d, Mapping)][:MAX_LISTED] if isinstance(differences, list) \
            else []  # fmt: skip
        out.append(
            ArtifactExplanation(
                name=_text(dig(item, "name"), 512),
                identical=dig(item, "identical") is True,
                published_sha256=_sha(dig(item, "verdict", "a", "sha256")),
                rebuilt_sha256=_sha(dig(item, "verdict", "b", "sha256")),
                classification=_text(dig(item, "explanation", "classification")),
                kind=_text(dig(item, "explanation", "kind"), 64),
                differences=[_difference(d) for d in listed],
                differences_total=max(_int(dig(item, "explanation", "differences_total")), len(listed)),
                notes=[_text(n) for n in notes[:MAX_NOTES] if isinstance(n, str)] if isinstance(notes, list) else [],
            )
        )
    return out


def _difference(doc: Mapping[str, object]) -> MemberDifference:
    detail = _text(doc.get("detail"))
    match = _QUOTED.search(detail)
    return MemberDifference(_text(doc.get("path"), 1024), _text(doc.get("status"), 64), detail,
                            match.group() if match else "")  # fmt: skip


def digests(column: str, what: str) -> list[tuple[str, str]]:
    """A JSON column ``{name: sha256}`` as (name, digest) pairs; a digest that is not one shows as ""."""
    try:
        doc = load_json(column or "{}", what, max_bytes=1 << 20)
    except InputError:
        return [("(unreadable)", "")]
    if not isinstance(doc, dict):
        return [("(not an object)", "")]
    return [(_text(name, 512), _sha(value)) for name, value in sorted(doc.items())[:MAX_LISTED]]


def log_page(blobs: BlobStore, digest: str, page: int, size: int = LOG_LINES, chunk: int = LOG_CHUNK) -> LogPage | None:
    """One page of a build log (``size`` lines, numbered from 1); None when ``page`` is past the end.

    The blob is read in chunks: lines are counted (a line ends at ``\\n``, a ``\\r`` before it is dropped)
    and only the lines of the page are kept, each at most ``LOG_LINE_CHARS`` characters, so a request costs
    memory in the size of a page, not of the log. The bytes are still hashed, all of them, and checked against
    the blob's name.

    Raises:
        InputError: the blob is missing, altered or too large.
    """
    if page < 1:
        return None
    reader = _PageReader((page - 1) * size, size)
    path = blobs.path(digest)
    digester = hashlib.sha256()
    try:
        with path.open("rb") as f:
            too_large = InputError(f"log {digest} is larger than {MAX_LOG_BYTES} bytes")
            if os.fstat(f.fileno()).st_size > MAX_LOG_BYTES:
                raise too_large
            read = 0
            while data := f.read(chunk):
                read += len(data)
                if read > MAX_LOG_BYTES:  # it grew while read
                    raise too_large
                digester.update(data)
                reader.feed(data)
    except FileNotFoundError as e:
        raise InputError(f"blob {digest} is missing from {blobs.root}") from e
    except OSError as e:
        raise InputError(f"blob {digest} in {blobs.root} cannot be read: {e.strerror}") from e
    if digester.hexdigest() != digest:
        raise InputError(f"blob {digest} in {blobs.root} is not what its name says (altered?)")
    total = reader.finish()
    pages = max(1, -(-total // size))
    if page > pages:
        return None
    return LogPage(reader.shown, page, pages, total)


class _PageReader:
    """Counts the lines of a stream of chunks and keeps those numbered ``first`` to ``first + size - 1``
    (from 0), each cut at ``_LOG_LINE_BYTES``: a line of a page is never longer than that in memory."""

    def __init__(self, first: int, size: int) -> None:
        self.first, self.end = first, first + size
        self.done = 0  # lines ended by a newline so far
        self.head = bytearray()  # the kept start of the current line, when it is on the page
        self.length = 0  # bytes of the current line so far
        self.shown: list[tuple[int, str]] = []

    def feed(self, chunk: bytes) -> None:
        ends = chunk.count(b"\n")
        if not self.first <= self.done + ends or self.done >= self.end:  # no line of this chunk is on the page
            self.done += ends
            self.length = len(chunk) - 1 - chunk.rfind(b"\n") if ends else self.length + len(chunk)
            return
        pieces = chunk.split(b"\n")  # at most LOG_CHUNK + 1 pieces, most of them shared empty bytes
        for i, piece in enumerate(pieces):
            if self.first <= self.done < self.end and len(self.head) < _LOG_LINE_BYTES:
                self.head += piece[: _LOG_LINE_BYTES - len(self.head)]
            self.length += len(piece)
            if i < ends:
                self._end_line()

    def _end_line(self) -> None:
        if self.first <= self.done < self.end:
            if self.length <= len(self.head) and self.head.endswith(b"\r"):  # CRLF: the CR belongs to the end
                del self.head[-1]
                self.length -= 1
            self.shown.append((self.done + 1, _log_line(bytes(self.head), self.length)))
        self.done += 1
        self.head.clear()
        self.length = 0

    def finish(self) -> int:
        """The number of lines: a last line without a newline counts when it holds anything."""
        if self.length:
            self._end_line()
        return self.done


def _log_line(head: bytes, length: int) -> str:
    """``head``: the first bytes of a line of ``length`` bytes."""
    line = head.decode("utf-8", "replace")
    if len(line) > LOG_LINE_CHARS or length > len(head):
        line = line[:LOG_LINE_CHARS]
        line += f"... (the line has {length} bytes; the first {LOG_LINE_CHARS} characters are shown)"
    return escape_log_text(line)


def escape_log_text(line: str) -> str:
    """Control, bidi and invisible characters as ``\\xNN`` / ``\\uNNNN``: a log line shows what it holds."""
    return _LOG_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else
                           f"\\u{ord(m.group()):04x}", line)  # fmt: skip
