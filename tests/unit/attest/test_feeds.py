"""Combining rebuilders' feeds (k of n): trees as directories and over a real HTTP server on 127.0.0.1.

Trees are written in the layout ``rebuild publish`` writes (bundles, ``changes.jsonl``, a signed
``snapshot.json``) with deterministic Ed25519 keys, so each attack is something a trusted key really signed,
or a mirror really changed. The service's own trees are verified end to end in
``tests/integration/service/test_feeds.py``.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

from rebuild.attest import dsse, feeds
from rebuild.attest.feeds import Feed, FeedRead, combine, parse_feed, read_feed, source_for, verify_feeds
from rebuild.attest.keys import PrivateKey, PublicKey, key_id, write_keypair
from rebuild.attest.policy import Policy
from rebuild.attest.statements import ResourceRef, Subject, verification_summary
from rebuild.cli import app
from rebuild.errors import InputError
from rebuild.untrusted import printable

DIGEST = "ab" * 32
OTHER = "cd" * 32
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ARTIFACT = "demo-1.0.tar.gz"


def fixed_key(seed: int) -> PrivateKey:
    k = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return PrivateKey(k, key_id(k.public_key()))


def public(k: PrivateKey) -> PublicKey:
    return PublicKey(k.key.public_key(), k.keyid, "test")


ALICE, BOB, MALLORY = fixed_key(1), fixed_key(2), fixed_key(3)


def summary(passed: bool = True, digest: str = DIGEST, when: str = "2025-01-01T11:00:00Z") -> bytes:
    return verification_summary(
        Subject(ARTIFACT, {"sha256": digest}), passed, f"file:release/{ARTIFACT}",
        [ResourceRef("file:release/demo.provenance.intoto.jsonl", {"sha256": "ef" * 32})], time_verified=when,
    )  # fmt: skip


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path, key: PrivateKey, bundles: list[tuple[str, list[bytes], str]],
         snapshot_key: PrivateKey | None = None, **snapshot: Any) -> Path:  # fmt: skip
    """A published tree: each (path, statements signed by ``key``, subject sha256), changes.jsonl, snapshot."""
    files: dict[str, str] = {}
    lines = []
    for rel, payloads, subject in bundles:
        data = "".join(dsse.sign(p, [key]).to_json() + "\n" for p in payloads).encode()
        if rel and not rel.startswith(("/", "..")) and ".." not in rel.split("/"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        files[rel] = sha(data)
        lines.append(json.dumps({"path": rel, "sha256": sha(data), "subject_sha256": subject}) + "\n")
    root.mkdir(parents=True, exist_ok=True)
    changes = "".join(lines).encode()
    (root / "changes.jsonl").write_bytes(changes)
    files["changes.jsonl"] = sha(changes)
    write_snapshot(root, files, snapshot_key or key, **snapshot)
    return root


PUBLISHED, EXPIRES = "2025-01-01T00:00:00Z", "2025-01-08T00:00:00Z"  # NOW is within: the snapshot is current


def write_snapshot(root: Path, listing: dict[str, str], key: PrivateKey, **fields: Any) -> None:
    """A snapshot as ``rebuild publish`` signs it; ``fields`` replace (or, given as None, drop) its own."""
    doc: dict[str, Any] = {"_type": "https://rebuild-verifier.dev/snapshot/v1", "version": 1,
                           "published": PUBLISHED, "expires": EXPIRES, "files": listing}  # fmt: skip
    doc.update(fields)
    payload = json.dumps({k: v for k, v in doc.items() if v is not None}).encode()
    (root / "snapshot.json").write_text(dsse.sign(payload, [key], payload_type=feeds.SNAPSHOT_TYPE).to_json())


BUNDLE = f"pypi/demo/1.0/{ARTIFACT}/rebuild.intoto.jsonl"


def policy(*keys: PrivateKey, threshold: int = 1) -> Policy:
    return Policy(tuple(public(k) for k in keys), "sha256", DIGEST, threshold)


def verify(pol: Policy, *roots: Path | str, **options: Any) -> feeds.FeedsVerdict:
    return verify_feeds([str(r) for r in roots], pol, NOW, **options)


@pytest.fixture()
def two(tmp_path: Path) -> tuple[Path, Path]:
    return (tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST)]),
            tree(tmp_path / "b", BOB, [(BUNDLE, [summary()], DIGEST)]))  # fmt: skip


def test_two_rebuilders_two_keys_meet_a_threshold_of_two(two: tuple[Path, Path]) -> None:
    verdict = verify(policy(ALICE, BOB, threshold=2), *two)
    assert verdict.passed, verdict.message
    assert verdict.signers == tuple(sorted((ALICE.keyid, BOB.keyid)))
    assert [(f.status, f.publisher, [s.result for s in f.said]) for f in verdict.feeds] == [
        ("read", ALICE.keyid, ["PASSED"]), ("read", BOB.keyid, ["PASSED"])]  # fmt: skip


def test_a_missing_tree_fails_the_threshold_and_is_named(two: tuple[Path, Path], tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    verdict = verify(policy(ALICE, BOB, threshold=2), two[0], missing)
    assert not verdict.passed and verdict.feeds[1].status == "unreachable"
    assert f"{missing}: unreachable" in verdict.message and "does not exist" in verdict.message
    assert "1 distinct trusted signer(s) said PASSED, the policy requires 2" in verdict.message
    # the threshold met without it: it passes, and the feed is still reported
    verdict = verify(policy(ALICE, BOB, threshold=1), two[0], missing)
    assert verdict.passed and verdict.feeds[1].status == "unreachable"


def test_a_trusted_failed_is_a_conflict_even_when_the_threshold_is_met(tmp_path: Path, two: tuple[Path, Path]) -> None:
    c = tree(tmp_path / "c", MALLORY, [(BUNDLE, [summary(passed=False)], DIGEST)])
    verdict = verify(policy(ALICE, BOB, MALLORY, threshold=2), *two, c)
    assert not verdict.passed and len(verdict.signers) == 2
    assert verdict.message == (f"rebuilders disagree: {c}: key {MALLORY.keyid[:16]} said FAILED "
                               "(2025-01-01T11:00:00Z)")  # fmt: skip
    # a FAILED by a key that is not trusted is not a rebuilder of this policy: noted, not counted
    verdict = verify(policy(ALICE, BOB, threshold=2), *two, c)
    assert verdict.passed and verdict.feeds[2].status == "untrusted"
    assert "snapshot.json is not signed by a trusted key" in verdict.feeds[2].problem


@pytest.mark.parametrize(
    ("first", "second", "passes"),
    [
        pytest.param(True, False, False, id="passed-then-failed-is-a-regression"),
        pytest.param(False, True, True, id="failed-then-passed-is-fixed"),
    ],
)
def test_a_keys_latest_word_decides(tmp_path: Path, first: bool, second: bool, passes: bool) -> None:
    statements = [summary(first, when="2025-01-01T10:00:00Z"), summary(second, when="2025-01-01T11:00:00Z")]
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, statements, DIGEST)])
    verdict = verify(policy(ALICE), a)
    assert verdict.passed is passes, verdict.message


def test_a_tie_goes_to_failed(tmp_path: Path) -> None:
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary(True), summary(False)], DIGEST)])
    assert not verify(policy(ALICE), a).passed


def test_the_same_key_through_two_feeds_counts_once(two: tuple[Path, Path], tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(two[0], mirror)
    verdict = verify(policy(ALICE, BOB, threshold=2), two[0], mirror)
    assert not verdict.passed and verdict.signers == (ALICE.keyid,)
    assert "1 distinct trusted signer(s) said PASSED, the policy requires 2" in verdict.message


def test_a_mirror_that_hides_a_failed_bundle_is_rejected(tmp_path: Path) -> None:
    failed = BUNDLE.replace("rebuild.intoto", "rebuild.0123456789abcdef.intoto")
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary()], DIGEST), (failed, [summary(False)], DIGEST)])
    lines = (a / "changes.jsonl").read_text().splitlines(keepends=True)
    (a / "changes.jsonl").write_text(lines[0])  # the FAILED entry dropped, the snapshot unchanged
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and verdict.feeds[0].status == "rejected"
    assert "changes.jsonl is not the file snapshot.json lists" in verdict.message


def test_a_swapped_bundle_is_rejected(two: tuple[Path, Path]) -> None:
    (two[0] / BUNDLE).write_bytes((two[1] / BUNDLE).read_bytes())
    verdict = verify(policy(ALICE, BOB), two[0])
    assert verdict.feeds[0].status == "rejected" and f"{BUNDLE} is not the file snapshot.json lists" in verdict.message


def test_an_index_that_lies_about_the_subject_gives_no_attestation(tmp_path: Path) -> None:
    """The listing says this bundle is about DIGEST; the signed statement is about another artifact."""
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [summary(digest=OTHER)], DIGEST)])
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and verdict.feeds[0].said == ()
    assert "no attestation for this artifact (1 trusted summary(ies) about another artifact" in verdict.message


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "pypi/../../x", "pypi/.hidden", "-rf", ""])
def test_a_path_out_of_the_tree_in_the_listing_is_refused(tmp_path: Path, path: str) -> None:
    a = tree(tmp_path / "a", ALICE, [(path, [summary()], DIGEST)])
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and verdict.feeds[0].status == "rejected"
    assert "is not a safe relative path in the tree" in verdict.message


def test_a_symbolic_link_out_of_the_tree_is_not_followed(tmp_path: Path) -> None:
    outside = tree(tmp_path / "outside", ALICE, [(BUNDLE, [summary()], DIGEST)])
    a = tmp_path / "a"
    a.mkdir()
    os.symlink(outside / "pypi", a / "pypi")
    shutil.copy(outside / "changes.jsonl", a / "changes.jsonl")
    shutil.copy(outside / "snapshot.json", a / "snapshot.json")
    verdict = verify(policy(ALICE), a)
    assert verdict.feeds[0].status == "rejected" and "is a symbolic link" in verdict.message


def test_a_fifo_in_the_tree_does_not_block(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.mkdir()
    os.mkfifo(a / "snapshot.json")
    verdict = verify(policy(ALICE), a)
    assert verdict.feeds[0].status == "rejected" and "is not a regular file" in verdict.message


def test_a_tree_with_nothing_published_says_no_attestation(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    write_snapshot(root, {}, ALICE)
    verdict = verify(policy(ALICE), root)
    assert not verdict.passed and f"{root}: no attestation for this artifact" in verdict.message


def test_untrusted_envelopes_in_a_trusted_tree_are_noted(tmp_path: Path) -> None:
    a = tree(tmp_path / "a", MALLORY, [(BUNDLE, [summary()], DIGEST)], snapshot_key=ALICE)
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and verdict.feeds[0].notes == ("1 envelope(s) not signed by a trusted key",)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("/srv/tree", "directory"),
        ("relative/dir", "directory"),
        ("http://127.0.0.1:8/tree/", "tree"),
        ("https://rebuild.example/api/v1", "api"),
        ("https://rebuild.example/api/v1/", "api"),
    ],
)
def test_feed_kinds(text: str, kind: str) -> None:
    assert parse_feed(text) == Feed(text, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("file:///srv/tree", "scheme 'file' is not http or https"),
        ("ftp://host/tree", "scheme 'ftp'"),
        ("http:///nohost", "names no host"),
        ("", "needs a directory or an http"),
    ],
)
def test_bad_feeds_are_bad_input(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        parse_feed(text)


def test_feeds_need_a_sha256_policy(two: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="feeds are searched by sha256"):
        verify_feeds([str(two[0])], Policy((public(ALICE),), "sha512", "ab" * 64), NOW)


def test_untrusted_text_in_results_is_escaped(tmp_path: Path) -> None:
    doc = json.loads(summary(False))
    doc["predicate"]["verificationResult"] = "FAILED\x1b[2J\n[bold]forged"
    a = tree(tmp_path / "a", ALICE, [(BUNDLE, [json.dumps(doc).encode()], DIGEST)])
    verdict = verify(policy(ALICE), a)
    assert not verdict.passed and "\x1b" not in verdict.message and "\n" not in verdict.message
    assert printable(verdict.message, 5000) == verdict.message


# --- over HTTP: a real server on 127.0.0.1 ----------------------------------------------------

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, Route]]]:
    """A threaded HTTP server: files under ``tmp_path/www``, or a route's own answer (attacks)."""
    routes: dict[str, Route] = {}
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(www), **kwargs)

        def do_GET(self) -> None:
            route = routes.get(self.path.split("?")[0])
            if route is None:
                super().do_GET()
            else:
                route(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_two_trees_over_http(server: tuple[str, dict[str, Route]], tmp_path: Path) -> None:
    base, _ = server
    tree(tmp_path / "www" / "a", ALICE, [(BUNDLE, [summary()], DIGEST)])
    tree(tmp_path / "www" / "b", BOB, [(BUNDLE, [summary()], DIGEST)])
    verdict = verify(policy(ALICE, BOB, threshold=2), f"{base}/a", f"{base}/b/")
    assert verdict.passed, verdict.message
    verdict = verify(policy(ALICE, BOB, threshold=2), f"{base}/a", f"{base}/nothing-here")
    assert not verdict.passed and f"{base}/nothing-here: unreachable" in verdict.message
    assert "snapshot.json: HTTP 404" in verdict.message


def endless(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.end_headers()
    block = b"[" * (1 << 16)
    try:
        while True:
            handler.wfile.write(block)
    except OSError:  # the client stopped reading: what it must do
        pass


def huge_length(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(1 << 40))
    handler.end_headers()


def redirect(to: str) -> Route:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


@pytest.mark.parametrize(
    ("route", "status", "problem"),
    [
        pytest.param(endless, "rejected", f"is larger than {feeds.MAX_SNAPSHOT} bytes", id="endless-body"),
        pytest.param(huge_length, "rejected", "(Content-Length 1099511627776)", id="huge-content-length"),
        pytest.param(redirect("file:///etc/passwd"), "unreachable", "redirect refused", id="redirect-to-file"),
        pytest.param(
            redirect("ftp://127.0.0.1/snapshot.json"), "unreachable", "refused (only to http(s)", id="redirect-to-ftp"
        ),
    ],
)
def test_hostile_http_answers(server: tuple[str, dict[str, Route]], route: Route, status: str, problem: str) -> None:
    base, routes = server
    routes["/t/snapshot.json"] = route
    verdict = verify(policy(ALICE), f"{base}/t")
    assert verdict.feeds[0].status == status and problem in verdict.feeds[0].problem, verdict.feeds[0].problem
    assert not verdict.passed


def test_a_redirect_to_http_is_followed(server: tuple[str, dict[str, Route]], tmp_path: Path) -> None:
    base, routes = server
    tree(tmp_path / "www" / "real", ALICE, [(BUNDLE, [summary()], DIGEST)])
    routes["/moved/snapshot.json"] = redirect(f"{base}/real/snapshot.json")
    routes["/moved/changes.jsonl"] = redirect(f"{base}/real/changes.jsonl")
    routes[f"/moved/{BUNDLE}"] = redirect(f"{base}/real/{BUNDLE}")
    assert verify(policy(ALICE), f"{base}/moved").passed


def test_an_api_feed(server: tuple[str, dict[str, Route]]) -> None:
    """``GET /api/v1/attestations?sha256=HEX``: JSON lines of signed bundle lines; what else it holds is ignored."""
    base, routes = server
    asked: list[str] = []
    lines = (dsse.sign(summary(), [ALICE]).to_json() + "\n" + dsse.sign(summary(digest=OTHER), [BOB]).to_json()
             + "\n").encode()  # fmt: skip

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        asked.append(handler.path)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/jsonl")
        handler.send_header("Content-Length", str(len(lines)))
        handler.end_headers()
        handler.wfile.write(lines)

    routes["/api/v1/attestations"] = answer
    verdict = verify(policy(ALICE, BOB, threshold=2), f"{base}/api/v1")
    assert asked == [f"/api/v1/attestations?sha256={DIGEST}"]
    assert not verdict.passed and verdict.signers == (ALICE.keyid,)
    assert verdict.feeds[0].notes == ("1 trusted summary(ies) about another artifact, though listed for this one",)


def test_an_api_that_signed_nothing_answers_404(server: tuple[str, dict[str, Route]]) -> None:
    base, _ = server
    verdict = verify(policy(ALICE), f"{base}/api/v1")
    assert not verdict.passed and verdict.feeds[0].status == "read"
    assert f"{base}/api/v1: no attestation for this artifact (the API answered 404" in verdict.message


def test_reading_is_what_combine_is_given(two: tuple[Path, Path]) -> None:
    """``read_feed`` then ``combine`` is ``verify_feeds``: the pieces a service or a test can call alone."""
    feed = parse_feed(str(two[0]))
    read = read_feed(feed, DIGEST, [public(ALICE)], source_for(feed), NOW)
    assert read.status == "read" and len(read.envelopes) == 1 and read.envelopes[0].origin == f"{BUNDLE} document"
    assert combine([read], policy(ALICE), NOW).passed
    assert not combine([FeedRead(feed, "unreachable", "down")], policy(ALICE), NOW).passed


def test_snapshot_type_is_the_one_publish_writes() -> None:
    from rebuild.service.publish import SNAPSHOT_TYPE

    assert feeds.SNAPSHOT_TYPE == SNAPSHOT_TYPE


# --- the command line ------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture()
def cli_trees(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Two trees signed with keys written as files, as `rebuild key generate` writes them."""
    from rebuild.attest.keys import load_private_key

    made = []
    for name, seed in (("a", 11), ("b", 12)):
        write_keypair(fixed_key(seed), tmp_path / name)
        key = load_private_key(tmp_path / f"{name}.key")
        made.append(tree(tmp_path / f"tree-{name}", key, [(BUNDLE, [summary()], DIGEST)], expires=in_a_week()))
    return made[0], made[1], tmp_path / "a.pub", tmp_path / "b.pub"


def in_a_week() -> str:
    """An expiry for the command line, which reads the feeds at the real time."""
    return (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_cli_passes_and_fails_naming_the_feed(cli_trees: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    a, b, ka, kb = cli_trees
    common = ("attestation", "verify", "--key", str(ka), "--key", str(kb), "--digest", f"sha256:{DIGEST}")
    code, out = invoke(*common, "--from-feed", str(a), "--from-feed", str(b), "--threshold", "2")
    assert code == 0, out
    assert "2 distinct trusted signer(s) said PASSED; threshold 2 met" in out
    code, out = invoke(*common, "--from-feed", str(a), "--from-feed", str(tmp_path / "gone"), "--threshold", "2")
    assert code == 1 and f"{tmp_path / 'gone'}: unreachable" in " ".join(out.split())
    code, out = invoke(*common, "--from-feed", str(a), "--from-feed", str(b), "--threshold", "2", "--json")
    assert code == 0 and [f["status"] for f in json.loads(out)["feeds"]] == ["read", "read"]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        pytest.param(("some.intoto.jsonl",), "not both", id="file-and-feed"),
        pytest.param(("--digest", "sha512:" + "ab" * 64), "feeds are searched by sha256", id="sha512"),
    ],
)
def test_cli_bad_options_exit_2(cli_trees: tuple[Path, Path, Path, Path], extra: tuple[str, ...],
                                problem: str) -> None:  # fmt: skip
    a, _, ka, _ = cli_trees
    args = ["attestation", "verify", "--key", str(ka), "--from-feed", str(a), *extra]
    if "--digest" not in extra:
        args += ["--digest", f"sha256:{DIGEST}"]
    code, out = invoke(*args)
    assert code == 2 and problem in out, out


def test_cli_needs_a_file_or_a_feed(cli_trees: tuple[Path, Path, Path, Path]) -> None:
    code, out = invoke("attestation", "verify", "--key", str(cli_trees[2]), "--digest", f"sha256:{DIGEST}")
    assert code == 2 and "give an attestation FILE, or --from-feed" in out
