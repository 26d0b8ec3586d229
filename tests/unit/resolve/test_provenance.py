"""Provenance written by others (tests/data/vectors): loading, describing, subject matching, and fuzzing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rebuild.attest import dsse, uris
from rebuild.attest.dsse import Envelope
from rebuild.attest.envelopes import LoadedEnvelope
from rebuild.attest.statements import ParsedStatement, Subject
from rebuild.cli import app
from rebuild.errors import Error, FetchError, InputError, PlanError, VerificationError
from rebuild.fetch.cache import BlobCache
from rebuild.recipes import RecipeBook
from rebuild.resolution import Resolution, Signature, SignatureStatus
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.provenance import resolve_provenance_file
from rebuild.resolve.slsa import GitSource, NotRebuildable, Rebuildable, Recorded, describe, what_rebuilds
from rebuild.resolve.statements import FoundStatement, read_statements
from tests.conftest import VECTORS

runner = CliRunner()
NPM = VECTORS / "slsa-verifier/npm/gha"
PROVENANCE_FILES = {
    "bcr": VECTORS / "slsa-verifier/bcr/rules_lint-v1.3.1.tar.gz.intoto.jsonl",
    "npm-v1": NPM / "gundam-visor-cli-v1-tag.tgz.json",
    "npm-v02": NPM / "provenance-npm-test-cli-v02-prega.tgz.json",
    "generic-v02": VECTORS / "slsa-verifier/gha_generic/v2.1.0/binary-linux-amd64-push-v14.intoto.jsonl",
    "delegator-v1": VECTORS / "slsa-verifier/gha_delegator/v1.10.0/binary-linux-amd64-push-v14.build.slsa",
    "pypi-slsa": VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.slsa.json",
    "pypi-pep740": VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance",
    "vsa": VECTORS / "slsa-verifier/vsa/gce/v1/gke-gce-pre.bcid-vsa.jsonl",
}
# (file, repository, commit, recipe or None when it cannot be rebuilt)
EXPECTED = {
    "bcr": ("https://github.com/aspect-build/rules_lint", "8f70009fde0c94ade6ce2a054b94718c819126ec", None),
    "npm-v1": (
        "https://github.com/ramonpetgrave64/gundam-visor",
        "599500821344b070902a7a5666064bfdaba715df",
        "npm-pack",
    ),
    "npm-v02": (
        "https://github.com/laurentsimon/provenance-npm-test",
        "b38894f2dda4355ea5606fccb166e61565e12a14",
        "npm-pack",
    ),
    "generic-v02": (
        "https://github.com/slsa-framework/example-package",
        "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
        None,
    ),
    "delegator-v1": (
        "https://github.com/slsa-framework/example-package",
        "4e383a8215c979d61c6afd2e125cb2f559090adf",
        None,
    ),
    "pypi-slsa": (
        "https://github.com/trailofbits/pypi-attestations",
        "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
        "python-build",
    ),
}


def slsa_docs(name: str) -> list[dict[str, Any]]:
    found, problems = read_statements(PROVENANCE_FILES[name])
    assert not problems
    return [describe(f) for f in found if f.statement.predicate_type.startswith("https://slsa.dev/provenance/")]


@pytest.mark.parametrize("name", sorted(PROVENANCE_FILES))
def test_every_vector_loads_and_shows(name: str) -> None:
    result = runner.invoke(app, ["provenance", "show", str(PROVENANCE_FILES[name])])
    assert result.exit_code == 0, result.output
    assert "subject" in result.output and "signature" in result.output
    as_json = runner.invoke(app, ["provenance", "show", str(PROVENANCE_FILES[name]), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["statements"]


def test_an_envelope_that_holds_no_statement_is_named() -> None:
    """The DSSE spec vector signs "hello world": a valid envelope, but no in-toto statement."""
    result = runner.invoke(app, ["provenance", "show", str(VECTORS / "dsse/spec-vector.envelope.json")])
    assert result.exit_code == 2 and "holds no readable in-toto statement" in result.output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_source_builder_and_rebuild_of_real_provenance(name: str) -> None:
    repository, commit, recipe = EXPECTED[name]
    (doc,) = slsa_docs(name)
    assert doc["source"]["repository"] == repository and doc["source"]["commit"] == commit
    assert doc["builder"] and doc["buildType"]
    assert doc["rebuild"]["possible"] is (recipe is not None)
    if recipe:
        assert doc["rebuild"]["recipe"] == recipe
    else:
        assert "no recipe rebuilds" in doc["rebuild"]["reason"]
    shown = runner.invoke(app, ["provenance", "show", str(PROVENANCE_FILES[name])]).output
    assert f"{repository}" in shown and commit in shown and doc["buildType"] in shown


def test_quirks_of_real_generators() -> None:
    (v02,) = slsa_docs("npm-v02")
    assert v02["slsaVersion"] == "v0.2" and v02["invocation"] == "4757060009-1"  # buildInvocationId
    assert v02["rebuild"]["outputs"] == ["laurentsimon-provenance-npm-test-1.0.3.tgz"]  # from pkg:npm/%40...
    (delegator,) = slsa_docs("delegator-v1")
    assert delegator["source"]["ref"] == "refs/tags/v14"  # from internalParameters.GITHUB_*
    (generic,) = slsa_docs("generic-v02")
    assert generic["entryPoint"].endswith(".slsa3.yml")


def test_signature_status_is_plain() -> None:
    shown = runner.invoke(app, ["provenance", "show", str(PROVENANCE_FILES["bcr"])]).output
    assert "verified with Sigstore: signed by https://github.com/bazel-contrib/" in shown
    vsa = PROVENANCE_FILES["vsa"]
    key = vsa.parent / "vsa_signing_public_key.pem"
    shown = runner.invoke(app, ["provenance", "show", str(vsa), "--provenance-key", str(key)]).output
    assert "verified with key" in shown
    pep740 = runner.invoke(app, ["provenance", "show", str(PROVENANCE_FILES["pypi-pep740"]), "--json"])
    (doc,) = json.loads(pep740.stdout)["statements"]
    assert doc["predicateType"] == "https://docs.pypi.org/attestations/publish/v1"
    assert doc["rebuild"] == {"possible": False, "reason": "not SLSA provenance (nothing to rebuild from)"}


def ctx(tmp_path: Path, artifacts: list[Path]) -> ResolveContext:
    return ResolveContext(
        cache=BlobCache(tmp_path / "cache"),
        book=RecipeBook(),
        work_dir=tmp_path / "out",
        artifacts=artifacts,
        git_mirrors={"https://github.com/": f"file://{tmp_path}/no-mirror/"},
    )


def test_npm_subject_matches_the_tarball_by_sha512(tmp_path: Path) -> None:
    """The real npm tarball meets its statement (pkg:npm name, sha512); then the git fetch is what fails."""
    with pytest.raises(FetchError, match=r"cannot fetch git repository .*no-mirror/ramonpetgrave64/gundam-visor"):
        resolve_provenance_file(PROVENANCE_FILES["npm-v1"], ctx(tmp_path, [NPM / "gundam-visor-cli-v1-tag.tgz"]))


def test_an_artifact_no_statement_is_about_is_a_failed_verification(tmp_path: Path) -> None:
    other = NPM / "provenance-npm-test-cli-v02-prega.tgz"
    with pytest.raises(VerificationError, match=r"prega.tgz is not an artifact gundam-visor-cli-v1-tag.tgz.json names"):
        resolve_provenance_file(PROVENANCE_FILES["npm-v1"], ctx(tmp_path, [other]))


def test_provenance_that_cannot_be_rebuilt_says_why(tmp_path: Path) -> None:
    """Refused before any Docker engine is asked: bad input never depends on the machine."""
    result = runner.invoke(app, ["verify", str(PROVENANCE_FILES["bcr"]), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no recipe rebuilds rules_lint-v1.3.1.tar.gz" in result.output


def mangle(name: str, how: str, tmp_path: Path) -> Path:
    text = PROVENANCE_FILES[name].read_text()
    out = tmp_path / f"{how}.json"
    if how == "truncated":
        out.write_text(text[: len(text) // 2])
    elif how == "base64":
        doc = json.loads(text.splitlines()[0])
        doc["dsseEnvelope"]["payload"] = "!!not base64!!"
        out.write_text(json.dumps(doc))
    elif how == "no-predicate":
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": "00" * 32}}],
            "predicateType": "https://slsa.dev/provenance/v1",
        }
        out.write_text(json.dumps(statement))
    return out


@pytest.mark.parametrize(
    ("how", "reason"),
    [("truncated", "is not valid JSON"), ("base64", "base64"), ("no-predicate", "'predicate' is missing")],
)
def test_mangled_provenance_exits_2_with_the_reason(how: str, reason: str, tmp_path: Path) -> None:
    path = mangle("bcr", how, tmp_path)
    for args in (["provenance", "show", str(path)], ["verify", str(path), "--out", str(tmp_path / "v")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert reason in result.output, result.output
        assert "Traceback" not in result.output


def _mutations(doc: Any) -> st.SearchStrategy[Any]:
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.binary(max_size=8).map(str))
    return st.recursive(
        leaf, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    )


SEED_STATEMENTS = [
    json.loads(line)
    for name in ("bcr", "generic-v02")
    for line in PROVENANCE_FILES[name].read_text().splitlines()
    if line.strip()
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_documents_never_crash_the_loader(tmp_path: Path, data: st.DataObject) -> None:
    """Replace any field of a real document, anywhere, with anything: only the project's own errors."""
    import base64

    seed = json.loads(json.dumps(data.draw(st.sampled_from(SEED_STATEMENTS))))
    payload = json.loads(base64.b64decode(seed["dsseEnvelope"]["payload"]))
    target = data.draw(st.sampled_from(["bundle", "statement", "predicate"]))
    holder = {"bundle": seed, "statement": payload, "predicate": payload.get("predicate", {})}[target]
    if target != "bundle":
        holder[data.draw(st.sampled_from(sorted(holder)))] = data.draw(_mutations(None))
    seed["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    if target == "bundle":
        seed[data.draw(st.sampled_from(sorted(seed)))] = data.draw(_mutations(None))
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(seed))
    try:
        found, _ = read_statements(path)
        for f in found:
            describe(f)
    except Error:
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=512) | st.text(max_size=300).map(str.encode))
def test_random_bytes_never_crash_the_loader(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "random.json"
    path.write_bytes(raw)
    try:
        found, _ = read_statements(path)
        for f in found:
            describe(f)
    except Error:
        pass


# --- what would be rebuilt: a decision, serialised by describe -------------------------------------


def statement(predicate_type: str, predicate: dict[str, Any], subjects: list[str]) -> ParsedStatement:
    digest = {"sha256": "ab" * 32}
    return ParsedStatement(
        "https://in-toto.io/Statement/v1", predicate_type, tuple(Subject(n, digest) for n in subjects), predicate, {}
    )


GIT = {"uri": "git+https://github.com/o/r@refs/tags/v1", "digest": {"gitCommit": "1" * 40}}
FOREIGN = {"buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1"}}


