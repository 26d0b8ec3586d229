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
  fails (exit 1, the feed named) only when the threshold is not met without it;
- a tree's snapshot must not have expired (``rebuild.attest.snapshot``) nor be older than a version already
  seen from its key (``rebuild.attest.feed_state``, and the other feeds of the run): an old snapshot,
  replayed, cannot hide a FAILED published since; an API answer the server says it cut is rejected;
- of a tree's bundles for the artifact, the newest ``MAX_BUNDLES`` in the listing's order are read.

Over HTTP every read is bounded (``rebuild.attest.feed_http``): http(s) only, redirects only to http(s),
never from https down to http nor from a public feed to an internal address, a size cap per file, a
timeout per socket operation and a wall-clock deadline per request and per feed.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from rebuild.attest import dsse
from rebuild.attest.envelopes import LoadedEnvelope, parse_envelopes
from rebuild.attest.feed_http import HttpSource, Limits, NotFound, Truncated
from rebuild.attest.feed_state import load_state, save_state
from rebuild.attest.keys import PublicKey
from rebuild.attest.policy import ACCEPTED, STAGES, Policy, check_envelope
from rebuild.attest.snapshot import SNAPSHOT_TYPE, parse_snapshot, safe_path
from rebuild.attest.statements import parse_statement
from rebuild.errors import Error, FetchError, InputError, VerificationError
from rebuild.untrusted import dig, load_json, parse_rfc3339, printable

__all__ = ["SNAPSHOT_TYPE", "Feed", "FeedRead", "FeedsVerdict", "Limits", "combine", "parse_feed", "read_feed",
           "safe_path", "source_for", "verify_feeds"]  # fmt: skip

MAX_SNAPSHOT = 32 << 20
MAX_CHANGES = 64 << 20
MAX_BUNDLE = 16 << 20
MAX_API_ANSWER = 16 << 20
MAX_BUNDLES = 64  # bundles read for one artifact from one feed: the newest in the listing's order
RESULT = STAGES.index("result")
_HEX64 = re.compile(r"[0-9a-f]{64}")

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


def source_for(feed: Feed, limits: Limits = Limits(), private_ok: bool | None = None) -> Source:
    """How to read a feed. Over http(s), redirects may reach internal addresses only when the feed's own host
    is internal (``private_ok``: None decides by the address its connection reaches)."""
    if feed.kind == "directory":
        return DirectorySource(Path(feed.source))
    url = urlsplit(feed.source)
    base = url._replace(path=url.path.rstrip("/") + "/", query="", fragment="").geturl()
    return HttpSource(base, limits, private_ok)


# --- finding the artifact's bundles in one feed ------------------------------------------


@dataclass(frozen=True)
class FeedRead:
    feed: Feed
    status: Literal["read", "unreachable", "untrusted", "rejected"]
    problem: str
    envelopes: tuple[LoadedEnvelope, ...] = ()
    publisher: str = ""  # the trusted key that signed a tree's snapshot
    notes: tuple[str, ...] = ()
    version: int = 0  # the snapshot's version (a tree)
    expires: str = ""  # and when it expires


def read_feed(feed: Feed, sha256: str, keys: Sequence[PublicKey], source: Source, now: datetime | None = None,
              max_snapshot_age: timedelta | None = None) -> FeedRead:  # fmt: skip
    """The envelopes a feed holds for the artifact, or why it gave none (never raises a project error).

    A tree's snapshot must not have expired at ``now`` (nor be older than ``max_snapshot_age``); an API answer
    the server says it cut is rejected, never read as complete.
    """
    try:
        if feed.kind == "api":
            try:
                answer = source.read("attestations", MAX_API_ANSWER, f"sha256={sha256}")
            except NotFound as e:  # the API's word for "nothing signed about this digest"
                return FeedRead(feed, "read", "", notes=(f"the API answered 404 ({e.message})",))
            text = _text(answer, "the API's answer")
            found = parse_envelopes(text, f"{feed.name} attestations") if text.strip() else []
            return FeedRead(feed, "read", "", tuple(found))
        return _read_tree(feed, sha256, keys, source, now or datetime.now(UTC), max_snapshot_age)
    except Truncated as e:  # a trusted FAILED could be in what was left out
        return FeedRead(feed, "rejected", e.message)
    except FetchError as e:
        return FeedRead(feed, "unreachable", e.message)
    except Error as e:  # malformed, too large, expired, not the file the snapshot lists
        return FeedRead(feed, "rejected", e.message)


