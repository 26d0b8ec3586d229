"""PEP 740 publish attestations of a release, from the index's Integrity API, verified offline.

PyPI serves, for each file of a release published with Trusted Publishing, a
provenance object at ``/integrity/<project>/<version>/<filename>/provenance``
beside the simple index (``https://pypi.org/simple/`` → ``https://pypi.org/integrity/...``).
Each attestation in it is a Sigstore signature over an in-toto statement whose
one subject is the file (name and sha256). It is checked here with the same
offline verifier as any Sigstore bundle (``rebuild.attest.sigstore``): the
certificate must name the Trusted Publisher the object names (its repository,
and its workflow as the certificate's build config) and pass the user's
``--expect-*`` policy; the subject must be the file the index lists, by name
and by digest (``verify_dsse`` does not check that).

An index that offers none (404, or a ``file://`` index) is a normal outcome:
the release is then "not signed", unless the user pinned an identity, which
is then exit 1. Attestations that are offered and do not verify are exit 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlparse

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from rebuild.attest import dsse
from rebuild.attest.sigstore import (
    GITHUB,
    BundleRef,
    IdentityMismatch,
    SigstorePolicy,
    SigstoreResult,
    SigstoreVerificationError,
    SigstoreVerifier,
    UnsupportedBundle,
)
from rebuild.attest.statements import parse_statement
from rebuild.errors import InputError, VerificationError
from rebuild.fetch.fetcher import USER_AGENT
from rebuild.resolution import Signature, SignatureStatus
from rebuild.untrusted import dig, dig_str, load_json, printable

INTEGRITY_ACCEPT = "application/vnd.pypi.integrity.v1+json"
MAX_PROVENANCE_BYTES = 16 << 20
MAX_ATTESTATIONS = 32  # PyPI stores one or two per file
PUBLISH_V1 = "https://docs.pypi.org/attestations/publish/v1"
PREDICATE_TYPES = (PUBLISH_V1, "https://slsa.dev/provenance/v1")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
_WORKFLOW = re.compile(r"[A-Za-z0-9_.-]{1,200}")


@dataclass(frozen=True)
class Publisher:
    """A Trusted Publisher as the provenance object names it (PyPI's record; the certificate must agree)."""

    repository: str  # OWNER/REPO
    workflow: str  # the workflow file name, e.g. release.yml

    @property
    def workflow_uri(self) -> str:
        return f"{GITHUB}/{self.repository}/.github/workflows/{self.workflow}"

    def describe(self) -> str:
        return f"GitHub {self.repository} workflow {self.workflow}"


@dataclass(frozen=True)
class FileAttestations:
    """What the index offered for one file, and what of it verified."""

    filename: str
    url: str | None
    offered: bool
    results: tuple[SigstoreResult, ...] = ()
    publishers: tuple[Publisher, ...] = ()
    unsupported: tuple[str, ...] = ()
    note: str = ""  # why nothing was read (not offered, a file index, the index failed)
    saved: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "url": self.url,
            "offered": self.offered,
            "publishers": [p.describe() for p in self.publishers],
            "verified": [r.as_dict() for r in self.results],
            "unsupported": list(self.unsupported),
            "note": self.note,
            "saved": str(self.saved) if self.saved else None,
        }


@dataclass(frozen=True)
class ReleaseAttestations:
    signature: Signature
    files: tuple[FileAttestations, ...] = field(default=())

    @property
    def records(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.files]


def integrity_url(index_url: str, project: str, version: str, filename: str) -> str | None:
    """The Integrity API URL beside a simple index (None for an index that is not HTTP)."""
    if urlparse(index_url).scheme not in ("http", "https"):
        return None
    path = "/".join(quote(part, safe="") for part in (str(canonicalize_name(project)), version, filename))
    return urljoin(index_url.rstrip("/") + "/", f"../integrity/{path}/provenance")


