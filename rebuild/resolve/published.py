"""Finding the published files a rebuild is compared with: the user's own by digest, else beside the document by name.

Shared by the adapters; imports none of them.

The rule, for security: a file the user holds (``--artifact``) stands for
an output only when it has the digest the document records for that output.
Its name is never read: a file under the published name with other bytes is
not an artifact the document names (``VerificationError``, exit 1). A file
beside the document is taken by its name and checked by digest before
anything is built (``rebuild.verify.check_resolution``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from compare.digest import digest_file
from rebuild import fields
from rebuild.attest.statements import HEX_DIGESTS
from rebuild.errors import InputError, VerificationError
from rebuild.untrusted import printable


def file_digests(path: Path) -> dict[str, str]:
    """sha256 and sha512 of a file the user holds, in one read (documents record either).

    Raises:
        InputError: the file cannot be read (exit 2).
    """
    try:
        return digest_file(path, ("sha256", "sha512")).digests
    except OSError as e:
        raise InputError(f"cannot read artifact {path}: {e.strerror}") from e


def held_digests(paths: Sequence[Path]) -> dict[Path, dict[str, str]]:
    """Each file the user holds with its digests: every file is read once, however many outputs it is tried on."""
    return {path: file_digests(path) for path in paths}


def has_digest(recorded: Mapping[str, str], digests: Mapping[str, str]) -> bool:
    """Whether a file with ``digests`` is the one recorded with ``recorded`` (any hex algorithm both name)."""
    return any(
        algorithm in HEX_DIGESTS and algorithm in digests and value.lower() == digests[algorithm].lower()
        for algorithm, value in recorded.items()
    )


def find_published(
    recorded: Mapping[str, Mapping[str, str]],
    held: Mapping[Path, Mapping[str, str]],
    beside: Path,
    document: str,
) -> dict[str, Path]:
    """Output name -> the published file to compare with, for the outputs a document records (name -> digests).

    A held file (with its ``held_digests``) stands for the first output, in
    ``recorded``'s order, whose recorded digest it has; each held file stands
    for one output. An output no held file stands for is looked up by its name
    in ``beside`` (the document's directory), and only as a path of safe
    components inside it. Outputs found neither way are left out: the caller
    requires them, fetches them or goes without.

    Raises:
        VerificationError: a held file has the digest of no recorded output (exit 1).
    """
    published: dict[str, Path] = {}
    unused = list(held)
    for name, digests in recorded.items():
        match = next((path for path in unused if has_digest(digests, held[path])), None)
        if match is not None:
            published[name] = match
            unused.remove(match)
        elif (path := _beside(beside, name)) is not None:
            published[name] = path
    if unused:
        shown = ", ".join(printable(n) for n in recorded) or "none"
        raise VerificationError(
            f"{', '.join(p.name for p in unused)} {'is' if len(unused) == 1 else 'are'} not an artifact "
            f"{document} names (no output it records has the digest)",
            f"the sha256 is {held[unused[0]].get('sha256', '?')}; the outputs are: {shown}",
        )
    return published


def _beside(directory: Path, name: str) -> Path | None:
    """The file ``name`` in ``directory``, if the name is a relative path of safe components and the file is there."""
    parts = name.split("/")
    if not all(fields.COMPONENT.fullmatch(part) for part in parts):  # a name from a document never leaves the directory
        return None
    path = directory.joinpath(*parts)
    return path if path.is_file() else None
