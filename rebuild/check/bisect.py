"""Which variations make a build differ: bisection, as reprotest's ``--auto-build`` does.

A pure function: ``differs(subset)`` is the only way to learn anything (in a check, one build with
that subset of variations applied, compared byte for byte with the reference), so the tests pass a
fake and count its calls.

The search assumes what is usually true: a variation that changes the output does so whatever else
varies. It first builds with every variation. If that differs, it halves the set, builds with the
first half only, and goes on in that half if it differs, else in the other half (which must then
differ: no build needed to know it). At one variation, that variation's own build is the culprit's
evidence (run only if the search got there without it). The halves it stepped over because their
sibling differed are then built together once; if they differ too, the search goes on among them.

Cost with one culprit among n variations: 1 (all) + ceil(log2 n) (one per halving) + at most 1 (the
culprit alone) + at most 1 (what was stepped over) builds, which is at most 2·log2(n) + 2 for every
n >= 1. When the assumption fails (the output differs only when two variations combine), the
search ends at a variation that does not differ alone, and reports the smallest set known to differ
as ``interacting`` rather than naming a culprit it has not seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bisection:
    culprits: tuple[str, ...]  # each one differs on its own
    interacting: tuple[tuple[str, ...], ...]  # sets that differ together, with no member seen to differ alone
    tests: tuple[tuple[frozenset[str], bool], ...]  # every call of ``differs``, in order, and its answer

    def differed(self, names: frozenset[str]) -> bool | None:
        """What the build with exactly ``names`` showed, or None if there was none."""
        return next((result for tried, result in self.tests if tried == names), None)


def bisect(
    variations: Sequence[str],
    differs: Callable[[frozenset[str]], bool],
    known: Mapping[frozenset[str], bool] | None = None,
) -> Bisection:
    """Find the variations under which the output differs (``known``: results already built, not counted)."""
    memo: dict[frozenset[str], bool] = dict(known or {})
    tests: list[tuple[frozenset[str], bool]] = []
    culprits: list[str] = []
    interacting: list[tuple[str, ...]] = []

    def test(names: Sequence[str]) -> bool:
        key = frozenset(names)
        if key not in memo:
            memo[key] = differs(key)
            tests.append((key, memo[key]))
        return memo[key]

    def search(group: list[str]) -> None:
        """``group`` differs (built or inferred); find what in it does."""
        stepped_over: list[str] = []
        smallest_known = group
        current = group
        while len(current) > 1:
            half = len(current) // 2
            first, second = current[:half], current[half:]
            if test(first):
                stepped_over += second
                current = smallest_known = first
            else:
                current = second  # the group differs and its first half does not: the second half does
        if test(current):
            culprits.append(current[0])
        else:  # it only differs together with something else
            interacting.append(tuple(smallest_known))
        if stepped_over and test(stepped_over):
            search(stepped_over)

    everything = list(dict.fromkeys(variations))
    if everything and test(everything):
        search(everything)
    order = {name: i for i, name in enumerate(everything)}
    return Bisection(tuple(sorted(culprits, key=order.__getitem__)), tuple(interacting), tuple(tests))
