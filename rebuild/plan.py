"""The BuildPlan: everything a hermetic rebuild needs, complete and immutable.

A plan round-trips through this project's own SLSA provenance v1: the
user-controlled parts go in ``externalParameters``, every input with its
digest in ``resolvedDependencies`` (source, recipe, builder image, other
inputs), and the expected outputs are the statement's subjects. So a
provenance written by ``rebuild build`` is all ``rebuild verify`` needs.
Reading one back is strict: a missing field is a ``PlanError`` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from compare.digest import is_valid_hex
from rebuild import fields
from rebuild.attest import uris
from rebuild.attest.statements import ParsedStatement, ResourceRef, Subject
from rebuild.errors import PlanError
from rebuild.untrusted import dig, require

SOURCE_KINDS = ("tarball", "sdist", "git", "dsc")
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PROVENANCE = "provenance"  # how messages name the document a plan is read back from


@dataclass(frozen=True)
class Source:
    uri: str
    sha256: str  # of the bytes fetched (for git: of the exported tree tarball)
    kind: str = "tarball"
    commit: str = ""  # git only

    def __post_init__(self) -> None:
        fields.source_uri("source uri", self.uri)
        fields.sha256("source sha256", self.sha256)
        if self.kind not in SOURCE_KINDS:
            raise fields.fail("source kind", self.kind, f"it must be one of {', '.join(SOURCE_KINDS)}")
        if self.kind == "git":
            fields.git_commit(self.commit)
            if not self.uri.startswith("git+"):
                raise fields.fail("git source uri", self.uri, "it must start with git+")
        elif self.commit or self.uri.startswith("git+"):
            raise fields.fail("source commit", self.commit or self.uri, "only a git source has a commit")


@dataclass(frozen=True)
class RecipeRef:
    name: str
    version: str
    sha256: str

    def __post_init__(self) -> None:
        fields.check_str("recipe name", self.name, fields.NAME, "it must be lowercase letters, digits and -")
        fields.check_str("recipe version", self.version, fields.VERSION, "it must be a version number")
        fields.sha256("recipe sha256", self.sha256)


@dataclass(frozen=True)
class ImageRef:
    reference: str  # a tag we made, or name@sha256:...
    digest: str  # the image ID the engine runs (sha256:...); empty until the image stage has it
    spec: Mapping[str, Any] = field(default_factory=dict)  # how to make it again (ImageSpec.as_dict)

    def __post_init__(self) -> None:
        from rebuild.build.images import ImageSpec, require_pinned

        if self.digest:
            fields.check_str("builder image digest", self.digest, IMAGE_DIGEST, "it must be sha256:<64 hex>")
        if self.spec:
            spec = ImageSpec.from_dict(self.spec)
            if self.reference != spec.tag:
                raise fields.fail("builder image reference", self.reference, f"its spec makes {spec.tag}")
        else:
            require_pinned(self.reference)


@dataclass(frozen=True)
class Input:
    group: str  # mounted at /inputs/<group>/<filename>
    filename: str
    uri: str
    sha256: str

    def __post_init__(self) -> None:
        fields.component("input group", self.group)
        fields.component("input file name", self.filename)
        fields.source_uri(f"input {self.filename} uri", self.uri)
        fields.sha256(f"input {self.filename} sha256", self.sha256)


@dataclass(frozen=True)
class Environment:
    source_date_epoch: int | None
    build_path: str = "/build"
    tz: str = "UTC"
    locale: str = "C.UTF-8"
    umask: str = "0022"
    extra: Mapping[str, str] = field(default_factory=dict)  # recorded variables (DEB_BUILD_OPTIONS, ...)

    def __post_init__(self) -> None:
        fields.epoch("SOURCE_DATE_EPOCH", self.source_date_epoch)
        fields.absolute_path("build path", self.build_path)
        fields.check_str("TZ", self.tz, fields.TZ, "it must be a time zone name or POSIX TZ rule")
        fields.check_str("locale", self.locale, fields.LOCALE, "it must be a locale name such as C.UTF-8")
        fields.umask(self.umask)
        fields.environment_extra(self.extra)

    def variables(self) -> dict[str, str]:
        """The build's whole environment: nothing else reaches the container."""
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "TZ": self.tz,
            "LANG": self.locale,
            "LC_ALL": self.locale,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_NO_INPUT": "1",
        }
        env.update(self.extra)
        if self.source_date_epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(self.source_date_epoch)
        return env


