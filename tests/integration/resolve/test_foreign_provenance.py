"""Provenance as GitHub and npm write it, pointing at local git repositories, rebuilt with real Docker.

GitHub is not reachable here, so each test makes a git repository, publishes
an artifact from it the way a release workflow would, and writes the SLSA
provenance in the shape GitHub Actions (v1) or npm (v0.2) uses, signed with a
test key inside a Sigstore bundle. ``rebuild verify --git-mirror`` then
rebuilds from the commit and must match bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rebuild.attest import dsse
from rebuild.attest.keys import generate, write_keypair
from tests.integration.test_pipeline import rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]

GITHUB = "https://github.com/example/"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t"}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, **GIT_ENV, "GIT_COMMITTER_EMAIL": "t@example.org", **(env or {})}
    return subprocess.run(["git", *args], cwd=repo, env=full, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path, name: str, files: dict[str, str]) -> tuple[Path, str, int]:
    """A git repository at ``root/name`` with one commit; returns (path, commit, commit time)."""
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "add", ".")
    when = "1710000000 +0000"
    git(repo, "commit", "-qm", "release", env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
    git(repo, "tag", "v1.0.0")
    return repo, git(repo, "rev-parse", "HEAD"), 1710000000


def sign_into_bundle(statement: dict[str, Any], key_prefix: Path, media_version: str) -> dict[str, Any]:
    key = generate("ecdsa-p256")
    write_keypair(key, key_prefix)
    envelope = dsse.sign(json.dumps(statement).encode(), [key])
    return {
        "mediaType": f"application/vnd.dev.sigstore.bundle{media_version}",
        "verificationMaterial": {"publicKey": {"hint": "test"}, "tlogEntries": []},
        "dsseEnvelope": envelope.to_dict(),
    }


def github_v1_statement(subjects: list[dict[str, Any]], repo_name: str, commit: str) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": "refs/tags/v1.0.0",
                        "repository": f"{GITHUB}{repo_name}",
                        "path": ".github/workflows/release.yml",
                    }
                },
                "internalParameters": {"github": {"event_name": "release", "runner_environment": "github-hosted"}},
                "resolvedDependencies": [
                    {"uri": f"git+{GITHUB}{repo_name}@refs/tags/v1.0.0", "digest": {"gitCommit": commit}}
                ],
            },
            "runDetails": {
                "builder": {"id": f"{GITHUB}{repo_name}/.github/workflows/release.yml@refs/tags/v1.0.0"},
                "metadata": {"invocationId": f"{GITHUB}{repo_name}/actions/runs/1/attempts/1"},
            },
        },
    }


def npm_v02_statement(name: str, version: str, sha512: str, repo_name: str, commit: str) -> dict[str, Any]:
    source = {"uri": f"git+{GITHUB}{repo_name}@refs/heads/main", "digest": {"sha1": commit}}
    return {
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": f"pkg:npm/{name}@{version}", "digest": {"sha512": sha512}}],
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "predicate": {
            "buildType": "https://github.com/npm/cli/gha/v2",
            "builder": {"id": "https://github.com/actions/runner"},
            "invocation": {
                "configSource": {**source, "entryPoint": ".github/workflows/release.yml"},
                "parameters": {},
                "environment": {"GITHUB_REPOSITORY": f"example/{repo_name}", "GITHUB_SHA": commit},
            },
            "metadata": {"buildInvocationID": "1-1", "completeness": {"parameters": False}, "reproducible": False},
            "materials": [source],
        },
    }


PY_FILES = {
    "pyproject.toml": """[build-system]
requires = ["flit_core >=3.2,<4"]
build-backend = "flit_core.buildapi"

