"""Reading feeds over HTTP from a hostile server: a real socket server on 127.0.0.1 that answers with raw bytes.

A server that trickles its answer (one byte at a time, for ever), sends a malformed status line, too many
headers, a line too long, a body shorter than it said, or a redirect to an internal address: each must leave
the feed *unreachable* (or *rejected*), named, never a hang and never an internal error. Deadlines are
injected (``Limits``) and the servers trickle for ever, so no test races a clock.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rebuild.attest import dsse
from rebuild.attest.feed_http import HttpSource, Limits, _Request, internal
from rebuild.attest.feeds import combine, parse_feed, read_feed, source_for
from tests.unit.attest.test_feeds import ALICE, BUNDLE, DIGEST, NOW, invoke, policy, summary, tree, verify

Answer = Callable[[socket.socket, bytes], None]
QUICK = Limits(timeout_s=30.0, deadline_s=1.0)  # a socket operation would wait 30 s; the deadline is 1 s


@pytest.fixture()
def raw() -> Iterator[tuple[str, dict[str, Answer]]]:
    """A server whose answer to a request for PATH is ``answers[PATH](connection, request)``."""
    answers: dict[str, Answer] = {}
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(65536)
                path = request.split(b" ")[1].decode().split("?")[0] if b" " in request else ""
                answers.get(path, not_found)(conn, request)
            except OSError:  # the client gave up: what a deadline must make it do
                pass

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", answers
    finally:
        stop.set()
        thread.join()
        listener.close()


def not_found(conn: socket.socket, _: bytes) -> None:
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def trickle(head: bytes, byte: bytes) -> Answer:
    """``head``, then ``byte`` again and again until the client closes (forever, for a client that waits)."""

    def answer(conn: socket.socket, _: bytes) -> None:
        conn.sendall(head)
        while True:
            conn.sendall(byte)
            time.sleep(0.02)

    return answer


def says(data: bytes) -> Answer:
    def answer(conn: socket.socket, _: bytes) -> None:
        conn.sendall(data)

    return answer


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(trickle(b"", b"H"), id="status-line"),
        pytest.param(trickle(b"HTTP/1.1 200 OK\r\n", b"X"), id="headers"),
        pytest.param(trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"{"), id="body"),
        pytest.param(trickle(b"HTTP/1.1 302 Found\r\nLocation: /t/again\r\n", b"X"), id="redirect-headers"),
    ],
)
def test_a_trickling_server_meets_the_deadline(raw: tuple[str, dict[str, Answer]], answer: Answer) -> None:
    base, answers = raw
    answers["/t/snapshot.json"] = answer
    verdict = verify(policy(ALICE), f"{base}/t", limits=QUICK)
    feed = verdict.feeds[0]
    assert not verdict.passed and feed.status == "unreachable", feed.problem
    assert "no complete answer before the deadline (1 s)" in feed.problem
    assert f"{base}/t: unreachable" in verdict.message


def test_a_trickling_api_meets_the_deadline(raw: tuple[str, dict[str, Answer]]) -> None:
    base, answers = raw
    answers["/api/v1/attestations"] = trickle(b"HTTP/1.1 200 OK\r\n", b"X")
    verdict = verify(policy(ALICE), f"{base}/api/v1", limits=QUICK)
    assert verdict.feeds[0].status == "unreachable" and "deadline" in verdict.feeds[0].problem


def test_a_feed_has_a_deadline_of_its_own(tmp_path: Path) -> None:
    """Past the feed's deadline no file is asked for at all (0 s: passed before the first)."""
    source = HttpSource("http://127.0.0.1:9/", Limits(feed_deadline_s=0.0), private_ok=True)
    feed = parse_feed("http://127.0.0.1:9/")
    read = read_feed(feed, DIGEST, [], source, NOW)
    assert read.status == "unreachable" and "the feed's deadline of 0 s has passed" in read.problem


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        pytest.param(b"HTTP/1.1 abc OK\r\n\r\n", "BadStatusLine", id="bad-status-line"),
        pytest.param(b"{}", "BadStatusLine", id="no-status-line"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\n" + b"X-a: b\r\n" * 200 + b"\r\n{}", "got more than 100 headers", id="too-many-headers"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-a: " + b"b" * 70000 + b"\r\n\r\n{}", "LineTooLong", id="line-too-long"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", "IncompleteRead", id="bad-chunk"
        ),
        pytest.param(
            b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":', "cut short (5 of 100 bytes)", id="short-body"
        ),
    ],
)
def test_a_malformed_http_answer_makes_the_feed_unreachable(raw: tuple[str, dict[str, Answer]], data: bytes,
                                                             problem: str) -> None:  # fmt: skip
    base, answers = raw
    answers["/t/snapshot.json"] = says(data)
    verdict = verify(policy(ALICE), f"{base}/t", limits=QUICK)
    feed = verdict.feeds[0]
    assert feed.status == "unreachable" and problem in feed.problem, feed.problem