@dataclass(frozen=True)
class Output:
    name: str
    sha256: str | None = None

    def __post_init__(self) -> None:
        fields.relative_path("output name", self.name)
        if self.sha256 is not None:
            fields.sha256(f"output {self.name} sha256", self.sha256)


@dataclass(frozen=True)
class Inference:
    """A value the provenance did not record, and why we chose it."""

    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class BuildPlan:
    source: Source
    recipe: RecipeRef
    parameters: Mapping[str, str]
    image: ImageRef
    inputs: tuple[Input, ...]
    environment: Environment
    steps: tuple[str, ...]
    outputs: tuple[Output, ...]
    inferences: tuple[Inference, ...] = ()
    deviations: tuple[str, ...] = ()  # where the rebuild knowingly differs from what was recorded

    def __post_init__(self) -> None:
        fields.parameters(self.parameters)
        if not all(isinstance(step, str) and "\0" not in step for step in self.steps):
            raise fields.fail("steps", self.steps, "they must be text")
        names = [o.name for o in self.outputs]
        if len(set(names)) != len(names):
            raise fields.fail("outputs", names, "each output is named once")
        if not all(isinstance(t, str) for t in (*self.deviations,)):
            raise fields.fail("deviations", self.deviations, "they must be text")

    # --- to provenance ------------------------------------------------------

    def external_parameters(self) -> dict[str, Any]:
        env = self.environment
        return {
            "source": {"uri": self.source.uri, "kind": self.source.kind, "commit": self.source.commit},
            "recipe": {"name": self.recipe.name, "version": self.recipe.version},
            "parameters": dict(sorted(self.parameters.items())),
            "builderImage": {"reference": self.image.reference, "spec": dict(self.image.spec)},
            "environment": {
                "SOURCE_DATE_EPOCH": env.source_date_epoch,
                "buildPath": env.build_path,
                "TZ": env.tz,
                "locale": env.locale,
                "umask": env.umask,
                "extra": dict(sorted(env.extra.items())),
            },
            "steps": list(self.steps),
            "outputs": [o.name for o in self.outputs],
            "inferences": [{"field": i.field, "value": i.value, "reason": i.reason} for i in self.inferences],
            "deviations": list(self.deviations),
        }

    def resolved_dependencies(self) -> list[ResourceRef]:
        deps = [
            ResourceRef(self.source.uri, _source_digest(self.source), name="source"),
            ResourceRef(
                f"rebuild-recipe:{self.recipe.name}@{self.recipe.version}",
                {"sha256": self.recipe.sha256},
                name="recipe",
            ),
            ResourceRef(
                f"docker-image:{self.image.reference}",
                {"sha256": self.image.digest.removeprefix("sha256:")},
                name="builder-image",
            ),
        ]
        deps += [ResourceRef(i.uri, {"sha256": i.sha256}, name=f"input:{i.group}/{i.filename}") for i in self.inputs]
        return deps

    def subjects(self) -> list[Subject]:
        return [Subject(o.name, {"sha256": o.sha256}) for o in self.outputs if o.sha256]


def _source_digest(source: Source) -> dict[str, str]:
    digest = {"sha256": source.sha256}
    if source.commit:
        digest["gitCommit"] = source.commit
    return digest


# --- from provenance -------------------------------------------------------------


def _invalid(message: str) -> PlanError:
    return PlanError(message, "the provenance cannot be rebuilt without it")


def _optional_list(doc: Mapping[str, Any], name: str) -> list[Any]:
    return require(doc, name, list, PROVENANCE, _invalid) if name in doc else []


def _sha256_of(dep: Mapping[str, Any], what: str) -> str:
    value = dig(dep, "digest", "sha256")
    if not isinstance(value, str) or not is_valid_hex("sha256", value):
        raise PlanError(f"resolvedDependencies entry {what!r} has no valid sha256 digest")
    return value


