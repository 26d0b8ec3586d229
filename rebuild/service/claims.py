"""A worker's content-equivalence statement, checked against the store before the service signs it.

A worker holds no key, and what it wrote is checked like everything else it wrote (``signing.py``): a
content-equivalence claim (``rebuild.attest.equivalence``, docs/content-equivalence.md) is signed beside
the FAILED summary of a final "not reproduced" only when

- it parses with the strict reader (``parse_claim``): an unknown field, a "content" kind, a bad digest is
  refused;
- its one subject is an artifact the attempt compared, by the published sha256 the store records, and
  ``rebuilt`` names that artifact and the sha256 of the rebuilt file kept in the blob directory (never
  the published digest: that would be bit for bit);
- its verifier is the service's, and its input attestations are the FAILED summary's;
- the store's own records agree: the attempt's equivalence column says so, and the stored comparison
  report shows that artifact differing with no content difference (no member whose content differs or
  that is on one side only);
- every member it lists is the rebuilt file's member, read again here from the stored rebuilt bytes (name,
  type, content sha256 and size), and it lists all of them.

The published bytes are not kept in the blob directory, so their side is the worker's word, bounded by the
comparison report; the rebuilt side is read again. A claim that fails any check is refused, and with it the
whole result (``sign_pending`` names it): it is never signed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from compare.archive import Budget, Member, read_archive
from compare.digest import sha256_file
from compare.equivalence import MEMBER_TYPES
from rebuild.attest.equivalence import Claim, parse_claim
from rebuild.attest.statements import ParsedStatement
from rebuild.errors import InputError, VerificationError
from rebuild.service.blobs import BlobStore
from rebuild.service.models import Attempt
from rebuild.untrusted import dig, load_json, printable

CONTENT_STATUSES = ("content", "only-a", "only-b")  # a compare report's member statuses that are content


def check_claim(
    statement: ParsedStatement,
    attempt: Attempt,
    blobs: BlobStore,
    compared: Mapping[str, str],
    summary_inputs: Mapping[str, object],
    verifier_id: str | None,
) -> tuple[str, str, Claim]:
    """``(artifact, published sha256, the claim)`` of a claim that agrees with the store.

    ``summary_inputs`` maps each FAILED summary's subject sha256 to its ``inputAttestations``.

    Raises:
        VerificationError: the claim disagrees with the store, or does not parse; the message says how.
    """
    if len(statement.subjects) != 1:
        raise VerificationError(f"a content-equivalence claim has {len(statement.subjects)} subjects, not one")
    subject = statement.subjects[0]
    sha256 = subject.digest.get("sha256", "")
    name = next((n for n, d in compared.items() if d == sha256), None)
    if name is None or subject.name != name:
        raise VerificationError(f"a content-equivalence claim is about {printable(subject.name, 200)} sha256:"
                                f"{printable(sha256, 64)[:16]}, not an artifact the attempt compared")  # fmt: skip
    where = f"{name}: content-equivalence claim"
    try:
        claim = parse_claim(statement.predicate, where)
    except InputError as e:
        raise VerificationError(e.message) from None
    if sha256 not in summary_inputs:
        raise VerificationError(f"{where}: no FAILED summary of the same artifact beside it")
    rebuilt = _rebuilt_blobs(attempt).get(name)
    if claim.resource_uri != name or dig(statement.predicate, "rebuilt", "name") != name:
        raise VerificationError(f"{where}: resourceUri and rebuilt.name are not {printable(name, 200)}")
    if rebuilt is None or claim.rebuilt_sha256 != rebuilt or rebuilt == sha256:
        raise VerificationError(
            f"{where}: its rebuilt digest sha256:{claim.rebuilt_sha256[:16]} is not the stored rebuilt file's "
            f"({'sha256:' + rebuilt[:16] if rebuilt else 'none stored'}), or is the published one"
        )
    if verifier_id is not None and claim.verifier_id != verifier_id:
        raise VerificationError(f"{where}: verifier.id {printable(claim.verifier_id, 200)} is not the service's "
                                f"{printable(verifier_id, 200)}")  # fmt: skip
    if statement.predicate.get("inputAttestations") != summary_inputs[sha256]:
        raise VerificationError(f"{where}: its inputAttestations are not the FAILED summary's")
    if claim.label not in (attempt.equivalence or ""):
        raise VerificationError(f"{where}: the store records no such equivalence for attempt {attempt.id} "
                                f"({printable(attempt.equivalence or 'none', 200)})")  # fmt: skip
    _check_compare_report(blobs, attempt, name, sha256, rebuilt, where)
    _check_members(blobs, rebuilt, statement.predicate.get("members"), where)
    return name, sha256, claim


def _rebuilt_blobs(attempt: Attempt) -> dict[str, str]:
    try:
        doc = json.loads(attempt.rebuilt_blobs or "{}")
    except ValueError:
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(doc, dict) else {}


def _check_compare_report(blobs: BlobStore, attempt: Attempt, name: str, published: str, rebuilt: str,
                          where: str) -> None:  # fmt: skip
    """The stored comparison report shows ``name`` differing (these digests), with no content difference."""
    if attempt.compare_blob is None:
        raise VerificationError(f"{where}: the attempt has no stored comparison report")
    try:
        doc = load_json(blobs.read_bytes(attempt.compare_blob), "the stored comparison report")
    except InputError as e:
        raise VerificationError(f"{where}: {e.message}") from None
    comparisons = dig(doc, "comparisons")
    found = [c for c in comparisons if isinstance(c, dict) and c.get("name") == name] if isinstance(
        comparisons, list) else []  # fmt: skip
    if len(found) != 1:
        raise VerificationError(f"{where}: the stored comparison report has {len(found)} comparisons of it, not one")
    (report,) = found
    digests = (dig(report, "verdict", "a", "sha256"), dig(report, "verdict", "b", "sha256"))
    if digests != (published, rebuilt) or report.get("identical") is not False:
        raise VerificationError(f"{where}: the stored comparison report does not compare these digests")
    explanation = report.get("explanation")
    differences = dig(explanation, "differences")
    if not isinstance(explanation, dict) or not isinstance(differences, list):
        raise VerificationError(f"{where}: the stored comparison report does not explain the difference")
    content = [d for d in differences if not isinstance(d, dict) or d.get("status") in CONTENT_STATUSES]
    if explanation.get("kind") == "content" or content:
        said = printable(explanation.get("classification") or "content differs", 200)
        raise VerificationError(f"{where}: the stored comparison report shows a content difference ({said})")


def _check_members(blobs: BlobStore, rebuilt: str, members: Any, where: str) -> None:
    """The claim's members are the rebuilt file's, read again from the blob directory."""
    path = blobs.path(rebuilt)
    if not path.is_file() or sha256_file(path) != rebuilt:
        raise VerificationError(f"{where}: the stored rebuilt file sha256:{rebuilt[:16]} is missing or altered")
    with open(path, "rb") as f:
        archive = read_archive(f, Budget())
    if archive is None or archive.error is not None or archive.limited is not None:
        why = "not an archive" if archive is None else archive.error or archive.limited
        raise VerificationError(f"{where}: the stored rebuilt file cannot be read whole: {printable(why, 200)}")
    actual: dict[str, Member] = {}
    for m in archive.members:
        if m.name in actual or m.kind not in MEMBER_TYPES or (m.kind != "dir" and m.sha256 is None):
            raise VerificationError(f"{where}: the rebuilt file's member {printable(m.name, 200)!r} cannot be claimed")
        actual[m.name] = m
    claimed = {m["path"]: m for m in members} if isinstance(members, list) else {}  # parse_claim checked each
    if set(claimed) != set(actual):
        odd = sorted(set(claimed) ^ set(actual))[0]
        raise VerificationError(f"{where}: member {printable(odd, 200)!r} is in the claim or the rebuilt file, "
                                "not both")  # fmt: skip
    for name, entry in claimed.items():
        m = actual[name]
        digest = None if m.kind == "dir" else {"sha256": m.sha256}
        if entry["type"] != m.kind or entry.get("digest") != digest or (
            m.kind != "dir" and entry.get("size", m.size) != m.size
        ):  # fmt: skip
            raise VerificationError(f"{where}: member {printable(name, 200)!r} is not the rebuilt file's "
                                    "(type, content or size)")  # fmt: skip
