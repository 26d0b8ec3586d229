"""`rebuild build`: a project's own hermetic build, and the provenance that lets anyone rebuild it."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.digest import sha256_bytes, sha256_file
from rebuild.attest import statements
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.keys import Signer
from rebuild.errors import InputError, RecipeError
from rebuild.fetch.tree import default_epoch, pack_tree, read_settings
from rebuild.npm import cache as npm_cache
from rebuild.npm.lockfile import lockfile_from_tree
from rebuild.pipeline import Backends, Progress, Stages, run_plan, sign
from rebuild.plan import BuildPlan, Environment, Inference, Input, Output, Source
from rebuild.recipes import RecipeBook


@dataclass
class BuildReport:
    plan: BuildPlan
    artifacts: dict[str, str]  # name -> sha256
    provenance: Path
    source_archive: Path
    signed: bool
    stages: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "artifacts": self.artifacts,
            "provenance": str(self.provenance),
            "source": str(self.source_archive),
            "signed": self.signed,
            "plan": self.plan.external_parameters(),
            "stages": self.stages,
        }


def build_release(
    tree: Path,
    out_dir: Path,
    engine: Backends,
    book: RecipeBook,
    *,
    recipe_name: str | None = None,
    parameters: Mapping[str, str] | None = None,
    source_date_epoch: int | None = None,
    signer: Signer | None = None,
    requirements_resolver: Callable[[Path], tuple[tuple[Input, ...], tuple[Inference, ...]]] | None = None,
    progress: Progress = lambda s, m: None,
) -> BuildReport:
    """Build ``tree`` hermetically; write the artifacts, the source archive and the provenance into ``out_dir``."""
    stages = Stages(progress)
    with stages.stage("resolve", f"planning the build of {tree}"):
        settings = read_settings(tree)
        name = recipe_name or settings.recipe
        if not name:
            raise InputError(f"no recipe for {tree}", "pass --recipe NAME or set [build] recipe in rebuild.toml")
        recipe = book.get(name)
        params = {**settings.parameters, **(parameters or {})}
        inferences: list[Inference] = []
        epoch = source_date_epoch if source_date_epoch is not None else settings.source_date_epoch
        if epoch is None:
            epoch, why = default_epoch(tree)
            inferences.append(Inference("SOURCE_DATE_EPOCH", str(epoch), why))
        env = Environment(source_date_epoch=epoch)
        recipe.render_steps(params, env.build_path)  # a missing or unknown parameter fails here, before any work
        out_dir.mkdir(parents=True, exist_ok=True)
        source_bytes = pack_tree(tree, epoch, exclude=(out_dir,))
        source_sha = sha256_bytes(source_bytes)
        source_name = f"{tree.resolve().name}-source-{source_sha[:12]}.tar"
        (out_dir / source_name).write_bytes(source_bytes)
        inputs: tuple[Input, ...] = ()
        if "wheelhouse" in recipe.input_groups:
            if requirements_resolver is None:
                raise RecipeError(f"recipe {recipe.name} needs a wheelhouse and no resolver was given")
            inputs, inferred = requirements_resolver(tree)
            inferences.extend(inferred)
        if npm_cache.GROUP in recipe.input_groups:  # the tarballs the tree's package-lock.json pins
            lockfile = lockfile_from_tree(tree)
            if lockfile is None:
                raise InputError(f"recipe {recipe.name} needs a package-lock.json in {tree}", "run npm install first")
            inputs, inferred = npm_cache.fetch_locked(lockfile, engine.cache, stages.progress, engine.max_input_bytes)
            inferences.extend(inferred)
    with stages.stage("image", f"builder image {recipe.image.tag}"):
        image = engine.images.ensure(recipe.image)
    plan = recipe.plan(
        Source(source_name, source_sha, "tarball"), params, env, inputs=inputs, inferences=inferences,
        image_digest=image.digest,
    )  # fmt: skip
    started = statements.now_rfc3339()
    with tempfile.TemporaryDirectory(prefix="rebuild-build-") as tmp:
        result = run_plan(plan, engine, Path(tmp), stages, base_dir=out_dir, log_path=out_dir / "build.log")
        artifacts = {}
        for rel, path in sorted(result.outputs.items()):
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            artifacts[rel] = sha256_file(dest)
    plan = dataclasses.replace(plan, outputs=tuple(Output(n, s) for n, s in artifacts.items()))
    with stages.stage("attest", "writing the provenance"):
        payload = statements.rebuild_provenance(
            plan.subjects(),
            plan.external_parameters(),
            plan.resolved_dependencies(),
            invocation_id=str(uuid.uuid4()),
            started_on=started,
            finished_on=statements.now_rfc3339(),
        )
        provenance = out_dir / f"{next(iter(artifacts))}.provenance.intoto.jsonl"
        write_jsonl(provenance, [sign(payload, signer)])
    return BuildReport(plan, artifacts, provenance, out_dir / source_name, signer is not None, stages.seconds)