def _read_tree(feed: Feed, sha256: str, keys: Sequence[PublicKey], source: Source, now: datetime,
               max_age: timedelta | None) -> FeedRead:  # fmt: skip
    envelope = dsse.Envelope.from_dict(load_json(source.read("snapshot.json", MAX_SNAPSHOT), "snapshot.json"),
                                       "snapshot.json")  # fmt: skip
    verified = dsse.verify(envelope, [k for k in keys if k.supported()])
    if not verified.signers:
        named = ", ".join(printable(s.keyid, 80) for s in envelope.signatures if s.keyid) or "no key id"
        return FeedRead(feed, "untrusted", f"snapshot.json is not signed by a trusted key (it names {named})")
    if verified.payload_type != SNAPSHOT_TYPE:
        raise InputError(f"snapshot.json has payloadType {printable(repr(verified.payload_type), 200)}")
    snapshot = parse_snapshot(verified.payload, "snapshot.json", now, max_age)  # expired, no expiry: refused
    publisher, files = verified.signers[0].keyid, snapshot.files
    expires = snapshot.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "changes.jsonl" not in files:  # nothing published yet
        return FeedRead(feed, "read", "", (), publisher, version=snapshot.version, expires=expires)
    paths: list[str] = []
    for number, line in enumerate(_listed(source, "changes.jsonl", files, MAX_CHANGES).split(b"\n"), start=1):
        if not line.strip():
            continue
        entry = load_json(line, f"changes.jsonl line {number}")
        if dig(entry, "subject_sha256") != sha256:
            continue
        path = safe_path(dig(entry, "path"), f"changes.jsonl line {number}")
        if path in paths:
            paths.remove(path)
        paths.append(path)  # in publication order, which the snapshot signs: the newest last
    notes = []
    if len(paths) > MAX_BUNDLES:  # the newest are read: a key's latest word (a FAILED, say) is among them
        notes.append(f"the {MAX_BUNDLES} newest of {len(paths)} bundles for this artifact read (by the listing's "
                     f"order); {len(paths) - MAX_BUNDLES} older ones not read")  # fmt: skip
        paths = paths[-MAX_BUNDLES:]
    found: list[LoadedEnvelope] = []
    for path in paths:
        text = _text(_listed(source, path, files, MAX_BUNDLE), path)
        found.extend(replace(e, origin=f"{path} {e.origin}") for e in parse_envelopes(text, path))
    return FeedRead(feed, "read", "", tuple(found), publisher, tuple(notes), snapshot.version, expires)


def _listed(source: Source, path: str, files: Mapping[str, str], limit: int) -> bytes:
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
    version: int = 0  # a tree's snapshot version
    expires: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"feed": self.feed, "kind": self.kind, "status": self.status, "problem": self.problem,
                "publisher": self.publisher, "snapshotVersion": self.version or None,
                "snapshotExpires": self.expires or None, "said": [_said_dict(s) for s in self.said],
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
                      tuple(notes), read.version, read.expires)  # fmt: skip


def _latest(said: Sequence[Said]) -> Said:
    """A key's latest word: by timeVerified; a tie, or a time that does not parse, goes to what is not PASSED.

    So a summary whose time does not parse ranks newest when it is not PASSED, and oldest when it is PASSED:
    it can never hide a FAILED with a real date behind it.
    """
    newest, oldest = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)

    def order(s: Said) -> tuple[datetime, bool]:
        failed = s.result != "PASSED"
        return (parse_rfc3339(s.time_verified) or (newest if failed else oldest), failed)

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


def verify_feeds(sources: Sequence[str], policy: Policy, now: datetime | None = None, limits: Limits = Limits(),
                 max_snapshot_age: timedelta | None = None, state: Path | None = None) -> FeedsVerdict:  # fmt: skip
    """Read each feed for the artifact's sha256, refuse rolled-back snapshots, then ``combine``.

    ``state`` is the rollback-protection file (``rebuild.attest.feed_state``): a tree whose snapshot version is
    lower than one seen before from its key (there, or from another feed in this run) is rejected, and the
    highest versions read are remembered. None: only the versions read in this run are compared.

    Raises:
        InputError: no feed, a bad feed value, a policy whose digest is not sha256 (feeds index by it), or a
            state file that is not one (named). EnvironmentFailure: the state file cannot be written.
    """
    if not sources:
        raise InputError("give at least one --from-feed")
    if policy.algorithm != "sha256":
        raise InputError(f"feeds are searched by sha256; the policy's digest is {printable(policy.algorithm)}",
                         "give --artifact FILE or --digest sha256:HEX")  # fmt: skip
    feeds = [parse_feed(s) for s in sources]
    known = load_state(state) if state is not None else None
    now = now or datetime.now(UTC)
    reads = [read_feed(f, policy.digest, policy.keys, source_for(f, limits), now, max_snapshot_age) for f in feeds]
    reads = refuse_rollbacks(reads, known.versions if known is not None else {})
    if known is not None:
        save_state(known, {r.publisher: r.version for r in reads if r.status == "read" and r.version})
    return combine(reads, policy, now)


def refuse_rollbacks(reads: Sequence[FeedRead], seen: Mapping[str, int]) -> list[FeedRead]:
    """Each tree read whose snapshot version is below the highest known for its key (from ``seen``, or from
    another feed read now) becomes *rejected*, naming both versions: an old snapshot, replayed."""
    highest = dict(seen)
    for r in reads:
        if r.status == "read" and r.version:
            highest[r.publisher] = max(highest.get(r.publisher, 0), r.version)
    out = []
    for r in reads:
        if r.status == "read" and r.version and r.version < highest[r.publisher]:
            r = FeedRead(r.feed, "rejected", f"snapshot.json is version {r.version}, older than version "
                         f"{highest[r.publisher]} already seen from key {r.publisher[:16]} (a replayed or rolled-back "
                         "tree, or a mirror behind)", publisher=r.publisher, version=r.version)  # fmt: skip
        out.append(r)
    return out
