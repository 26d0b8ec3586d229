"""Provenance written by an attacker: each attack found against the verifier, as a regression test.

Every case goes through the `rebuild verify` command. A document field is data: it is refused where the
plan is made (exit 2), before any Docker engine is asked, the host runs nothing the document says, no
file appears outside --out, and nothing PASSED is ever written.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from compare.digest import sha256_file
from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.keys import generate, write_keypair
from rebuild.build.images import ImageSpec
from rebuild.build.sandbox import BuildRequest, DockerSandbox, step_script
from rebuild.cli import app
from rebuild.errors import FetchError, PlanError, SandboxError
from rebuild.fetch.cache import BlobCache
from rebuild.fetch.fetcher import Fetcher
from rebuild.plan import Environment, Output, Source
from rebuild.recipes import RecipeBook
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.provenance import resolve_provenance_file

runner = CliRunner()
ARTIFACT = "clock-1.0.tar.gz"
IMAGE_DIGEST = "sha256:" + "ab" * 32


def release(tmp_path: Path) -> tuple[Path, dict[str, Any], list[Any], str]:
    """A published artifact, its source, and the external parameters of an honest plan for them."""
    d = tmp_path / "release"
    d.mkdir()
    (d / ARTIFACT).write_bytes(b"the published bytes")
    (d / "clock-source.tar").write_bytes(b"source")
    recipe = RecipeBook().get("command")
    plan = recipe.plan(
        Source("clock-source.tar", sha256_file(d / "clock-source.tar"), "tarball"),
        {"command": "make dist", "outputs": ARTIFACT},
        Environment(1700000000),
        outputs=(Output(ARTIFACT, sha256_file(d / ARTIFACT)),),
        image_digest=IMAGE_DIGEST,
    )
    deps = [dep.to_dict() for dep in plan.resolved_dependencies()]
    return d, plan.external_parameters(), deps, sha256_file(d / ARTIFACT)


def write_provenance(
    d: Path, ext: dict[str, Any], deps: list[Any], sha: str, signers: list[Any] | None = None, name: str = "p"
) -> Path:
    payload = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": ARTIFACT, "digest": {"sha256": sha}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": uris.BUILD_TYPE,
                    "externalParameters": ext,
                    "resolvedDependencies": deps,
                },
                "runDetails": {"builder": {"id": uris.BUILDER_ID}},
            },
        }
    ).encode()
    path = d / f"{name}.intoto.jsonl"
    write_jsonl(path, [dsse.sign(payload, signers or [])])
    return path


def mirror_hook(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"]["spec"]["mirror"] = f"--setup-hook=id > {tmp}/pwned; exit 1"


def suite_option(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"]["spec"]["suite"] = "--customize-hook=touch " + str(tmp / "pwned")


def name_traversal(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"]["spec"]["name"] = "../../../" + str(tmp.name) + "-escaped"


def package_option(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"]["spec"]["packages"] = ["make", "--essential-hook=touch /pwned"]


def other_packages(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"]["spec"]["packages"] = ["build-essential", "python3", "evil-package"]
    ext["builderImage"]["reference"] = ImageSpec.from_dict(
        ext["builderImage"]["spec"]
    ).tag  # consistent, but not the recipe's


def umask_function(ext: dict[str, Any], tmp: Path) -> None:
    blob = base64.b64encode(b"the published bytes").decode()
    ext["environment"]["umask"] = f"0022; make() {{ echo {blob} | base64 -d > {ARTIFACT}; }}"


def build_path_command(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["buildPath"] = "/build; touch /out/x"


def build_path_over_out(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["buildPath"] = "/out"


def build_path_dotdot(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["buildPath"] = "/build/../etc"


def env_preload(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["extra"] = {"LD_PRELOAD": "/inputs/source/evil.so"}


def env_makeflags(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["extra"] = {"MAKEFLAGS": "--eval=all:;@cp /inputs/x /out"}


def env_bad_name(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["extra"] = {"DEB_X=1 sh -c id #": "1"}


def tz_shell(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["TZ"] = "UTC; id"


def parameter_injection(ext: dict[str, Any], tmp: Path) -> None:
    ext["parameters"]["outputs"] = f"{ARTIFACT}; cp /inputs/source/x /out"


def steps_changed(ext: dict[str, Any], tmp: Path) -> None:
    ext["steps"] = [*ext["steps"][:-1], "echo forged > /out/clock-1.0.tar.gz"]


def output_escape(ext: dict[str, Any], tmp: Path) -> None:
    ext["outputs"] = ["../../etc/passwd"]


def source_dotdot(ext: dict[str, Any], tmp: Path) -> None:
    ext["source"]["uri"] = "../../../etc/passwd"


def image_local_id(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"] = {"reference": "sha256:" + "cd" * 32, "spec": {}}


def image_registry(ext: dict[str, Any], tmp: Path) -> None:
    ext["builderImage"] = {"reference": "evil.example/builder@sha256:" + "cd" * 32, "spec": {}}


def epoch_string(ext: dict[str, Any], tmp: Path) -> None:
    ext["environment"]["SOURCE_DATE_EPOCH"] = "1700000000; id"


ATTACKS: list[tuple[Callable[[dict[str, Any], Path], None], str]] = [
    (mirror_hook, "image mirror"),
    (suite_option, "image suite"),
    (name_traversal, "image name"),
    (package_option, "Debian package"),
    (other_packages, "builder image spec is not recipe command's"),
    (umask_function, "umask"),
    (build_path_command, "build path"),
    (build_path_over_out, "overlaps /out"),
    (build_path_dotdot, "build path"),
    (env_preload, "a plan may add only DEB_"),
    (env_makeflags, "a plan may add only DEB_"),
    (env_bad_name, "environment variable name"),
    (tz_shell, "TZ"),
    (parameter_injection, "parameter outputs"),
    (steps_changed, "steps are not what its recipe"),
    (output_escape, "output name"),
    (source_dotdot, "source uri"),
    (image_local_id, "not one recipe command allows"),
    (image_registry, "not one recipe command allows"),
    (epoch_string, "SOURCE_DATE_EPOCH"),
]


@pytest.mark.parametrize(("attack", "named"), ATTACKS, ids=[a.__name__ for a, _ in ATTACKS])
def test_a_hostile_field_is_refused_before_anything_runs(
    attack: Callable[[dict[str, Any], Path], None], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBUILD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # any engine use would be exit 3, not 2
    d, ext, deps, sha = release(tmp_path)
    attack(ext, tmp_path)
    out = tmp_path / "out"
    before = set(tmp_path.parent.iterdir())
    result = runner.invoke(app, ["verify", str(write_provenance(d, ext, deps, sha)), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists()
    assert set(tmp_path.parent.iterdir()) == before  # nothing created beside the test's directory
    assert not list(out.glob("*.intoto.jsonl"))
    report = json.loads((out / "verify-report.json").read_text())
    assert report["reproduced"] is False and report["exit_code"] == 2


def test_honest_twin_of_the_attacks_passes_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacks are refused for their field, not because the fixture is broken: untouched, it resolves."""
    monkeypatch.setenv("REBUILD_CACHE_DIR", str(tmp_path / "cache"))
    d, ext, deps, sha = release(tmp_path)
    ctx = ResolveContext(BlobCache(tmp_path / "cache"), RecipeBook(), tmp_path / "out")
    resolution = resolve_provenance_file(write_provenance(d, ext, deps, sha), ctx)
    from rebuild.verify import check_resolution

    check_resolution(resolution, RecipeBook())
    assert resolution.plan.environment.umask == "0022"


