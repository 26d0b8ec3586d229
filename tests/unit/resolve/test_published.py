"""Finding the published files: the user's own by digest only, else beside the document by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rebuild.errors import VerificationError
from rebuild.resolve.published import find_published, has_digest, held_digests

WHEEL = "demo-1.0-py3-none-any.whl"
SDIST = "demo-1.0.tar.gz"


def digests(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha512": hashlib.sha512(data).hexdigest()}


RECORDED = {WHEEL: {"sha256": digests(b"wheel")["sha256"]}, SDIST: {"sha512": digests(b"sdist")["sha512"].upper()}}


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("held", "beside", "expected"),
    [
        ({}, {WHEEL: b"wheel", SDIST: b"sdist"}, {WHEEL: f"doc/{WHEEL}", SDIST: f"doc/{SDIST}"}),
        ({"mine/any-name.whl": b"wheel"}, {}, {WHEEL: "mine/any-name.whl"}),
        ({"mine/s.tgz": b"sdist"}, {WHEEL: b"other bytes"}, {SDIST: "mine/s.tgz", WHEEL: f"doc/{WHEEL}"}),
        ({}, {WHEEL: b"other bytes"}, {WHEEL: f"doc/{WHEEL}"}),  # beside: by name, checked by digest later
        ({}, {}, {}),
    ],
    ids=["beside", "held-by-digest-not-name", "held-by-sha512-and-beside", "beside-other-bytes", "nothing"],
)
def test_published_files_are_found(
    tmp_path: Path, held: dict[str, bytes], beside: dict[str, bytes], expected: dict[str, str]
) -> None:
    for name, data in beside.items():
        write(tmp_path / "doc" / name, data)
    paths = [write(tmp_path / name, data) for name, data in held.items()]
    found = find_published(RECORDED, held_digests(paths), tmp_path / "doc", "p.json")
    assert found == {name: tmp_path / rel for name, rel in expected.items()}


@pytest.mark.parametrize(
    ("name", "data"),
    [(WHEEL, b"altered"), ("other.whl", b"altered"), ("copy.whl", b"")],
    ids=["under-the-published-name", "under-another-name", "empty"],
)
def test_a_held_file_without_a_recorded_digest_is_not_an_artifact_the_document_names(
    tmp_path: Path, name: str, data: bytes
) -> None:
    write(tmp_path / "doc" / WHEEL, b"wheel")  # the real one beside the document changes nothing
    held = held_digests([write(tmp_path / "mine" / name, data)])
    with pytest.raises(VerificationError, match=rf"{name} is not an artifact p.json names") as e:
        find_published(RECORDED, held, tmp_path / "doc", "p.json")
    assert e.value.exit_code == 1 and digests(data)["sha256"] in e.value.hint


def test_each_held_file_stands_for_one_output(tmp_path: Path) -> None:
    same = {"sha256": digests(b"same")["sha256"]}
    held = held_digests([write(tmp_path / "x", b"same"), write(tmp_path / "y", b"same")])
    found = find_published({"a": same, "b": same, "c": same}, held, tmp_path / "doc", "p.json")
    assert found == {"a": tmp_path / "x", "b": tmp_path / "y"}


@pytest.mark.parametrize("name", ["../outside.whl", "/etc/passwd", "a/../../outside.whl", ".hidden", "-rf"])
def test_a_name_from_a_document_never_leaves_its_directory(tmp_path: Path, name: str) -> None:
    write(tmp_path / "outside.whl", b"x")
    write(tmp_path / "doc" / ".hidden", b"x")
    write(tmp_path / "doc" / "-rf", b"x")
    assert find_published({name: {"sha256": "00" * 32}}, {}, tmp_path / "doc", "p.json") == {}


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({"sha256": digests(b"x")["sha256"].upper()}, True),
        ({"sha512": digests(b"x")["sha512"]}, True),
        ({"sha256": digests(b"y")["sha256"], "sha512": digests(b"x")["sha512"]}, True),
        ({"sha256": digests(b"y")["sha256"]}, False),
        ({"md5": "x", "gitCommit": "x"}, False),
        ({}, False),
    ],
    ids=["sha256-any-case", "sha512", "either", "other", "not-hex-digests", "none"],
)
def test_has_digest(recorded: dict[str, str], expected: bool) -> None:
    assert has_digest(recorded, digests(b"x")) is expected
