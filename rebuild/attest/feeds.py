"""Reading independent rebuilders' feeds, and whether they agree about one artifact (k of n).

A feed is where a rebuilder publishes: its published tree (``rebuild publish --out``) as a local directory
or over http(s), or its HTTP API root (``http(s)://HOST/api/v1``). The attestations for the artifact are
found by its sha256:

- a tree: ``snapshot.json`` must verify with one of the trusted keys (``--key``); ``changes.jsonl`` must be
  the file the snapshot lists (by sha256), and so must every bundle it names for this digest. So a mirror
  cannot hide a bundle (a FAILED one, say) or swap one without breaking the service's signature.
- an API: ``GET attestations?sha256=HEX`` gives the signed bundle lines; what it leaves out cannot be told
  (no snapshot), which ``docs/feeds.md`` says.

Then the policy of ``rebuild attestation verify`` (``rebuild.attest.policy``) is applied to the union of
what the feeds hold, and each rebuilder's word is kept with the feed it came through. Decisions:

- distinct signers: one key counts once, however many feeds carry its summaries;
- a trusted key whose latest summary for the artifact (by ``timeVerified``; FAILED wins a tie) is not
  PASSED is a conflict, and the verdict fails even when the threshold is met;
- a feed that cannot be read, or whose snapshot is not signed by a trusted key, adds nothing: the verdict
  fails (exit 1, the feed named) only when the threshold is not met without it.

Over HTTP every read is bounded: http(s) only (no ``file:`` handler exists in the opener), redirects only
to http(s) and never from https down to http, a size cap per file, a timeout per socket operation and a
deadline per file.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from rebuild.attest import dsse
from rebuild.attest.envelopes import LoadedEnvelope, parse_envelopes
from rebuild.attest.keys import PublicKey
from rebuild.attest.policy import ACCEPTED, STAGES, Policy, check_envelope
from rebuild.attest.statements import parse_statement
from rebuild.errors import Error, FetchError, InputError, VerificationError
from rebuild.untrusted import dig, load_json, parse_rfc3339, printable

SNAPSHOT_TYPE = "application/vnd.rebuild-verifier.snapshot+json"  # as rebuild.service.publish writes it
MAX_SNAPSHOT = 32 << 20
MAX_CHANGES = 64 << 20
MAX_BUNDLE = 16 << 20
MAX_API_ANSWER = 16 << 20
MAX_BUNDLES = 64  # bundles read for one artifact from one feed
MAX_REDIRECTS = 3
TIMEOUT_S = 20.0  # per socket operation
DEADLINE_S = 120.0  # per file
USER_AGENT = "rebuild-verifier feeds"
RESULT = STAGES.index("result")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PART = re.compile(r"[A-Za-z0-9_+~=][A-Za-z0-9._+~=-]{0,199}")  # what untrusted.path_component makes

Kind = Literal["directory", "tree", "api"]


@dataclass(frozen=True)
class Feed:
    source: str  # as given
    kind: Kind

    @property
    def name(self) -> str:
        return printable(self.source, 300)


def parse_feed(text: str) -> Feed:
    """A ``--from-feed`` value: a directory, an http(s) tree URL, or an http(s) API root ending in ``/api/v1``.

    Raises:
        InputError: an empty value, another URL scheme (``file:`` too: give the directory), or no host.
    """
    if not text:
        raise InputError("--from-feed needs a directory or an http(s) URL")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", text) and not Path(text).exists():
        url = urlsplit(text)
        if url.scheme not in ("http", "https"):
            raise InputError(
                f"feed {printable(text, 300)}: scheme {printable(url.scheme)!r} is not http or https",
                "give a published tree as a directory path, or an http(s) URL",
            )
        if not url.hostname:
            raise InputError(f"feed {printable(text, 300)} names no host")
        return Feed(text, "api" if url.path.rstrip("/").endswith("/api/v1") else "tree")
    return Feed(text, "directory")


# --- reading files from a feed, bounded -----------------------------------------------


class Source(Protocol):
    def read(self, rel: str, limit: int, query: str = "") -> bytes:
        """The bytes of ``rel`` (a checked relative path), at most ``limit``.

        Raises:
            FetchError: missing or unreachable. InputError: too large or not a regular file.
        """


def safe_path(value: object, what: str) -> str:
    """A relative path from a feed's document, fit to join onto the tree: safe components, no ``..``.

    Raises:
        InputError: anything else, named.
    """
    if not isinstance(value, str) or len(value) > 1000:
        raise InputError(f"{what}: path {printable(repr(value), 200)} is not a string of at most 1000 characters")
    parts = value.split("/")
    if len(parts) > 8 or not all(_PART.fullmatch(p) for p in parts):
        raise InputError(f"{what}: path {printable(repr(value), 200)} is not a safe relative path in the tree")
    return value


@dataclass(frozen=True)
class DirectorySource:
    root: Path

    def read(self, rel: str, limit: int, query: str = "") -> bytes:
        current = self.root
        try:
            if not stat.S_ISDIR(os.stat(self.root).st_mode):
                raise FetchError(f"{self.root} is not a directory")
            for part in safe_path(rel, str(self.root)).split("/"):  # no symbolic link out of the tree
                current = current / part
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    raise InputError(f"{current} is a symbolic link; a feed's files are read only inside it")
            fd = os.open(current, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)  # a fifo must not block
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise InputError(f"{current} is not a regular file")
                os.set_blocking(fd, True)
                data = f.read(limit + 1)
        except FileNotFoundError as e:
            raise FetchError(f"{current} does not exist") from e
        except OSError as e:
            raise FetchError(f"{current} cannot be read: {e.strerror or e}") from e
        if len(data) > limit:
            raise InputError(f"{current} is larger than {limit} bytes")
        return data


class NotFound(FetchError):
    """The server answered 404: for an API's search, nothing signed about the digest."""


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        old, new = urlsplit(req.full_url).scheme, urlsplit(newurl).scheme
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise FetchError(f"{printable(req.full_url, 300)} redirects to {printable(newurl, 300)}: refused "
                             "(only to http(s), never from https to http)")  # fmt: skip
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """http and https only: no file:, ftp: or data: handler is there to be reached, by a URL or a redirect."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    _HttpOnlyRedirects(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):  # fmt: skip
        opener.add_handler(handler)
    return opener


@dataclass(frozen=True)
class HttpSource:
    base: str  # ends with "/"
    timeout_s: float = TIMEOUT_S
    deadline_s: float = DEADLINE_S

    def read(self, rel: str, limit: int, query: str = "") -> bytes:
        url = self.base + quote(safe_path(rel, self.base)) + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        deadline = time.monotonic() + self.deadline_s
        try:
            with _opener().open(request, timeout=self.timeout_s) as response:
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > limit:
                    raise InputError(f"{url} is larger than {limit} bytes (Content-Length {length})")
                chunks: list[bytes] = []
                total = 0
                while chunk := response.read1(1 << 16):
                    total += len(chunk)
                    if total > limit:
                        raise InputError(f"{url} is larger than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"{url} took longer than {self.deadline_s:g} s")
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise NotFound(f"{url}: HTTP 404") from None
            reason = f"redirect refused ({printable(e.msg, 300)})" if 300 <= e.code < 400 else f"HTTP {e.code}"
            raise FetchError(f"{url}: {reason}") from None
        except urllib.error.URLError as e:
            raise FetchError(f"{url} cannot be reached: {printable(e.reason, 300)}") from None
        except (OSError, ValueError) as e:  # timeouts, resets, a malformed answer
            raise FetchError(f"{url} cannot be read: {printable(e, 300)}") from None


def source_for(feed: Feed, timeout_s: float = TIMEOUT_S) -> Source:
    if feed.kind == "directory":
        return DirectorySource(Path(feed.source))
    url = urlsplit(feed.source)
    base = url._replace(path=url.path.rstrip("/") + "/", query="", fragment="").geturl()
    return HttpSource(base, timeout_s)


# --- finding the artifact's bundles in one feed ------------------------------------------


@dataclass(frozen=True)
class FeedRead:
    feed: Feed
    status: Literal["read", "unreachable", "untrusted", "rejected"]
    problem: str
    envelopes: tuple[LoadedEnvelope, ...] = ()
    publisher: str = ""  # the trusted key that signed a tree's snapshot
    notes: tuple[str, ...] = ()


def read_feed(feed: Feed, sha256: str, keys: Sequence[PublicKey], source: Source) -> FeedRead:
    """The envelopes a feed holds for the artifact, or why it gave none (never raises a project error)."""
    try:
        if feed.kind == "api":
            try:
                answer = source.read("attestations", MAX_API_ANSWER, f"sha256={sha256}")
            except NotFound as e:  # the API's word for "nothing signed about this digest"
                return FeedRead(feed, "read", "", notes=(f"the API answered 404 ({e.message})",))
            text = _text(answer, "the API's answer")
            found = parse_envelopes(text, f"{feed.name} attestations") if text.strip() else []
            return FeedRead(feed, "read", "", tuple(found))
        return _read_tree(feed, sha256, keys, source)
    except FetchError as e:
        return FeedRead(feed, "unreachable", e.message)
    except Error as e:  # malformed, too large, not the file the snapshot lists
        return FeedRead(feed, "rejected", e.message)


def _read_tree(feed: Feed, sha256: str, keys: Sequence[PublicKey], source: Source) -> FeedRead:
    envelope = dsse.Envelope.from_dict(load_json(source.read("snapshot.json", MAX_SNAPSHOT), "snapshot.json"),
                                       "snapshot.json")  # fmt: skip
    verified = dsse.verify(envelope, [k for k in keys if k.supported()])
    if not verified.signers:
        named = ", ".join(printable(s.keyid, 80) for s in envelope.signatures if s.keyid) or "no key id"
        return FeedRead(feed, "untrusted", f"snapshot.json is not signed by a trusted key (it names {named})")
    if verified.payload_type != SNAPSHOT_TYPE:
        raise InputError(f"snapshot.json has payloadType {printable(repr(verified.payload_type), 200)}")
    files = dig(load_json(verified.payload, "snapshot.json's payload"), "files")
    if not isinstance(files, dict):
        raise InputError("snapshot.json's payload has no 'files' object")
    publisher = verified.signers[0].keyid
    if "changes.jsonl" not in files:
        return FeedRead(feed, "read", "", (), publisher)  # nothing published yet
    paths = []
    for number, line in enumerate(_listed(source, "changes.jsonl", files, MAX_CHANGES).split(b"\n"), start=1):
        if not line.strip():
            continue
        entry = load_json(line, f"changes.jsonl line {number}")
        if dig(entry, "subject_sha256") != sha256:
            continue
        path = safe_path(dig(entry, "path"), f"changes.jsonl line {number}")
        if path not in paths:
            paths.append(path)
    if len(paths) > MAX_BUNDLES:
        raise InputError(f"changes.jsonl names {len(paths)} bundles for this artifact (at most {MAX_BUNDLES})")
    found: list[LoadedEnvelope] = []
    for path in paths:
        text = _text(_listed(source, path, files, MAX_BUNDLE), path)
        found.extend(replace(e, origin=f"{path} {e.origin}") for e in parse_envelopes(text, path))
    return FeedRead(feed, "read", "", tuple(found), publisher)


def _listed(source: Source, path: str, files: dict[str, Any], limit: int) -> bytes:
    """A file of the tree, which must be the one the verified snapshot lists (by sha256).

    Raises:
        VerificationError: not listed, or other bytes.
    """
    expected = files.get(path)
    if not isinstance(expected, str) or not _HEX64.fullmatch(expected):
        raise VerificationError(f"{path} is not listed in snapshot.json with a sha256")
    data = source.read(path, limit)
    if hashlib.sha256(data).hexdigest() != expected:
        raise VerificationError(f"{path} is not the file snapshot.json lists (other bytes: changed by a mirror?)")
    return data


def _text(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} is not UTF-8 text (byte {e.start})") from None


# --- what each rebuilder said, and the verdict -------------------------------------------


@dataclass(frozen=True)
class Said:
    """One trusted key's summary about the artifact, as one feed carries it."""

    feed: str
    signer: str  # key id
    result: str  # the summary's verificationResult, as signed ("PASSED", "FAILED", ...)
    accepted: bool  # a PASSED the policy accepts (levels, verifier, age)
    time_verified: str
    origin: str
    problem: str = ""  # why a PASSED was not accepted


