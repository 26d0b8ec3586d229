"""Reading a feed's files over http(s), bounded in every way a hostile server could stretch.

- http and https only: the opener has no ``file:``, ``ftp:`` or ``data:`` handler to reach, by a URL or a
  redirect; at most ``MAX_REDIRECTS`` redirects, never from https down to http.
- A redirect never leads to an internal address (loopback, private, link-local, or any other address that
  is not global) unless the feed's own host is one: a Location naming such an address is refused, and so is
  a connection to another host whose peer address is one (a name that resolves there). Through a proxy
  from the environment only the first check applies (the peer is the proxy).
- Sizes: a ``Content-Length`` above the cap is refused before reading, a body is cut at the cap, and a body
  shorter than its ``Content-Length`` is refused.
- Time: a socket operation waits at most ``timeout_s``, and each request has a wall-clock deadline that covers
  everything (name lookup, connect, TLS, status line, headers, body, redirects): the request runs in a worker
  thread, and when the deadline passes its sockets are shut down and the feed is *unreachable* ("deadline").
  A server trickling one byte at a time cannot hold a reader longer. A feed has a deadline of its own for
  all its files.
- Every failure the standard library can raise on a malformed answer (``http.client.HTTPException``: a bad
  status line, too many headers, a line too long, an incomplete read) is the feed's ``FetchError``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from rebuild.attest.snapshot import safe_path
from rebuild.errors import Error, FetchError, InputError
from rebuild.untrusted import printable

MAX_REDIRECTS = 3
TIMEOUT_S = 20.0  # per socket operation
DEADLINE_S = 120.0  # per request (one file, its redirects included)
FEED_DEADLINE_S = 600.0  # per feed (all its files)
USER_AGENT = "rebuild-verifier feeds"
TRUNCATED_HEADER = "X-Rebuild-Truncated"  # the API's word that it left bundles out (rebuild.web.api)


class NotFound(FetchError):
    """The server answered 404: for an API's search, nothing signed about the digest."""


class Truncated(FetchError):
    """The server said it left something out of its answer."""


@dataclass(frozen=True)
class Limits:
    """How long a reader waits: injectable, so that a test can make a deadline pass in a second."""

    timeout_s: float = TIMEOUT_S
    deadline_s: float = DEADLINE_S
    feed_deadline_s: float = FEED_DEADLINE_S


