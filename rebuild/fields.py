"""The grammar of every value a build plan holds: checked where the plan is made, before any use.

A plan is made from documents written by others (provenance, ``.buildinfo``,
index pages). Its fields are data: each one is checked here by type and
pattern, so that nothing a document says can become a shell command, an
option of a host tool, or a path outside the places the verifier owns. The
plan's dataclasses call these checks in ``__post_init__``: a plan with an
unchecked field cannot exist.

Only a recipe's steps (and the parameters a recipe declares as code, such as
the ``command`` recipe's ``command``) are code; they run only inside the
sandbox, and ``provenance show`` prints them as "will run in the sandbox".
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from rebuild.errors import PlanError
from rebuild.untrusted import printable

UMASK = re.compile(r"^0[0-7]{3}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
GIT_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# one path component: no separators, no leading dot or dash (never read as an option or a hidden file)
COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+~=,@%-]{0,254}$")
SAFE_PATH_CHARS = re.compile(r"^[A-Za-z0-9._+~=,@%/-]+$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # recipe and image names
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+~-]{0,63}$")
SUITE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
VARIANTS = ("minbase", "buildd", "apt", "essential", "required", "important", "standard")
HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+:@=-]*)?$")
# Debian policy 5.6.1 (package names) and 5.6.12 (versions), with an optional :arch and =version
DEBIAN_PACKAGE = re.compile(
    r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=([0-9]+:)?[A-Za-z0-9][A-Za-z0-9.+~-]*(-[A-Za-z0-9.+~]+)?)?$"
)
GIT_URL = re.compile(
    r"^(https?|ssh|git)://([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?(/[A-Za-z0-9._~%+@-]+)*/?$|^file:///[A-Za-z0-9._~%+@/-]*$"
)
GIT_REF = re.compile(r"^[A-Za-z0-9._/+-]{1,255}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # POSIX
# The only variables a plan may add to the build's environment, and their values' grammar. Not DEB_*: dpkg
# turns DEB_CFLAGS_APPEND and friends into compiler options (-wrapper, -fplugin, @file run code).
ENV_EXTRA_ALLOWED = re.compile(r"^(DEB_BUILD_OPTIONS|DEB_BUILD_PROFILES|LANGUAGE)$")
ENV_EXTRA_VALUE = re.compile(r"^[A-Za-z0-9_.,:=+ -]{0,1024}$")
TZ = re.compile(r"^[A-Za-z0-9_+:,./<>-]{1,64}$")
LOCALE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
PARAMETER_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_VALUE = 4096
# Build paths that would shadow what the sandbox mounts, or the system the build runs on.
RESERVED_PATHS = (
    "/out", "/inputs", "/tmp", "/proc", "/sys", "/dev", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec", "/usr/include", "/usr/share", "/var/lib",
    "/root", "/boot", "/run",
)  # fmt: skip


def fail(what: str, value: Any, rule: str) -> PlanError:
    return PlanError(
        f"{what} {printable(repr(value), 200)} is not allowed: {rule}",
        "the document is malformed or hostile; fields are data and are checked before any use",
    )


def check_str(what: str, value: Any, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise fail(what, value, rule)
    return value


def umask(value: Any) -> str:
    return check_str("umask", value, UMASK, "it must be four octal digits starting with 0 (e.g. 0022)")


def sha256(what: str, value: Any) -> str:
    return check_str(what, value, SHA256, "it must be 64 lowercase hex digits")


def git_commit(value: Any) -> str:
    return check_str("git commit", value, GIT_COMMIT, "it must be 40 or 64 lowercase hex digits")


def component(what: str, value: Any) -> str:
    """A single file or directory name: no ``/``, no ``..``, never starting with ``-`` or ``.``."""
    return check_str(what, value, COMPONENT, "it must be one file name of letters, digits and ._+~=,@%-")


def relative_path(what: str, value: Any) -> str:
    """A relative path of safe components (an output name such as ``dist/x.whl``)."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise fail(what, value, "it must be a relative path of at most 1024 characters")
    for part in value.split("/"):
        component(what, part)
    return value