@dataclass(frozen=True)
class FeedReport:
    feed: str
    kind: str
    status: str  # read, unreachable, untrusted, rejected
    problem: str
    publisher: str
    said: tuple[Said, ...]
    notes: tuple[str, ...]  # other artifacts, untrusted signatures

    def as_dict(self) -> dict[str, Any]:
        return {"feed": self.feed, "kind": self.kind, "status": self.status, "problem": self.problem,
                "publisher": self.publisher, "said": [_said_dict(s) for s in self.said],
                "notes": list(self.notes)}  # fmt: skip

    @property
    def summary(self) -> str:
        """What this feed said, in a few words, for the one-line message."""
        if self.status != "read":
            return f"{self.feed}: {self.status} ({self.problem})"
        if not self.said:
            return f"{self.feed}: no attestation for this artifact" + (f" ({self.notes[0]})" if self.notes else "")
        words = sorted({f"key {s.signer[:16]} {_word(s)}" for s in self.said})
        return f"{self.feed}: {', '.join(words)}"


@dataclass(frozen=True)
class FeedsVerdict:
    passed: bool
    message: str
    threshold: int
    signers: tuple[str, ...]  # distinct trusted keys whose word is an accepted PASSED
    conflicts: tuple[Said, ...]  # trusted keys whose latest word is not PASSED
    feeds: tuple[FeedReport, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "message": self.message,
            "threshold": self.threshold,
            "signers": list(self.signers),
            "conflicts": [_said_dict(s) for s in self.conflicts],
            "feeds": [f.as_dict() for f in self.feeds],
        }


