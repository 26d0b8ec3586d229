"""Workspaces in a package-lock.json: a workspace's own dependencies are package entries, checked and fetched
like the top-level ones, and a directory key must be one the root's ``workspaces`` names (or a link's target).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from rebuild.errors import EXIT_USAGE, InputError
from rebuild.npm.lockfile import parse_lockfile
from rebuild.npm.workspaces import MAX_BRACE_EXPANSION, MAX_MATCH_STEPS, MAX_PATTERNS, glob_match

REGISTRY = "https://registry.npmjs.org/"


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def dep(name: str, version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    base = name.rsplit("/", 1)[-1]
    entry = {
        "version": version,
        "resolved": f"{REGISTRY}{name}/-/{base}-{version}.tgz",
        "integrity": sri(f"{name}@{version}".encode()),
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def monorepo(packages: dict[str, Any], workspaces: object = ("packages/*",)) -> bytes:
    root: dict[str, Any] = {"name": "mono", "version": "1.0.0"}
    if workspaces is not None:
        root["workspaces"] = list(workspaces) if isinstance(workspaces, tuple) else workspaces
    return json.dumps({"name": "mono", "lockfileVersion": 3, "packages": {"": root, **packages}}).encode()


WORKSPACE = {
    "packages/w": {"name": "w", "version": "1.0.0"},
    "node_modules/w": {"resolved": "packages/w", "link": True},
}


def test_a_workspace_dependency_is_a_package_entry_fetched_like_the_others() -> None:
    packages = {
        **WORKSPACE,
        "node_modules/b": dep("b", "2.0.0"),
        "packages/w/node_modules/b": dep("b", "1.0.0"),  # the workspace needs another version than the root
        "packages/w/node_modules/@s/c": dep("@s/c"),
        "packages/w/node_modules/@s/c/node_modules/d": dep("d"),
        "packages/w/node_modules/e": {"version": "1.0.0", "integrity": sri(b"e")},  # no resolved: inferred
    }
    parsed = parse_lockfile(monorepo(packages))
    by_path = {t.path: t for t in parsed.tarballs}
    assert set(by_path) == {
        "node_modules/b",
        "packages/w/node_modules/b",
        "packages/w/node_modules/@s/c",
        "packages/w/node_modules/@s/c/node_modules/d",
        "packages/w/node_modules/e",
    }
    nested = by_path["packages/w/node_modules/b"]
    assert (nested.name, nested.version, nested.url) == ("b", "1.0.0", f"{REGISTRY}b/-/b-1.0.0.tgz")
    assert by_path["packages/w/node_modules/@s/c"].name == "@s/c"
    inferred = by_path["packages/w/node_modules/e"]
    assert inferred.url == f"{REGISTRY}e/-/e-1.0.0.tgz" and inferred.url_inferred
    assert set(parsed.local) == {"packages/w", "node_modules/w"}


@pytest.mark.parametrize(
    ("workspaces", "key"),
    [
        (("packages/*",), "packages/w"),
        (("./packages/*/",), "packages/w"),
        (("packages/**",), "packages/group/deep/w"),
        (("**",), "tools/w"),
        (("apps/web",), "apps/web"),
        (("{apps,libs}/*",), "libs/w"),
        (("packages/w?",), "packages/w1"),
        (("packages/[a-z]*",), "packages/w"),
        ({"packages": ["packages/*"], "nohoist": ["**/x"]}, "packages/w"),  # the object form npm also reads
        (("packages/*", "!packages/private", "packages/private"), "packages/private"),  # the last match wins
    ],
    ids=["star", "dot-slash", "globstar", "globstar-only", "literal", "braces", "question", "class", "object",
         "re-included"],
)  # fmt: skip
def test_workspace_globs_name_their_directories(workspaces: object, key: str) -> None:
    packages = {key: {"version": "1.0.0"}, f"{key}/node_modules/b": dep("b")}
    parsed = parse_lockfile(monorepo(packages, workspaces))
    assert parsed.local == (key,) and [t.path for t in parsed.tarballs] == [f"{key}/node_modules/b"]


def test_a_directory_dependency_inside_the_source_needs_no_workspace() -> None:
    """``"dep": "file:./libs/dep"`` without workspaces: npm writes the directory and a link to it."""
    packages = {
        "libs/dep": {"name": "dep", "version": "1.0.0"},
        "libs/dep/node_modules/b": dep("b"),
        "node_modules/dep": {"resolved": "file:libs/dep", "link": True},
    }
    parsed = parse_lockfile(monorepo(packages, workspaces=None))
    assert [t.path for t in parsed.tarballs] == ["libs/dep/node_modules/b"]


GIT = "git+ssh://evil/x.git"
B = "packages/w/node_modules/b"
REFUSED = [
    # the reviewer's case: a workspace's dependency is checked exactly like a top-level one
    ("git-under-workspace", {**WORKSPACE, B: {"version": "1.0.0", "resolved": GIT,
                                                                          "integrity": "sha1-abc"}},
     B, "git dependency"),
    ("git-under-undeclared-dir", {"tools/w/node_modules/b": {"version": "1.0.0", "resolved": GIT,
                                                             "integrity": "sha1-abc"}},
     "tools/w/node_modules/b", "neither a workspace the root's 'workspaces' names nor the target of a link"),
    ("sha1-under-workspace", {B: dep("b", integrity="sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=")},
     B, "has no sha512"),
    ("no-integrity-under-workspace", {B: dep("b", integrity=None)},
     B, "has no 'integrity'"),
    ("other-host-under-workspace", {B: dep("b", resolved="https://evil.example/b/-/b-1.0.0.tgz")},
     B, "not an https URL on https://registry.npmjs.org/"),
    ("other-package-under-workspace", {B: dep("b", resolved=f"{REGISTRY}evil/-/evil-1.0.0.tgz")},
     B, "not the registry tarball of b"),
    ("range-under-workspace", {B: dep("b", version="^1.0.0")},
     B, "not an exact semver version"),
    ("file-tarball-under-workspace", {B: dep("b", resolved="file:../b-1.0.0.tgz")},
     B, "is not an https URL"),
    ("link-out-of-workspace", {B: {"resolved": "../../etc", "link": True}},
     B, "outside the source"),
    ("bad-name-under-workspace", {"packages/w/node_modules/-rf": dep("b")},
     "packages/w/node_modules/-rf", "the key is not [DIR/]node_modules/NAME"),
    ("dotdot-name-under-workspace", {"packages/w/node_modules/..": dep("b")},
     "packages/w/node_modules/..", "the key is not [DIR/]node_modules/NAME"),
    ("traversal-in-workspace-path", {"packages/../../x/node_modules/y": dep("y")},
     "packages/../../x/node_modules/y", "outside the source"),
    ("traversal-after-workspace", {"packages/w/../../../x/node_modules/y": dep("y")},
     "packages/w/../../../x/node_modules/y", "outside the source"),
    ("absolute-workspace-path", {"/etc/node_modules/y": dep("y")}, "/etc/node_modules/y", "outside the source"),
    ("dot-workspace-path", {"./packages/w/node_modules/y": dep("y")}, "./packages/w/node_modules/y",
     "outside the source"),
    ("undeclared-directory", {"tools/x": {"version": "1.0.0"}}, "tools/x", "neither a workspace"),
    ("excluded-workspace", {"packages/private": {"version": "1.0.0"}}, "packages/private", "neither a workspace"),
    ("dependency-under-a-dependency-dir", {"packages/w/lib/node_modules/y": dep("y")},
     "packages/w/lib/node_modules/y", "neither a workspace"),
]  # fmt: skip


@pytest.mark.parametrize(("packages", "key", "problem"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_hostile_workspace_entries_are_refused_naming_the_key(packages: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(InputError) as e:
        parse_lockfile(monorepo(packages, ("packages/*", "!packages/private")))
    assert e.value.exit_code == EXIT_USAGE
    assert f"packages[{key!r}]" in e.value.message and problem in e.value.message
    assert "\n" not in e.value.message


@pytest.mark.parametrize(
    ("workspaces", "problem"),
    [
        ("packages/*", "'workspaces' is not a list"),
        ([1], "'workspaces' is not a list"),
        ([""], "'workspaces' is not a list"),
        (["x"] * (MAX_PATTERNS + 1), f"'workspaces' is not a list of at most {MAX_PATTERNS} globs"),
        (["{" + ",".join("abcdefghijklmnopqrstuvwxyz") + "}"] * 40, f"expands to more than {MAX_PATTERNS} globs"),
        ({"packages": "packages/*"}, "'workspaces' is not a list"),
        (["{a,b}" * 10], f"expands to more than {MAX_BRACE_EXPANSION} patterns"),
        (["{" + ",".join(["a"] * 500) + "}"], f"expands to more than {MAX_BRACE_EXPANSION} patterns"),
    ],
    ids=["text", "not-text", "empty", "too-many", "too-many-expanded", "object-with-text", "brace-bomb", "wide-braces"],
)
def test_a_hostile_workspaces_field_is_refused(workspaces: object, problem: str) -> None:
    with pytest.raises(InputError) as e:
        parse_lockfile(monorepo({}, workspaces))
    assert e.value.exit_code == EXIT_USAGE
    assert "packages['']" in e.value.message and problem in e.value.message


def test_a_globstar_pile_is_matched_in_linear_time() -> None:
    """``**/**/**/...`` against a deep path would be exponential by backtracking; it is a table here."""
    key = "/".join(["d"] * 60)
    pattern = "/".join(["**"] * 300) + "/x"
    with pytest.raises(InputError, match="neither a workspace"):
        parse_lockfile(monorepo({key: {"version": "1.0.0"}}, (pattern,)))
    parsed = parse_lockfile(monorepo({key: {"version": "1.0.0"}}, ("/".join(["**"] * 300) + "/d",)))
    assert parsed.local == (key,)


def test_the_reviewers_script_case_is_refused() -> None:
    """The security review's exact document: a git+ssh workspace dependency pinned only by sha1, no workspaces."""
    data = json.dumps(
        {
            "lockfileVersion": 3,
            "packages": {
                "": {},
                "packages/w/node_modules/b": {"version": "1.0.0", "resolved": GIT, "integrity": "sha1-abc"},
            },
        }
    ).encode()
    with pytest.raises(InputError, match=r"packages\['packages/w/node_modules/b'\]"):
        parse_lockfile(data)