@pytest.mark.parametrize(
    ("stmt", "expected", "shown"),
    [
        (
            statement(
                uris.SLSA_PROVENANCE_V1,
                {"buildDefinition": {**FOREIGN["buildDefinition"], "resolvedDependencies": [GIT]}},
                ["demo-1.0-py3-none-any.whl"],
            ),
            Rebuildable(
                "python-build",
                ("demo-1.0-py3-none-any.whl",),
                GitSource("https://github.com/o/r", "refs/tags/v1", "1" * 40, "resolvedDependencies[0]"),
            ),
            {"possible": True, "recipe": "python-build", "outputs": ["demo-1.0-py3-none-any.whl"]},
        ),
        (
            statement(uris.SLSA_PROVENANCE_V1, FOREIGN, ["demo-1.0-py3-none-any.whl"]),
            NotRebuildable("the provenance records no git source (repository + commit)"),
            {"possible": False, "reason": "the provenance records no git source (repository + commit)"},
        ),
        (
            statement(
                uris.SLSA_PROVENANCE_V1,
                {"buildDefinition": {**FOREIGN["buildDefinition"], "resolvedDependencies": [GIT]}},
                ["tool-linux-amd64"],
            ),
            NotRebuildable(
                "no recipe rebuilds tool-linux-amd64 from buildType https://actions.github.io/buildtypes/workflow/v1"
            ),
            {
                "possible": False,
                "reason": "no recipe rebuilds tool-linux-amd64 from buildType "
                "https://actions.github.io/buildtypes/workflow/v1",
            },
        ),
        (
            statement("https://docs.pypi.org/attestations/publish/v1", {}, ["demo.whl"]),
            NotRebuildable("not SLSA provenance (nothing to rebuild from)"),
            {"possible": False, "reason": "not SLSA provenance (nothing to rebuild from)"},
        ),
        (
            statement(
                uris.SLSA_PROVENANCE_V1,
                {
                    "buildDefinition": {
                        "buildType": uris.BUILD_TYPE,
                        "externalParameters": {
                            "recipe": {"name": "command"},
                            "outputs": ["a.tar.gz", 7],
                            "steps": ["make dist"],
                            "environment": {"TZ": "UTC"},
                        },
                    }
                },
                ["a.tar.gz"],
            ),
            Recorded("command", ("a.tar.gz",), ("make dist",), {"TZ": "UTC"}),
            {"recipe": "command", "outputs": ["a.tar.gz"], "willRun": ["make dist"], "environment": {"TZ": "UTC"}},
        ),
    ],
    ids=["python-from-git", "no-git-source", "no-recipe", "not-slsa", "own-build-type"],
)
def test_what_rebuilds_is_a_decision_and_describe_shows_it(
    stmt: ParsedStatement, expected: object, shown: dict[str, Any]
) -> None:
    assert what_rebuilds(stmt) == expected
    loaded = LoadedEnvelope(Envelope(dsse.INTOTO_PAYLOAD_TYPE, b"{}", ()), "document", "statement (unsigned)", False)
    doc = describe(FoundStatement(stmt, loaded, Signature(SignatureStatus.UNSIGNED)))
    assert doc["rebuild"] == shown and doc["signature"] == "unsigned"


