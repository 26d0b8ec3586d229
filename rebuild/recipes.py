"""Recipe files: how to build one kind of artifact, as data.

A recipe names its builder image (or several, most preferred first: a Python
recipe runs on one image per Python version), the input groups the fetch
stage brings, its parameters, and the steps to run offline. Its file's sha256 is recorded
in every plan, so a rebuild proves which recipe it ran. Recipes ship inside
the installed package (``rebuild/recipes``) and a user may add a directory of
their own, searched first.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compare.digest import sha256_bytes
from rebuild import fields
from rebuild.build.images import ImageSpec
from rebuild.errors import InputError, PlanError, RecipeError
from rebuild.plan import BuildPlan, Environment, ImageRef, Inference, Input, Output, RecipeRef, Source

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
SCHEMA_FILE = "recipe.schema.json"


DEFAULT_PARAMETER_PATTERN = r"[A-Za-z0-9._+=:/,@%~-]*"  # one word: never read by the shell as anything else


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    default: str | None
    pattern: str = DEFAULT_PARAMETER_PATTERN  # what a value must match in full (data parameters)
    code: bool = False  # the value is shell code that runs in the sandbox (the command recipe's command)

    def check(self, value: str, recipe: str) -> str:
        """Raises: PlanError: a data parameter's value does not match its pattern."""
        if not self.code and not re.fullmatch(self.pattern, value):
            raise fields.fail(f"recipe {recipe} parameter {self.name}", value, f"it must match {self.pattern}")
        return value