def internal(host: str) -> bool:
    """An address (or ``localhost``) that is not global: loopback, private, link-local, unspecified, ...; a
    name that is not an address is not known to be internal."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


class _Request:
    """The sockets of one request (duplicates, so that TLS wrapping leaves them usable), to shut when the
    deadline passes; and the address policy each new connection must meet.

    ``private_ok``: may a redirect reach an internal address? Given (a test), or decided by the address the
    connection to the feed's own host reached (a literal address or a name alike, no second lookup), or,
    through a proxy, by the feed's host as written.
    """

    def __init__(self, feed_host: str, private_ok: bool | None, until: float, timeout_s: float) -> None:
        self.feed_host, self.until, self.timeout_s = feed_host.lower(), until, timeout_s
        self.private_ok = internal(feed_host) if private_ok is None and _proxied() else private_ok
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.expired = False

    def connect(self, address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        remaining = max(0.01, min(self.timeout_s, self.until - time.monotonic()))
        sock = socket.create_connection(address, remaining, source_address)
        try:
            peer = str(sock.getpeername()[0])
            if address[0].lower() == self.feed_host:
                if self.private_ok is None:
                    self.private_ok = internal(peer)
            elif not self.private_ok and not _proxied() and internal(peer):
                raise ConnectionRefusedError(f"{printable(address[0], 200)} is the internal address {peer}: "
                                             "refused (a redirect from a feed that is not internal)")  # fmt: skip
            with self.lock:
                if self.expired:
                    raise TimeoutError("deadline")
                self.sockets.append(sock.dup())
        except BaseException:
            sock.close()
            raise
        return sock

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):  # already closed by the worker
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self.lock:
            for sock in self.sockets:
                sock.close()
            self.sockets.clear()


def _proxied() -> bool:
    proxies = urllib.request.getproxies()
    return bool(proxies.get("http") or proxies.get("https"))


def _factory(base: type[http.client.HTTPConnection], request: _Request) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        connection = base(*args, **kwargs)
        connection._create_connection = request.connect  # type: ignore[attr-defined]  # how http.client connects
        return connection

    return make


class _Http(urllib.request.HTTPHandler):
    def __init__(self, request: _Request) -> None:
        super().__init__()
        self.request = request

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(http.client.HTTPConnection, self.request), req)


class _Https(urllib.request.HTTPSHandler):
    def __init__(self, request: _Request) -> None:
        super().__init__()
        self.request = request

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_factory(http.client.HTTPSConnection, self.request), req,
                            context=self._context)  # type: ignore[attr-defined]  # fmt: skip


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, request: _Request) -> None:
        super().__init__()
        self.request = request

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if new.scheme not in ("http", "https") or (old.scheme == "https" and new.scheme == "http"):
            raise FetchError(f"{printable(req.full_url, 300)} redirects to {printable(newurl, 300)}: refused "
                             "(only to http(s), never from https to http)")  # fmt: skip
        host = new.hostname or ""
        if host.lower() != self.request.feed_host and not self.request.private_ok and internal(host):
            raise FetchError(f"{printable(req.full_url, 300)} redirects to {printable(newurl, 300)}: refused "
                             "(an internal address, from a feed that is not internal)")  # fmt: skip
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(request: _Request) -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), _Http(request), _Https(request), _Redirects(request),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):  # fmt: skip
        opener.add_handler(handler)
    return opener


@dataclass(frozen=True)
class HttpSource:
    """A feed's files under ``base`` (ends with "/"); ``private_ok``: may redirects reach internal addresses
    (None: when the feed's own host is internal, see ``_Request``)."""

    base: str
    limits: Limits = Limits()
    private_ok: bool | None = None
    started: float = field(default_factory=time.monotonic)

    def read(self, rel: str, limit: int, query: str = "") -> bytes:
        """Raises: FetchError (unreachable, HTTP error, deadline; ``NotFound`` for 404, ``Truncated`` when the
        server says its answer is cut), InputError (larger than ``limit``)."""
        url = self.base + quote(safe_path(rel, self.base)) + (f"?{query}" if query else "")
        feed_until = self.started + self.limits.feed_deadline_s
        until = min(time.monotonic() + self.limits.deadline_s, feed_until)
        if time.monotonic() >= feed_until:
            raise FetchError(f"{url}: not read, the feed's deadline of {self.limits.feed_deadline_s:g} s has passed")
        request = _Request(urlsplit(self.base).hostname or "", self.private_ok, until, self.limits.timeout_s)
        outcome: list[bytes | BaseException] = []
        worker = threading.Thread(target=lambda: outcome.append(_attempt(request, url, limit)), daemon=True,
                                  name="feed-read")  # fmt: skip
        worker.start()
        worker.join(max(0.0, until - time.monotonic()))
        if worker.is_alive():
            request.expire()
            request.close()
            raise FetchError(f"{url}: no complete answer before the deadline "
                             f"({min(self.limits.deadline_s, self.limits.feed_deadline_s):g} s)")  # fmt: skip
        request.close()
        result = outcome[0] if outcome else FetchError(f"{url} cannot be read")
        if isinstance(result, BaseException):
            raise result
        return result


def _attempt(request: _Request, url: str, limit: int) -> bytes | BaseException:
    """The bytes, or the project error saying why not (returned: it crosses from the worker thread)."""
    try:
        return _get(request, url, limit)
    except Error as e:
        return e
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return NotFound(f"{url}: HTTP 404")
        reason = f"redirect refused ({printable(e.msg, 300)})" if 300 <= e.code < 400 else f"HTTP {e.code}"
        return FetchError(f"{url}: {reason}")
    except urllib.error.URLError as e:
        if isinstance(e.reason, Error):
            return e.reason
        return FetchError(f"{url} cannot be reached: {printable(e.reason, 300)}")
    except http.client.HTTPException as e:  # a bad status line, too many headers, a line too long, cut short
        return FetchError(f"{url}: malformed HTTP answer ({type(e).__name__}: {printable(e, 200)})")
    except (OSError, ValueError) as e:  # timeouts, resets, a malformed answer
        return FetchError(f"{url} cannot be read: {printable(e, 300)}")
    except Exception as e:  # the standard library's answer to what it could not parse
        return FetchError(f"{url} cannot be read: {type(e).__name__}: {printable(e, 300)}")


def _get(request: _Request, url: str, limit: int) -> bytes:
    with _opener(request).open(urllib.request.Request(url, headers={"User-Agent": USER_AGENT}),
                               timeout=request.timeout_s) as response:  # fmt: skip
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise InputError(f"{url} is larger than {limit} bytes (Content-Length {printable(length, 40)})")
        chunks: list[bytes] = []
        total = 0
        while chunk := response.read1(1 << 16):
            total += len(chunk)
            if total > limit:
                raise InputError(f"{url} is larger than {limit} bytes")
            chunks.append(chunk)
        if length.isdigit() and total != int(length):
            raise FetchError(f"{url}: the answer is cut short ({total} of {length} bytes)")
        if response.headers.get(TRUNCATED_HEADER, "").strip().lower() == "true":
            raise Truncated(f"{url}: answer cut: the server says it left bundles out ({TRUNCATED_HEADER})")
        return b"".join(chunks)
