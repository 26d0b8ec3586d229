"""The fetch stage: the only one that touches the network, and only for URIs in the plan.

Every byte is checked against the plan's sha256 before use, then kept in the
content-addressed cache, so a second run fetches nothing.
"""

from __future__ import annotations

import os
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from rebuild.errors import FetchError
from rebuild.fetch.cache import BlobCache

USER_AGENT = "rebuild-verifier (+https://rebuild-verifier.dev)"
DEFAULT_MAX_BYTES = 2 << 30
CHUNK = 1 << 20


@dataclass
class FetchStats:
    fetched: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)


class Fetcher:
    """Brings inputs by URI: http(s), file://, or a path relative to ``base_dir``."""

    def __init__(
        self,
        cache: BlobCache,
        base_dir: Path | None = None,
        timeout_s: float = 120.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.cache = cache
        self.base_dir = base_dir
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes  # no input is larger: a hostile URI cannot fill the disk
        self.stats = FetchStats()

    def fetch(self, uri: str, sha256: str, what: str) -> Path:
        """The cached path of the input's bytes, checked against ``sha256``.

        Raises:
            FetchError: it cannot be read or downloaded (exit 3).
            DigestMismatchError: the bytes are not the ones the plan names (exit 1).
        """
        if self.cache.has(sha256):
            self.stats.cached.append(what)
            return self.cache.path(sha256)
        with self.cache.staging() as staged:
            parsed = urlparse(uri)
            if parsed.scheme in ("http", "https"):
                self._download(uri, staged, what)
            elif parsed.scheme in ("", "file"):
                self._copy(self._local_path(uri), staged, what)
            else:
                raise FetchError(f"{what}: cannot fetch {uri!r} (scheme {parsed.scheme!r} is not supported)")
            path = self.cache.commit(staged, sha256, what)
        self.stats.fetched.append(what)
        return path

    def download(self, uri: str, dest: Path, what: str) -> None:
        """Bring a file whose digest is not known in advance (a signed index): the caller checks it."""
        if urlparse(uri).scheme in ("http", "https"):
            self._download(uri, dest, what)
        else:
            self._copy(self._local_path(uri), dest, what)

    def _local_path(self, uri: str) -> Path:
        """A file:// URL, or a relative name contained in the directory of the document that names it."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return Path(unquote(parsed.path))
        path = Path(uri)
        if path.is_absolute() or ".." in path.parts:
            raise FetchError(f"{uri!r} is neither a URL nor a file name inside the provenance's directory")
        if self.base_dir is None:
            return path
        base = self.base_dir.resolve()
        resolved = (base / path).resolve()
        if not resolved.is_relative_to(base):
            raise FetchError(f"{uri!r} leads outside the provenance's directory {base} (through a symlink)")
        return resolved

    def _copy(self, path: Path, staged: Path, what: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a fifo must not block the open
            with os.fdopen(fd, "rb") as src:
                if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
                    raise FetchError(f"{what}: {path} is not a regular file (a device, fifo or directory)")
                os.set_blocking(fd, True)
                with open(staged, "wb") as dst:
                    self._bounded_copy(src, dst, what)
        except OSError as e:
            raise FetchError(f"{what}: cannot read {path}: {e.strerror}") from e

    def _bounded_copy(self, src: BinaryIO, dst: BinaryIO, what: str) -> None:
        copied = 0
        while chunk := src.read(CHUNK):
            copied += len(chunk)
            if copied > self.max_bytes:
                raise FetchError(
                    f"{what} is larger than the limit of {self.max_bytes} bytes; not fetched",
                    "raise --max-input-bytes if the input is really that large",
                )
            dst.write(chunk)

    def _download(self, uri: str, staged: Path, what: str) -> None:
        request = urllib.request.Request(uri, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response, open(staged, "wb") as dst:
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError(
                        f"{what}: {uri} is {declared} bytes, more than the limit of {self.max_bytes}",
                        "raise --max-input-bytes if the input is really that large",
                    )
                self._bounded_copy(response, dst, what)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", None) or e
            raise FetchError(
                f"{what}: download of {uri} failed: {reason}",
                "check the network, or that the URL still serves the file",
            ) from e