@dataclass(frozen=True)
class RecipeImage:
    """One builder image a recipe may run on, with what the recipe states of it.

    ``python`` and ``platform`` are for recipes that build Python: the adapter resolves the build
    requirements for that interpreter and C library, before the image exists (the integration
    tests check them against the images).
    """

    spec: ImageSpec
    python: str = ""  # the image's python3, X.Y.Z (Debian bookworm: 3.11.2)
    platform: str = ""  # the newest wheel platform tag its C library runs (glibc 2.36: manylinux_2_36_x86_64)

    @property
    def label(self) -> str:
        return f"Python {self.python} (Debian {self.spec.suite})" if self.python else f"Debian {self.spec.suite}"


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    description: str
    build_types: tuple[str, ...]
    image: ImageSpec  # the first (most preferred) of ``images``
    input_groups: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    steps: tuple[str, ...]
    path: Path
    sha256: str  # of the file's bytes
    image_per_build: bool = False  # the adapter sets the image's packages per build (made when needed)
    registry_images: tuple[str, ...] = ()  # name@sha256:... references a plan may name instead of the built image
    byproducts: tuple[str, ...] = ()  # glob patterns of other files kept from /out (never compared or attested)
    images: tuple[RecipeImage, ...] = ()  # every image a plan may name, most preferred first (``image`` is first)

    @property
    def builder_images(self) -> tuple[RecipeImage, ...]:
        """The images a plan of this recipe may run on, most preferred first."""
        return self.images or (RecipeImage(self.image),)

    @property
    def code_parameters(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.code)

    def render_steps(self, values: Mapping[str, str], build_path: str) -> tuple[str, ...]:
        """The steps with ``{{name}}`` placeholders filled in.

        Raises:
            RecipeError: a required parameter is missing, or an unknown one given.
        """
        known = {p.name for p in self.parameters}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RecipeError(
                f"recipe {self.name} has no parameter {', '.join(unknown)}",
                f"its parameters are: {', '.join(sorted(known)) or 'none'}",
            )
        filled = {"build_path": build_path}
        for p in self.parameters:
            if p.name in values:
                filled[p.name] = p.check(values[p.name], self.name)
            elif p.default is not None:
                filled[p.name] = p.default
            else:
                raise RecipeError(
                    f"recipe {self.name} needs parameter {p.name!r} ({p.description})",
                    f"pass --param {p.name}=VALUE",
                )
        return tuple(_PLACEHOLDER.sub(lambda m: filled[m.group(1)], step) for step in self.steps)

    def plan(
        self,
        source: Source,
        values: Mapping[str, str],
        environment: Environment,
        *,
        inputs: Sequence[Input] = (),
        outputs: Sequence[Output] = (),
        inferences: Sequence[Inference] = (),
        deviations: Sequence[str] = (),
        image: ImageSpec | None = None,
        image_digest: str = "",
    ) -> BuildPlan:
        """The plan that runs this recipe: its first image, or ``image`` (another of its images, or a
        per-build package set).

        An empty ``image_digest`` is filled in when the image stage has the image.
        """
        spec = image or self.image
        return BuildPlan(
            source=source,
            recipe=RecipeRef(self.name, self.version, self.sha256),
            parameters=self.parameter_values(values),
            image=ImageRef(spec.tag, image_digest, spec.as_dict()),
            inputs=tuple(inputs),
            environment=environment,
            steps=self.render_steps(values, environment.build_path),
            outputs=tuple(outputs),
            inferences=tuple(inferences),
            deviations=tuple(deviations),
        )

    def check_plan(self, plan: BuildPlan) -> None:
        """A plan read from a document must be exactly what this recipe makes of its parameters.

        The steps, the builder image and the outputs' shape come from the recipe, never from the
        document: a document only chooses the values of the recipe's parameters (each checked by its
        pattern), the environment (checked by ``fields``) and, for per-build images, the Debian
        package set (checked by Debian's grammar).

        Raises:
            RecipeError: the document used another version of this recipe.
            PlanError: the steps or the builder image are not what the recipe gives.
        """
        if self.sha256 != plan.recipe.sha256:
            raise RecipeError(
                f"recipe {plan.recipe.name} here (version {self.version}, sha256 {self.sha256[:16]}...) is not the "
                f"one the provenance used (version {plan.recipe.version}, sha256 {plan.recipe.sha256[:16]}...)",
                "install the rebuild-verifier release with that recipe, or pass --recipes DIR holding it",
            )
        if self.render_steps(plan.parameters, plan.environment.build_path) != plan.steps:
            raise PlanError("the provenance's steps are not what its recipe and parameters give")
        if not plan.image.spec:
            if plan.image.reference not in self.registry_images:
                raise PlanError(
                    f"builder image {plan.image.reference!r} is not one recipe {self.name} allows",
                    "the builder image comes from the recipe, never from the document",
                )
            return
        spec = ImageSpec.from_dict(plan.image.spec)
        own = [image.spec for image in self.builder_images]
        if self.image_per_build:  # the package set is the build's (Debian); the rest is the recipe's
            base = self.image
            own = [ImageSpec(base.name, spec.packages, spec.suite, spec.mirror, base.variant, base.epoch)]
        if spec not in own:
            closest = next((o for o in own if o.suite == spec.suite), own[0])
            which = f"recipe {self.name}'s" if len(own) == 1 else f"one of recipe {self.name}'s {len(own)} images"
            raise PlanError(
                f"the provenance's builder image spec is not {which} ({_spec_difference(spec, closest)})",
                "the builder image comes from the recipe, never from the document",
            )

    def parameter_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """Given values plus defaults, as recorded in a plan."""
        out = {p.name: p.default for p in self.parameters if p.default is not None}
        out.update(values)
        return out


def parse_parameters(values: Sequence[str]) -> dict[str, str]:
    """``--param NAME=VALUE`` options as a mapping (each value is checked later by its recipe's pattern).

    Raises:
        InputError: an option is not NAME=VALUE.
    """
    params = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param {item!r} is not NAME=VALUE")
        params[key] = value
    return params


def _spec_difference(got: ImageSpec, want: ImageSpec) -> str:
    a, b = got.as_dict(), want.as_dict()
    return "; ".join(f"{k}: {a[k]!r} instead of {b[k]!r}" for k in sorted(a) if a[k] != b[k])