# --- the signature, a type with the words reports print ------------------------------------------


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        (Signature(SignatureStatus.VERIFIED, "0123456789abcdef0123"), "verified with key 0123456789abcdef"),
        (Signature(SignatureStatus.DOES_NOT_VERIFY), "signature does NOT verify with the given key(s)"),
        (Signature(SignatureStatus.NOT_CHECKED), "signed, not checked (no --provenance-key)"),
        (Signature(SignatureStatus.UNSIGNED), "unsigned"),
        (
            Signature(SignatureStatus.VERIFIED, detail="InRelease verified with debian-archive-keyring.gpg"),
            "InRelease verified with debian-archive-keyring.gpg",
        ),
        (
            Signature.described("OpenPGP clearsigned: signature not checked here"),
            "OpenPGP clearsigned: signature not checked here",
        ),
        ("unsigned", "unsigned"),
    ],
    ids=["verified", "does-not-verify", "not-checked", "unsigned", "with-detail", "described", "text"],
)
def test_a_resolution_carries_a_signature_and_its_words(signature: Signature | str, words: str, tmp_path: Path) -> None:
    resolution = Resolution("t", [], {}, tmp_path, signature)
    assert isinstance(resolution.signature, Signature)
    assert str(resolution.signature) == resolution.signature_status == words
    if isinstance(signature, str):
        assert resolution.signature.status is SignatureStatus.DESCRIBED