def fetch_provenance(url: str, timeout_s: float = 60.0) -> tuple[bytes | None, str]:
    """The provenance object's exact bytes, or None and why (404: none offered; the index failing is no error)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": INTEGRITY_ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_PROVENANCE_BYTES + 1)
    except urllib.error.HTTPError as e:
        return None, "none offered" if e.code == 404 else f"the index answered HTTP {e.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return None, f"the index could not be reached ({printable(getattr(e, 'reason', e), 200)})"
    if len(body) > MAX_PROVENANCE_BYTES:
        return None, f"the provenance object is larger than {MAX_PROVENANCE_BYTES >> 20} MiB (not read)"
    return body, ""


def verify_provenance(
    body: bytes, url: str, filename: str, sha256: str, policy: SigstorePolicy
) -> tuple[tuple[SigstoreResult, ...], tuple[Publisher, ...], tuple[str, ...]]:
    """Verify every attestation of a PEP 740 provenance object for ``filename`` with ``sha256``.

    Returns the verified results, the publishers named, and what could not be checked (unsupported).

    Raises:
        VerificationError: the object is malformed, an attestation does not verify, is signed by
            another identity than its publisher or the policy's, or is about another file (exit 1).
    """
    try:
        doc = load_json(body, f"the PEP 740 provenance of {filename}")
    except InputError as e:
        raise VerificationError(f"{filename}: publish attestations refused: {e.message}") from e
    groups = dig(doc, "attestation_bundles")
    if not isinstance(groups, list) or not groups:
        raise VerificationError(f"{filename}: the PEP 740 provenance object has no 'attestation_bundles'")
    where = hashlib.sha256(body).hexdigest()
    results: list[SigstoreResult] = []
    publishers: list[Publisher] = []
    unsupported: list[str] = []
    count = 0
    for i, group in enumerate(groups):
        publisher = _publisher(dig(group, "publisher"), filename, unsupported)
        attestations = dig(group, "attestations")
        if not isinstance(attestations, list):
            raise VerificationError(f"{filename}: attestation_bundles[{i}].attestations is not a list")
        if publisher is None:
            continue
        publishers.append(publisher)
        identity = dataclasses.replace(policy.identity, publisher=publisher.workflow_uri)
        verifier = SigstoreVerifier(dataclasses.replace(policy, identity=identity))
        for j, attestation in enumerate(attestations):
            count += 1
            if count > MAX_ATTESTATIONS or not isinstance(attestation, Mapping):
                raise VerificationError(f"{filename}: more than {MAX_ATTESTATIONS} attestations, or not objects")
            ref = BundleRef(url, where, "document", f"attestation_bundles[{i}].attestations[{j}]")
            try:
                payload = dsse.b64decode(dig(attestation, "envelope", "statement"), "envelope.statement")
            except InputError as e:
                raise VerificationError(f"{filename}: publish attestation {ref.path}: {e.message}") from e
            try:
                result = verifier.verify_pep740(attestation, ref, payload)
            except UnsupportedBundle as e:
                unsupported.append(e.message)
                continue
            except (IdentityMismatch, SigstoreVerificationError) as e:
                raise VerificationError(
                    f"{filename}: publish attestation {ref.path} does not verify: {e.message}", e.hint
                ) from e
            _check_subject(payload, filename, sha256, ref.path)
            results.append(result)
    return tuple(results), tuple(publishers), tuple(unsupported)


def _publisher(doc: object, filename: str, unsupported: list[str]) -> Publisher | None:
    kind = dig_str(doc, "kind")
    if kind != "GitHub":
        unsupported.append(f"Trusted Publisher of kind {printable(kind or '?', 100)} (GitHub only)")
        return None
    repository, workflow = dig_str(doc, "repository"), dig_str(doc, "workflow")
    if not _REPOSITORY.fullmatch(repository) or not _WORKFLOW.fullmatch(workflow):
        raise VerificationError(
            f"{filename}: the Trusted Publisher is not a GitHub repository and workflow file "
            f"({printable(repository, 200)}, {printable(workflow, 200)})"
        )
    return Publisher(repository, workflow)


def _check_subject(payload: bytes, filename: str, sha256: str, where: str) -> None:
    """The one subject is this file: its name (as PEP 740 compares names) and the index's sha256."""
    try:
        statement = parse_statement(payload, where)
    except InputError as e:
        raise VerificationError(f"{filename}: publish attestation {where}: {e.message}") from e
    if statement.predicate_type not in PREDICATE_TYPES:
        raise VerificationError(
            f"{filename}: publish attestation {where} is a {printable(statement.predicate_type, 200)}"
        )
    if len(statement.subjects) != 1:
        raise VerificationError(f"{filename}: publish attestation {where} has {len(statement.subjects)} subjects")
    subject = statement.subjects[0]
    digest = subject.digest.get("sha256", "")
    if _distribution(subject.name) != _distribution(filename) or _distribution(filename) is None:
        raise VerificationError(
            f"{filename}: the publish attestation is about {printable(subject.name, 200)}, not this file"
        )
    if digest.lower() != sha256.lower():
        raise VerificationError(
            f"{filename}: the publish attestation is for sha256 {printable(digest, 200) or 'none'}, "
            f"not the file the index lists (sha256 {sha256})",
            "the index serves a file its publisher did not attest",
        )


