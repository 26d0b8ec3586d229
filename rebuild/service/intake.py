"""Targets into jobs: resolve each target once, and key the job by what decides its result.

Resolving at intake gives the upstream digests (published files, source, inputs, the provenance
document), the recipe and the builder image of every candidate plan, so the key changes exactly when
the work does. A target that does not resolve is queued all the same, keyed by the target and the error,
and a worker records why it cannot be verified: a failure is a result, kept like any other.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.digest import sha256_file
from rebuild.errors import Error
from rebuild.resolution import Resolution
from rebuild.service import jobs
from rebuild.service.config import VERIFIER_VERSION
from rebuild.service.store import Store

Resolver = Callable[[str, Path], Resolution]  # (target, work directory) -> resolution
_NAME_VERSION = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._+-]*?)-(?P<version>[0-9][A-Za-z0-9._+~-]*?)"
                           r"(?:\.tar\.gz|\.tgz|\.tar\.xz|\.tar|\.zip|\.whl|\.deb|\.jar|\.gem|\.crate)?")  # fmt: skip


@dataclass(frozen=True)
class Described:
    target: str  # normalized
    where: tuple[str, str, str]  # ecosystem, name, version: where its bundles are published
    decided_by: dict[str, Any]

    @property
    def key(self) -> str:
        return jobs.job_key(self.decided_by)


def normalize(target: str) -> str:
    """``pypi:Name==1.0`` -> ``pypi:name==1.0``; a file -> its absolute path."""
    if target.startswith("pypi:"):
        from packaging.utils import canonicalize_name

        name, sep, version = target.removeprefix("pypi:").partition("==")
        return f"pypi:{canonicalize_name(name.strip())}{sep}{version.strip()}"
    if target.startswith("deb:"):
        return target.strip()
    return str(Path(target).resolve())


def describe(target: str, resolution: Resolution | None, error: Error | None = None) -> Described:
    target = normalize(target)
    decided: dict[str, Any] = {"target": target, "verifier": VERIFIER_VERSION}
    if resolution is None:
        decided["unresolved"] = error.message if error else "not resolved"
        return Described(target, _where_unresolved(target), decided)
    summary = resolution.summary
    if summary.get("ecosystem") == "pypi":
        target = f"pypi:{summary.get('project')}=={summary.get('version')}"
        decided["target"] = target
        where = ("pypi", _canonical(str(summary.get("project"))), str(summary.get("version")))  # as purls name it
    elif summary.get("ecosystem") == "debian":
        where = ("debian", str(summary.get("source")), str(summary.get("version")))
    else:
        where = _where_file(resolution)
    decided["published"] = {name: sha256_file(path) for name, path in sorted(resolution.published.items())}
    if Path(target).is_file():
        decided["origin"] = sha256_file(Path(target))
    decided["candidates"] = [
        {
            "plan": jobs.job_key(c.plan.external_parameters()),
            "recipe": c.plan.recipe.sha256,
            "image": c.plan.image.digest or c.plan.image.reference,
            "source": c.plan.source.sha256,
            "inputs": sorted(i.sha256 for i in c.plan.inputs),
        }
        for c in resolution.candidates
    ]
    return Described(target, where, decided)


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def _where_unresolved(target: str) -> tuple[str, str, str]:
    if target.startswith("pypi:"):
        name, _, version = target.removeprefix("pypi:").partition("==")
        return ("pypi", name, version or "latest")
    if target.startswith("deb:"):
        name, _, version = target.removeprefix("deb:").partition("=")
        return ("debian", name, version or "latest")
    return ("generic", Path(target).name, "unresolved")


def _where_file(resolution: Resolution) -> tuple[str, str, str]:
    first = sorted(resolution.published)[0]
    m = _NAME_VERSION.fullmatch(Path(first).name)
    if m:
        return ("generic", m.group("name"), m.group("version"))
    return ("generic", Path(first).name, "sha256-" + sha256_file(resolution.published[first])[:16])


def add_targets(
    store: Store,
    targets: Sequence[str],
    tags: str,
    resolver: Resolver,
    progress: Callable[[str, str], None] = lambda s, m: None,
) -> list[dict[str, Any]]:
    """Queue each target once (its key decides); a target that does not resolve is queued unresolved."""
    rows = []
    for target in targets:
        progress("queue", target)
        with tempfile.TemporaryDirectory(prefix="rebuild-intake-") as tmp:
            try:
                described = describe(target, resolver(target, Path(tmp)))
                note = ""
            except Error as e:
                described = describe(target, None, e)
                note = f"does not resolve ({e.message}): a worker will record why"
        job, created = store.add_job(described.target, described.where, described.key, described.decided_by, tags)
        rows.append(
            {
                "target": described.target,
                "key": job.key,
                "queued": created,
                "status": job.status if created else f"already known ({job.status})",
                "tags": job.tags,
                "note": note,
            }
        )
    return rows


def resolver_for(
    book: Any, cache_dir: Path, index_url: str, progress: Callable[[str, str], None] = lambda s, m: None
) -> Resolver:
    """Resolve as `rebuild verify` does (the same adapters, cache and index)."""
    from rebuild.fetch.cache import BlobCache
    from rebuild.resolve import resolve
    from rebuild.resolve.context import ResolveContext

    def resolve_one(target: str, work: Path) -> Resolution:
        context = ResolveContext(BlobCache(cache_dir), book, work, index_url=index_url, progress=progress)
        return resolve(target, context)

    return resolve_one
