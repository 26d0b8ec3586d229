"""Explaining a difference: which members differ, and whether only metadata does.

The explanation never decides the verdict (bytes do, in ``verdict.py``); it
says what a maintainer should look at. Member metadata fields map to
categories a person can act on (timestamps, permissions, ownership, member
order, compression, zip metadata); the whole difference is then classified,
e.g. "content identical, timestamps differ" or "content of 2 members".
A member or stream that could not be read (or was not read, over a limit)
is its own outcome: the classification then says so and never claims the
content is identical.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from compare.archive import ELF_MAGIC, Archive, Budget, Member, read_archive
from compare.errors import CompareError

# member metadata field -> the category people know it by
CATEGORY = {
    "mtime": "timestamps",
    "gzip-mtime": "timestamps",
    "mode": "permissions",
    "dos-attributes": "permissions",
    "ownership": "ownership",
    "order": "member order",
    "compression": "compression",
    "gzip-level": "compression",
    "gzip-header": "gzip header",
    "zip-metadata": "zip metadata",
    "comment": "zip metadata",
    "pax": "tar extended headers",
    "tar-format": "tar format",
    "target": "content",
}
MAX_LISTED = 200
MAX_NOTES = 100  # over both sides and all nested archives
COMPRESSORS = ("gzip", "xz", "bzip2", "zstd")


@dataclass(frozen=True)
class MemberDiff:
    path: str  # "outer.tar.gz!inner.whl!pkg/__init__.py"
    status: str  # "only-a", "only-b", "content", "metadata", "could-not-read", "not-compared" (over a limit)
    categories: tuple[str, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "categories": list(self.categories), "detail": self.detail}


@dataclass
class Explanation:
    format: str | None  # None: not an archive (or unreadable as one)
    classification: str
    kind: str  # "identical", "metadata-only", "content", "unknown" (nothing differs that was read, or not all was)
    categories: tuple[str, ...]
    differences: list[MemberDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "classification": self.classification,
            "kind": self.kind,
            "categories": list(self.categories),
            "differences": [d.as_dict() for d in self.differences[:MAX_LISTED]],
            "differences_total": len(self.differences),
            "notes": self.notes,
        }


def _fmt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _diff_meta(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[str], list[str]]:
    cats, details = [], []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            cat = CATEGORY.get(key, key)
            if cat not in cats:
                cats.append(cat)
            details.append(f"{key}: {_fmt(a.get(key))} -> {_fmt(b.get(key))}")
    return cats, details


def _per_side(sides: tuple[str, str], a: str | None, b: str | None) -> str:
    """'a: why; b: why' for the sides that have a reason."""
    return "; ".join(f"{side}: {why}" for side, why in zip(sides, (a, b), strict=True) if why)


def diff_archives(
    a: Archive,
    b: Archive,
    prefix: str,
    budget: Budget,
    depth: int,
    notes: list[str],
    side_names: tuple[str, str] = ("a", "b"),
) -> list[MemberDiff]:
    diffs: list[MemberDiff] = []
    where = prefix or "(archive)"
    if unread := _per_side(side_names, a.error, b.error):
        diffs.append(MemberDiff(where, "could-not-read", ("could not read",), f"could not read all of it: {unread}"))
    if limited := _per_side(side_names, a.limited, b.limited):
        diffs.append(MemberDiff(where, "not-compared", ("not compared",), limited))
    cats, details = _diff_meta(a.meta, b.meta)
    if a.format != b.format:
        cats.append("archive format")
        details.append(f"format: {a.format} -> {b.format}")
    if cats:
        diffs.append(MemberDiff(where, "metadata", tuple(cats), "; ".join(details)))
    by_a = {m.name: m for m in a.members}
    by_b = {m.name: m for m in b.members}
    common_order_a = [m.name for m in a.members if m.name in by_b]
    common_order_b = [m.name for m in b.members if m.name in by_a]
    if common_order_a != common_order_b:
        first = next(i for i, (x, y) in enumerate(zip(common_order_a, common_order_b, strict=False)) if x != y)
        diffs.append(
            MemberDiff(
                where,
                "metadata",
                ("member order",),
                f"another order from position {first}: {common_order_a[first]!r} vs {common_order_b[first]!r}",
            )
        )
    for name in [m.name for m in a.members if m.name not in by_b]:
        diffs.append(_only(_join(prefix, name), "only-a", b, side_names[1]))
    for name in [m.name for m in b.members if m.name not in by_a]:
        diffs.append(_only(_join(prefix, name), "only-b", a, side_names[0]))
    for name in common_order_a:
        ma, mb = by_a[name], by_b[name]
        path = _join(prefix, name)
        meta_cats, meta_details = _diff_meta(ma.meta, mb.meta)
        if ma.kind != mb.kind:
            diffs.append(MemberDiff(path, "content", ("content",), f"kind: {ma.kind} -> {mb.kind}"))
            continue
        if ma.sha256 is None or mb.sha256 is None:
            if unread := _per_side(side_names, ma.error, mb.error):
                diffs.append(MemberDiff(path, "could-not-read", ("could not read",), unread))
            elif ma.kind == "file":
                diffs.append(MemberDiff(path, "not-compared", ("not compared",), "content not read (over a limit)"))
            if meta_cats:
                diffs.append(MemberDiff(path, "metadata", tuple(meta_cats), "; ".join(meta_details)))
            continue
        if ma.sha256 != mb.sha256:
            inner = _nested(ma, mb, path, budget, depth, notes, side_names)
            if inner is not None:
                if meta_cats:
                    diffs.append(MemberDiff(path, "metadata", tuple(meta_cats), "; ".join(meta_details)))
                diffs.extend(inner)
            else:
                detail = f"size {ma.size} -> {mb.size}" if ma.size != mb.size else f"same size {ma.size}, other bytes"
                elf = _elf_difference(ma.nested, mb.nested)
                if elf is not None:
                    build_id_only, what = elf
                    elf_cats = ("ELF build-id",) if build_id_only else ("content",)
                    diffs.append(MemberDiff(path, "content", elf_cats, f"{detail}; {what}"))
                    continue
                quoted = _first_text_difference(ma.nested, mb.nested)
                diffs.append(MemberDiff(path, "content", ("content",), f"{detail}; {quoted}" if quoted else detail))
        elif meta_cats:
            diffs.append(MemberDiff(path, "metadata", tuple(meta_cats), "; ".join(meta_details)))
    return diffs


_BUILD_ID_NOTE = b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00"  # NT_GNU_BUILD_ID, 20 bytes


def _elf_difference(a: bytes | None, b: bytes | None) -> tuple[bool, str] | None:
    """For two ELF files: (only the build-id differs?, what differs), else None."""
    if a is None or b is None or not a.startswith(ELF_MAGIC) or not b.startswith(ELF_MAGIC):
        return None

    def without_build_id(data: bytes) -> tuple[bytes, str]:
        at = data.find(_BUILD_ID_NOTE)
        if at < 0:
            return data, "none"
        start = at + len(_BUILD_ID_NOTE)
        return data[:start] + bytes(20) + data[start + 20 :], data[start : start + 20].hex()

    sa, ida = without_build_id(a)
    sb, idb = without_build_id(b)
    ids = f"build-id {ida[:12]}... -> {idb[:12]}..." if ida != idb else f"same build-id {ida[:12]}..."
    if sa == sb:
        return True, f"ELF: only the build-id differs ({ids})"
    return False, f"ELF code or data differs in {_differing_bytes(sa, sb)} bytes ({ids})"


def _differing_bytes(a: bytes, b: bytes, chunk: int = 1 << 20) -> int:
    """How many bytes differ (a longer side's tail counts), at C speed: XOR as integers, count the zero bytes."""
    common = min(len(a), len(b))
    same = 0
    for at in range(0, common, chunk):
        end = min(at + chunk, common)
        x, y = a[at:end], b[at:end]
        if x == y:
            same += len(x)
        else:
            same += (int.from_bytes(x, "big") ^ int.from_bytes(y, "big")).to_bytes(len(x), "big").count(0)
    return max(len(a), len(b)) - same


def _first_text_difference(a: bytes | None, b: bytes | None, width: int = 80) -> str | None:
    """``line N: 'old' -> 'new'`` for two small text members, so a person sees what changed."""
    if a is None or b is None:
        return None
    try:
        lines_a, lines_b = a.decode("utf-8").splitlines(), b.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    for i in range(max(len(lines_a), len(lines_b))):
        la = lines_a[i] if i < len(lines_a) else "(no line)"
        lb = lines_b[i] if i < len(lines_b) else "(no line)"
        if la != lb:
            return f"line {i + 1}: {la[:width]!r} -> {lb[:width]!r}"
    return None


def _only(path: str, status: str, other: Archive, other_side: str) -> MemberDiff:
    """A member on one side only; unless the other side was not read to its end, where it may be too."""
    if other.error is not None:
        return MemberDiff(
            path, "could-not-read", ("could not read",), f"not in {other_side} as far as it could be read"
        )
    if other.limited is not None:
        return MemberDiff(path, "not-compared", ("not compared",), f"not in {other_side} as far as it was read")
    return MemberDiff(path, status, ("content",))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}!{name}" if prefix else name


