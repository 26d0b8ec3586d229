"""The archive's big indices (``Sources``, ``Packages``): a table of their paragraphs by name.

python-debian's own parser reads bookworm's Packages (63,000 paragraphs,
50 MB) in about 10 s and its Sources in about 12 s (``apt_pkg``, its fast
path, is not a dependency). A lookup needs a handful of paragraphs; so one
regular-expression pass over the text finds every ``Package:`` and
``Source:`` line, and the paragraphs that hold them go into a ``Table``
(an in-memory SQLite database) under those names, each reduced to the
fields the lookups read. python-debian parses only the paragraphs a lookup
returns. The table is what ``index_cache`` keeps between runs, so a warm
run neither decompresses nor scans the index.

The scan only has to find a superset: the match is decided again on
python-debian's parse of each paragraph. Paragraphs are separated by empty
lines, as apt reads these files. The scan keys on field names as the
archive writes them (``Package``, ``Source``).

The reduction keeps a paragraph's lines except those of fields not named
(a field line and its continuation lines, classified as python-debian
classifies them), so python-debian reads the kept fields exactly as in the
whole paragraph. It applies on every path: a run with a cold cache and a
run with a warm one see the same paragraphs.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Iterable
from typing import Generic, TypeVar

from debian import deb822

from rebuild.errors import FetchError
from rebuild.untrusted import printable

P = TypeVar("P", bound=deb822.Deb822)

FORMAT = 1  # the table's layout and the reduction's rules: part of every cache key
PACKAGE, SOURCE = 0, 1  # which line named the paragraph

_NAMES = re.compile(r"\n(Package|Source)[ \t]*:[ \t]*([^\s(]+)")
_FIELD = re.compile(r"(?P<key>[^: \t\n\r\f\v]+)\s*:")  # python-debian's test for a line that starts a field
# Lines as the archive writes them: "Key: value" (ASCII keys, no space before the colon) and continuation
# lines (a space or tab, then something). In a text of only those (and empty lines between paragraphs) the
# lines to drop are found by one regex; any other paragraph goes line by line through python-debian's rules.
_PLAIN_LINE = r"(?:[A-Za-z0-9][A-Za-z0-9_.+-]*:[^\n]*|[ \t][^\n]*\S[^\n]*)"
_PLAIN = re.compile(rf"{_PLAIN_LINE}(?:\n{_PLAIN_LINE})*")
_NOT_PLAIN = re.compile(rf"\n(?!{_PLAIN_LINE}|\n|\Z)")  # a line that is neither plain nor empty
_STRICT = {"whitespace-separates-paragraphs": False}  # as apt and python-debian's Sources/Packages read them
_SCHEMA = (
    "CREATE TABLE paragraph(id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE name(name TEXT NOT NULL, field INTEGER NOT NULL, paragraph INTEGER NOT NULL)",
)
_CHECKS = (  # each counts the rows a table written by ``scan`` cannot hold
    "SELECT count(*) FROM paragraph WHERE typeof(id) <> 'integer' OR typeof(body) <> 'text'",
    "SELECT count(*) FROM name WHERE typeof(name) <> 'text' OR typeof(field) <> 'integer' OR field NOT IN (0, 1) "
    "OR typeof(paragraph) <> 'integer' OR paragraph NOT IN (SELECT id FROM paragraph)",
)


class CorruptTable(ValueError):
    """Bytes that are not a table ``Table.scan`` wrote (a damaged or forged cache entry)."""


class Reduction:
    """Drops from a paragraph the lines of the fields not named, and nothing python-debian reads differently.

    Line by line, as python-debian reads a paragraph: a comment (``#`` first) is skipped; every other line
    is read with ``\\r`` and ``\\n`` stripped from both ends; a field line starts a field (and its
    continuation lines follow it); any other line (blank, text with no colon) is kept, since python-debian
    may stop there. A paragraph with a line that may be OpenPGP armour is kept whole: python-debian reads
    on by other rules. The first line that is neither a comment nor blank is always kept: python-debian
    skips blank lines at the start, so dropping it could make a later blank line look like a leading one.
    """

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = frozenset(f.lower() for f in fields) | {"package", "source"}  # the lines names are on
        kept = "|".join(re.escape(f) for f in sorted(self.fields))
        # a field line and its continuation lines, each with the newline before it: it starts with a literal
        self._unwanted = re.compile(rf"\n(?!(?i:{kept}):)[A-Za-z0-9][A-Za-z0-9_.+-]*:[^\n]*(?:\n[ \t][^\n]*)*")

    def text(self, text: str) -> str | None:
        """A whole index (``text`` begins with a newline) reduced at once, if all its lines are plain ones.

        Paragraphs keep their boundaries (an empty line is never dropped), and only a paragraph all of
        whose lines are dropped (one with no name) disappears.
        """
        if _NOT_PLAIN.search(text):
            return None
        return self._unwanted.sub("", text)

    def __call__(self, paragraph: str) -> str:
        if _PLAIN.fullmatch(paragraph):  # the archive's own paragraphs: no comment, blank or odd line
            return self._unwanted.sub("", "\n" + paragraph).removeprefix("\n")
        return self.line_by_line(paragraph)

    def line_by_line(self, paragraph: str) -> str:
        out = []
        kept = True
        started = False
        for line in paragraph.split("\n"):
            if line.startswith("#"):
                out.append(line)
                continue
            read = line.strip("\r\n")
            if read.startswith("-----"):  # maybe OpenPGP armour: python-debian reads on by other rules
                return paragraph
            field = _FIELD.match(read)
            if field:
                kept = field.group("key").lower() in self.fields
            if not started and read and not read.isspace():
                started = True
                out.append(line)  # whatever it is; its continuation lines only if its field is kept
            elif field or (read and read[0].isspace() and not read.isspace()):  # a field or a continuation
                if kept:
                    out.append(line)
            else:
                out.append(line)
        return "\n".join(out)


def _schema(db: sqlite3.Connection) -> list[tuple[str, ...]]:
    return db.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").fetchall()


def _new_database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA trusted_schema = OFF")  # no function of a (forged) schema runs as a side effect
    return db


class Table:
    """The paragraphs of one index, each reduced to the fields the lookups read, by the names on their lines."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def scan(cls, text: str, fields: Iterable[str]) -> Table:
        """Read an index's text: every ``Package:`` and ``Source:`` line, and the paragraph around it."""
        reduce = Reduction(fields)
        text = "\n" + text  # every line, the first too, follows a newline
        reduced = reduce.text(text)  # the archive's indices: in one pass
        if reduced is not None:
            text = reduced
        ids: dict[int, int] = {}  # paragraph start -> id, in file order
        bodies: list[tuple[int, str]] = []
        names: list[tuple[str, int, int]] = []
        for match in _NAMES.finditer(text):
            before = text.rfind("\n\n", 0, match.start() + 1)
            start = before + 2 if before >= 0 else 1
            number = ids.get(start)
            if number is None:
                number = ids[start] = len(ids)
                after = text.find("\n\n", match.start() + 1)
                body = text[start : after if after >= 0 else len(text)]
                bodies.append((number, body if reduced is not None else reduce(body)))
            names.append((match.group(2), PACKAGE if match.group(1) == "Package" else SOURCE, number))
        db = _new_database()
        for statement in _SCHEMA:
            db.execute(statement)
        db.executemany("INSERT INTO paragraph VALUES (?, ?)", bodies)
        db.executemany("INSERT INTO name VALUES (?, ?, ?)", names)
        db.commit()
        return cls(db)

    @classmethod
    def load(cls, data: bytes) -> Table:
        """A table from ``dump``'s bytes, checked: our schema and nothing else, every row of the types we write.

        Raises:
            CorruptTable: anything else.
        """
        db = _new_database()
        try:
            db.deserialize(data)
            db.execute("PRAGMA trusted_schema = OFF")
            if _schema(db) != _expected_schema():
                raise CorruptTable("not the table's schema")
            for check in _CHECKS:
                (bad,) = db.execute(check).fetchone()
                if bad:
                    raise CorruptTable(f"{bad} row(s) of the wrong type or pointing nowhere")
        except (sqlite3.Error, OverflowError, MemoryError) as e:
            db.close()
            raise CorruptTable(f"not a readable SQLite table ({printable(str(e), 200)})") from e
        except CorruptTable:
            db.close()
            raise
        return cls(db)

    def dump(self) -> bytes:
        return self._db.serialize()

    def bodies(self, names: Collection[str], *, or_source: bool = False) -> list[str]:
        """The paragraphs whose ``Package`` (or, with ``or_source``, ``Source``) line names one of ``names``.

        In file order, each once. ``load`` checked every row's type; a row that is not text is refused here too.
        """
        numbers: set[int] = set()
        for name in set(names):
            rows = self._db.execute(
                "SELECT paragraph FROM name WHERE name = ? AND (field = ? OR ?)", (name, PACKAGE, or_source)
            )
            numbers.update(n for (n,) in rows if isinstance(n, int))
        out = []
        for number in sorted(numbers):
            row = self._db.execute("SELECT body FROM paragraph WHERE id = ?", (number,)).fetchone()
            if row is None or not isinstance(row[0], str):
                raise CorruptTable(f"paragraph {number} is missing or not text")
            out.append(row[0])
        return out


def _expected_schema() -> list[tuple[str, ...]]:
    db = _new_database()
    for statement in _SCHEMA:
        db.execute(statement)
    try:
        return _schema(db)
    finally:
        db.close()


class Index(Generic[P]):
    """One index's table, read as paragraphs of ``kind`` (``deb822.Sources`` or ``deb822.Packages``)."""

    def __init__(self, table: Table, kind: type[P], where: str) -> None:
        self.table = table
        self._kind = kind
        self.where = where

    @classmethod
    def from_text(cls, text: str, kind: type[P], where: str, fields: Iterable[str]) -> Index[P]:
        return cls(Table.scan(text, fields), kind, where)

    def find(self, names: Collection[str], *, or_source: bool = False) -> list[P]:
        """The paragraphs whose ``Package`` (or, with ``or_source``, ``Source``) line names one of ``names``.

        A superset of the matching paragraphs, in file order: check the field on the result.

        Raises:
            FetchError: python-debian cannot parse a paragraph.
        """
        try:
            bodies = self.table.bodies(names, or_source=or_source)
        except (CorruptTable, sqlite3.Error) as e:  # ``Table.load`` checked every row: not expected, still named
            raise FetchError(f"{self.where}: the parsed index cannot be read ({printable(str(e), 200)})") from e
        return [self._parse(body) for body in bodies]

    def _parse(self, paragraph: str) -> P:
        try:
            return self._kind(paragraph.split("\n"), strict=_STRICT)
        except (ValueError, KeyError, TypeError, UnicodeError) as e:
            raise FetchError(f"{self.where}: a paragraph python-debian cannot read ({printable(str(e), 200)})") from e
