"""Reading values out of untrusted documents: ``dig``, ``dig_str``, ``require`` and ``parse_rfc3339``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebuild.errors import PlanError
from rebuild.untrusted import dig, dig_str, parse_rfc3339, require

DOC: dict[str, Any] = {
    "a": {"b": {"c": "text"}, "n": None, "list": [1, "x"], "flag": True, "count": 3},
    "top": "value",
}
MISSING = object()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("top",), "value"),
        (("a", "b", "c"), "text"),
        (("a", "list"), [1, "x"]),
        (("a", "n"), None),  # a JSON null is a value
        ((), DOC),
        (("nope",), MISSING),
        (("a", "b", "c", "d"), MISSING),  # through a string
        (("a", "list", "0"), MISSING),  # never into a list
        (("top", "x"), MISSING),
    ],
    ids=["top", "nested", "list", "null", "no-path", "missing", "through-text", "through-list", "through-value"],
)
def test_dig(path: tuple[str, ...], expected: object) -> None:
    assert dig(DOC, *path, default=MISSING) == expected
    assert dig(DOC, *path) == (None if expected is MISSING else expected)


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        (DOC, ("a", "b", "c"), "text"),
        (DOC, ("a", "count"), ""),
        (DOC, ("a", "n"), ""),
        (DOC, ("a", "missing"), ""),
        ([DOC], ("a",), ""),
        ("text", (), "text"),
        (None, ("a",), ""),
    ],
    ids=["text", "number", "null", "missing", "list-document", "no-path", "none-document"],
)
def test_dig_str(doc: object, path: tuple[str, ...], expected: str) -> None:
    assert dig_str(doc, *path) == expected


@pytest.mark.parametrize(
    ("path", "kind", "expected"),
    [
        ("a.b.c", str, "text"),
        ("a.b", dict, {"c": "text"}),
        ("a.list", list, [1, "x"]),
        ("a.count", int, 3),
        ("a.flag", bool, True),
    ],
    ids=["text", "object", "list", "int", "bool"],
)
def test_require_gives_the_field(path: str, kind: type, expected: object) -> None:
    assert require(DOC, path, kind, "provenance", PlanError) == expected


@pytest.mark.parametrize(
    ("path", "kind", "message"),
    [
        ("a.b.x", str, "provenance is missing field 'a.b.x'"),
        ("a.b.c.d", str, "provenance is missing field 'a.b.c.d'"),
        ("a.n", str, r"provenance field 'a.n' has the wrong type \(NoneType\)"),
        ("a.b", str, r"provenance field 'a.b' has the wrong type \(dict\)"),
        ("a.flag", int, r"provenance field 'a.flag' has the wrong type \(bool\)"),
    ],
    ids=["missing", "through-text", "null", "object-for-text", "bool-for-int"],
)
def test_require_names_the_field(path: str, kind: type, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        require(DOC, path, kind, "provenance", PlanError)


PLUS_2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T11:00:00Z", datetime(2025, 1, 1, 11, tzinfo=UTC)),
        ("2025-01-01t11:00:00.5z", datetime(2025, 1, 1, 11, 0, 0, 500000, tzinfo=UTC)),
        ("2025-01-01T00:30:00-01:30", datetime(2025, 1, 1, 2, tzinfo=UTC)),
        ("2025-01-01T13:00:00+02:00", datetime(2025, 1, 1, 13, tzinfo=PLUS_2)),
        ("2024-01-02T03:04:05.123456Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T03:04:05.1234567891Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2025-01-01 11:00:00Z", None),
        ("2025-01-01T11:00:00", None),
        ("2025-01-01", None),
        ("2025-01-01T11:00:00+24:00", None),
        ("2025-01-01T11:00:00+0200", None),
        ("2025-01-01T11:00Z", None),
        ("2025-W01-1T11:00:00Z", None),
        ("0000-01-01T00:00:00Z", None),
        ("2025-02-30T00:00:00Z", None),
        ("2025-01-01T11:00:61Z", None),
        ("9999-12-31T23:59:59-01:00", None),
        ("2025-01-01T11:00:00Z\n", None),
        ("٢٠٢٥-01-01T11:00:00Z", None),
        ("", None),
    ],
    ids=[
        "utc",
        "lowercase-and-fraction",
        "offset",
        "positive-offset",
        "pypi-upload-time",
        "fraction-beyond-microseconds",
        "leap-second",
        "space",
        "no-offset",
        "date-only",
        "offset-24h",
        "offset-without-colon",
        "no-seconds",
        "week-date",
        "year-0",
        "no-such-day",
        "second-61",
        "beyond-year-9999-in-utc",
        "newline",
        "arabic-indic-digits",
        "empty",
    ],
)
def test_parse_rfc3339(text: str, expected: datetime | None) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC  # aware, and in one zone: comparable with any other parsed time


@given(
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_parse_rfc3339_reads_what_isoformat_writes(when: datetime, minutes: int) -> None:
    assert parse_rfc3339(when.astimezone(timezone(timedelta(minutes=minutes))).isoformat()) == when


@given(st.text(max_size=40))
def test_parse_rfc3339_never_raises(text: str) -> None:
    parsed = parse_rfc3339(text)
    assert parsed is None or parsed.tzinfo is UTC
