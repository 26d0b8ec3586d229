"""Content equivalence: two archives whose bytes differ, but whose every member's content is the same.

This never decides a verdict (bytes do, in ``verdict.py``). It decides
whether a separate, weaker claim can be made: every member present on both
sides, the content of each (its bytes after decompression) identical, and
every other difference of a named kind:

- ``timestamp``: entry modification times (zip, tar, pax ``mtime``/``atime``/``ctime``), the gzip header's time;
- ``permissions``: an entry's read/write mode bits (and a zip's MS-DOS read-only, hidden, system, archive bits);
- ``order``: the order of the entries, only in an archive without links (``compare.extraction``);
- ``compression``: how an entry or the stream is compressed (method, level, compressed size).

Anything else means NOT equivalent: a member on one side only, a content
byte, a file type, a symlink target, ownership, an extra field, a comment,
an execute, setuid, setgid or sticky bit, a header this module cannot
classify, bytes no member accounts for (``compare.layout``), a duplicate
name or two names that extract to the same path, a part that could not be
read or was not read (over a limit), and bytes that differ where nothing
above explains it. A member that is itself an archive is compared by
its bytes: nested archives whose bytes differ are a content difference. The
gzip layer around a tar (a ``.tar.gz`` sdist, an npm tarball) is walked: its
header time and level are classified like the tar members inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from compare.archive import Archive, Budget, Member, read_archive
from compare.errors import CompareError
from compare.extraction import dos_change, extraction_key, mode_change
from compare.layout import Layout, compare_layouts, gzip_tar_layout, tar_layout, zip_layout

KINDS = ("timestamp", "permissions", "order", "compression")
LABELS = {"timestamp": "timestamps", "permissions": "permissions", "order": "entry order", "compression": "compression"}
# member or archive metadata field -> its kind; a field not here is not a kind this claim may name
FIELD_KINDS = {
    "mtime": "timestamp",
    "gzip-mtime": "timestamp",
    "mode": "permissions",
    "dos-attributes": "permissions",
    "compression": "compression",
    "gzip-level": "compression",
}
PAX_TIME_KEYS = frozenset({"atime", "ctime"})  # mtime is applied to the member by the tar reader
FORMATS = ("zip", "tar", "gzip+tar", "gzip")  # formats whose every byte ``compare.layout`` accounts for
MEMBER_TYPES = ("file", "dir", "symlink", "hardlink")
MAX_MEMBERS = 20_000  # a claim lists every member: more than this is not claimed
MAX_DIFFERENCES = 100_000
MAX_VALUE = 120  # characters of a metadata value shown in a difference


@dataclass(frozen=True)
class MemberContent:
    """One member as claimed: its path, type and the sha256 of its content (a link: of its target text)."""

    path: str
    type: str  # file, dir, symlink, hardlink
    sha256: str | None  # None for a directory
    size: int | None

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "type": self.type}
        if self.sha256 is not None:
            doc["digest"] = {"sha256": self.sha256}
        if self.size is not None:
            doc["size"] = self.size
        return doc


@dataclass(frozen=True)
class MetadataDifference:
    kind: str  # one of KINDS
    member: str | None  # None: the archive itself (its gzip header, its order)
    field: str  # the field as read: mtime, gzip-mtime, mode, compression, gzip-level, pax, order
    a: str
    b: str

    def as_dict(self, side_names: tuple[str, str] = ("a", "b")) -> dict[str, Any]:
        return {"kind": self.kind, "member": self.member, "field": self.field, side_names[0]: self.a,
                side_names[1]: self.b}  # fmt: skip


@dataclass(frozen=True)
class Equivalence:
    equivalent: bool
    format: str | None
    members: tuple[MemberContent, ...]
    differences: tuple[MetadataDifference, ...]
    reasons: tuple[str, ...]  # why not equivalent (empty when equivalent)

    @property
    def kinds(self) -> tuple[str, ...]:
        seen = {d.kind for d in self.differences}
        return tuple(k for k in KINDS if k in seen)

    @property
    def label(self) -> str:
        """``content-equivalent (metadata differs: timestamps, compression)``, or why not."""
        if not self.equivalent:
            return f"not content-equivalent: {self.reasons[0] if self.reasons else 'unknown'}"
        return f"content-equivalent (metadata differs: {', '.join(LABELS[k] for k in self.kinds) or 'none'})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "equivalent": self.equivalent,
            "label": self.label,
            "format": self.format,
            "kinds": list(self.kinds),
            "members": len(self.members),
            "differences": [d.as_dict() for d in self.differences[:200]],
            "differences_total": len(self.differences),
            "reasons": list(self.reasons[:50]),
        }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def _not(fmt: str | None, *reasons: str) -> Equivalence:
    return Equivalence(False, fmt, (), (), tuple(reasons))


def _meta_differences(
    a: dict[str, Any], b: dict[str, Any], member: str | None, reasons: list[str], where: str
) -> list[MetadataDifference]:
    """Each differing field as a classified difference; an unclassified one becomes a reason."""
    found = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if key == "pax" and isinstance(va, tuple) and isinstance(vb, tuple):
            rest_a = tuple(r for r in va if r[0] not in PAX_TIME_KEYS)
            rest_b = tuple(r for r in vb if r[0] not in PAX_TIME_KEYS)
            if rest_a == rest_b:
                found.append(MetadataDifference("timestamp", member, "pax", _show(va), _show(vb)))
                continue
        if key == "tar-format" and {va, vb} == {"ustar", "pax"}:
            # a pax header on one side only: ``compare.layout`` has checked it holds timestamps and nothing else
            found.append(MetadataDifference("timestamp", member, "pax", _show(va), _show(vb)))
            continue
        kind = FIELD_KINDS.get(key)
        if key == "mode" and (not isinstance(va, int) or not isinstance(vb, int) or mode_change(va, vb)):
            reasons.append(f"{where}: its mode changes what it can do: {_octal(va)} -> {_octal(vb)}")
        elif key == "dos-attributes" and (not isinstance(va, int) or not isinstance(vb, int) or dos_change(va, vb)):
            reasons.append(f"{where}: its MS-DOS attributes change beyond read-only, hidden, system and archive: "
                           f"{_show(va)} -> {_show(vb)}")  # fmt: skip
        elif kind is None:
            reasons.append(f"{where}: {key} differs ({_show(va)} -> {_show(vb)}), not a metadata kind a claim names")
        else:
            found.append(MetadataDifference(kind, member, key, _show(va), _show(vb)))
    return found


def _octal(mode: Any) -> str:
    return f"{mode:04o}" if isinstance(mode, int) else _show(mode)


def _listing(archive: Archive, side: str, reasons: list[str]) -> dict[str, Member]:
    """Members by name; a name twice, or two names that extract to one path (an alias), is a reason."""
    by_name: dict[str, Member] = {}
    by_key: dict[str, str] = {}
    for m in archive.members:
        key = extraction_key(m.name, archive.format)
        if m.name in by_name:
            reasons.append(f"{side}: member {m.name!r} appears more than once")
        elif key in by_key:
            reasons.append(
                f"{side}: members {by_key[key]!r} and {m.name!r} extract to the same path ({key!r}): "
                "which one wins depends on their order"
            )
        by_name[m.name] = m
        by_key.setdefault(key, m.name)
    return by_name


def equivalence_of(a: Archive, b: Archive, la: Layout, lb: Layout, side_names: tuple[str, str]) -> Equivalence:
    """Decide from both sides' members and layouts (see the module docstring for what counts)."""
    fmt = a.format if a.format == b.format else f"{a.format} vs {b.format}"
    if a.format != b.format:
        return _not(fmt, f"archive format differs: {a.format} -> {b.format}")
    if a.format not in FORMATS:
        return _not(fmt, f"{a.format} archives are not supported for a content-equivalence claim")
    reasons: list[str] = []
    for side, archive in zip(side_names, (a, b), strict=True):
        if archive.error is not None:
            reasons.append(f"{side}: could not read all of it: {archive.error}")
        if archive.limited is not None:
            reasons.append(f"{side}: not all of it was read: {archive.limited}")
    archive_reasons: list[str] = []  # named after the members': a content difference is named first
    differences = _meta_differences(a.meta, b.meta, None, archive_reasons, "the archive")
    by_a, by_b = _listing(a, side_names[0], reasons), _listing(b, side_names[1], reasons)
    reasons += [f"member {n!r} only in {side_names[0]}" for n in by_a if n not in by_b]
    reasons += [f"member {n!r} only in {side_names[1]}" for n in by_b if n not in by_a]
    order_a = [m.name for m in a.members if m.name in by_b]
    order_b = [m.name for m in b.members if m.name in by_a]
    if order_a != order_b:
        first = next((i for i, (x, y) in enumerate(zip(order_a, order_b, strict=False)) if x != y), 0)
        at_a, at_b = (order_a[first : first + 1] or ["?"])[0], (order_b[first : first + 1] or ["?"])[0]
        links = [m.name for m in (*a.members, *b.members) if m.kind in ("symlink", "hardlink")]
        if links or la.links or lb.links:
            shown = _show(links[0]) if links else "a zip symlink"
            reasons.append(
                f"the order of the entries differs ({first}: {_show(at_a)} -> {_show(at_b)}) in an archive with "
                f"links ({shown}): what extraction writes through a link depends on the order"
            )
        else:
            differences.append(
                MetadataDifference("order", None, "order", f"{first}: {_show(at_a)}", f"{first}: {_show(at_b)}")
            )
    members = []
    for name in [m.name for m in a.members if m.name in by_b]:
        ma, mb = by_a[name], by_b[name]
        if ma.kind != mb.kind:
            reasons.append(f"member {name!r}: type differs ({ma.kind} -> {mb.kind})")
            continue
        if ma.kind not in MEMBER_TYPES:
            reasons.append(f"member {name!r}: a {ma.kind} entry (a device or fifo) is not claimed")
            continue
        if ma.kind != "dir" and (ma.sha256 is None or mb.sha256 is None):
            why = ma.error or mb.error or "not read (over a limit)"
            reasons.append(f"member {name!r}: content not compared: {why}")
            continue
        if ma.sha256 != mb.sha256 or ma.size != mb.size:
            reasons.append(f"member {name!r}: content differs")
            continue
        if any("\ud800" <= c <= "\udfff" for c in name):
            reasons.append(f"member {name!r}: its name is not valid UTF-8 (it cannot be written in a claim)")
            continue
        differences += _meta_differences(ma.meta, mb.meta, name, reasons, f"member {name!r}")
        members.append(MemberContent(name, ma.kind, ma.sha256 if ma.kind != "dir" else None, ma.size))
    reasons += archive_reasons
    differences += _recompressed(la, lb, differences)
    reasons += compare_layouts(la, lb, side_names)  # after the members': a content difference is named first
    if len(members) > MAX_MEMBERS:
        reasons.append(f"{len(members)} members, more than the {MAX_MEMBERS} a claim may list")
    if len(differences) > MAX_DIFFERENCES:
        reasons.append(f"{len(differences)} metadata differences, more than the {MAX_DIFFERENCES} a claim may list")
    if not members and not reasons:
        reasons.append("no member to claim")
    if reasons:
        return Equivalence(False, fmt, tuple(members), tuple(differences), tuple(reasons))
    return Equivalence(True, fmt, tuple(members), tuple(differences), ())