[project]
name = "greetlib"
version = "1.0.0"
description = "Greets people."
readme = "README.md"
license = {text = "MIT"}
""",
    "greetlib/__init__.py": '"""Greets people."""\n\n\ndef greet(name):\n    return f"hello {name}"\n',
    "README.md": "# greetlib\n",
}


@pytest.mark.network
def test_github_v1_provenance_of_a_python_wheel_reproduces_from_git(tmp_path: Path) -> None:
    repo, commit, commit_time = make_repo(tmp_path / "mirror", "greetlib", PY_FILES)
    # the release workflow: `pip wheel` with SOURCE_DATE_EPOCH set to the commit time
    dist = tmp_path / "dist"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(commit_time)}
    cmd = [sys.executable, "-m", "pip", "--isolated", "wheel", "--no-deps", "-q", "-w", str(dist), str(repo)]
    subprocess.run([*cmd, "--index-url", "https://pypi.org/simple"], env=env, check=True, capture_output=True)
    (wheel,) = dist.glob("*.whl")
    subject = {"name": wheel.name, "digest": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}}
    bundle = sign_into_bundle(github_v1_statement([subject], "greetlib", commit), tmp_path / "team", ".v0.3+json")
    provenance = dist / f"{wheel.name}.sigstore.json"
    provenance.write_text(json.dumps(bundle))
    mirror = f"{GITHUB}=file://{tmp_path / 'mirror'}/"

    shown = rebuild("provenance", "show", str(provenance), "--json")
    assert shown.returncode == 0, shown.stderr
    (doc,) = json.loads(shown.stdout)["statements"]
    assert doc["source"] == {"repository": f"{GITHUB}greetlib", "ref": "refs/tags/v1.0.0", "commit": commit}
    assert doc["rebuild"] == {"possible": True, "recipe": "python-build", "outputs": [wheel.name]}

    rebuild("key", "generate", "--out", str(tmp_path / "rebuilder"))
    r = rebuild(
        "verify", str(provenance), "--git-mirror", mirror, "--provenance-key", str(tmp_path / "team.pub"),
        "--key", str(tmp_path / "rebuilder.key"), "--out", str(tmp_path / "v"), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads(r.stdout)
    assert report["reproduced"] is True
    assert report["provenance_signature"].startswith("verified with key")
    assert report["plan"]["source"] == {
        "uri": f"git+{GITHUB}greetlib@refs/tags/v1.0.0",
        "kind": "git",
        "commit": commit,
    }
    assert report["attempts"][-1]["reproduced"] and report["attempts"][-1]["environment"]["SOURCE_DATE_EPOCH"] == (
        commit_time
    )
    inferred = {i["field"] for i in report["inferences"]}
    assert {"flit_core", "SOURCE_DATE_EPOCH"} <= inferred
    check = rebuild(
        "attestation",
        "verify",
        report["attestation"],
        "--key",
        str(tmp_path / "rebuilder.pub"),
        "--artifact",
        str(wheel),
    )
    assert check.returncode == 0, check.stderr + check.stdout

    # a tampered copy under the published name is not the artifact the provenance names: exit 1, nothing rebuilt
    tampered = tmp_path / "tampered" / wheel.name
    tampered.parent.mkdir()
    data = bytearray(wheel.read_bytes())
    data[-30] ^= 0xFF
    tampered.write_bytes(bytes(data))
    r = rebuild(
        "verify", str(provenance), "--artifact", str(tampered), "--git-mirror", mirror, "--out", str(tmp_path / "t"),
        "--json", "--no-diffoscope",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    bad = json.loads(r.stdout)
    assert bad["reproduced"] is False and bad["outcome"] == "failed verification"
    assert f"{wheel.name} is not an artifact {provenance.name} names" in bad["error"]
    assert "a subject has its name, but not its digest" in bad["error"]
    assert not list((tmp_path / "t").glob("*.intoto.jsonl"))


def test_a_commit_that_is_not_in_the_repository_is_named(tmp_path: Path) -> None:
    make_repo(tmp_path / "mirror", "greetlib", PY_FILES)
    missing = "0" * 40
    wheel = tmp_path / "greetlib-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    subject = {"name": wheel.name, "digest": {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}}
    provenance = tmp_path / "p.intoto.json"
    provenance.write_text(json.dumps(github_v1_statement([subject], "greetlib", missing)))
    r = rebuild(
        "verify",
        str(provenance),
        "--git-mirror",
        f"{GITHUB}=file://{tmp_path / 'mirror'}/",
        "--out",
        str(tmp_path / "v"),
    )
    assert r.returncode == 3, r.stderr
    assert f"has no commit {missing}" in r.stderr
    assert "Traceback" not in r.stderr
    unreachable = rebuild("verify", str(provenance), "--out", str(tmp_path / "v2"))
    assert unreachable.returncode == 3 and "cannot fetch git repository https://github.com/example/greetlib" in (
        unreachable.stderr
    )
    assert "--git-mirror" in unreachable.stderr


NPM_FILES = {
    "package.json": json.dumps(
        {"name": "left-greet", "version": "1.0.0", "description": "greets", "main": "index.js", "license": "MIT"}
    )
    + "\n",
    "index.js": "module.exports = (n) => `hello ${n}`;\n",
    "README.md": "# left-greet\n",
}


def publish_npm(repo: Path, out: Path, docker_client: Any, cache_dir: Path) -> Path:
    """The release workflow: `npm pack` with Node and npm from Debian bookworm (the npm-pack recipe's image)."""
    from rebuild.build.images import ImageBuilder
    from rebuild.build.sandbox import BuildRequest, DockerSandbox, Mount
    from rebuild.recipes import RecipeBook

    image = ImageBuilder(docker_client, cache_dir).ensure(RecipeBook().get("npm-pack").image)
    src = out / "src"
    src.mkdir(parents=True)
    (src / "source.tar").write_bytes(
        subprocess.run(
            ["git", "archive", "--prefix=package/", "HEAD"], cwd=repo, check=True, capture_output=True
        ).stdout
    )
    result = DockerSandbox(docker_client).run(
        BuildRequest(
            image=image.digest,
            steps=("tar -xf /inputs/source/source.tar --strip-components=1", "npm pack --pack-destination /out"),
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
            inputs=(Mount(src, "/inputs/source"),),
        ),
        out,
    )
    (tgz,) = [out / p for p in result.outputs]
    return tgz


def test_npm_v02_provenance_in_a_registry_response_reproduces_from_git(
    tmp_path: Path, docker_client: Any, cache_dir: Path
) -> None:
    repo, commit, _ = make_repo(tmp_path / "mirror", "left-greet", NPM_FILES)
    published = publish_npm(repo, tmp_path / "published", docker_client, cache_dir)
    sha512 = hashlib.sha512(published.read_bytes()).hexdigest()
    statement = npm_v02_statement("left-greet", "1.0.0", sha512, "left-greet", commit)
    bundle = sign_into_bundle(statement, tmp_path / "npm", ".v0.2+json")
    response = tmp_path / "left-greet-1.0.0.tgz.json"
    response.write_text(
        json.dumps({"attestations": [{"predicateType": "https://slsa.dev/provenance/v0.2", "bundle": bundle}]})
    )
    artifact = tmp_path / "downloaded.tgz"
    artifact.write_bytes(published.read_bytes())
    r = rebuild(
        "verify", str(response), "--artifact", str(artifact), "--git-mirror", f"{GITHUB}=file://{tmp_path / 'mirror'}/",
        "--provenance-key", str(tmp_path / "npm.pub"), "--out", str(tmp_path / "v"), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads(r.stdout)
    assert report["reproduced"] is True
    assert [a["name"] for a in report["artifacts"]] == ["left-greet-1.0.0.tgz"]
    assert report["summary"]["slsaVersion"] == "v0.2"
    assert report["summary"]["invocation"] == "1-1"  # buildInvocationID, the quirky spelling
    assert report["provenance_signature"].startswith("verified with key")


def test_an_artifact_the_provenance_is_not_about_is_refused(tmp_path: Path) -> None:
    statement = npm_v02_statement("left-greet", "1.0.0", "ab" * 64, "left-greet", "1" * 40)
    provenance = tmp_path / "p.json"
    provenance.write_text(json.dumps(statement))
    other = tmp_path / "other.tgz"
    other.write_bytes(b"something else")
    r = rebuild("verify", str(provenance), "--artifact", str(other), "--out", str(tmp_path / "v"))
    assert r.returncode == 1  # an artifact the provenance does not name is a failed verification
    assert "other.tgz is not an artifact p.json names" in r.stderr and "pkg:npm/left-greet@1.0.0" in r.stderr