def bundled_recipes_dir() -> Path:
    """The recipes shipped with the package (or the source tree's, when running from a checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "recipes", here.parent / "recipes"):
        if (candidate / SCHEMA_FILE).is_file():
            return candidate
    raise RecipeError("the bundled recipes are missing from this installation", "reinstall rebuild-verifier")


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((bundled_recipes_dir() / SCHEMA_FILE).read_text())
    return loaded


def load_recipe_file(path: Path) -> Recipe:
    """Parse and validate one recipe file.

    Raises:
        RecipeError: unreadable, not TOML, or not valid against the schema.
    """
    import jsonschema

    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RecipeError(f"recipe {path}: {e}") from e
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda err: list(err.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(top level)"
        raise RecipeError(f"recipe {path}: {where}: {first.message}")
    images = tuple(_recipe_image(img) for img in (doc["images"] if "images" in doc else [doc["image"]]))
    img = doc["images"][0] if "images" in doc else doc["image"]
    placeholders = {m.group(1) for step in doc["steps"] for m in _PLACEHOLDER.finditer(step)}
    params = doc.get("parameters", {})
    undeclared = sorted(placeholders - set(params) - {"build_path"})
    if undeclared:
        raise RecipeError(f"recipe {path}: steps use undeclared parameters {', '.join(undeclared)}")
    return Recipe(
        name=doc["name"],
        version=doc["version"],
        description=doc["description"],
        build_types=tuple(doc["build_types"]),
        image=images[0].spec,
        input_groups=tuple(doc.get("inputs", [])),
        parameters=tuple(
            Parameter(
                name,
                spec["description"],
                spec.get("default"),
                spec.get("pattern", DEFAULT_PARAMETER_PATTERN),
                bool(spec.get("code", False)),
            )
            for name, spec in params.items()
        ),
        steps=tuple(doc["steps"]),
        path=path,
        sha256=sha256_bytes(raw),
        image_per_build=bool(img.get("per_build", False)),
        registry_images=tuple(img.get("registry", [])),
        byproducts=tuple(doc.get("byproducts", [])),
        images=images,
    )


def _recipe_image(img: Mapping[str, Any]) -> RecipeImage:
    """One ``[image]`` / ``[[images]]`` table, already valid against the schema."""
    spec = ImageSpec(
        name=img["name"],
        packages=tuple(img["packages"]),
        suite=img["suite"],
        mirror=img.get("mirror", ImageSpec.mirror),
        variant=img.get("variant", ImageSpec.variant),
        epoch=img["epoch"],
    )
    return RecipeImage(spec, img.get("python", ""), img.get("platform", ""))


class RecipeBook:
    """The recipes available to a run: the user's directories first, then the bundled ones."""

    def __init__(self, extra_dirs: Sequence[Path] = ()) -> None:
        self.dirs = (*extra_dirs, bundled_recipes_dir())

    def names(self) -> list[str]:
        return sorted({p.stem for d in self.dirs for p in d.glob("*.toml")})

    def get(self, name: str) -> Recipe:
        """Raises: RecipeError: no recipe has that name."""
        for d in self.dirs:
            path = d / f"{name}.toml"
            if path.is_file():
                return load_recipe_file(path)
        raise RecipeError(f"no recipe named {name!r}", f"known recipes: {', '.join(self.names())}")

    def all(self) -> list[Recipe]:
        return [self.get(name) for name in self.names()]

    def fixed_images(self, names: Sequence[str] = ()) -> list[ImageSpec]:
        """The builder images of these recipes (all when none named; every image of a recipe that has
        several), each once; per-build images are made when a build needs them, so they are not among them."""
        chosen = [self.get(name) for name in names] if names else [r for r in self.all() if not r.image_per_build]
        specs = [image.spec for r in chosen if not r.image_per_build for image in r.builder_images]
        return list({spec.tag: spec for spec in specs}.values())

    def for_build_type(self, build_type: str) -> Recipe | None:
        for recipe in self.all():
            if build_type in recipe.build_types:
                return recipe
        return None
