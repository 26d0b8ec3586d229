"""What a varied build changed, said for people, and what it changed beyond the build's own noise.

The byte comparison and the explanation are the ``compare`` package's (the same as for ``rebuild
verify``). When two builds without any variation already differ, the build is nondeterministic and
a byte difference proves nothing about a variation; what does is a difference the two unvaried
builds do not have: another member, another kind of difference (permissions, member order,
content of another member), or a timestamp moved by a day or more. A check takes minutes, so only a
moved clock (``time``) or ``SOURCE_DATE_EPOCH`` moves a timestamp that far; timestamps a few seconds
apart are the clock running between builds, which the reference pair shows or could have shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from compare.archive import Archive, Budget, read_archive
from compare.report import ComparisonReport

DAY_S = 86400
SHOWN = 3  # differences quoted per row
Item = tuple[str, str, str]  # (output, member, category)


def summary(comparisons: Sequence[ComparisonReport], extra: Sequence[str] = ()) -> str:
    """One line: each differing output's classification and its first differences (member: detail)."""
    parts = []
    for c in comparisons:
        if c.identical:
            continue
        e = c.explanation
        if e is None:
            parts.append(f"{c.name}: bytes differ")
            continue
        shown = [
            f"{d.path}: {d.detail}" if d.detail else f"{d.path} ({', '.join(d.categories)})"
            for d in e.differences[:SHOWN]
        ]
        more = f"; ... {len(e.differences) - SHOWN} more" if len(e.differences) > SHOWN else ""
        parts.append(f"{c.name}: {e.classification}" + (f" ({'; '.join(shown)}{more})" if shown else ""))
    return "; ".join([*extra, *parts])


def signature(comparisons: Sequence[ComparisonReport]) -> set[Item]:
    """Every (output, member, category) that differs, timestamps left out (``moved_timestamps`` has them)."""
    items: set[Item] = set()
    for c in comparisons:
        if c.identical:
            continue
        if c.explanation is None:
            items.add((c.name, "(file)", "content"))
            continue
        for d in c.explanation.differences:
            for category in d.categories or (d.status,):
                if category != "timestamps":
                    items.add((c.name, d.path, category))
    return items


def moved_timestamps(a: Path, b: Path, at_least_s: int = DAY_S) -> list[str]:
    """Timestamps of two archives (members' and the gzip header's) that moved by ``at_least_s`` or more."""
    arch_a, arch_b = _read(a), _read(b)
    if arch_a is None or arch_b is None:
        return []
    moved = []
    for key in ("gzip-mtime", "mtime"):
        ta, tb = arch_a.meta.get(key), arch_b.meta.get(key)
        if isinstance(ta, int | float) and isinstance(tb, int | float) and abs(tb - ta) >= at_least_s:
            moved.append(f"{a.name} {key} {_days(tb - ta)}")
    by_name = {m.name: m for m in arch_b.members}
    for member in arch_a.members:
        other = by_name.get(member.name)
        ta, tb = member.meta.get("mtime"), other.meta.get("mtime") if other else None
        if isinstance(ta, int | float) and isinstance(tb, int | float) and abs(tb - ta) >= at_least_s:
            moved.append(f"{member.name} mtime {_days(tb - ta)}")
    return moved


def _days(delta: float) -> str:
    return f"{delta / DAY_S:+.0f} days"


def _read(path: Path) -> Archive | None:
    try:
        with open(path, "rb") as f:
            return read_archive(f, Budget(max_depth=0))
    except OSError:
        return None


def beyond_noise(
    comparisons: Sequence[ComparisonReport], noise: set[Item], pairs: Sequence[tuple[Path, Path]]
) -> list[str]:
    """What differs between reference and varied build that two unvaried builds do not explain."""
    found = [
        f"{member}: {category}" if member != "(file)" else f"{output}: {category}"
        for output, member, category in sorted(signature(comparisons) - noise)
    ]
    for a, b in pairs:
        moved = moved_timestamps(a, b)
        if moved:
            shown = ", ".join(moved[:SHOWN]) + (f", ... {len(moved) - SHOWN} more" if len(moved) > SHOWN else "")
            found.append(f"timestamps moved by days ({shown})")
    return found