def _word(s: Said) -> str:
    return s.result if s.accepted or s.result != "PASSED" else f"PASSED, not accepted: {s.problem}"


def _said_dict(s: Said) -> dict[str, Any]:
    return {"feed": s.feed, "signer": s.signer, "result": s.result, "accepted": s.accepted,
            "timeVerified": s.time_verified, "origin": s.origin, "problem": s.problem}  # fmt: skip


def _report(read: FeedRead, policy: Policy, now: datetime) -> FeedReport:
    said: list[Said] = []
    other = untrusted = 0
    for loaded in read.envelopes:
        check = check_envelope(loaded, policy, now)
        if check.stage >= RESULT:  # a trusted key's summary about this artifact
            predicate = parse_statement(loaded.envelope.payload, loaded.origin).predicate  # bytes that verified
            result, when = dig(predicate, "verificationResult"), dig(predicate, "timeVerified")
            for signer in check.signers:
                said.append(Said(read.feed.name, signer, printable(result, 100), check.stage == ACCEPTED,
                                 printable(when, 100), printable(loaded.origin, 300),
                                 "" if check.stage in (RESULT, ACCEPTED) else check.problem))  # fmt: skip
        elif check.stage == STAGES.index("subject"):
            other += 1
        elif check.stage == 0:
            untrusted += 1
    notes = list(read.notes)
    if other:
        notes.append(f"{other} trusted summary(ies) about another artifact, though listed for this one")
    if untrusted:
        notes.append(f"{untrusted} envelope(s) not signed by a trusted key")
    return FeedReport(read.feed.name, read.feed.kind, read.status, read.problem, read.publisher, tuple(said),
                      tuple(notes))  # fmt: skip


