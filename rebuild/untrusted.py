"""Reading and showing documents written by someone else: the two functions every boundary uses.

``load_json`` parses a document strictly enough that two readers cannot see
two different documents in the same bytes (duplicate keys are refused, not
read last-wins), and boundedly (depth, size and integer length are capped,
so a hostile file is a ``InputError``, never a ``RecursionError`` or a
``ValueError`` from deep inside the standard library).

``printable`` is the one escaping function for untrusted text on its way to
a terminal or a log: lone surrogates (which cannot be encoded, and crashed
the CLI) and control characters (which can move the cursor or rewrite what a
person reads) are replaced by visible escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from rebuild.errors import InputError

MAX_DEPTH = 64  # SLSA, in-toto and Sigstore documents nest about 8 deep
MAX_DOCUMENT_BYTES = 64 << 20
MAX_INTEGER_DIGITS = 40  # an epoch, a size, a log index: all far shorter

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


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


def _depth(doc: Any) -> int:
    deepest, stack = 0, [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def load_json(data: str | bytes, what: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse one JSON document from an untrusted source.

    Raises:
        InputError: not JSON, too large, nested deeper than ``MAX_DEPTH``,
            an over-long integer, NaN/Infinity, or a key twice in one object.
    """
    if len(data) > max_bytes:
        raise InputError(f"{what} is larger than {max_bytes} bytes")
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
    if _depth(doc) > MAX_DEPTH:
        raise InputError(f"{what} is nested too deeply (at most {MAX_DEPTH} levels)")
    return doc


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, limit: int = 4096) -> str:
    """``value`` as text that is safe to show: no control characters, no lone surrogates, bounded length."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit} more characters)"
    return _UNSAFE.sub(_escape, text)


def json_field(doc: Any, path: str, kind: type | tuple[type, ...], what: str, error: Callable[[str], Exception]) -> Any:
    """``doc[a][b]...`` for a dotted path, checked for ``kind``; ``error(message)`` names the missing field."""
    current = doc
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            raise error(f"{what} is missing field {path!r}")
        current = current[part]
    if not isinstance(current, kind) or (kind is int and isinstance(current, bool)):
        raise error(f"{what} field {path!r} has the wrong type ({type(current).__name__})")
    return current
