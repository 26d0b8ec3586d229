"""A build log page is read by streaming the blob: memory in the size of a page, whatever the log's size.

The log is hostile (a build wrote it): megabytes without a newline, CRLF, no newline at the end, bytes that
are not UTF-8. Lines are compared with an independent reading of the whole blob (``split(b"\\n")``), for
chunk sizes that cut lines, CRLF pairs and UTF-8 sequences anywhere.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.errors import InputError
from rebuild.service.blobs import BlobStore
from rebuild.web import reports

MiB = 1 << 20


def expected_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_a_16_mib_log_page_costs_a_few_mib_of_memory_on_every_page(blobs: BlobStore) -> None:
    line = b"x" * 79 + b"\n"
    log = blobs.put_bytes(line * (16 * MiB // len(line)))
    lines = 16 * MiB // len(line)
    pages = -(-lines // reports.LOG_LINES)
    for page in (1, pages // 2, pages):
        tracemalloc.start()
        try:
            shown = reports.log_page(blobs, log, page)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert shown is not None and shown.total_lines == lines and shown.pages == pages
        assert shown.lines[0][0] == (page - 1) * reports.LOG_LINES + 1 and shown.lines[0][1] == "x" * 79
        assert peak < 2 * MiB, f"page {page} of a 16 MiB log took {peak / MiB:.1f} MiB"


def test_first_middle_and_last_pages_hold_the_right_lines(blobs: BlobStore) -> None:
    log = blobs.put_bytes(b"".join(b"line %d\n" % n for n in range(1, 1201)))
    first, middle, last = (reports.log_page(blobs, log, page) for page in (1, 2, 3))
    assert first is not None and middle is not None and last is not None
    assert first.lines[0] == (1, "line 1") and first.lines[-1] == (500, "line 500") and len(first.lines) == 500
    assert middle.lines[0] == (501, "line 501") and middle.lines[-1] == (1000, "line 1000")
    assert last.lines[0] == (1001, "line 1001") and last.lines[-1] == (1200, "line 1200") and len(last.lines) == 200
    assert (first.pages, first.total_lines) == (3, 1200)
    assert reports.log_page(blobs, log, 4) is None and reports.log_page(blobs, log, 0) is None


def test_a_line_longer_than_the_cap_is_cut_and_says_how_long_it_was(blobs: BlobStore) -> None:
    long_line = "é" * (3 * MiB)  # 6 MiB of UTF-8 without a newline, then one short line
    log = blobs.put_bytes(long_line.encode() + b"\nafter")
    tracemalloc.start()
    try:
        shown = reports.log_page(blobs, log, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert shown is not None and shown.total_lines == 2 and peak < 2 * MiB
    (number, text), after = shown.lines
    assert number == 1 and text.startswith("é" * reports.LOG_LINE_CHARS + "... (")
    assert f"the line has {6 * MiB} bytes" in text and len(text) < reports.LOG_LINE_CHARS + 100
    assert after == (2, "after")


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"", []),
        (b"\n", [""]),
        (b"one", ["one"]),
        (b"one\ntwo", ["one", "two"]),
        (b"one\r\ntwo\r\n", ["one", "two"]),
        (b"one\r\ntwo\r", ["one", "two"]),
        (b"a\rb\r\n", ["a\\x0db"]),
        (b"\xff\xfe\n\x1b[31m", ["\ufffd\ufffd", "\\x1b[31m"]),
        (b"\xe2\x80\xae evil\n", ["\\u202e evil"]),
    ],
    ids=["empty", "one-empty-line", "no-newline", "no-trailing-newline", "crlf", "crlf-then-lone-cr-at-end",
         "lone-cr-is-shown", "not-utf8-and-escape", "bidi-override"],
)  # fmt: skip
@pytest.mark.parametrize("chunk", [1, 2, 3, reports.LOG_CHUNK])
def test_line_ends_and_hostile_bytes(blobs: BlobStore, data: bytes, lines: list[str], chunk: int) -> None:
    shown = reports.log_page(blobs, blobs.put_bytes(data), 1, chunk=chunk)
    assert shown is not None and shown.lines == list(enumerate(lines, 1)) and shown.total_lines == len(lines)


PIECES = st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", "é".encode(), b"\xff"])


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(PIECES, max_size=60).map(b"".join),
    size=st.integers(1, 7),
    chunk=st.integers(1, 9),
    page=st.integers(1, 12),
)
def test_any_chunking_gives_the_lines_of_a_whole_reading(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, size: int, chunk: int, page: int
) -> None:
    blobs = BlobStore(tmp_path_factory.mktemp("blobs"))
    wanted = expected_lines(data)
    shown = reports.log_page(blobs, blobs.put_bytes(data), page, size=size, chunk=chunk)
    pages = max(1, -(-len(wanted) // size))
    if page > pages:
        assert shown is None
        return
    assert shown is not None and shown.total_lines == len(wanted) and shown.pages == pages
    on_page = wanted[(page - 1) * size : page * size]
    assert [n for n, _ in shown.lines] == list(range((page - 1) * size + 1, (page - 1) * size + 1 + len(on_page)))
    texts = [reports.escape_log_text(line.decode("utf-8", "replace")) for line in on_page]
    assert [text for _, text in shown.lines] == texts


def test_an_altered_missing_or_oversized_log_is_refused(blobs: BlobStore) -> None:
    log = blobs.put_bytes(b"honest\n")
    blobs.path(log).write_bytes(b"forged\n")
    with pytest.raises(InputError, match="not what its name says"):
        reports.log_page(blobs, log, 1)
    with pytest.raises(InputError, match="missing"):
        reports.log_page(blobs, "ab" * 32, 1)
    big = blobs.path("cd" * 32)
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as f:
        f.truncate(reports.MAX_LOG_BYTES + 1)  # sparse: no 48 MiB written
    with pytest.raises(InputError, match="larger than"):
        reports.log_page(blobs, "cd" * 32, 1)
    assert reports.MAX_LOG_BYTES < 256 << 20
