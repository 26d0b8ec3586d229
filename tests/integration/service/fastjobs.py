"""Fast jobs for the service tests: provenance of the stock `command` recipe whose build only copies a file.

The source tarball holds ``data-N.txt``; the command is ``true`` (or a ``sleep`` for a job that must still be
running when a worker is killed) and the output is that file, so its digest is known without building: a
provenance file is written in-process in milliseconds, and its rebuild is one short container run.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

from compare.digest import sha256_bytes
from rebuild.attest import statements
from rebuild.attest.dsse import sign
from rebuild.attest.envelopes import write_jsonl
from rebuild.plan import Environment, Output, Source
from rebuild.recipes import RecipeBook

EPOCH = 1700000000


def tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def fast_release(
    directory: Path, n: int, image_digest: str, command: str = "true", published: bytes | None = None
) -> Path:
    """A release of ``data-N.txt`` with its provenance; ``published`` other bytes makes it not reproduce."""
    content = f"release {n}\n".encode()
    return copied_release(directory, f"data-{n}.txt", content, image_digest, command, published, f"fast-{n}")


def copied_release(
    directory: Path, name: str, content: bytes, image_digest: str, command: str = "true",
    published: bytes | None = None, stem: str | None = None,
) -> Path:
    """A release of ``name``, which its source tarball holds as ``content`` and the `command` recipe copies
    out; the published file is ``published`` (default: ``content``, so it reproduces). Returns the signed
    provenance's path (``STEM-source.tar`` beside it).
    """
    directory.mkdir(parents=True, exist_ok=True)
    source = tarball({name: content})
    source_name = f"{stem or name}-source.tar"
    (directory / source_name).write_bytes(source)
    artifact = published if published is not None else content
    (directory / name).write_bytes(artifact)
    recipe = RecipeBook().get("command")
    plan = recipe.plan(
        Source(source_name, sha256_bytes(source), "tarball"),
        {"command": command, "outputs": name},
        Environment(source_date_epoch=EPOCH),
        outputs=(Output(name, sha256_bytes(artifact)),),
        image_digest=image_digest,
    )
    payload = statements.rebuild_provenance(
        plan.subjects(), plan.external_parameters(), plan.resolved_dependencies(), invocation_id=str(uuid.uuid4()),
        started_on="2024-01-01T00:00:00Z", finished_on="2024-01-01T00:00:01Z",
    )  # fmt: skip
    provenance = directory / f"{name}.provenance.intoto.jsonl"
    write_jsonl(provenance, [sign(payload, [])])
    return provenance
