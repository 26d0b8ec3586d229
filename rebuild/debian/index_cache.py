"""The parsed archive indices, kept between runs: a warm ``deb:`` resolve neither decompresses nor scans them.

An entry is keyed by the sha256 of the ``InRelease`` whose signature was
checked, the index's path and the sha256 InRelease lists for it, the
fields kept and the table's format. A changed archive has a new InRelease,
so a new key: it is never served from an older entry.

The cache directory is shared and writable by whoever shares it, so an
entry is read as untrusted bytes: it must be a regular file (not a symlink,
not a device) under a size limit, begin with our header, name the key it
was written for and the sha256 and length of the table that follows, and
the table must have our schema with rows of our types (``Table.load``).
Anything else is refused, the index is parsed again and the entry is
rewritten. Entries are written to a private temporary file and renamed
into place, so a reader never sees half of one. Like the blob cache, it
does not defend against someone who can write the directory and forges a
consistent entry: such a person could equally replace the cached index.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rebuild.debian.index import FORMAT, CorruptTable, Table

MAGIC = b"rebuild-verifier debian index table\n"
MAX_ENTRY_BYTES = 256 << 20  # bookworm's two indices make entries of about 10 and 25 MB
_HEADER = re.compile(rb"key sha256:([0-9a-f]{64})\ntable sha256:([0-9a-f]{64}) ([0-9]{1,12})\n")
_HEADER_MAX = 200


def cache_key(release_sha256: str, name: str, index_sha256: str, fields: Iterable[str]) -> str:
    """What the parsed form of one index depends on, and nothing else."""
    return "\n".join(
        [
            f"table format {FORMAT}",
            f"InRelease sha256:{release_sha256}",
            f"index {name} sha256:{index_sha256}",
            "fields " + " ".join(fields),
        ]
    )


@dataclass
class IndexCacheStats:
    """What happened to each index this run: read from the cache, parsed, refused (and why), stored."""

    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)


class IndexCache:
    """Entries under ``root``, one file per key, named by the key's sha256."""

    def __init__(self, root: Path, max_bytes: int = MAX_ENTRY_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.stats = IndexCacheStats()

    def path(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    def load(self, key: str, what: str) -> Table | None:
        """The table stored under ``key``, or None when there is none or it is not one we can trust."""
        try:
            data = self._read(self.path(key))
        except FileNotFoundError:
            self.stats.misses.append(what)
            return None
        except (OSError, CorruptTable) as e:
            self.stats.refused.append(f"{what}: {e}")
            return None
        try:
            table = Table.load(self._unwrap(data, key))
        except CorruptTable as e:
            self.stats.refused.append(f"{what}: {e}")
            return None
        self.stats.hits.append(what)
        return table

    def store(self, key: str, table: Table, what: str) -> None:
        """Keep the table under ``key``. A cache that cannot be written costs time, never the run."""
        body = table.dump()
        entry = MAGIC + self._header(key, body) + body
        if len(entry) > self.max_bytes:
            self.stats.refused.append(f"{what}: {len(entry)} bytes is over the limit of {self.max_bytes}; not stored")
            return
        staged = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            staged = Path(name)
            with os.fdopen(fd, "wb") as f:
                f.write(entry)
            os.chmod(staged, 0o644)
            os.replace(staged, self.path(key))
            staged = None
        except OSError as e:
            self.stats.refused.append(f"{what}: not stored ({e.strerror or e})")
            return
        finally:
            if staged is not None:
                with contextlib.suppress(OSError):
                    staged.unlink()
        self.stats.stored.append(what)

    @staticmethod
    def _header(key: str, body: bytes) -> bytes:
        key_sha = hashlib.sha256(key.encode()).hexdigest()
        return f"key sha256:{key_sha}\ntable sha256:{hashlib.sha256(body).hexdigest()} {len(body)}\n".encode()

    def _read(self, path: Path) -> bytes:
        """The entry's bytes: a regular file, never through a symlink, never more than ``max_bytes``."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a fifo cannot block
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise CorruptTable("not a regular file")
            if info.st_size > self.max_bytes:
                raise CorruptTable(f"{info.st_size} bytes is over the limit of {self.max_bytes}")
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(self.max_bytes + 1)  # the file may have grown since fstat
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:
            raise CorruptTable(f"over the limit of {self.max_bytes} bytes")
        return data

    @staticmethod
    def _unwrap(data: bytes, key: str) -> bytes:
        """The table's bytes, once the header has said they are the whole table written for this key."""
        if not data.startswith(MAGIC):
            raise CorruptTable("no table header")
        header = _HEADER.match(data, len(MAGIC), len(MAGIC) + _HEADER_MAX)
        if header is None:
            raise CorruptTable("a malformed table header")
        key_sha, table_sha, length = header.group(1).decode(), header.group(2).decode(), int(header.group(3))
        if key_sha != hashlib.sha256(key.encode()).hexdigest():
            raise CorruptTable("written for another key")
        body = data[header.end() :]
        if len(body) != length:
            raise CorruptTable(f"{len(body)} bytes of table where the header says {length} (truncated?)")
        if hashlib.sha256(body).hexdigest() != table_sha:
            raise CorruptTable("the table's sha256 is not the one its header records")
        return body