# --- this project's own provenance: held artifacts are matched by digest ----------------------------


def test_an_own_provenance_takes_a_held_artifact_by_digest_under_any_name(tmp_path: Path) -> None:
    from tests.unit.test_hostile_provenance import ARTIFACT, release, write_provenance

    d, ext, deps, sha = release(tmp_path)
    provenance = write_provenance(d, ext, deps, sha)
    copy = tmp_path / "downloads" / "renamed.tar.gz"
    copy.parent.mkdir()
    copy.write_bytes((d / ARTIFACT).read_bytes())
    (d / ARTIFACT).unlink()
    resolution = resolve_provenance_file(provenance, ctx(tmp_path, [copy]))
    assert resolution.published == {ARTIFACT: copy}
    assert resolution.signature.status is SignatureStatus.UNSIGNED and resolution.signature_status == "unsigned"
    with pytest.raises(Error, match=f"published artifact {ARTIFACT} not found at"):
        resolve_provenance_file(provenance, ctx(tmp_path, []))


def test_artifacts_of_two_statements_are_verified_one_statement_at_a_time(tmp_path: Path) -> None:
    held = [tmp_path / "a.tgz", tmp_path / "b.tgz"]
    lines = []
    for path in held:
        path.write_bytes(path.name.encode())
        subject = {"name": path.name, "digest": {"sha256": hashlib.sha256(path.name.encode()).hexdigest()}}
        lines.append(
            json.dumps(
                {
                    "_type": "https://in-toto.io/Statement/v1",
                    "subject": [subject],
                    "predicateType": uris.SLSA_PROVENANCE_V1,
                    "predicate": FOREIGN,
                }
            )
        )
    provenance = tmp_path / "two.intoto.jsonl"
    provenance.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"--artifact b.tgz: another statement in two.intoto.jsonl is about it"):
        resolve_provenance_file(provenance, ctx(tmp_path, held))


@pytest.mark.parametrize("build_definition", [[], "x", None, {"buildType": 7}], ids=["list", "text", "null", "number"])
def test_a_mistyped_build_definition_is_refused_not_a_crash(tmp_path: Path, build_definition: object) -> None:
    provenance = tmp_path / "p.json"
    provenance.write_text(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a.whl", "digest": {"sha256": "ab" * 32}}],
                "predicateType": uris.SLSA_PROVENANCE_V1,
                "predicate": {"buildDefinition": build_definition},
            }
        )
    )
    with pytest.raises(PlanError, match="cannot rebuild: the provenance records no git source"):
        resolve_provenance_file(provenance, ctx(tmp_path, []))