def absolute_path(what: str, value: Any) -> str:
    """An absolute, normalised path of safe characters, outside the places the sandbox and system own."""
    if not isinstance(value, str) or not SAFE_PATH_CHARS.match(value) or len(value) > 1024:
        raise fail(what, value, "it must be an absolute path of letters, digits and ._+~=,@%/-")
    if not value.startswith("/") or posixpath.normpath(value) != value or value == "/" or value.startswith("//"):
        raise fail(what, value, "it must be absolute and normalised (no '..', '.', '//' or trailing '/')")
    for part in value.split("/")[1:]:
        component(what, part)
    for reserved in RESERVED_PATHS:
        if value == reserved or value.startswith(reserved + "/") or reserved.startswith(value + "/"):
            raise fail(what, value, f"it overlaps {reserved}, which the sandbox or the system owns")
    return value


def source_uri(what: str, value: Any) -> str:
    """Where an input comes from: http(s), file://, or a file name beside the document."""
    if not isinstance(value, str) or not value or len(value) > 2048 or not value.isprintable() or " " in value:
        raise fail(what, value, "it must be a URL or file name without spaces or control characters")
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise fail(what, value, "an http(s) URL needs a host")
        return value
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or ".." in parsed.path.split("/"):
            raise fail(what, value, "a file:// URL must be a local absolute path without '..'")
        return value
    if value.startswith("git+"):
        url = value.removeprefix("git+")
        scheme, sep, rest = url.partition("://")
        authority, _, path = rest.partition("/")
        repository, at, ref = path.partition("@")
        git_repository(f"{scheme}{sep}{authority}/{repository}")
        if at and not GIT_REF.match(ref):
            raise fail(what, value, "its ref must be a plain git ref name")
        return value  # fetched by commit id only
    if parsed.scheme:
        raise fail(what, value, "the scheme must be http, https, file or git+")
    relative_path(what, value)  # beside the provenance: contained in its directory
    return value


def git_repository(value: Any) -> str:
    """A git repository URL that git reads as a URL and nothing else (never an option, never ``ext::``)."""
    if not isinstance(value, str) or value.startswith("-") or not GIT_URL.match(value):
        raise fail("git repository", value, "it must be an http(s), ssh, git or file URL of plain characters")
    if ".." in value.split("://", 1)[1].split("/"):
        raise fail("git repository", value, "it must not contain '..'")
    return value


def image_mirror(value: Any) -> str:
    return check_str("image mirror", value, HTTP_URL, "it must be a plain http(s):// URL")


def debian_package(value: Any) -> str:
    return check_str(
        "Debian package", value, DEBIAN_PACKAGE, "it must be a Debian package name, optionally with =version"
    )


def environment_extra(variables: Any) -> dict[str, str]:
    if not isinstance(variables, Mapping):
        raise fail("environment extra", variables, "it must be a map of names to strings")
    for name, value in variables.items():
        check_str("environment variable name", name, ENV_NAME, "it must follow POSIX (letters, digits, _)")
        if not ENV_EXTRA_ALLOWED.match(name):
            raise fail(
                "environment variable", name, "a plan may add only DEB_BUILD_OPTIONS, DEB_BUILD_PROFILES and LANGUAGE"
            )
        if not isinstance(value, str) or not ENV_EXTRA_VALUE.match(value):
            raise fail(f"environment variable {name}", value, "its value must be words of letters, digits and _.,:=+-")
    return dict(variables)


def parameters(values: Any) -> dict[str, str]:
    """Recipe parameter names and values (the recipe checks each value against its own pattern)."""
    if not isinstance(values, Mapping):
        raise fail("recipe parameters", values, "they must be a map of names to strings")
    for name, value in values.items():
        check_str("recipe parameter name", name, PARAMETER_NAME, "it must be lowercase letters, digits and _")
        if not isinstance(value, str) or "\0" in value or len(value) > 64 * 1024:
            raise fail(f"recipe parameter {name}", value, "its value must be text without NUL")
    return dict(values)


def epoch(what: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 40:
        raise fail(what, value, "it must be a non-negative integer (seconds since 1970)")
    return value