def plan_from_provenance(stmt: ParsedStatement) -> BuildPlan:
    """Read a plan back from this project's own SLSA provenance v1.

    Raises:
        PlanError: another buildType, or a field is missing or malformed.
    """
    if stmt.predicate_type != uris.SLSA_PROVENANCE_V1:
        raise PlanError(f"not a SLSA provenance v1 statement ({stmt.predicate_type})")
    p = stmt.predicate
    build_type = require(p, "buildDefinition.buildType", str, PROVENANCE, _invalid)
    if build_type != uris.BUILD_TYPE:
        raise PlanError(
            f"buildType {build_type!r} is not rebuild-verifier's; no adapter reads it yet",
            f"this version reads provenance with buildType {uris.BUILD_TYPE}",
        )
    ext = require(p, "buildDefinition.externalParameters", dict, PROVENANCE, _invalid)
    deps = {
        d["name"]: d
        for d in require(p, "buildDefinition.resolvedDependencies", list, PROVENANCE, _invalid)
        if isinstance(d, Mapping) and isinstance(d.get("name"), str)
    }
    for needed in ("source", "recipe", "builder-image"):
        if needed not in deps:
            raise PlanError(f"provenance is missing resolvedDependencies entry {needed!r}")
    env = require(ext, "environment", dict, PROVENANCE, _invalid)
    epoch = env.get("SOURCE_DATE_EPOCH")
    if epoch is not None and not isinstance(epoch, int):
        raise PlanError("provenance field 'environment.SOURCE_DATE_EPOCH' is not an integer")
    src_digest = require(deps["source"], "digest", dict, PROVENANCE, _invalid)
    inputs = []
    for name, dep in deps.items():
        if isinstance(name, str) and name.startswith("input:"):
            group, _, filename = name.removeprefix("input:").partition("/")
            inputs.append(Input(group, filename, require(dep, "uri", str, PROVENANCE, _invalid), _sha256_of(dep, name)))
    expected = {s.name: s.digest.get("sha256") for s in stmt.subjects}
    names = require(ext, "outputs", list, PROVENANCE, _invalid)
    if not all(isinstance(name, str) for name in names):
        raise PlanError("provenance field 'outputs' must be a list of file names")
    outputs = tuple(Output(name, expected.get(name)) for name in names)
    image_digest = "sha256:" + _sha256_of(deps["builder-image"], "builder-image")
    return BuildPlan(
        source=Source(
            require(ext, "source.uri", str, PROVENANCE, _invalid),
            _sha256_of(deps["source"], "source"),
            require(ext, "source.kind", str, PROVENANCE, _invalid),
            str(src_digest.get("gitCommit", "")),
        ),
        recipe=RecipeRef(
            require(ext, "recipe.name", str, PROVENANCE, _invalid),
            require(ext, "recipe.version", str, PROVENANCE, _invalid),
            _sha256_of(deps["recipe"], "recipe"),
        ),
        parameters=dict(require(ext, "parameters", dict, PROVENANCE, _invalid)),
        image=ImageRef(
            require(ext, "builderImage.reference", str, PROVENANCE, _invalid),
            image_digest,
            dict(require(ext, "builderImage.spec", dict, PROVENANCE, _invalid)),
        ),
        inputs=tuple(sorted(inputs, key=lambda i: (i.group, i.filename))),
        environment=Environment(
            epoch,
            require(env, "buildPath", str, PROVENANCE, _invalid),
            require(env, "TZ", str, PROVENANCE, _invalid),
            require(env, "locale", str, PROVENANCE, _invalid),
            require(env, "umask", str, PROVENANCE, _invalid),
            fields.environment_extra(env.get("extra") or {}),
        ),
        steps=tuple(require(ext, "steps", list, PROVENANCE, _invalid)),
        outputs=outputs,
        inferences=tuple(
            Inference(str(i.get("field")), str(i.get("value")), str(i.get("reason")))
            for i in _optional_list(ext, "inferences")
            if isinstance(i, Mapping)
        ),
        deviations=tuple(str(d) for d in _optional_list(ext, "deviations") if isinstance(d, str)),
    )