def _distribution(name: str) -> object:
    try:
        if name.endswith(".whl"):
            return parse_wheel_filename(name)
        if name.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(name)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def check_release(
    index_url: str,
    project: str,
    version: str,
    files: Sequence[tuple[str, str]],
    policy: SigstorePolicy,
    work_dir: Path,
    progress: Callable[[str, str], None] = lambda s, m: None,
) -> ReleaseAttestations:
    """Fetch and verify the publish attestations of each ``(filename, sha256)``.

    Raises:
        VerificationError: an offered attestation does not verify or is about another file; or the
            user pinned an identity and nothing verified (exit 1).
    """
    checked = []
    for filename, sha256 in files:
        url = integrity_url(index_url, project, version, filename)
        if url is None:
            checked.append(FileAttestations(filename, None, False, note="the index is not HTTP (no Integrity API)"))
            continue
        progress("resolve", f"publish attestations of {filename}: {url}")
        body, why = fetch_provenance(url)
        if body is None:
            checked.append(FileAttestations(filename, url, False, note=why))
            continue
        work_dir.mkdir(parents=True, exist_ok=True)
        saved = work_dir / f"{filename}.provenance"
        saved.write_bytes(body)  # the exact bytes verified, kept beside the report
        results, publishers, unsupported = verify_provenance(body, url, filename, sha256, policy)
        checked.append(FileAttestations(filename, url, True, results, publishers, unsupported, saved=saved))
    return ReleaseAttestations(_signature(checked, policy, project, version), tuple(checked))


def _signature(files: Sequence[FileAttestations], policy: SigstorePolicy, project: str, version: str) -> Signature:
    results = tuple(r for f in files for r in f.results)
    missing = [f"{f.filename} ({f.note})" for f in files if not f.results and not f.unsupported]
    if not results:
        if policy.identity.pinned:
            raise VerificationError(
                f"{project} {version}: no verified publish attestation, so the expected identity cannot be checked",
                "; ".join(missing + [u for f in files for u in f.unsupported]) or "none offered",
            )
        unsupported = [u for f in files for u in f.unsupported]
        if unsupported:
            return Signature(SignatureStatus.SIGSTORE_NOT_CHECKED, detail=f"not checked: {'; '.join(unsupported)}")
        return Signature(
            SignatureStatus.UNSIGNED,
            detail="not signed: no publish attestations offered (files checked against the index's sha256)",
        )
    publishers = ", ".join(dict.fromkeys(p.describe() for f in files for p in f.publishers))
    covered = ", ".join(f.filename for f in files if f.results)
    words = f"published by {publishers} (PEP 740, verified) for {covered}"
    if missing:
        words += f"; no publish attestation for {', '.join(missing)}"
    return Signature(SignatureStatus.SIGSTORE_VERIFIED, detail=f"{words}; {results[0].describe()}", sigstore=results)