def test_a_malformed_http_answer_exits_1_not_3(raw: tuple[str, dict[str, Answer]], tmp_path: Path) -> None:
    from rebuild.attest.keys import write_keypair

    base, answers = raw
    answers["/t/snapshot.json"] = says(b"HTTP/1.1 200 OK\r\n" + b"X-a: b\r\n" * 200 + b"\r\n{}")
    write_keypair(ALICE, tmp_path / "alice")
    code, out = invoke("attestation", "verify", "--key", str(tmp_path / "alice.pub"), "--digest", f"sha256:{DIGEST}",
                       "--from-feed", f"{base}/t", "--feed-state", str(tmp_path / "s.json"))  # fmt: skip
    assert code == 1 and "malformed HTTP answer" in " ".join(out.split()), out


def test_an_api_answer_the_server_says_it_cut_is_rejected(raw: tuple[str, dict[str, Answer]]) -> None:
    base, answers = raw
    line = (dsse.sign(summary(), [ALICE]).to_json() + "\n").encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(line)}\r\nX-Rebuild-Truncated: true\r\n\r\n".encode()
    answers["/api/v1/attestations"] = says(head + line)
    verdict = verify(policy(ALICE), f"{base}/api/v1")
    assert not verdict.passed and verdict.feeds[0].status == "rejected" and verdict.feeds[0].said == ()
    assert "answer cut: the server says it left bundles out (X-Rebuild-Truncated)" in verdict.feeds[0].problem
    answers["/api/v1/attestations"] = says(head.replace(b"true", b"false") + line)
    assert verify(policy(ALICE), f"{base}/api/v1").passed


# --- redirects to internal addresses -------------------------------------------------------------------


def redirect(to: str) -> Answer:
    return says(f"HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n".encode())


@pytest.mark.parametrize(
    "to",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/snapshot.json",
        "http://localhost:{port}/real/snapshot.json",
        "http://[::1]:{port}/real/snapshot.json",
        "http://[::ffff:127.0.0.1]:{port}/real/snapshot.json",
    ],
)
def test_a_public_feed_cannot_redirect_to_an_internal_address(raw: tuple[str, dict[str, Answer]], tmp_path: Path,
                                                             to: str) -> None:  # fmt: skip
    """The feed is on 127.0.0.1 here, so it is read as a feed on a public host would be (``private_ok=False``)."""
    base, answers = raw
    answers["/moved/snapshot.json"] = redirect(to.format(port=base.rsplit(":", 1)[1]))
    feed = parse_feed(f"{base}/moved")
    read = read_feed(feed, DIGEST, [], source_for(feed, QUICK, private_ok=False), NOW)
    assert read.status == "unreachable" and "an internal address, from a feed that is not internal" in read.problem
    assert not combine([read], policy(ALICE), NOW).passed


def test_an_internal_feed_may_redirect_within(raw: tuple[str, dict[str, Answer]], tmp_path: Path) -> None:
    """A feed on 127.0.0.1 may redirect to localhost (the same machine): internal to internal."""
    base, answers = raw
    www = tree(tmp_path / "www", ALICE, [(BUNDLE, [summary()], DIGEST)])
    port = base.rsplit(":", 1)[1]
    for rel in ("snapshot.json", "changes.jsonl", BUNDLE):
        answers[f"/moved/{rel}"] = redirect(f"http://localhost:{port}/real/{rel}")
        answers[f"/real/{rel}"] = file_answer(www / rel)
    verdict = verify(policy(ALICE), f"{base}/moved")
    assert verdict.passed, verdict.message


def file_answer(path: Path) -> Answer:
    data = path.read_bytes()
    return says(f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)


def test_a_connection_to_another_host_reaching_an_internal_address_is_refused(
    raw: tuple[str, dict[str, Answer]],
) -> None:
    """A name that resolves to an internal address is caught where the connection is made (its peer)."""
    base, _ = raw
    port = int(base.rsplit(":", 1)[1])
    request = _Request("feed.example", False, time.monotonic() + 5, 5.0)
    with pytest.raises(ConnectionRefusedError, match=r"is the internal address 127\.0\.0\.1: refused"):
        request.connect(("127.0.0.1", port))
    allowed = _Request("feed.example", True, time.monotonic() + 5, 5.0)
    allowed.connect(("127.0.0.1", port)).close()
    allowed.close()
    # the feed's own host decides: reached at an internal address, its redirects may reach others
    decided = _Request("localhost", None, time.monotonic() + 5, 5.0)
    decided.connect(("localhost", port)).close()
    assert decided.private_ok is True
    decided.connect(("127.0.0.1", port)).close()
    decided.close()


@pytest.mark.parametrize(
    ("host", "inside"),
    [("127.0.0.1", True), ("10.0.0.1", True), ("192.168.1.1", True), ("169.254.169.254", True), ("::1", True),
     ("[fe80::1]", True), ("::ffff:10.0.0.1", True), ("localhost", True), ("0.0.0.0", True),
     ("93.184.216.34", False), ("2606:2800:220:1::1", False), ("rebuilds.example.org", False)],
)  # fmt: skip
def test_internal_addresses(host: str, inside: bool) -> None:
    assert internal(host) is inside
