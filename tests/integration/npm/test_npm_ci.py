"""An npm package whose ``prepack`` compiles TypeScript, rebuilt offline from its package-lock.json.

The fixture ``ts-greet/`` (its lockfile made by ``generate-lockfile.sh`` with the host's npm against the
real registry) goes into a local git repository. The "publisher" installs the locked dependencies with the
host's npm from the registry and runs ``npm pack`` in the npm recipes' builder image (Debian bookworm's
Node.js and npm, the npm the rebuild uses: ``npm pack`` output may depend on npm's version), then writes
npm's SLSA v1 provenance in a Sigstore bundle signed with a test key. ``rebuild verify`` must fetch the
lockfile's tarballs (sha512 checked), install them offline in the sandbox and reproduce the tarball.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.resolve.test_foreign_provenance import GITHUB, git, make_repo, sign_into_bundle
from tests.integration.test_pipeline import rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]

FIXTURE = Path(__file__).parent / "ts-greet"
NPM_ENV = {"npm_config_userconfig": "/dev/null", "npm_config_registry": "https://registry.npmjs.org/"}


def fixture_files(lockfile: dict[str, Any] | None = None) -> dict[str, str]:
    files = {
        p.relative_to(FIXTURE).as_posix(): p.read_text()
        for p in sorted(FIXTURE.rglob("*"))
        if p.is_file() and p.name != "generate-lockfile.sh"
    }
    if lockfile is not None:
        files["package-lock.json"] = json.dumps(lockfile, indent=2) + "\n"
    return files


def publish(repo: Path, out: Path, docker_client: Any, cache_dir: Path) -> Path:
    """The release workflow: `npm ci` from the registry, then `npm pack` (prepack runs tsc) in the builder image."""
    from rebuild.build.images import ImageBuilder
    from rebuild.build.sandbox import BuildRequest, DockerSandbox, Mount
    from rebuild.recipes import RecipeBook

    checkout = out / "checkout"
    git(repo.parent, "clone", "-q", str(repo), str(checkout))
    shutil.rmtree(checkout / ".git")
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=checkout, env={**os.environ, **NPM_ENV}, check=True, capture_output=True,
    )  # fmt: skip
    image = ImageBuilder(docker_client, cache_dir).ensure(RecipeBook().get("npm-ci").image)
    dist = out / "dist"
    dist.mkdir()
    result = DockerSandbox(docker_client).run(
        BuildRequest(
            image=image.digest,
            steps=("cp -R /inputs/checkout/. .", "npm pack --pack-destination /out"),
            env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
            inputs=(Mount(checkout, "/inputs/checkout"),),
        ),
        dist,
    )
    (tgz,) = [dist / p for p in result.outputs]
    return tgz


def npm_v1_statement(name: str, version: str, sha512: str, repo_name: str, commit: str) -> dict[str, Any]:
    """npm's provenance as `npm publish --provenance` writes it from GitHub Actions (SLSA v1)."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"pkg:npm/{name}@{version}", "digest": {"sha512": sha512}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters": {
                    "workflow": {
                        "ref": "refs/tags/v1.0.0",
                        "repository": f"{GITHUB}{repo_name}",
                        "path": ".github/workflows/publish.yml",
                    }
                },
                "internalParameters": {
                    "github": {"event_name": "release", "repository_id": "1", "repository_owner_id": "2"}
                },
                "resolvedDependencies": [
                    {"uri": f"git+{GITHUB}{repo_name}@refs/tags/v1.0.0", "digest": {"gitCommit": commit}}
                ],
            },
            "runDetails": {
                "builder": {"id": "https://github.com/actions/runner/github-hosted"},
                "metadata": {"invocationId": f"{GITHUB}{repo_name}/actions/runs/7/attempts/1"},
            },
        },
    }


def provenance_for(tmp_path: Path, repo_name: str, commit: str, artifact: Path) -> Path:
    sha512 = hashlib.sha512(artifact.read_bytes()).hexdigest()
    bundle = sign_into_bundle(
        npm_v1_statement("ts-greet", "1.0.0", sha512, repo_name, commit), tmp_path / "npm", ".v0.3+json"
    )
    path = tmp_path / "ts-greet-1.0.0.tgz.sigstore.json"
    path.write_text(json.dumps(bundle))
    return path