def _latest(said: Sequence[Said]) -> Said:
    """A key's latest word: by timeVerified; a time that does not parse, or a tie, goes to what is not PASSED."""
    far = datetime.max.replace(tzinfo=UTC)

    def order(s: Said) -> tuple[datetime, bool]:
        return (parse_rfc3339(s.time_verified) or far, s.result != "PASSED")

    return max(said, key=order)


def combine(reads: Sequence[FeedRead], policy: Policy, now: datetime | None = None) -> FeedsVerdict:
    """The policy over the union of the feeds: distinct trusted signers, and no trusted key saying otherwise."""
    now = now or datetime.now(UTC)
    reports = tuple(_report(r, policy, now) for r in reads)
    by_signer: dict[str, list[Said]] = {}
    for report in reports:
        for s in report.said:
            by_signer.setdefault(s.signer, []).append(s)
    conflicts = tuple(latest for said in by_signer.values() if (latest := _latest(said)).result != "PASSED")
    signers = tuple(sorted(k for k, said in by_signer.items() if k not in {c.signer for c in conflicts}
                           and any(s.accepted for s in said)))  # fmt: skip
    if conflicts:
        words = "; ".join(f"{c.feed}: key {c.signer[:16]} said {c.result} ({c.time_verified})" for c in conflicts)
        message = f"rebuilders disagree: {words}"
    elif len(signers) >= policy.threshold:
        return FeedsVerdict(True, "verified", policy.threshold, signers, (), reports)
    else:
        message = (f"{len(signers)} distinct trusted signer(s) said PASSED, the policy requires {policy.threshold}: "
                   + "; ".join(r.summary for r in reports))  # fmt: skip
    return FeedsVerdict(False, printable(message, 2000), policy.threshold, signers, conflicts, reports)


def verify_feeds(sources: Sequence[str], policy: Policy, now: datetime | None = None,
                 timeout_s: float = TIMEOUT_S) -> FeedsVerdict:  # fmt: skip
    """Read each feed for the artifact's sha256, then ``combine``.

    Raises:
        InputError: no feed, a bad feed value, or a policy whose digest is not sha256 (feeds index by it).
    """
    if not sources:
        raise InputError("give at least one --from-feed")
    if policy.algorithm != "sha256":
        raise InputError(f"feeds are searched by sha256; the policy's digest is {printable(policy.algorithm)}",
                         "give --artifact FILE or --digest sha256:HEX")  # fmt: skip
    feeds = [parse_feed(s) for s in sources]
    keys = policy.keys
    reads = [read_feed(f, policy.digest, keys, source_for(f, timeout_s)) for f in feeds]
    return combine(reads, policy, now)
