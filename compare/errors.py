"""Errors of the compare package (kept apart from rebuild's, which it must not import)."""

from __future__ import annotations


class CompareError(Exception):
    """An input could not be read: the comparison could not be made (exit 2)."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
