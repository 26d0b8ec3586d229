"""What the pages read out of blobs and JSON columns: all of it hostile, checked field by field, capped.

A compare report, a build log and the digests an attempt recorded were written by a worker from what a
build and an archive produced: a member name, a changed line or a log line can hold anything (markup,
control characters, megabytes). Here they become bounded, printable text; the templates escape it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rebuild.errors import InputError
from rebuild.service.blobs import BlobStore
from rebuild.untrusted import dig, load_json, printable

MAX_REPORT_BYTES = 16 << 20
MAX_LOG_BYTES = 256 << 20
MAX_LISTED = 100  # member differences shown per artifact
MAX_NOTES = 20
LOG_LINES = 500  # lines per log page
LOG_LINE_CHARS = 4000
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


def log_page(blobs: BlobStore, digest: str, page: int, size: int = LOG_LINES) -> LogPage | None:
    """One page of a build log (``size`` lines, numbered from 1); None when ``page`` is past the end.

    Raises:
        InputError: the blob is missing, altered or too large.
    """
    path = blobs.path(digest)
    if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
        raise InputError(f"log {digest} is larger than {MAX_LOG_BYTES} bytes")
    lines = blobs.read_bytes(digest).decode("utf-8", "replace").splitlines()
    pages = max(1, -(-len(lines) // size))
    if page < 1 or page > pages:
        return None
    first = (page - 1) * size
    shown = [(first + i + 1, _log_line(line)) for i, line in enumerate(lines[first : first + size])]
    return LogPage(shown, page, pages, len(lines))


def _log_line(line: str) -> str:
    if len(line) > LOG_LINE_CHARS:
        line = line[:LOG_LINE_CHARS] + f"... ({len(line) - LOG_LINE_CHARS} more characters)"
    return _LOG_UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else
                           f"\\u{ord(m.group()):04x}", line)  # fmt: skip
