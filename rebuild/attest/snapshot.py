"""A published tree's signed ``snapshot.json``: what it says, and when it may no longer be believed.

``rebuild publish`` writes it (``rebuild.service.publish``); ``attestation verify --from-feed`` and
``verify_snapshot`` read it. Its signature makes the listing authentic, but an authentic listing can be old: a
mirror that keeps serving last week's snapshot (a bundle saying PASSED) hides a FAILED published since. So
every snapshot carries

- ``version``: an integer that grows by one each time the tree is published, so that a reader who remembers
  the highest version it saw from a key can refuse an older one (a rollback, or a replay);
- ``published`` and ``expires``: after ``expires`` the snapshot is refused, so a replayed or frozen snapshot is
  believed for at most its validity period (``publish --valid-for``, default 7 days). A rebuilder therefore
  publishes again on a schedule, shorter than that period.

A snapshot without ``expires`` or ``version`` is refused ("no expiry"): there is no older format to accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from rebuild.errors import InputError, VerificationError
from rebuild.untrusted import dig, load_json, parse_rfc3339, printable

SNAPSHOT_TYPE = "application/vnd.rebuild-verifier.snapshot+json"
SNAPSHOT_V1 = "https://rebuild-verifier.dev/snapshot/v1"
MAX_VERSION = 2**53 - 1  # an integer every JSON reader holds exactly
DEFAULT_VALID_FOR = timedelta(days=7)
MIN_VALID_FOR = timedelta(minutes=1)
MAX_VALID_FOR = timedelta(days=366)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DURATION = re.compile(r"([0-9]{1,6})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"[A-Za-z0-9_+~=][A-Za-z0-9._+~=-]{0,199}")  # what untrusted.path_component makes


@dataclass(frozen=True)
class Snapshot:
    version: int
    published: datetime
    expires: datetime
    files: dict[str, str]  # relative path -> sha256 hex (checked by the reader of each file)


def safe_path(value: object, what: str) -> str:
    """A relative path from a tree's listing, fit to join onto the tree: safe components, no ``..``.

    Raises:
        InputError: anything else, named.
    """
    if not isinstance(value, str) or len(value) > 1000:
        raise InputError(f"{what}: path {printable(repr(value), 200)} is not a string of at most 1000 characters")
    parts = value.split("/")
    if len(parts) > 8 or not all(_PART.fullmatch(p) for p in parts):
        raise InputError(f"{what}: path {printable(repr(value), 200)} is not a safe relative path in the tree")
    return value


def parse_duration(text: str, what: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d`` (or a number of seconds): an option's span of time.

    Raises:
        InputError: anything else, or zero.
    """
    m = _DURATION.fullmatch(text.strip())
    if m is None or int(m.group(1)) == 0:
        raise InputError(f"{what} {printable(text, 100)!r} is not a duration like 90s, 30m, 12h or 7d")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_validity(text: str) -> timedelta:
    """``publish --valid-for``: a duration from ``MIN_VALID_FOR`` to ``MAX_VALID_FOR``.

    Raises:
        InputError: not a duration, or out of bounds.
    """
    span = parse_duration(text, "--valid-for")
    _check_validity(span)
    return span


def _check_validity(span: timedelta) -> None:
    if not MIN_VALID_FOR <= span <= MAX_VALID_FOR:
        raise InputError(f"a snapshot's validity period must be from 1 minute to {MAX_VALID_FOR.days} days, "
                         f"not {span}")  # fmt: skip


def snapshot_payload(files: dict[str, str], keyid: str, version: int, published: datetime,
                     valid_for: timedelta) -> dict[str, object]:  # fmt: skip
    """The document ``publish`` signs (strict: what it writes is what ``parse_snapshot`` reads).

    Raises:
        InputError: a validity period out of bounds, or a version that is not a positive integer.
    """
    _check_validity(valid_for)
    if not 1 <= version <= MAX_VERSION:
        raise InputError(f"snapshot version {version} is out of range")
    return {"_type": SNAPSHOT_V1, "version": version, "published": _iso(published),
            "expires": _iso(published + valid_for), "keyid": keyid, "files": dict(sorted(files.items()))}  # fmt: skip


def parse_snapshot(payload: bytes, what: str, now: datetime, max_age: timedelta | None = None) -> Snapshot:
    """A verified snapshot payload, refused when it has expired (or is older than ``max_age``).

    ``payload`` must be the bytes whose signature verified; nothing here checks a signature.

    Raises:
        VerificationError: expired, no expiry, older than ``max_age``, or a version, a time or the file list
            that is malformed (each named).
    """
    try:
        doc = load_json(payload, f"{what}'s payload")
    except InputError as e:
        raise VerificationError(e.message) from None
    expires_text, published_text = dig(doc, "expires"), dig(doc, "published")
    if expires_text is None:  # as every snapshot written before they expired
        raise VerificationError(f"{what} has no expiry ('expires'): refused, it could be replayed for ever",
                                "publish the tree again with this version of rebuild")  # fmt: skip
    version = dig(doc, "version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise VerificationError(f"{what} has no version (a positive integer): {printable(repr(version), 60)}",
                                "publish the tree again with this version of rebuild")  # fmt: skip
    expires = parse_rfc3339(expires_text) if isinstance(expires_text, str) else None
    published = parse_rfc3339(published_text) if isinstance(published_text, str) else None
    if expires is None or published is None or expires <= published:
        raise VerificationError(f"{what}: published {printable(repr(published_text), 60)} and expires "
                                f"{printable(repr(expires_text), 60)} are not two RFC 3339 times in order")  # fmt: skip
    if now >= expires:
        raise VerificationError(f"{what}: snapshot expired at {_iso(expires)} (now {_iso(now)}; version {version})",
                                "the rebuilder publishes again on a schedule; a mirror serving this is stale "
                                "or replaying an old snapshot")  # fmt: skip
    if max_age is not None and now - published > max_age:
        raise VerificationError(f"{what}: snapshot published at {_iso(published)} is older than --max-snapshot-age "
                                f"({max_age})")  # fmt: skip
    files = dig(doc, "files")
    if not isinstance(files, dict) or not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in files.values()):
        raise VerificationError(f"{what}'s payload has no 'files' object of sha256 digests")
    return Snapshot(version, published, expires, files)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