def test_the_work_of_matching_globs_is_capped() -> None:
    """200 globs of 300 segments against a path 60 deep: ~3.7 million comparisons, refused by count, not by clock."""
    deep = "/".join(["d"] * 60)
    globs = ["*/" * 300] * 200 + ["**"]
    with pytest.raises(InputError) as e:
        parse_lockfile(monorepo({deep: {"version": "1.0.0"}}, globs))
    assert e.value.exit_code == EXIT_USAGE
    assert f"packages[{deep!r}]" in e.value.message and f"more than {MAX_MATCH_STEPS} steps" in e.value.message


def test_a_workspace_with_many_dependencies_is_matched_once() -> None:
    """The answer per directory is kept: 5,000 dependencies of one workspace cost one match, within the cap."""
    globs = [*(["*/" * 300] * 100), "**"]  # ~1.8 million comparisons for one path 60 deep: just under the cap
    deep = "/".join(["d"] * 59) + "/w"
    packages = {f"{deep}/node_modules/p{i}": dep(f"p{i}") for i in range(5000)}
    parsed = parse_lockfile(monorepo(packages, globs))
    assert len(parsed.tarballs) == 5000


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("packages/*", "packages/w", True),
        ("packages/*", "packages/w/x", False),
        ("packages/*", "packages", False),
        ("packages/**", "packages", True),  # ** is zero or more segments
        ("**/w", "a/b/c/w", True),
        ("a/**/b/**/c", "a/x/b/y/z/c", True),
        ("a/**/b/**/c", "a/x/c", False),
        ("p?ck*/[!x]", "packages/w", True),
        ("p?ck*/[!x]", "packages/x", False),
    ],
)
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(tuple(pattern.split("/")), tuple(path.split("/"))) is expected
