"""Rollback protection for feeds: the highest snapshot version seen from each publisher key.

As TUF's client keeps its trusted metadata, ``attestation verify --from-feed`` keeps, in a small JSON file
under the cache directory (``feeds/snapshot-versions.json``; ``--feed-state FILE`` elsewhere), the highest
``version`` of a verified snapshot it read from each trusted key. A snapshot with a lower version from that key
is refused: a mirror that replays last week's tree, still within its validity period, is caught once this
machine has read a newer one. One key publishes one tree (``docs/feeds.md``).

The file is this machine's own, but it is read as hostile as any document: a file that does not parse, is
too large, a symbolic link or not a regular file, or holds a key or a version of the wrong form is refused
with a clear error naming it (``InputError``, exit 2), never a traceback, and never silently reset (that
would switch the protection off). It is written whole to a temporary file, then renamed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rebuild.attest.snapshot import MAX_VERSION
from rebuild.errors import EnvironmentFailure, InputError
from rebuild.untrusted import dig, load_json, printable

STATE_TYPE = "https://rebuild-verifier.dev/feed-state/v1"
MAX_STATE = 1 << 20
MAX_KEYS = 10_000
_KEYID = re.compile(r"[0-9A-Za-z._:-]{1,200}")
_HINT = "remove the file to start again (rollback protection then restarts from the snapshots read next)"


@dataclass(frozen=True)
class FeedState:
    path: Path
    versions: Mapping[str, int]  # publisher key id -> highest snapshot version seen

    def seen(self, keyid: str) -> int:
        return self.versions.get(keyid, 0)


def default_state_path() -> Path:
    from rebuild.fetch.cache import default_cache_dir

    return default_cache_dir() / "feeds" / "snapshot-versions.json"


def load_state(path: Path) -> FeedState:
    """The versions seen so far; an absent file is a first run (nothing seen).

    Raises:
        InputError: the file is not a state file this tool wrote (named, with what to do).
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return FeedState(path, {})
    except OSError as e:
        raise InputError(f"feed state {path} cannot be read: {e.strerror or e}", _HINT) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"feed state {path} is not a regular file (a symbolic link, a directory, a fifo?)", _HINT)
    if info.st_size > MAX_STATE:
        raise InputError(f"feed state {path} is larger than {MAX_STATE} bytes", _HINT)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_STATE + 1)
    except OSError as e:
        raise InputError(f"feed state {path} cannot be read: {e.strerror or e}", _HINT) from None
    try:
        doc = load_json(data, f"feed state {path}", max_bytes=MAX_STATE)
    except InputError as e:
        raise InputError(e.message, _HINT) from None
    versions = dig(doc, "versions")
    if dig(doc, "_type") != STATE_TYPE or not isinstance(versions, dict) or len(versions) > MAX_KEYS:
        raise InputError(f"feed state {path} is not a feed state file (_type {STATE_TYPE}, a 'versions' object)",
                         _HINT)  # fmt: skip
    for keyid, version in versions.items():
        if not _KEYID.fullmatch(keyid) or not isinstance(version, int) or isinstance(version, bool) \
                or not 0 <= version <= MAX_VERSION:  # fmt: skip
            shown = f"{printable(repr(keyid), 80)}: {printable(repr(version), 40)}"
            raise InputError(f"feed state {path}: entry {shown} is not a key id and a snapshot version", _HINT)
    return FeedState(path, dict(versions))


def save_state(state: FeedState, seen: Mapping[str, int]) -> FeedState:
    """Remember the higher of what was known and what was ``seen`` now; nothing is ever lowered.

    Raises:
        EnvironmentFailure: the file cannot be written (named).
    """
    merged = dict(state.versions)
    for keyid, version in seen.items():
        if _KEYID.fullmatch(keyid) and 0 <= version <= MAX_VERSION:
            merged[keyid] = max(merged.get(keyid, 0), version)
    if merged == state.versions:
        return state
    data = (json.dumps({"_type": STATE_TYPE, "versions": dict(sorted(merged.items()))}, indent=2) + "\n").encode()
    tmp = state.path.with_name(f".{state.path.name}.{os.getpid()}.partial")
    try:
        state.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, state.path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EnvironmentFailure(f"feed state {state.path} cannot be written: {e.strerror or e}") from None
    return FeedState(state.path, merged)