def keypair(tmp_path: Path, name: str) -> tuple[Path, Any]:
    key = generate("ed25519")
    _private, public = write_keypair(key, tmp_path / name)
    return public, key


def test_provenance_key_refuses_unsigned_and_wrongly_signed(tmp_path: Path) -> None:
    d, ext, deps, sha = release(tmp_path)
    trusted, _ = keypair(tmp_path, "trusted")
    _, other = keypair(tmp_path, "other")
    for signers, name in (([], "unsigned"), ([other], "other-key")):
        path = write_provenance(d, ext, deps, sha, signers, name)
        result = runner.invoke(
            app, ["verify", str(path), "--provenance-key", str(trusted), "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 1, result.output
        assert "provenance is not signed by a trusted key" in result.output
        assert not list((tmp_path / name).glob("*.rebuild.intoto.jsonl"))


def test_an_unsigned_statement_is_never_chosen_ahead_of_a_signed_one(tmp_path: Path) -> None:
    d, ext, deps, sha = release(tmp_path)
    trusted_pub, trusted = keypair(tmp_path, "trusted")
    forged = json.loads(json.dumps(ext))
    forged["parameters"]["command"] = "echo forged > clock-1.0.tar.gz"
    first = write_provenance(d, forged, deps, sha, [], "forged")
    second = write_provenance(d, ext, deps, sha, [trusted], "signed")
    both = d / "both.intoto.jsonl"
    both.write_text(first.read_text() + second.read_text())
    from rebuild.attest.keys import load_public_key

    ctx = ResolveContext(
        BlobCache(tmp_path / "cache"), RecipeBook(), tmp_path / "out", provenance_keys=[load_public_key(trusted_pub)]
    )
    resolution = resolve_provenance_file(both, ctx)
    assert resolution.plan.parameters["command"] == "make dist"
    assert resolution.signature_status.startswith("verified with key")


@pytest.mark.parametrize("same_name", [True, False], ids=["under-the-published-name", "under-another-name"])
def test_an_artifact_the_provenance_does_not_name_is_a_failed_verification(
    tmp_path: Path, same_name: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    d, ext, deps, sha = release(tmp_path)
    provenance = write_provenance(d, ext, deps, sha)
    tampered = tmp_path / "copy" / (ARTIFACT if same_name else "other.tar.gz")
    tampered.parent.mkdir()
    tampered.write_bytes(b"the published bytes, altered")
    result = runner.invoke(
        app, ["verify", str(provenance), "--artifact", str(tampered), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1, result.output
    assert "is not an artifact p.intoto.jsonl names" in result.output
    assert not list((tmp_path / "out").glob("*.intoto.jsonl"))


def test_a_published_file_beside_the_provenance_must_have_the_subject_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    d, ext, deps, sha = release(tmp_path)
    provenance = write_provenance(d, ext, deps, sha)
    (d / ARTIFACT).write_bytes(b"swapped after the provenance was written")
    result = runner.invoke(app, ["verify", str(provenance), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert f"published {ARTIFACT} is not the artifact the provenance names" in result.output


def test_a_stale_passed_verdict_never_outlives_a_failed_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    d, ext, deps, sha = release(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{ARTIFACT}.rebuild.intoto.jsonl").write_text("an earlier PASSED\n")
    (out / "verify-report.json").write_text(json.dumps({"reproduced": True}))
    (out / "rebuilt").mkdir()
    umask_function(ext, tmp_path)
    result = runner.invoke(app, ["verify", str(write_provenance(d, ext, deps, sha)), "--out", str(out)])
    assert result.exit_code == 2
    assert not (out / f"{ARTIFACT}.rebuild.intoto.jsonl").exists()
    assert not (out / "rebuilt").exists()
    report = json.loads((out / "verify-report.json").read_text())
    assert report == {**report, "reproduced": False, "outcome": "could not verify", "exit_code": 2}


def test_docker_down_is_exit_3_with_a_report_that_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    d, ext, deps, sha = release(tmp_path)
    result = runner.invoke(app, ["verify", str(write_provenance(d, ext, deps, sha)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3, result.output
    assert "no Docker engine answers" in result.output
    assert json.loads((tmp_path / "o" / "verify-report.json").read_text())["exit_code"] == 3


# --- the fetch stage and the sandbox, below the plan: defence in depth --------------------------------


def test_fetch_refuses_devices_and_oversized_inputs(tmp_path: Path) -> None:
    fetcher = Fetcher(BlobCache(tmp_path / "cache"), max_bytes=1 << 20)
    with pytest.raises(FetchError, match="not a regular file"):
        fetcher.fetch("file:///dev/zero", "00" * 32, "source")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (3 << 20))
    with pytest.raises(FetchError, match="larger than the limit"):
        fetcher.fetch(big.as_uri(), sha256_file(big), "source")
    assert not list((tmp_path / "cache").rglob("*.incoming-*"))  # the partial download is gone


def test_fetch_keeps_relative_names_inside_the_documents_directory(tmp_path: Path) -> None:
    base = tmp_path / "release"
    base.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    (base / "link").symlink_to(secret)
    fetcher = Fetcher(BlobCache(tmp_path / "cache"), base)
    for uri in ("../secret", "link", str(secret)):
        with pytest.raises(FetchError, match="provenance's directory"):
            fetcher.fetch(uri, sha256_file(secret), "source")


@pytest.mark.parametrize(
    ("field", "value"),
    [("umask", "0022; id"), ("build_path", "/build; id"), ("build_path", "/out")],
    ids=["umask", "build-path-command", "build-path-reserved"],
)
def test_the_sandbox_rechecks_what_reaches_its_script(field: str, value: str, tmp_path: Path) -> None:
    request = BuildRequest(image=IMAGE_DIGEST, steps=("true",), env={}, **{field: value})  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="not allowed"):
        DockerSandbox(client=None).run(request, tmp_path)


def test_the_step_script_quotes_its_data() -> None:
    script = step_script(BuildRequest(image=IMAGE_DIGEST, steps=("make",), env={}, build_path="/build/a+b"))
    assert "umask 0022\ncd -- /build/a+b\n" in script
    with pytest.raises(PlanError):
        step_script(BuildRequest(image=IMAGE_DIGEST, steps=("make",), env={}, umask="0022;id"))


@pytest.mark.parametrize(
    "repository",
    ["--upload-pack=touch {tmp}/pwned", "ext::sh -c touch% {tmp}/pwned", "-uhttps://x/y", "https://x/../../y"],
    ids=["upload-pack-option", "ext-transport", "dash-prefixed", "dot-dot"],
)
def test_a_git_source_url_never_reaches_git_as_an_option_or_a_command(
    repository: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Foreign SLSA provenance names its git source; git must never read it as anything but a URL."""
    monkeypatch.setenv("REBUILD_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel")
    url = repository.format(tmp=tmp_path)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": wheel.name, "digest": {"sha256": sha256_file(wheel)}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {},
                "resolvedDependencies": [{"uri": f"git+{url}@refs/tags/v1", "digest": {"gitCommit": "a" * 40}}],
            },
            "runDetails": {"builder": {"id": "https://github.com/actions/runner"}},
        },
    }
    provenance = tmp_path / "foreign.intoto.jsonl"
    write_jsonl(provenance, [dsse.sign(json.dumps(statement).encode(), [])])
    result = runner.invoke(app, ["verify", str(provenance), "--artifact", str(wheel), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "git repository" in result.output
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "cache" / "git").exists()  # git was never run


def test_our_own_provenance_with_a_hostile_git_source_is_refused(tmp_path: Path) -> None:
    d, ext, deps, sha = release(tmp_path)
    ext["source"] = {"uri": "git+--upload-pack=id", "kind": "git", "commit": "a" * 40}
    deps[0]["digest"]["gitCommit"] = "a" * 40
    result = runner.invoke(app, ["verify", str(write_provenance(d, ext, deps, sha)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "git repository" in result.output
    assert not (tmp_path / "pwned").exists()


def test_a_bad_option_also_removes_an_earlier_verdict(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{ARTIFACT}.rebuild.intoto.jsonl").write_text("an earlier PASSED\n")
    (out / "verify-report.json").write_text(json.dumps({"reproduced": True}))
    result = runner.invoke(app, ["verify", "x.intoto.jsonl", "--key", str(tmp_path / "missing.key"), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert not (out / f"{ARTIFACT}.rebuild.intoto.jsonl").exists()
    assert not (out / "verify-report.json").exists()


@pytest.mark.parametrize(
    "requirement",
    ["evil @ file://{tmp}/evil-1.0.tar.gz", "evil@https://127.0.0.1:9/evil.tar.gz", "--index-url=http://127.0.0.1:9/"],
    ids=["file-url", "https-url", "pip-option"],
)
def test_a_build_requirement_never_makes_pip_run_code_on_the_host(requirement: str, tmp_path: Path) -> None:
    """pip resolving `name @ URL` builds that sdist's metadata, running its setup.py on this machine."""
    import tarfile

    from rebuild.python.wheelhouse import resolve_wheelhouse, wheelhouse_for

    setup = f"import pathlib; pathlib.Path({str(tmp_path / 'pwned')!r}).write_text('ran')\n".encode()
    with tarfile.open(tmp_path / "evil-1.0.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("evil-1.0/setup.py")
        info.size = len(setup)
        tar.addfile(info, io.BytesIO(setup))
    tree = tmp_path / "project"
    tree.mkdir()
    text = requirement.format(tmp=tmp_path)
    (tree / "pyproject.toml").write_text(f'[build-system]\nrequires = ["{text}"]\n')
    with pytest.raises(PlanError, match="build requirement"):
        wheelhouse_for(tree)
    with pytest.raises(PlanError, match="build requirement"):
        resolve_wheelhouse([text])  # the resolver refuses it too, whoever calls it
    assert not (tmp_path / "pwned").exists()


def test_a_trusted_signature_over_another_payload_type_is_no_provenance(tmp_path: Path) -> None:
    """DSSE signs the payload type too: our key over a non-in-toto envelope must not make a statement."""
    d, ext, deps, sha = release(tmp_path)
    trusted_pub, trusted = keypair(tmp_path, "trusted")
    path = write_provenance(d, ext, deps, sha, [trusted])
    envelope = json.loads(path.read_text())
    payload = base64.b64decode(envelope["payload"])
    other = dsse.sign(payload, [trusted], payload_type="application/vnd.example.not-in-toto+json")
    write_jsonl(path, [other])
    result = runner.invoke(
        app, ["verify", str(path), "--provenance-key", str(trusted_pub), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2, result.output
    assert "is not application/vnd.in-toto+json" in result.output


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEB_CFLAGS_APPEND", "-wrapper /bin/sh,-c,id"),
        ("DEB_BUILD_OPTIONS", "nocheck $(id)"),
        ("DEB_BUILD_OPTIONS", "parallel=2\nX=1"),
    ],
    ids=["compiler-flags", "shell-in-options", "newline"],
)
def test_only_plain_debian_build_options_reach_the_build_environment(name: str, value: str, tmp_path: Path) -> None:
    d, ext, deps, sha = release(tmp_path)
    ext["environment"]["extra"] = {name: value}
    result = runner.invoke(app, ["verify", str(write_provenance(d, ext, deps, sha)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "environment variable" in result.output


def test_one_value_never_forges_a_line_of_output() -> None:
    from rebuild.untrusted import printable

    assert printable("x\n  signature   verified with key 0123") == "x\\x0a  signature   verified with key 0123"
    assert "\u200e" not in printable("a\u200eb\u061cc")