def _nested(
    ma: Member, mb: Member, path: str, budget: Budget, depth: int, notes: list[str], side_names: tuple[str, str]
) -> list[MemberDiff] | None:
    """Diffs inside a member that is itself an archive on both sides; None when it is not one."""
    if ma.nested is None or mb.nested is None or depth + 1 > budget.max_depth:
        return None
    inner_a = read_archive(io.BytesIO(ma.nested), budget, depth + 1)
    inner_b = read_archive(io.BytesIO(mb.nested), budget, depth + 1)
    if inner_a is None or inner_b is None:
        return None
    notes.extend(f"{side_names[0]}: {path}: {n}" for n in inner_a.notes)
    notes.extend(f"{side_names[1]}: {path}: {n}" for n in inner_b.notes)
    inner = diff_archives(inner_a, inner_b, path, budget, depth + 1, notes, side_names)
    return inner or [MemberDiff(path, "metadata", ("container bytes",), "members identical, archive bytes differ")]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _which(diffs: Sequence[MemberDiff]) -> str:
    """'the archive and 2 members: a, b': what the differences are about."""
    paths = list(dict.fromkeys(d.path for d in diffs))
    members = [p for p in paths if p != "(archive)"]
    parts = ["the archive"] if len(members) < len(paths) else []
    if members:
        shown = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
        parts.append(f"{_plural(len(members), 'member')}: {shown}")
    return " and ".join(parts)