def _recompressed(la: Layout, lb: Layout, found: list[MetadataDifference]) -> list[MetadataDifference]:
    """Compressed bytes that differ where no compression field does (another zlib, the same sizes)."""
    listed = {d.member for d in found if d.kind == "compression"}
    inside = any(d.member is not None or d.kind == "order" for d in found)  # the tar inside a gzip changed
    more = []
    for name in sorted(set(la.compressed) & set(lb.compressed)):
        member = None if name == "(gzip stream)" else name
        if member is None and inside:
            continue  # other decompressed bytes make other compressed bytes: not a compression difference
        if la.compressed[name] != lb.compressed[name] and member not in listed:
            a, b = la.compressed[name][:16], lb.compressed[name][:16]
            more.append(
                MetadataDifference("compression", member, "compressed-data", f"sha256 {a}...", f"sha256 {b}...")
            )
    return more


def _layout(data: IO[bytes], fmt: str, budget: Budget) -> Layout:
    data.seek(0)
    if fmt == "zip":
        return zip_layout(data)
    if fmt == "tar":
        return tar_layout(data, budget)
    if fmt in ("gzip+tar", "gzip"):
        return gzip_tar_layout(data, budget, tar=fmt == "gzip+tar")
    return Layout(problems=[f"{fmt}: layout not walked"])


