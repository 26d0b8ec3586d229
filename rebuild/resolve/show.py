"""What `rebuild provenance show` prints: every statement in a file, described, and what could not be read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rebuild.attest.keys import PublicKey
from rebuild.errors import ProvenanceError
from rebuild.resolve.slsa import describe
from rebuild.resolve.statements import read_statements


def describe_file(path: Path, keys: Sequence[PublicKey] = ()) -> tuple[list[dict[str, Any]], list[str]]:
    """Each readable statement described (subjects, builder, source, what would be rebuilt), and the problems.

    Raises:
        ProvenanceError: the file holds no readable in-toto statement (exit 2).
    """
    found, problems = read_statements(path, keys)
    if not found:
        raise ProvenanceError(f"{path} holds no readable in-toto statement ({problems[0] if problems else 'empty'})")
    return [describe(f) for f in found], problems
