"""package-lock.json read as hostile input: what is accepted, and every attack refused by name (exit 2)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.errors import EXIT_USAGE, InputError
from rebuild.npm.lockfile import (
    MAX_ENTRIES,
    MAX_LOCKFILE_BYTES,
    lockfile_from_source_tar,
    lockfile_from_tree,
    parse_lockfile,
)

TS_URL = "https://registry.npmjs.org/typescript/-/typescript-5.4.5.tgz"
TS_SRI = "sha512-vcI4UpRgg81oIRUFwR0WSIHKt11nJ7SAVlYNIu+QpqeyXP+gpQJy/Z4+F0aGxSE4MqwjyXvW/TzgkLAx2AGHwQ=="


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def lock(packages: dict[str, Any], version: int = 3) -> bytes:
    root = {"name": "app", "version": "1.0.0", "devDependencies": {"typescript": "5.4.5"}}
    return json.dumps({"name": "app", "lockfileVersion": version, "packages": {"": root, **packages}}).encode()


def ts(**changes: Any) -> dict[str, Any]:
    entry = {"version": "5.4.5", "resolved": TS_URL, "integrity": TS_SRI, "dev": True}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def test_a_registry_tarball_pinned_by_sha512_is_read() -> None:
    parsed = parse_lockfile(lock({"node_modules/typescript": ts()}))
    (tarball,) = parsed.tarballs
    assert (tarball.name, tarball.version, tarball.url) == ("typescript", "5.4.5", TS_URL)
    assert tarball.integrity == TS_SRI  # the sha512 round-trips to the lockfile's SRI
    assert tarball.sha512 == base64.b64decode(TS_SRI.removeprefix("sha512-")).hex()
    assert tarball.filename.endswith("-typescript-5.4.5.tgz") and not tarball.url_inferred


def test_scoped_nested_aliased_bundled_and_workspace_entries() -> None:
    data = b"x"
    packages = {
        "node_modules/@types/node": {
            "version": "20.1.0",
            "resolved": "https://registry.npmjs.org/@types/node/-/node-20.1.0.tgz",
            "integrity": sri(b"types-node"),
        },
        "node_modules/a/node_modules/b": {
            "version": "1.0.0",
            "resolved": "https://registry.npmjs.org/b/-/b-1.0.0.tgz",
            "integrity": f"sha1-AAAA {sri(data)}",  # sha1 beside a sha512: the sha512 is used
        },
        "node_modules/alias": {
            "name": "real",
            "version": "2.0.0",
            "resolved": "https://registry.npmjs.org/real/-/real-2.0.0.tgz",
            "integrity": sri(b"real"),
        },
        "node_modules/a/node_modules/inside": {"version": "1.0.0", "inBundle": True},
        "packages/lib": {"name": "lib", "version": "1.0.0"},
        "node_modules/lib": {"resolved": "packages/lib", "link": True},
        "node_modules/a": {"version": "1.0.0", "integrity": sri(b"a")},  # no resolved: npm's omit option
    }
    parsed = parse_lockfile(lock(packages, version=2))
    by_name = {t.name: t for t in parsed.tarballs}
    assert set(by_name) == {"@types/node", "b", "real", "a"}
    assert by_name["a"].url == "https://registry.npmjs.org/a/-/a-1.0.0.tgz" and by_name["a"].url_inferred
    assert by_name["b"].integrity == sri(data)
    assert set(parsed.local) == {"packages/lib", "node_modules/lib", "node_modules/a/node_modules/inside"}


def test_the_same_tarball_at_two_places_is_fetched_once() -> None:
    parsed = parse_lockfile(lock({"node_modules/typescript": ts(), "node_modules/x/node_modules/typescript": ts()}))
    assert len(parsed.tarballs) == 1


REFUSED = [
    ("git-dependency", {"node_modules/dep": {"version": "1.0.0", "resolved": "git+ssh://git@github.com/o/dep.git#"
                                             + "a" * 40}}, "git dependency"),
    ("github-shorthand", {"node_modules/dep": {"version": "1.0.0", "resolved": "github:o/dep#main"}}, "git dependency"),
    ("file-outside-key", {"../outside": {"name": "outside", "version": "1.0.0"}}, "outside the source"),
    ("file-outside-link", {"node_modules/outside": {"resolved": "../outside", "link": True}}, "outside the source"),
    ("file-url-link", {"node_modules/outside": {"resolved": "file:../outside", "link": True}}, "outside the source"),
    ("absolute-dir", {"/etc": {"version": "1.0.0"}}, "outside the source"),
    ("file-tarball", {"node_modules/dep": ts(resolved="file:../dep-1.0.0.tgz")}, "is not an https URL"),
    ("other-host", {"node_modules/typescript": ts(resolved="https://evil.example/typescript/-/typescript-5.4.5.tgz")},
     "not an https URL on https://registry.npmjs.org/"),
    ("http-registry", {"node_modules/typescript": ts(resolved=TS_URL.replace("https", "http"))}, "not an https URL"),
    ("userinfo", {"node_modules/typescript": ts(resolved="https://u:p@registry.npmjs.org/typescript/-/t-1.tgz")},
     "not an https URL"),
    ("host-suffix", {"node_modules/typescript": ts(resolved="https://registry.npmjs.org.evil.example/t/-/t-1.tgz")},
     "not an https URL"),
    ("another-package", {"node_modules/typescript": ts(resolved="https://registry.npmjs.org/evil/-/evil-1.0.0.tgz")},
     "not the registry tarball of typescript"),
    ("traversal-in-url", {"node_modules/typescript": ts(resolved="https://registry.npmjs.org/typescript/-/../x.tgz")},
     "not the registry tarball"),
    ("query", {"node_modules/typescript": ts(resolved=TS_URL + "?x=1")}, "not an https URL"),
    ("traversal-key", {"node_modules/../../x": ts()}, "the key is not [DIR/]node_modules/NAME"),
    ("traversal-key-dotdot-name", {"node_modules/..": ts()}, "the key is not [DIR/]node_modules/NAME"),
    ("key-with-option", {"node_modules/-rf": ts()}, "the key is not [DIR/]node_modules/NAME"),
    ("no-integrity", {"node_modules/typescript": ts(integrity=None)}, "has no 'integrity'"),
    ("sha1-only", {"node_modules/typescript": ts(integrity="sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=")}, "has no sha512"),
    ("sha512-too-short", {"node_modules/typescript": ts(integrity="sha512-AAAA")}, "has no sha512"),
    ("integrity-not-text", {"node_modules/typescript": ts(integrity=["sha512-x"])}, "not a Subresource Integrity"),
    ("range-version", {"node_modules/typescript": ts(version="^5.4.5")}, "not an exact semver version"),
    ("name-with-slash-dotdot", {"node_modules/typescript": ts(name="../../x")}, "not an npm package name"),
    ("entry-not-object", {"node_modules/typescript": "x"}, "the entry is not an object"),
    ("resolved-not-text", {"node_modules/typescript": ts(resolved=1)}, "'resolved' is not text"),
]  # fmt: skip


@pytest.mark.parametrize(("packages", "problem"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_hostile_entries_are_refused_by_name(packages: dict[str, Any], problem: str) -> None:
    with pytest.raises(InputError) as e:
        parse_lockfile(lock(packages))
    assert e.value.exit_code == EXIT_USAGE
    assert problem in e.value.message
    key = next(iter(packages))
    assert f"packages[{key!r}]" in e.value.message  # the entry is named


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (b'{"lockfileVersion": 1, "dependencies": {}}', "lockfileVersion 1 is not 2 or 3"),
        (b'{"lockfileVersion": true, "packages": {}}', "lockfileVersion True is not 2 or 3"),
        (b'{"lockfileVersion": 3.0, "packages": {}}', "lockfileVersion 3.0 is not 2 or 3"),
        (b'{"lockfileVersion": 3}', "no 'packages' object"),
        (b"[]", "not a JSON object"),
        (b'{"lockfileVersion": 3, "packages": {}, "packages": {}}', "duplicate key"),
        (b"{" * 100 + b"}" * 100, ""),
    ],
    ids=["v1", "bool-version", "float-version", "no-packages", "array", "duplicate-key", "deep"],
)
def test_malformed_lockfiles_are_refused(doc: bytes, problem: str) -> None:
    with pytest.raises(InputError) as e:
        parse_lockfile(doc)
    assert problem in e.value.message


def test_a_huge_lockfile_is_refused_before_parsing() -> None:
    with pytest.raises(InputError, match="more than the limit"):
        parse_lockfile(b" " * (MAX_LOCKFILE_BYTES + 1))


def test_too_many_entries_are_refused() -> None:
    entries = {f"node_modules/p{i}": {"version": "1.0.0", "inBundle": True} for i in range(MAX_ENTRIES + 1)}
    with pytest.raises(InputError, match=f"more than the limit of {MAX_ENTRIES}"):
        parse_lockfile(lock(entries))


def test_nesting_is_capped() -> None:
    key = "node_modules/a" + "/node_modules/a" * 40
    with pytest.raises(InputError, match=r"the key is not \[DIR/\]node_modules"):
        parse_lockfile(lock({key: ts(name="typescript")}))


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return out.getvalue()


def test_the_lockfile_is_read_from_the_exported_source(tmp_path: Path) -> None:
    tar = tmp_path / "source.tar"
    tar.write_bytes(_tar({"source/package.json": b"{}", "source/package-lock.json": lock({})}))
    found = lockfile_from_source_tar(tar)
    assert found is not None and found.name == "package-lock.json" and found.tarballs == ()
    tar.write_bytes(_tar({"source/package.json": b"{}"}))
    assert lockfile_from_source_tar(tar) is None  # no lockfile: the npm-pack recipe as before
    tar.write_bytes(_tar({"source/npm-shrinkwrap.json": lock({"node_modules/typescript": ts()}),
                          "source/package-lock.json": b"not json"}))  # fmt: skip
    shrinkwrap = lockfile_from_source_tar(tar)
    assert shrinkwrap is not None and shrinkwrap.name == "npm-shrinkwrap.json"  # npm prefers it too


def test_a_lockfile_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    tar = tmp_path / "source.tar"
    tar.write_bytes(_tar({}, {"source/package-lock.json": "/etc/passwd"}))
    with pytest.raises(InputError, match="not a regular file"):
        lockfile_from_source_tar(tar)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "package-lock.json").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="not a regular file"):
        lockfile_from_tree(tmp_path / "tree")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=40), st.dictionaries(st.text(max_size=12), st.text(max_size=40)), max_size=5))
def test_any_packages_object_gives_a_lockfile_or_an_input_error(packages: dict[str, Any]) -> None:
    try:
        parsed = parse_lockfile(lock(packages))
    except InputError:
        return
    for tarball in parsed.tarballs:  # whatever is accepted is a registry https URL and a 64-byte sha512
        assert tarball.url.startswith("https://registry.npmjs.org/") and len(tarball.sha512) == 128