def _caveats(diffs: Sequence[MemberDiff]) -> list[str]:
    """What was not compared, and why: never folded into 'identical' or 'differs'."""
    unread = [d for d in diffs if d.status == "could-not-read"]
    unsure = [d for d in diffs if d.status == "not-compared"]
    caveats = [f"could not read {_which(unread)}"] if unread else []
    if unsure:
        caveats.append(f"{_which(unsure)} not compared (over a limit)")
    return caveats


def classify(diffs: Sequence[MemberDiff], side_names: tuple[str, str] = ("a", "b")) -> tuple[str, str, tuple[str, ...]]:
    """(kind, classification, categories) of a list of member differences."""
    content = [d for d in diffs if d.status == "content" and "ELF build-id" not in d.categories]
    build_ids = [d for d in diffs if d.status == "content" and "ELF build-id" in d.categories]
    only_a = [d for d in diffs if d.status == "only-a"]
    only_b = [d for d in diffs if d.status == "only-b"]
    caveats = _caveats(diffs)
    if build_ids and not (content or only_a or only_b or caveats):
        n = len(build_ids)
        others = [c for d in diffs for c in d.categories if c not in ("ELF build-id", "content")]
        also = f" (also {', '.join(dict.fromkeys(others))})" if others else ""
        return "content", f"only the ELF build-id of {n} member{'s' if n != 1 else ''} differs{also}", ("ELF build-id",)
    cats: list[str] = []
    for d in diffs:
        for c in d.categories:
            if c not in cats:
                cats.append(c)
    if content or only_a or only_b:
        parts = []
        if content:
            parts.append(f"content of {len(content)} member{'s' if len(content) != 1 else ''}")
        if only_a:
            parts.append(f"{len(only_a)} member{'s' if len(only_a) != 1 else ''} only in {side_names[0]}")
        if only_b:
            parts.append(f"{len(only_b)} member{'s' if len(only_b) != 1 else ''} only in {side_names[1]}")
        meta = [c for c in cats if c not in ("content", "not compared", "could not read")]
        text = ", ".join(parts) + (f" (also {', '.join(meta)})" if meta else "")
        return "content", "; ".join([text, *caveats]), tuple(cats)
    if caveats:
        meta = [c for c in cats if c not in ("not compared", "could not read")]
        text = "; ".join(caveats) + "; content not compared"
        return "unknown", text + (f" (also {', '.join(meta)} differ)" if meta else ""), tuple(cats)
    if not cats:
        return "unknown", "bytes differ but no member does (archive container bytes only)", ("container bytes",)
    what = cats[0] if len(cats) == 1 else f"{', '.join(cats[:-1])} and {cats[-1]}"
    return "metadata-only", f"content identical, {what} differ", tuple(cats)


