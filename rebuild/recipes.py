"""Recipe files: how to build one kind of artifact, as data.

A recipe names its builder image, the input groups the fetch stage brings,
its parameters, and the steps to run offline. Its file's sha256 is recorded
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
from rebuild.errors import RecipeError
from rebuild.image import ImageSpec
from rebuild.plan import BuildPlan, Environment, ImageRef, Inference, Input, Output, RecipeRef, Source

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
SCHEMA_FILE = "recipe.schema.json"


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    default: str | None


@dataclass(frozen=True)
class Recipe:
    name: str
    version: str
    description: str
    build_types: tuple[str, ...]
    image: ImageSpec
    input_groups: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    steps: tuple[str, ...]
    path: Path
    sha256: str  # of the file's bytes
    image_per_build: bool = False  # the adapter sets the image's packages per build (made when needed)

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
                filled[p.name] = values[p.name]
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
        """The plan that runs this recipe (its own image, or ``image`` for a per-build package set).

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

    def parameter_values(self, values: Mapping[str, str]) -> dict[str, str]:
        """Given values plus defaults, as recorded in a plan."""
        out = {p.name: p.default for p in self.parameters if p.default is not None}
        out.update(values)
        return out


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
    img = doc["image"]
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
        image=ImageSpec(
            name=img["name"],
            packages=tuple(img["packages"]),
            suite=img["suite"],
            mirror=img.get("mirror", ImageSpec.mirror),
            variant=img.get("variant", ImageSpec.variant),
            epoch=img["epoch"],
        ),
        input_groups=tuple(doc.get("inputs", [])),
        parameters=tuple(Parameter(name, spec["description"], spec.get("default")) for name, spec in params.items()),
        steps=tuple(doc["steps"]),
        path=path,
        sha256=sha256_bytes(raw),
        image_per_build=bool(img.get("per_build", False)),
    )


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

    def for_build_type(self, build_type: str) -> Recipe | None:
        for recipe in self.all():
            if build_type in recipe.build_types:
                return recipe
        return None