def verify(tmp_path: Path, provenance: Path, artifact: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    mirror = f"{GITHUB}=file://{tmp_path / 'mirror'}/"
    return rebuild(
        "verify", str(provenance), "--artifact", str(artifact), "--git-mirror", mirror,
        "--provenance-key", str(tmp_path / "npm.pub"), "--out", str(tmp_path / "v"), *extra,
    )  # fmt: skip


@pytest.mark.network
@pytest.mark.slow
def test_a_typescript_package_is_rebuilt_offline_from_its_lockfile(
    tmp_path: Path, docker_client: Any, cache_dir: Path
) -> None:
    repo, commit, _ = make_repo(tmp_path / "mirror", "ts-greet", fixture_files())
    published = publish(repo, tmp_path / "published", docker_client, cache_dir)
    artifact = tmp_path / "downloaded" / "ts-greet-1.0.0.tgz"
    artifact.parent.mkdir()
    shutil.copyfile(published, artifact)
    provenance = provenance_for(tmp_path, "ts-greet", commit, artifact)
    assert rebuild("key", "generate", "--out", str(tmp_path / "rebuilder")).returncode == 0
    r = verify(tmp_path, provenance, artifact, "--key", str(tmp_path / "rebuilder.key"), "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads(r.stdout)
    assert report["reproduced"] is True
    assert [a["name"] for a in report["artifacts"]] == ["ts-greet-1.0.0.tgz"]
    assert report["provenance_signature"].startswith("verified with key")
    assert report["plan"]["recipe"]["name"] == "npm-ci"
    (attestation,) = (tmp_path / "v").glob("*.rebuild.intoto.jsonl")
    statements = [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in attestation.read_text().split()]
    deps = [d for s in statements for d in s["predicate"].get("buildDefinition", {}).get("resolvedDependencies", [])]
    ts = [d for d in deps if d["uri"] == "https://registry.npmjs.org/typescript/-/typescript-5.4.5.tgz"]
    assert len(ts) == 1 and ts[0]["name"].startswith("input:npm/")  # each locked tarball, with its sha256
    check = rebuild(
        "attestation", "verify", str(attestation), "--key", str(tmp_path / "rebuilder.pub"), "--artifact", str(artifact)
    )
    assert check.returncode == 0, check.stderr + check.stdout
    assert "verified ts-greet-1.0.0.tgz" in check.stdout and "PASSED" in check.stdout
    # the rebuild's own provenance names every tarball by sha256: it verifies again, from the fetch cache
    mirror = f"{GITHUB}=file://{tmp_path / 'mirror'}/"
    again = rebuild(
        "verify", str(attestation), "--artifact", str(artifact), "--git-mirror", mirror, "--out", str(tmp_path / "v2"),
        "--json",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr + again.stdout
    second = json.loads(again.stdout)
    assert second["reproduced"] is True
    assert any(name.startswith("input npm/") for name in second["cached"])  # no second download


@pytest.mark.network
def test_a_lockfile_entry_whose_integrity_does_not_match_is_exit_1_naming_it(tmp_path: Path) -> None:
    lockfile = json.loads((FIXTURE / "package-lock.json").read_text())
    entry = lockfile["packages"]["node_modules/typescript"]
    entry["integrity"] = "sha512-" + "A" * 86 + "=="  # not the registry's bytes
    _, commit, _ = make_repo(tmp_path / "mirror", "ts-greet", fixture_files(lockfile))
    artifact = tmp_path / "ts-greet-1.0.0.tgz"
    artifact.write_bytes(b"the published tarball")
    r = verify(tmp_path, provenance_for(tmp_path, "ts-greet", commit, artifact), artifact)
    assert r.returncode == 1, r.stderr + r.stdout  # a fetched input whose digest is wrong: exit 1, as elsewhere
    assert "npm package node_modules/typescript (typescript@5.4.5)" in r.stderr
    assert "the lockfile says sha512-AAAA" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("key", "entry", "named"),
    [
        (
            "node_modules/dep",
            {"version": "1.0.0", "resolved": "git+ssh://git@github.com/example/dep.git#" + "a" * 40},
            "git dependency git+ssh://git@github.com/example/dep.git",
        ),
        ("node_modules/outside", {"resolved": "../outside", "link": True}, "node_modules/outside"),
        ("../outside", {"name": "outside", "version": "1.0.0"}, "'../outside'"),
    ],
    ids=["git", "file-outside-link", "file-outside-package"],
)
def test_git_and_outside_dependencies_are_refused_by_name(
    tmp_path: Path, key: str, entry: dict[str, Any], named: str
) -> None:
    lockfile = json.loads((FIXTURE / "package-lock.json").read_text())
    lockfile["packages"][key] = entry
    _, commit, _ = make_repo(tmp_path / "mirror", "ts-greet", fixture_files(lockfile))
    artifact = tmp_path / "ts-greet-1.0.0.tgz"
    artifact.write_bytes(b"the published tarball")
    r = verify(tmp_path, provenance_for(tmp_path, "ts-greet", commit, artifact), artifact)
    assert r.returncode == 2, r.stderr + r.stdout
    assert "package-lock.json: packages[" in r.stderr and named in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.network
def test_a_release_team_builds_with_npm_ci_and_the_rebuild_reproduces(tmp_path: Path) -> None:
    tree = tmp_path / "ts-greet"
    shutil.copytree(FIXTURE, tree, ignore=shutil.ignore_patterns("generate-lockfile.sh"))
    release = tmp_path / "release"
    assert rebuild("key", "generate", "--out", str(tmp_path / "team")).returncode == 0
    r = rebuild(
        "build", str(tree), "--recipe", "npm-ci", "--param", "source_strip=0", "--out", str(release),
        "--key", str(tmp_path / "team.key"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    (provenance,) = release.glob("*.provenance.intoto.jsonl")
    assert (release / "ts-greet-1.0.0.tgz").is_file()
    again = rebuild(
        "verify", str(provenance), "--provenance-key", str(tmp_path / "team.pub"), "--out", str(tmp_path / "v")
    )
    assert again.returncode == 0, again.stderr + again.stdout


def test_a_release_without_a_lockfile_is_refused_for_npm_ci(tmp_path: Path) -> None:
    tree = tmp_path / "ts-greet"
    shutil.copytree(FIXTURE, tree, ignore=shutil.ignore_patterns("generate-lockfile.sh", "package-lock.json"))
    r = rebuild("build", str(tree), "--recipe", "npm-ci", "--out", str(tmp_path / "release"))
    assert r.returncode == 2, r.stderr + r.stdout
    assert "recipe npm-ci needs a package-lock.json" in r.stderr