def explain_files(
    a: Path, b: Path, budget: Budget | None = None, side_names: tuple[str, str] = ("a", "b")
) -> Explanation:
    """Explain how two (different) files differ.

    Raises:
        CompareError: a file cannot be opened.
    """
    budget = budget or Budget()
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return explain_streams(fa, fb, budget, side_names)
    except OSError as e:
        raise CompareError(f"cannot read {e.filename}: {e.strerror}") from e


def explain_streams(
    fa: IO[bytes], fb: IO[bytes], budget: Budget | None = None, side_names: tuple[str, str] = ("a", "b")
) -> Explanation:
    """Explain how two (different) seekable streams differ.

    Whatever the streams hold, an explanation is returned: what cannot be decoded is "could not read".
    """
    budget = budget or Budget()
    arch_a = read_archive(fa, budget)
    arch_b = read_archive(fb, budget)
    if arch_a is None or arch_b is None:
        return _explain_bytes(fa, fb, arch_a, arch_b)
    notes = [f"{side_names[0]}: {n}" for n in arch_a.notes] + [f"{side_names[1]}: {n}" for n in arch_b.notes]
    diffs = diff_archives(arch_a, arch_b, "", budget, 0, notes, side_names)
    kind, text, cats = classify(diffs, side_names)
    fmt = arch_a.format if arch_a.format == arch_b.format else f"{arch_a.format} vs {arch_b.format}"
    if len(notes) > MAX_NOTES:
        notes[MAX_NOTES:] = [f"... and {len(notes) - MAX_NOTES} more notes"]
    if kind == "unknown" and not diffs and fmt.split("+", 1)[0] in COMPRESSORS:
        # every member and header field is equal: only the compressed stream itself differs
        kind, cats = "metadata-only", ("compression",)
        text = "content identical, compressed stream differs (another compressor or zlib version made it)"
    return Explanation(fmt, text, kind, cats, diffs, notes)


def _explain_bytes(fa: IO[bytes], fb: IO[bytes], arch_a: Archive | None, arch_b: Archive | None) -> Explanation:
    fa.seek(0)
    fb.seek(0)
    offset = 0
    while True:
        ca, cb = fa.read(1 << 16), fb.read(1 << 16)
        if ca != cb:
            common = next((i for i, (x, y) in enumerate(zip(ca, cb, strict=False)) if x != y), min(len(ca), len(cb)))
            offset += common
            break
        if not ca:
            break
        offset += len(ca)
    known = arch_a or arch_b
    fmt = known.format if known is not None else None
    what = "one side is an archive, the other is not" if fmt else "not an archive"
    return Explanation(
        fmt,
        f"content differs ({what}; first difference at byte {offset})",
        "content",
        ("content",),
        [MemberDiff("(file)", "content", ("content",), f"first difference at byte {offset}")],
    )
