"""Package URLs, strictly: ``pkg:pypi/NAME@VERSION`` and ``pkg:deb/debian/NAME@VERSION``, nothing else.

The purl specification's rules, applied before anything is looked up: the scheme is ``pkg`` and the type
is lower case; each segment is percent-decoded once, after splitting on ``/`` and ``@`` (so an encoded
``%2F`` is a character of the name, and is then refused); a PyPI name is normalized as PEP 503 says
(lower case, runs of ``-_.`` become ``-``). Qualifiers (``?``) and subpaths (``#``) change what a purl
names, and this service keys releases by ecosystem, name and version only, so they are refused rather
than ignored. Decoded segments must be printable, without ``/``, NUL or a ``..`` path step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from rebuild.errors import InputError

MAX_PURL = 512
_PYPI_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?")
_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,199}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!~:_-]{0,127}")
_ENCODED = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ECOSYSTEMS = {"pypi": "pypi", "deb": "debian"}


@dataclass(frozen=True)
class Purl:
    type: str  # pypi or deb
    ecosystem: str  # as the store names it: pypi or debian
    name: str
    version: str

    def __str__(self) -> str:
        namespace = "debian/" if self.type == "deb" else ""
        return f"pkg:{self.type}/{namespace}{self.name}@{self.version}"


def _segment(raw: str, what: str, purl: str) -> str:
    if _ENCODED.search(raw):
        raise InputError(f"purl {purl!r}: a '%' in the {what} is not a %XX escape")
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError as e:
        raise InputError(f"purl {purl!r}: the {what} is not UTF-8 once decoded") from e
    if not value or "/" in value or ".." in value or not value.isprintable() or "\x00" in value:
        raise InputError(f"purl {purl!r}: the {what} {value!r} is empty or not a plain name")
    return value


def parse_purl(purl: str) -> Purl:
    """Raises: InputError: not a ``pkg:pypi/NAME@VERSION`` or ``pkg:deb/debian/NAME@VERSION`` purl."""
    if len(purl) > MAX_PURL or not purl.isprintable():
        raise InputError("the purl is too long or holds control characters", f"at most {MAX_PURL} printable characters")
    hint = "give pkg:pypi/NAME@VERSION or pkg:deb/debian/NAME@VERSION"
    scheme, sep, rest = purl.partition(":")
    if scheme.lower() != "pkg" or not sep:
        raise InputError(f"{purl!r} is not a package URL (pkg:...)", hint)
    if "?" in rest or "#" in rest:
        raise InputError(f"purl {purl!r}: qualifiers and subpaths are not supported", hint)
    rest = rest.lstrip("/")  # the spec tolerates "pkg://type/..."
    path, at, raw_version = rest.rpartition("@")
    if not at:
        raise InputError(f"purl {purl!r} names no version", hint)
    kind, _, remainder = path.partition("/")
    kind = kind.lower()
    if kind not in _ECOSYSTEMS:
        raise InputError(f"purl {purl!r}: type {kind!r} is not served here", hint)
    parts = remainder.split("/")
    if kind == "deb":
        if len(parts) != 2 or parts[0].lower() != "debian":
            raise InputError(f"purl {purl!r}: a deb purl is pkg:deb/debian/NAME@VERSION", hint)
        parts = parts[1:]
    if len(parts) != 1:
        raise InputError(f"purl {purl!r}: a {kind} purl has no namespace", hint)
    name = _segment(parts[0], "name", purl)
    version = _segment(raw_version, "version", purl)
    if kind == "pypi":
        if not _PYPI_NAME.fullmatch(name):
            raise InputError(f"purl {purl!r}: {name!r} is not a PyPI project name", hint)
        name = re.sub(r"[-_.]+", "-", name).lower()
    elif not _DEB_NAME.fullmatch(name):
        raise InputError(f"purl {purl!r}: {name!r} is not a Debian source package name", hint)
    if not _VERSION.fullmatch(version):
        raise InputError(f"purl {purl!r}: {version!r} is not a version", hint)
    return Purl(kind, _ECOSYSTEMS[kind], name, version)