def equivalence_streams(
    fa: IO[bytes], fb: IO[bytes], budget: Budget | None = None, side_names: tuple[str, str] = ("a", "b")
) -> Equivalence:
    """Whether two seekable streams hold content-equivalent archives. Never raises for what the bytes hold."""
    budget = budget or Budget()
    fa.seek(0)
    fb.seek(0)
    a, b = read_archive(fa, budget), read_archive(fb, budget)
    if a is None or b is None:
        return _not(None if a is None else a.format, "not an archive on both sides: the bytes themselves differ")
    if a.format != b.format or a.format not in FORMATS:
        return equivalence_of(a, b, Layout(), Layout(), side_names)
    la, lb = _layout(fa, a.format, budget), _layout(fb, b.format, budget)
    result = equivalence_of(a, b, la, lb, side_names)
    if result.equivalent and not result.differences and (offset := _first_difference(fa, fb)) is not None:
        # nothing this module reads differs, yet the bytes do: unexplained, so no claim (never "compression")
        why = f"bytes differ outside any member: offset {offset}"
        result = Equivalence(False, result.format, result.members, (), (why,))
    return result


def _first_difference(fa: IO[bytes], fb: IO[bytes]) -> int | None:
    """The offset of the first byte that differs (or where one side ends), None when the bytes are the same."""
    fa.seek(0)
    fb.seek(0)
    at = 0
    while True:
        ca, cb = fa.read(1 << 20), fb.read(1 << 20)
        if ca != cb:
            return at + next((i for i, (x, y) in enumerate(zip(ca, cb, strict=False)) if x != y), min(len(ca), len(cb)))
        if not ca:
            return None
        at += len(ca)


def content_equivalence(
    a: Path, b: Path, budget: Budget | None = None, side_names: tuple[str, str] = ("a", "b")
) -> Equivalence:
    """Whether the archives at ``a`` and ``b`` are content-equivalent.

    Raises:
        CompareError: a file cannot be opened.
    """
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return equivalence_streams(fa, fb, budget, side_names)
    except OSError as e:
        raise CompareError(f"cannot read {e.filename}: {e.strerror}") from e
