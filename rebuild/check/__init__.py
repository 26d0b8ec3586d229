"""`rebuild check`: a release team finds what makes its build unreproducible, before it publishes.

The project is built with the plan ``rebuild build`` makes, then again with the clock, the time zone,
the locale, the umask, the build path, the user, ... varied inside the same hardened sandbox, and
compared byte for byte. Modules: ``variations`` (what is varied, as data), ``tools`` (the files some
variations mount), ``varied`` (applying them to a sandbox request), ``bisect`` (finding the culprits),
``differences`` (saying what changed), ``report`` (the result and its signed statement) and ``run``
(the order of work).
"""

from __future__ import annotations

from rebuild.check.report import PREDICATE_TYPE, CheckReport
from rebuild.check.run import check_release
from rebuild.check.variations import NAMES, parse_vary

__all__ = ["NAMES", "PREDICATE_TYPE", "CheckReport", "check_release", "parse_vary"]
