"""The directories of the source an npm lockfile may describe: its workspaces and the targets of its links.

In a lockfile, a key without a ``node_modules`` segment (``packages/w``) is a
directory of the source, and ``packages/w/node_modules/b`` is a package that
directory needs. npm writes such keys for the workspaces the root's
``workspaces`` globs name, and for ``file:`` directory dependencies (a link
entry points at them); any other directory is not npm's and is refused.

The globs are hostile data too: their number, their brace expansion and the
work of matching them are capped, and ``**`` is matched by a table over
(pattern segment, path prefix), never by backtracking, so a pile of ``**``
costs linear time. The answer for each directory is kept: a workspace's
hundreds of dependencies cost one match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from rebuild.errors import InputError
from rebuild.untrusted import printable

MAX_PATTERNS = 1000  # after brace expansion; real monorepos list a handful
MAX_PATTERN_CHARS = 1024
MAX_BRACE_EXPANSION = 64  # packages/{a,b}/*: one glob expands to at most this many
MAX_MATCH_STEPS = 2_000_000  # (glob segment x path segment) comparisons over the whole lockfile: about a second
_BRACES = re.compile(r"\{([^{}]*)\}")
_HINT = "a lockfile describes only the workspaces its root names and the directories its links point at"

Glob = tuple[bool, tuple[str, ...]]  # (negated, segments)


class Directories:
    """Which directory keys of one lockfile are workspaces or link targets (answers kept, work capped)."""

    def __init__(self, root: object, link_targets: Iterable[str], where: str) -> None:
        """``root`` is the lockfile's ``packages[""]`` entry; ``where`` names it in errors.

        Raises:
            InputError: its ``workspaces`` is not a list of globs, or there are too many of them.
        """
        self.globs = workspace_globs(root, where)
        self.link_targets = frozenset(link_targets)
        self._known: dict[str, bool] = {}
        self._steps_left = MAX_MATCH_STEPS

    def named(self, path: str, where: str) -> bool:
        """Whether ``path`` (relative, normalised: checked by the caller) is a workspace or a link target.

        Raises:
            InputError: matching the globs took more than ``MAX_MATCH_STEPS`` over the lockfile.
        """
        known = self._known.get(path)
        if known is None:
            known = path in self.link_targets or self._matches(tuple(path.split("/")), where)
            self._known[path] = known
        return known

    def _matches(self, path: tuple[str, ...], where: str) -> bool:
        named = False  # the last glob that matches decides: ``!glob`` excludes, a later glob includes again
        for negated, pattern in self.globs:
            self._steps_left -= len(pattern) * (len(path) + 1)
            if self._steps_left < 0:
                raise InputError(
                    f"{where}: matching the root's 'workspaces' globs takes more than {MAX_MATCH_STEPS} steps "
                    "(too many or too long globs)",
                    _HINT,
                )
            if glob_match(pattern, path):
                named = not negated
        return named


def workspace_globs(root: object, where: str) -> tuple[Glob, ...]:
    """The root's ``workspaces`` (a list of globs, or ``{"packages": [...]}``), expanded, in order.

    Raises:
        InputError: ``workspaces`` is not a list of globs, or expands to too many.
    """
    patterns = root.get("workspaces") if isinstance(root, dict) else None
    if isinstance(patterns, dict):
        patterns = patterns.get("packages")
    if patterns is None:
        return ()
    if (
        not isinstance(patterns, list)
        or len(patterns) > MAX_PATTERNS
        or not all(isinstance(p, str) and 0 < len(p) <= MAX_PATTERN_CHARS for p in patterns)
    ):
        raise InputError(f"{where}: 'workspaces' is not a list of at most {MAX_PATTERNS} globs", _HINT)
    globs: list[Glob] = []
    for pattern in patterns:
        negated = pattern.startswith("!")
        for expanded in _expand_braces(pattern.removeprefix("!"), where):
            segments: list[str] = []
            for segment in expanded.split("/"):
                if segment in ("", ".") or (segment == "**" and segments[-1:] == ["**"]):
                    continue  # a/./b is a/b, a/**/**/b is a/**/b
                segments.append(segment)
            if segments:
                globs.append((negated, tuple(segments)))
        if len(globs) > MAX_PATTERNS:
            raise InputError(f"{where}: 'workspaces' expands to more than {MAX_PATTERNS} globs", _HINT)
    return tuple(globs)


def _expand_braces(pattern: str, where: str) -> list[str]:
    """``a/{b,c}/*`` as ``a/b/*`` and ``a/c/*`` (npm's glob expands braces), capped."""
    done: list[str] = []
    todo = [pattern]
    while todo:
        item = todo.pop()
        match = _BRACES.search(item)
        if match is None:
            done.append(item)
        else:
            todo.extend(item[: match.start()] + alt + item[match.end() :] for alt in match.group(1).split(","))
        if len(done) + len(todo) > MAX_BRACE_EXPANSION:
            raise InputError(
                f"{where}: the 'workspaces' glob {printable(pattern, 100)} expands to more than "
                f"{MAX_BRACE_EXPANSION} patterns",
                _HINT,
            )
    return done[::-1]


def glob_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Segment-wise glob match: ``**`` is any number of segments, other segments are fnmatch patterns."""
    reach = [True] + [False] * len(path)  # reach[j]: the pattern so far matches path[:j]
    for segment in pattern:
        if segment == "**":
            seen = False
            for j, ok in enumerate(reach):
                seen = seen or ok
                reach[j] = seen
        else:
            reach = [False] + [reach[j] and fnmatchcase(path[j], segment) for j in range(len(path))]
    return reach[-1]
