"""The Python package index client: the simple API (PEP 691 JSON or PEP 503 HTML), bounded and strict."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from rebuild.errors import FetchError, InputError
from rebuild.fetch.fetcher import USER_AGENT
from rebuild.untrusted import dig, dig_str, load_json, parse_rfc3339

MAX_INDEX_PAGE = 64 << 20  # the largest simple-index pages (thousands of files) are a few MiB

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str
    upload_time: datetime | None
    yanked: bool

    @property
    def version(self) -> Version | None:
        try:
            if self.filename.endswith(".whl"):
                return parse_wheel_filename(self.filename)[1]
            return parse_sdist_filename(self.filename)[1]
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            return None

    @property
    def is_sdist(self) -> bool:
        return self.filename.endswith((".tar.gz", ".zip"))

    @property
    def is_pure_wheel(self) -> bool:
        return self.filename.endswith("-none-any.whl")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


class SimpleIndex:
    """A PEP 503 / PEP 691 simple index (https://, http:// or file://)."""

    def __init__(self, url: str, timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/") + "/"
        self.timeout_s = timeout_s
        self._pages: dict[str, list[IndexFile]] = {}  # one read per project and run

    def project_url(self, name: str) -> str:
        return urljoin(self.url, canonicalize_name(name) + "/")

    def files(self, name: str) -> list[IndexFile]:
        """Raises: InputError: no such project (exit 2); FetchError: the index cannot be read (exit 3)."""
        url = self.project_url(name)
        if url not in self._pages:
            body, content_type, final_url = self._get(url, name)
            json_page = content_type.startswith(SIMPLE_JSON) or content_type.startswith("application/json")
            self._pages[url] = self._from_json(body, final_url) if json_page else self._from_html(body, final_url)
        return self._pages[url]

    def _get(self, url: str, name: str) -> tuple[bytes, str, str]:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
            path = path / "index.html" if path.is_dir() else path
            try:
                with open(path, "rb") as f:
                    body = f.read(MAX_INDEX_PAGE + 1)
                if len(body) > MAX_INDEX_PAGE:
                    raise FetchError(f"the index page of {name} is larger than {MAX_INDEX_PAGE} bytes")
                return body, "text/html", url
            except OSError as e:
                raise InputError(f"no project {name!r} on the index {self.url}", f"{path}: {e.strerror}") from e
        request = urllib.request.Request(
            url, headers={"User-Agent": USER_AGENT, "Accept": f"{SIMPLE_JSON}, text/html;q=0.1"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(MAX_INDEX_PAGE + 1)
                if len(body) > MAX_INDEX_PAGE:
                    raise FetchError(f"the index page of {name} is larger than {MAX_INDEX_PAGE} bytes")
                return body, response.headers.get("Content-Type", ""), response.geturl()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise InputError(f"no project {name!r} on the index {self.url}", "check the name") from e
            raise FetchError(f"the index {self.url} answered HTTP {e.code} for {name}") from e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise FetchError(f"cannot reach the index {self.url}: {getattr(e, 'reason', e)}") from e

    @staticmethod
    def _from_json(body: bytes, base: str) -> list[IndexFile]:
        try:
            doc = load_json(body, f"the index's JSON page {base}")
        except InputError as e:
            raise FetchError(e.message) from e
        files = []
        items = dig(doc, "files")
        for item in items if isinstance(items, list) else []:
            url = dig_str(item, "url")
            if not url:
                continue
            files.append(
                IndexFile(
                    dig_str(item, "filename"),
                    urljoin(base, url),
                    dig_str(item, "hashes", "sha256"),
                    parse_rfc3339(dig_str(item, "upload-time")),
                    bool(dig(item, "yanked")),
                )
            )
        return files

    @staticmethod
    def _from_html(body: bytes, base: str) -> list[IndexFile]:
        parser = _Links()
        parser.feed(body.decode("utf-8", "replace"))
        files = []
        for attrs in parser.links:
            href = attrs.get("href")
            if not href:
                continue
            url, fragment = urldefrag(urljoin(base, href))
            algo, _, value = fragment.partition("=")
            files.append(
                IndexFile(
                    unquote(url.rsplit("/", 1)[-1]),
                    url,
                    value if algo == "sha256" else "",
                    parse_rfc3339(attrs.get("data-upload-time") or ""),
                    "data-yanked" in attrs,
                )
            )
        return files
