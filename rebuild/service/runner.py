"""One attempt at one job: ``Verifier.verify``, the same code as ``rebuild verify``, with no key.

The worker holds no key. It runs the verifier with a signer that signs nothing, so the statements that
``rebuild verify --key`` would sign (SLSA provenance and a PASSED summary on a full match, a FAILED summary
pointing at the comparison report otherwise, and beside it a content-equivalence statement when only named
kinds of metadata differ: on unless ``rebuild init --no-content-equivalence``) are written unsigned; they go
to the blob directory with the reports, the build log and the rebuilt files, and only the service signs them
(``signing.py``). Every
sandbox container the job starts carries the worker's and the attempt's labels, so a container left by a
worker that was killed can be found and removed (``reap_containers``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare.errors import CompareError
from rebuild.attest import uris
from rebuild.batch import equivalence_column
from rebuild.build.sandbox import LABEL, Limits
from rebuild.errors import BuildFailedError, Error
from rebuild.pipeline import DEFAULT_MAX_INPUT_BYTES, Backends
from rebuild.python.wheelhouse import DEFAULT_INDEX
from rebuild.recipes import RecipeBook
from rebuild.report import VerifyReport
from rebuild.resolve.context import DEFAULT_DEBIAN_ARCHIVE
from rebuild.service import jobs
from rebuild.service.blobs import BlobStore
from rebuild.service.config import VERIFIER_VERSION
from rebuild.service.store import Claim
from rebuild.untrusted import printable
from rebuild.verify import Verifier

MAX_EQUIVALENCE = 2000  # characters of the equivalence label kept in the store
WORKER_LABEL = "dev.rebuild-verifier.service.worker"
SERVICE_LABEL = "dev.rebuild-verifier.service.id"  # one service's containers, never another's
ATTEMPT_LABEL = "dev.rebuild-verifier.service.attempt"


class NullSigner:
    """Signs nothing: the envelopes carry the exact payloads, with an empty signature, for the service."""

    keyid = ""

    def sign(self, data: bytes) -> bytes:
        return b""


@dataclass
class JobSettings:
    """How this worker runs jobs (the service's verifier id comes from the store)."""

    book: RecipeBook
    cache_dir: Path
    limits: Limits = field(default_factory=Limits)
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    index_url: str = DEFAULT_INDEX
    archive: str = DEFAULT_DEBIAN_ARCHIVE
    diffoscope: bool = True
    verifier_id: str = uris.VERIFIER_ID
    content_equivalence: bool = True  # the store's setting (``config.content_equivalence_of``)
    service_id: str = ""  # the store's (``config.service_id_of``): whose containers a reaper may remove


class _LabelledContainers:
    def __init__(self, containers: Any, labels: Mapping[str, str]) -> None:
        self._containers = containers
        self._labels = dict(labels)

    def create(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self._labels}
        return self._containers.create(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._containers, name)


class LabelledClient:
    """A Docker client whose new containers carry extra labels; everything else is the client's."""

    def __init__(self, client: Any, labels: Mapping[str, str]) -> None:
        self._client = client
        self.containers = _LabelledContainers(client.containers, labels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def job_engine(settings: JobSettings, claim: Claim) -> Backends:
    """The real engine, its containers labelled with this worker and attempt.

    Raises:
        DockerUnavailableError: no engine answers.
    """
    from rebuild.build.docker import connect
    from rebuild.build.images import ImageBuilder
    from rebuild.build.sandbox import DockerSandbox
    from rebuild.fetch.cache import BlobCache

    client = connect()
    labels = {WORKER_LABEL: claim.worker, ATTEMPT_LABEL: str(claim.attempt_id), SERVICE_LABEL: settings.service_id}
    labelled = LabelledClient(client, labels)
    return Backends(
        DockerSandbox(labelled), ImageBuilder(client, settings.cache_dir), BlobCache(settings.cache_dir),
        settings.limits, {}, settings.max_input_bytes,
    )  # fmt: skip


def outcome_of(error: Error | CompareError) -> str:
    """Which retry rule an error falls under: "different" and "could not tell" are not the same."""
    if error.exit_code == 1:
        return jobs.FAILED_VERIFICATION
    if error.exit_code == 2:
        return jobs.BAD_INPUT
    if isinstance(error, BuildFailedError) and "memory" not in error.message and "exit 137" not in error.message:
        return jobs.BUILD_FAILED
    return jobs.INFRASTRUCTURE  # fetch, Docker, image, timeout, out of memory


def run_claim(
    claim: Claim,
    settings: JobSettings,
    blobs: BlobStore,
    work_root: Path,
    engine: Callable[[JobSettings, Claim], Backends] = job_engine,
) -> tuple[str, dict[str, Any]]:
    """Verify the claimed target; return the outcome and the attempt's fields (blobs stored)."""
    out_dir = work_root / f"attempt-{claim.attempt_id}"
    verifier = Verifier(
        settings.book, settings.cache_dir, settings.limits, settings.max_input_bytes, NullSigner(),
        index_url=settings.index_url, archive=settings.archive, attest_failures=True,
        diffoscope=settings.diffoscope, verifier_id=settings.verifier_id,
        content_equivalence=settings.content_equivalence, connect_engine=lambda: engine(settings, claim),
    )  # fmt: skip
    fields: dict[str, Any] = {"verifier_version": VERIFIER_VERSION}
    try:
        try:
            report = verifier.verify(claim.target, out_dir)
        except (Error, CompareError) as e:
            outcome = outcome_of(e)
            fields.update(classification=outcome, detail=e.message, exit_code=e.exit_code)
        except Exception as e:  # a bug: counted as an infrastructure failure, so it is retried then given up
            outcome = jobs.INFRASTRUCTURE
            fields.update(classification="internal error", detail=f"{type(e).__name__}: {e}", exit_code=3)
        else:
            outcome = jobs.REPRODUCED if report.reproduced else jobs.NOT_REPRODUCED
            fields.update(_report_fields(report))
        fields.update(_store_files(out_dir, blobs))
        return outcome, fields
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def _report_fields(report: VerifyReport) -> dict[str, Any]:
    last = next((a for a in reversed(report.attempts) if a.outcome != "build failed"), None)  # the verdict's
    return {
        "classification": last.classification if last else "",
        "detail": f"{len(report.attempts)} candidate(s) tried"
        + (f"; matched: {last.label}" if report.reproduced and last else ""),
        "exit_code": 0 if report.reproduced else 1,
        "image_digest": report.plan.image.digest,
        "artifacts": {c.name: c.verdict.a.sha256 for c in report.comparisons},
        # what `rebuild verify --from` shows in its content-equivalent column; None when not decided
        "equivalence": printable(equivalence_column(report), MAX_EQUIVALENCE) or None,
    }


def _store_files(out_dir: Path, blobs: BlobStore) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, column in (("verify-report.json", "report_blob"), ("compare-report.json", "compare_blob"),
                         ("build.log", "log_blob")):  # fmt: skip
        if (out_dir / name).is_file():
            fields[column] = blobs.put_file(out_dir / name)
    html = sorted(p for p in out_dir.glob("diffoscope-*/diffoscope.html") if p.is_file() and not p.is_symlink())
    if html:  # the first differing artifact's report (most releases have one artifact)
        fields["diffoscope_blob"] = blobs.put_file(html[0])
    bundles = sorted(out_dir.glob("*.intoto.jsonl"))
    if bundles:
        fields["statements_blob"] = blobs.put_bytes(b"".join(p.read_bytes() for p in bundles))
    rebuilt = out_dir / "rebuilt"
    if rebuilt.is_dir():
        fields["rebuilt_blobs"] = {
            p.relative_to(rebuilt).as_posix(): blobs.put_file(p)
            for p in sorted(rebuilt.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
    return fields


def reap_containers(client: Any, service_id: str, live_workers: set[str], only_worker: str | None = None) -> list[str]:
    """Remove this service's sandbox containers left by workers that are no longer alive (or all of
    ``only_worker``'s). Another service's on the same engine are never touched: its workers are not ours.
    """
    from docker.errors import DockerException

    removed: list[str] = []
    mine = {"label": [LABEL, WORKER_LABEL, f"{SERVICE_LABEL}={service_id}"]}
    try:
        found = client.containers.list(all=True, filters=mine, ignore_removed=True)
    except DockerException:
        return removed
    for container in found:
        owner = (container.labels or {}).get(WORKER_LABEL, "")
        if (only_worker is not None and owner == only_worker) or (only_worker is None and owner not in live_workers):
            try:
                container.remove(force=True)
                removed.append(container.name)
            except DockerException:
                continue
    return removed
