"""Recipes (schema-validated), plans (round-trip through provenance), and source packing."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from rebuild.attest.statements import parse_statement, rebuild_provenance
from rebuild.build.images import ImageSpec, require_pinned
from rebuild.errors import PlanError, RecipeError
from rebuild.fetch.tree import pack_tree, read_settings
from rebuild.plan import (
    BuildPlan,
    Environment,
    ImageRef,
    Inference,
    Input,
    Output,
    RecipeRef,
    Source,
    plan_from_provenance,
)
from rebuild.recipes import RecipeBook, bundled_recipes_dir, load_recipe_file
from tests.conftest import ROOT

SCHEMA = json.loads((ROOT / "recipes" / "recipe.schema.json").read_text())


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.toml")), ids=lambda p: p.stem)
def test_every_bundled_recipe_is_valid(path: Path) -> None:
    jsonschema.validate(tomllib.loads(path.read_text()), SCHEMA)
    recipe = load_recipe_file(path)
    assert recipe.name == path.stem and len(recipe.sha256) == 64


def test_the_installed_package_finds_its_recipes() -> None:
    assert {"command", "python-wheel"} <= set(RecipeBook().names())
    assert (bundled_recipes_dir() / "recipe.schema.json").is_file()


@pytest.mark.parametrize(
    "text, message",
    [
        ("name = 'x'", "'schema' is a required property"),
        (
            "schema = 1\nname='x'\nversion='1'\ndescription='d'\nbuild_types=['https://x']\nsteps=['a']\n"
            "[image]\nname='i'\nsuite='bookworm'\npackages=[]\nepoch=0\n",
            "does not match",
        ),
        (
            "schema = 1\nname='x'\nversion='1.0.0'\ndescription='d'\nbuild_types=['https://x']\nsteps=['{{nope}}']\n"
            "[image]\nname='i'\nsuite='bookworm'\npackages=[]\nepoch=0\n",
            "undeclared parameters nope",
        ),
        ("not toml [", "recipe"),
    ],
    ids=["missing-fields", "bad-version", "undeclared-parameter", "not-toml"],
)
def test_invalid_recipes_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe_file(path)


def test_user_recipes_come_first_and_parameters_are_checked(tmp_path: Path) -> None:
    original = (ROOT / "recipes" / "command.toml").read_text()
    (tmp_path / "command.toml").write_text(original.replace('version = "1.1.0"', 'version = "9.9.9"'))
    book = RecipeBook([tmp_path])
    recipe = book.get("command")
    assert recipe.version == "9.9.9"
    with pytest.raises(RecipeError, match="needs parameter 'command'"):
        recipe.render_steps({"outputs": "x"}, "/build")
    with pytest.raises(RecipeError, match="has no parameter bogus"):
        recipe.render_steps({"command": "make", "outputs": "x", "bogus": "1"}, "/build")
    steps = recipe.render_steps({"command": "make dist", "outputs": "a.tgz"}, "/build")
    assert "make dist" in steps and not any("{{" in s for s in steps)
    with pytest.raises(RecipeError, match="no recipe named 'nope'"):
        book.get("nope")


def test_image_references_must_be_pinned() -> None:
    assert require_pinned("sha256:" + "a" * 64)
    assert require_pinned("docker.io/library/debian@sha256:" + "b" * 64)
    for bad in ("debian:bookworm", "debian", "debian@sha256:short"):
        with pytest.raises(PlanError, match="not pinned by digest"):
            require_pinned(bad)


def test_image_spec_key_ignores_package_order() -> None:
    a = ImageSpec("x", ("bb", "aa"))
    assert a.key == ImageSpec("x", ("aa", "bb")).key != ImageSpec("x", ("aa", "bb", "cc")).key


SPEC = ImageSpec("debian-build", ("make",))
PLAN = BuildPlan(
    source=Source("demo-source.tar", "11" * 32, "tarball"),
    recipe=RecipeRef("command", "1.0.0", "22" * 32),
    parameters={"command": "make dist", "outputs": "demo.tgz", "source_strip": "0"},
    image=ImageRef(SPEC.tag, "sha256:" + "33" * 32, SPEC.as_dict()),
    inputs=(Input("wheelhouse", "flit_core-3.9.0-py3-none-any.whl", "https://example.org/f.whl", "44" * 32),),
    environment=Environment(1700000000),
    steps=("tar -xf /inputs/source/source.tar", "make dist"),
    outputs=(Output("demo.tgz", "55" * 32),),
    inferences=(Inference("SOURCE_DATE_EPOCH", "1700000000", "the last git commit's time"),),
)


def _provenance(plan: BuildPlan) -> bytes:
    return rebuild_provenance(
        plan.subjects(),
        plan.external_parameters(),
        plan.resolved_dependencies(),
        "id",
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:01Z",
    )


def test_plan_round_trips_through_provenance() -> None:
    assert plan_from_provenance(parse_statement(_provenance(PLAN))) == PLAN


def test_git_debian_and_deviating_plans_round_trip_too() -> None:
    """A git commit, a .dsc with its files, extra recorded variables and deviations all come back exactly."""
    import dataclasses

    git = dataclasses.replace(PLAN, source=Source("git+https://example.org/r@refs/tags/v1", "66" * 32, "git", "a" * 40))
    assert plan_from_provenance(parse_statement(_provenance(git))) == git
    deb = dataclasses.replace(
        PLAN,
        source=Source("https://deb.example/pool/h/hello_1.0-1.dsc", "77" * 32, "dsc"),
        inputs=(
            Input("source", "hello_1.0.orig.tar.gz", "https://deb.example/pool/h/hello_1.0.orig.tar.gz", "88" * 32),
        ),
        environment=Environment(None, "/build/reproducible-path", extra={"DEB_BUILD_OPTIONS": "parallel=2"}),
        deviations=("build dependency debhelper: recorded 13.11.3, used the archive's 13.11.4",),
    )
    back = plan_from_provenance(parse_statement(_provenance(deb)))
    assert back == deb and back.environment.variables()["DEB_BUILD_OPTIONS"] == "parallel=2"


@pytest.mark.parametrize(
    "path",
    [
        "buildDefinition.externalParameters.steps",
        "buildDefinition.externalParameters.environment",
        "buildDefinition.externalParameters.source",
        "buildDefinition.buildType",
    ],
)
def test_a_missing_field_is_named(path: str) -> None:
    doc = json.loads(_provenance(PLAN))
    holder = doc["predicate"]
    *parents, last = path.split(".")
    for p in parents:
        holder = holder[p]
    del holder[last]
    with pytest.raises(PlanError, match=f"missing field '{path.removeprefix('buildDefinition.externalParameters.')}"):
        plan_from_provenance(parse_statement(json.dumps(doc).encode()))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("buildDefinition.externalParameters.steps", "make dist", r"field 'steps' has the wrong type \(str\)"),
        ("buildDefinition.externalParameters.source.uri", 5, r"field 'source.uri' has the wrong type \(int\)"),
        ("buildDefinition.externalParameters.inferences", {}, r"field 'inferences' has the wrong type \(dict\)"),
        ("buildDefinition.externalParameters.environment.TZ", 0, r"field 'TZ' has the wrong type \(int\)"),
    ],
    ids=["steps", "source", "inferences", "tz"],
)
def test_a_mistyped_field_is_named(path: str, value: object, message: str) -> None:
    doc = json.loads(_provenance(PLAN))
    holder = doc["predicate"]
    *parents, last = path.split(".")
    for p in parents:
        holder = holder[p]
    holder[last] = value
    with pytest.raises(PlanError, match=message):
        plan_from_provenance(parse_statement(json.dumps(doc).encode()))


def test_a_dependency_without_a_sha256_is_named() -> None:
    doc = json.loads(_provenance(PLAN))
    for dep in doc["predicate"]["buildDefinition"]["resolvedDependencies"]:
        if dep["name"] == "recipe":
            dep["digest"] = {"sha512": "66" * 64}
    with pytest.raises(PlanError, match="resolvedDependencies entry 'recipe' has no valid sha256 digest"):
        plan_from_provenance(parse_statement(json.dumps(doc).encode()))


def test_a_missing_dependency_is_named() -> None:
    doc = json.loads(_provenance(PLAN))
    deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
    doc["predicate"]["buildDefinition"]["resolvedDependencies"] = [d for d in deps if d["name"] != "builder-image"]
    with pytest.raises(PlanError, match="resolvedDependencies entry 'builder-image'"):
        plan_from_provenance(parse_statement(json.dumps(doc).encode()))


def test_source_packing_is_deterministic_and_skips_vcs(tmp_path: Path) -> None:
    for name in ("a", "b"):
        tree = tmp_path / name
        (tree / "src").mkdir(parents=True)
        (tree / ".git").mkdir()
        (tree / ".git" / "HEAD").write_text("ref")
        (tree / "src" / "x.c").write_text("int x;\n")
        (tree / "run.sh").write_text("#!/bin/sh\n")
        (tree / "run.sh").chmod(0o755)
    import os

    os.utime(tmp_path / "b" / "src" / "x.c", (1, 1))
    one, two = pack_tree(tmp_path / "a", 1700000000), pack_tree(tmp_path / "b", 1700000000)
    assert one == two
    assert b".git" not in one and b"run.sh" in one
    assert pack_tree(tmp_path / "a", 1700000001) != one


def test_settings_file(tmp_path: Path) -> None:
    (tmp_path / "rebuild.toml").write_text(
        '[build]\nrecipe = "command"\nsource_date_epoch = 5\n[build.parameters]\ncommand = "make"\n'
    )
    s = read_settings(tmp_path)
    assert (s.recipe, s.source_date_epoch, s.parameters) == ("command", 5, {"command": "make"})


def test_per_build_images_are_left_to_be_made_when_needed(tmp_path: Path) -> None:
    """debian-binary's image depends on each source's build dependencies: doctor does not ask for it."""
    from rebuild.doctor import run_doctor

    book = RecipeBook()
    assert book.get("debian-binary").image_per_build and not book.get("python-wheel").image_per_build
    report = run_doctor(tmp_path, book)
    (check,) = [c for c in report.checks if c.name == "image debian-deb"]
    assert check.ok and "made for each build" in check.detail


def _python_plan(spec: ImageSpec) -> BuildPlan:
    recipe = RecipeBook().get("python-wheel")
    return recipe.plan(
        Source("https://files.example/demo-1.0.tar.gz", "11" * 32, "sdist"),
        {"source_strip": "1"},
        Environment(None),
        outputs=(Output("demo-1.0-py3-none-any.whl", "55" * 32),),
        image=spec,
    )


def test_a_plan_may_run_on_any_one_of_its_recipes_images() -> None:
    recipe = RecipeBook().get("python-wheel")
    bookworm, trixie = (i.spec for i in recipe.builder_images)
    assert recipe.image == bookworm and (bookworm.suite, trixie.suite) == ("bookworm", "trixie")
    for spec in (bookworm, trixie):
        recipe.check_plan(_python_plan(spec))
    other = dataclasses.replace(trixie, packages=(*trixie.packages, "curl"))
    with pytest.raises(PlanError, match=r"not one of recipe python-wheel's 2 images \(packages: .*curl"):
        recipe.check_plan(_python_plan(other))
    with pytest.raises(PlanError, match="suite: 'sid' instead of 'bookworm'"):  # told apart from the first
        recipe.check_plan(_python_plan(dataclasses.replace(trixie, suite="sid")))
    command = RecipeBook().get("command")
    on_trixie = command.plan(
        Source("https://files.example/demo-1.0.tar.gz", "11" * 32),
        {"command": "make", "outputs": "x"},
        Environment(None),
        image=trixie,
    )
    with pytest.raises(PlanError, match="builder image spec is not recipe command's"):  # one image: as before
        command.check_plan(on_trixie)


def test_every_image_of_every_fixed_recipe_is_built_by_the_set_up() -> None:
    """setup.sh runs `rebuild image build --all`: the tests need the trixie image as much as bookworm's."""
    book = RecipeBook()
    tags = [spec.tag for spec in book.fixed_images()]
    assert len(tags) == len(set(tags))
    for image in book.get("python-wheel").builder_images:
        assert image.spec.tag in tags
    assert [s.suite for s in book.fixed_images(["python-wheel"])] == ["bookworm", "trixie"]


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ("[image]\nname='i'\nsuite='bookworm'\npackages=[]\nepoch=0\n[[images]]\nname='i'\nsuite='trixie'\n"
         "packages=[]\nepoch=0\n", "is valid under each of"),
        ("", "is not valid under any of the given schemas"),
        ("[[images]]\nname='i'\nsuite='trixie'\npackages=[]\nepoch=0\nper_build=true\n", "should not be valid"),
        ("[[images]]\nname='i'\nsuite='trixie'\npackages=[]\nepoch=0\npython='3.13'\n", "does not match"),
        ("[[images]]\nname='i'\nsuite='trixie'\npackages=[]\nepoch=0\nplatform='linux_x86_64'\n", "does not match"),
    ],
    ids=["image-and-images", "neither", "per-build-in-a-list", "python-without-micro", "platform-not-manylinux"],
)  # fmt: skip
def test_a_recipe_names_one_image_or_a_list_of_them(tmp_path: Path, images: str, message: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        "schema = 1\nname='x'\nversion='1.0.0'\ndescription='d'\nbuild_types=['https://x']\nsteps=['a']\n" + images
    )
    with pytest.raises(RecipeError, match=message):
        load_recipe_file(path)
