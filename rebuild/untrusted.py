"""Reading and showing documents written by someone else: the functions every boundary uses.

``load_json`` parses a document strictly enough that two readers cannot see
two different documents in the same bytes (duplicate keys are refused, not
read last-wins), and boundedly (depth, size and integer length are capped,
so a hostile file is a ``InputError``, never a ``RecursionError`` or a
``ValueError`` from deep inside the standard library).

Values are then read out of the parsed document with ``dig`` and
``dig_str`` (tolerant: a missing or mistyped field is ``None`` or "", for
what is optional or only shown) or ``require`` (strict: the project's own
error naming the field, for what a rebuild cannot do without). Nothing
indexes into untrusted JSON directly. ``parse_rfc3339`` is the one reader of
a date-time in a document.

``printable`` is the one escaping function for untrusted text on its way to
a terminal or a log: lone surrogates (which cannot be encoded, and crashed
the CLI) and control characters (which can move the cursor or rewrite what a
person reads) are replaced by visible escapes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from rebuild.errors import InputError

T = TypeVar("T")

MAX_DEPTH = 64  # SLSA, in-toto and Sigstore documents nest about 8 deep
MAX_DOCUMENT_BYTES = 64 << 20
# Objects and arrays in one document, counted before parsing (each costs ~100 bytes of memory per byte of
# input: 64 MiB of "[{},{},...]" would take gigabytes). Real provenance and bundles hold a few thousand.
MAX_CONTAINERS = 200_000
MAX_INTEGER_DIGITS = 40  # an epoch, a size, a log index: all far shorter

_SURROGATE = re.compile(r"[\ud800-\udfff]")
# control characters (newline and tab too: one value never forges a second line), bidi and other invisible
# format characters, lone surrogates
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)


class _Refused(ValueError):
    """Raised inside the decoder's hooks; turned into an InputError by ``load_json``."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise _Refused(f"duplicate key {printable(key)!r} in one object")
        doc[key] = value
    return doc


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def _problem(doc: Any) -> str:
    """Why a parsed document is not bounded Unicode text and finite numbers, or ""."""
    stack = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            if level > MAX_DEPTH:
                return f"nested too deeply (at most {MAX_DEPTH} levels)"
            stack.extend((key, level) for key in node if isinstance(node, dict))
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
        elif isinstance(node, str) and _SURROGATE.search(node):
            return f"malformed: a string that is not Unicode text (a lone surrogate): {printable(repr(node), 120)}"
        elif isinstance(node, float) and not math.isfinite(node):
            return "malformed: a number too large for a double"
    return ""


def load_json(data: str | bytes, what: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse one JSON document from an untrusted source.

    Bytes must be UTF-8 (``json.loads`` would also guess UTF-16/32), and no
    string may hold a lone surrogate from a ``\\ud800`` escape: such text
    cannot be encoded, compared or shown reliably (I-JSON, RFC 7493).

    Raises:
        InputError: not UTF-8 JSON, too large, nested deeper than ``MAX_DEPTH``,
            an over-long integer, a non-finite number, NaN/Infinity, a lone
            surrogate, or a key twice in one object.
    """
    if len(data) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{what} is not UTF-8 text (byte {e.start})") from None
    if data.count("{") + data.count("[") > MAX_CONTAINERS:  # counts brackets in strings too: conservative
        raise InputError(f"{what} holds more than {MAX_CONTAINERS} objects and arrays")
    try:
        doc = json.loads(data, object_pairs_hook=_pairs, parse_int=_integer, parse_constant=_constant)
    except _Refused as e:
        raise InputError(f"{what} is malformed: {e}") from None
    except RecursionError:
        raise InputError(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{what} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{what} is not valid JSON: {printable(e)}") from None
    problem = _problem(doc)
    if problem:
        raise InputError(f"{what} is {problem}")
    return doc


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9._+~=-]+")


def path_component(value: str, limit: int = 200) -> str:
    """One safe file name made from a name that came from outside: no separator, never ``.``/``..`` or hidden,
    never read as an option. Everything a run writes under a name from a document goes through this."""
    cleaned = _PATH_UNSAFE.sub("_", value).strip("_").lstrip(".-")[:limit]
    return cleaned or "_"


def printable(value: object, limit: int = 4096) -> str:
    """``value`` as text that is safe to show: no control characters, no lone surrogates, bounded length."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return _UNSAFE.sub(_escape, text)


def dig(doc: object, *path: str, default: object = None) -> object:
    """``doc[a][b]...`` through JSON objects, or ``default`` where a key is missing or a step is not an object.

    Tolerant, for what is optional or only shown; a JSON ``null`` is a value (``None``), told apart from a
    missing field only by a ``default`` of the caller's own.
    """
    current = doc
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return current


def dig_str(doc: object, *path: str) -> str:
    """The text at ``doc[a][b]...``, or "" when it is missing or not text."""
    value = dig(doc, *path)
    return value if isinstance(value, str) else ""


def require(doc: object, path: str, kind: type[T], what: str, error: Callable[[str], Exception]) -> T:
    """``doc[a][b]...`` for a dotted ``path``, of type ``kind`` (a bool is not an int).

    Strict, for what cannot be done without: ``what`` names the document in the message.

    Raises:
        ``error(message)``: the field is missing, or is not a ``kind``; the message names the field.
    """
    current: object = doc
    for key in path.split("."):
        if not isinstance(current, Mapping) or key not in current:
            raise error(f"{what} is missing field {path!r}")
        current = current[key]
    if not isinstance(current, kind) or (kind is int and isinstance(current, bool)):
        raise error(f"{what} field {path!r} has the wrong type ({type(current).__name__})")
    return current


def parse_rfc3339(text: str) -> datetime | None:
    """An RFC 3339 date-time, in UTC, or None: how every time in a document is read.

    The offset is required (``Z`` or ``+hh:mm``): VSA's ``timeVerified`` must
    have one, PyPI's upload times (PEP 700) end in ``Z``, and a time without
    one is local to no one knows where (and could not be compared with an
    aware one). Stricter than ``datetime.fromisoformat``, which also takes a
    date without a time, a time without an offset and week dates. A fraction
    is cut to microseconds.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(0)
        if sign is not None:
            if int(off_h) > 23 or int(off_m) > 59:
                return None
            offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            59 if second == "60" else int(second),  # a leap second counts as :59
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
