"""The compare package: verdict by bytes only, and explanations that name the cause."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compare.archive import Budget
from compare.diffoscope import run_diffoscope
from compare.errors import CompareError
from compare.explain import explain_files
from compare.report import compare_artifacts
from compare.verdict import compare_files, compare_sets
from rebuild.cli import app
from tests.archives import gz, make_deb, make_zip, tar_bytes

FILES = [("pkg/__init__.py", b"VERSION = '1.0'\n"), ("pkg/core.py", b"def f():\n    return 1\n" * 20)]
runner = CliRunner()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def pair(tmp_path: Path, case: str) -> tuple[Path, Path]:
    a, b = tmp_path / f"a-{case}", tmp_path / f"b-{case}"
    if case == "identical":
        make_zip(a, FILES), make_zip(b, FILES)
    elif case == "zip-timestamps":
        make_zip(a, FILES), make_zip(b, FILES, date=(2024, 5, 5, 12, 0, 0))
    elif case == "tar-timestamps":
        write(a, gz(tar_bytes(FILES))), write(b, gz(tar_bytes(FILES, mtime=1800000000)))
    elif case == "order":
        write(a, tar_bytes(FILES)), write(b, tar_bytes(list(reversed(FILES))))
    elif case == "permissions":
        write(a, tar_bytes(FILES)), write(b, tar_bytes(FILES, mode=0o755))
    elif case == "ownership":
        write(a, tar_bytes(FILES)), write(b, tar_bytes(FILES, uid=1000))
    elif case == "compression":
        make_zip(a, FILES), make_zip(b, FILES, compression=zipfile.ZIP_STORED)
    elif case == "gzip-header-time":
        write(a, gz(b"same content\n", mtime=1)), write(b, gz(b"same content\n", mtime=2))
    elif case == "content":
        make_zip(a, FILES), make_zip(b, [FILES[0], ("pkg/core.py", b"changed\n")])
    elif case == "only-one-side":
        make_zip(a, FILES), make_zip(b, [*FILES, ("pkg/extra.py", b"")])
    elif case == "nested":
        inner_a, inner_b = tmp_path / "in-a.whl", tmp_path / "in-b.whl"
        make_zip(inner_a, FILES), make_zip(inner_b, FILES, date=(2030, 1, 1, 0, 0, 0))
        write(a, gz(tar_bytes([("dist/demo.whl", inner_a.read_bytes())])))
        write(b, gz(tar_bytes([("dist/demo.whl", inner_b.read_bytes())])))
    elif case == "deb-content":
        make_deb(a, [("./usr/bin/hello", b"hello 1\n")]), make_deb(b, [("./usr/bin/hello", b"hello 2\n")])
    elif case == "not-an-archive":
        write(a, b"abcdef\n"), write(b, b"abcXef\n")
    else:
        raise AssertionError(case)
    return a, b


CASES = [
    ("identical", None, None),
    ("zip-timestamps", "metadata-only", "content identical, timestamps differ"),
    ("tar-timestamps", "metadata-only", "content identical, timestamps differ"),
    ("order", "metadata-only", "content identical, member order differ"),
    ("permissions", "metadata-only", "content identical, permissions differ"),
    ("ownership", "metadata-only", "content identical, ownership differ"),
    ("compression", "metadata-only", "content identical, compression differ"),
    ("gzip-header-time", "metadata-only", "content identical, timestamps differ"),
    ("content", "content", "content of 1 member"),
    ("only-one-side", "content", "1 member only in b"),
    ("nested", "metadata-only", "content identical, timestamps differ"),
    ("deb-content", "content", "content of 1 member"),
    ("not-an-archive", "content", "first difference at byte 3"),
]


@pytest.mark.parametrize("case, kind, classification", CASES, ids=[c[0] for c in CASES])
def test_classification(tmp_path: Path, case: str, kind: str | None, classification: str | None) -> None:
    a, b = pair(tmp_path, case)
    report = compare_artifacts(a, b)
    assert report.identical is (kind is None)
    if kind is None:
        assert report.explanation is None
        return
    assert report.explanation is not None
    assert report.explanation.kind == kind
    assert classification in report.explanation.classification, report.explanation.as_dict()


def test_nested_and_deb_paths_name_the_inner_member(tmp_path: Path) -> None:
    e = explain_files(*pair(tmp_path, "nested"))
    assert {d.path for d in e.differences} >= {"dist/demo.whl!pkg/__init__.py", "dist/demo.whl!pkg/core.py"}
    e = explain_files(*pair(tmp_path, "deb-content"))
    assert [d.path for d in e.differences] == ["data.tar.xz!./usr/bin/hello"]


def test_metadata_never_decides_the_verdict(tmp_path: Path) -> None:
    """Same members, same metadata, different container bytes (a zip comment): still 'different'."""
    a = make_zip(tmp_path / "a.zip", FILES)
    b = tmp_path / "b.zip"
    shutil.copy(a, b)
    with zipfile.ZipFile(b, "a") as z:
        z.comment = b"x"
    report = compare_artifacts(a, b)
    assert not report.identical and report.explanation is not None
    assert "zip metadata" in report.explanation.categories


def test_directories_by_name(tmp_path: Path) -> None:
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "same").write_text("1")
        (tmp_path / side / "diff").write_text(side)
        (tmp_path / side / f"only-{side}").write_text("")
    files = {s: {p.name: p for p in (tmp_path / s).iterdir()} for s in "ab"}
    v = compare_sets(files["a"], files["b"])
    assert (v.matching, v.differing, v.only_a, v.only_b) == (("same",), ("diff",), ("only-a",), ("only-b",))
    assert not v.identical
    result = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 1 and "1 identical, 1 different, 1 only in" in result.output


# --- hostile and broken inputs ---------------------------------------------------


def test_corrupt_and_truncated_archives_give_notes_not_crashes(tmp_path: Path) -> None:
    a = make_zip(tmp_path / "a.zip", FILES)
    truncated = write(tmp_path / "t.zip", a.read_bytes()[: a.stat().st_size // 2])
    corrupt = write(tmp_path / "c.tar.gz", gz(tar_bytes(FILES))[:40] + b"\x00" * 200)
    for bad in (truncated, corrupt):
        e = explain_files(a, bad)
        assert e.kind in ("content", "unknown")
        assert any("corrupt or truncated" in n for n in e.notes) or e.format is None
    result = runner.invoke(app, ["compare", str(a), str(truncated)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_zip_bomb_is_bounded(tmp_path: Path) -> None:
    zeros = [("bomb.bin", b"\x00" * (64 << 20))]
    a = make_zip(tmp_path / "a.zip", zeros)
    b = make_zip(tmp_path / "b.zip", [*zeros, ("x", b"")])
    assert a.stat().st_size < 1 << 20  # a 64 MiB member in under 1 MiB
    e = explain_files(a, b, Budget(max_expanded_bytes=16 << 20))
    assert any("expansion limit" in n for n in e.notes)
    # a member whose header declares an absurd size is not even opened
    data = bytearray(a.read_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    forged = write(tmp_path / "forged.zip", bytes(data))
    e = explain_files(a, forged, Budget(max_expanded_bytes=1 << 30))
    assert any("declares 4294967280 bytes" in n for n in e.notes)


def test_hostile_member_names_are_never_extracted(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    evil = [("../../escape", b"x"), ("/abs/path", b"y")]
    a = write(tmp_path / "a.tar", tar_bytes(evil, extra=[link]))
    b = write(tmp_path / "b.tar", tar_bytes([("../../escape", b"z"), ("/abs/path", b"y")], extra=[link]))
    before = set(os.listdir(tmp_path.parent))
    e = explain_files(a, b)
    assert set(os.listdir(tmp_path.parent)) == before
    assert not (tmp_path.parent.parent / "escape").exists()
    assert any("'..' path" in n for n in e.notes)
    assert e.classification == "content of 1 member"


def test_deep_nesting_is_bounded(tmp_path: Path) -> None:
    def nest(leaf: bytes, depth: int) -> bytes:
        data = leaf
        for i in range(depth):
            p = tmp_path / f"n{i}.zip"
            make_zip(p, [(f"level{i}.zip", data)])
            data = p.read_bytes()
        return data

    a = write(tmp_path / "a.zip", nest(b"one", 8))
    b = write(tmp_path / "b.zip", nest(b"two", 8))
    e = explain_files(a, b, Budget(max_depth=3))
    assert e.kind == "content"
    assert max(d.path.count("!") for d in e.differences) <= 3


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    a = write(tmp_path / "a", b"x")
    with pytest.raises(CompareError):
        compare_files(a, tmp_path / "missing")
    result = runner.invoke(app, ["compare", str(a), str(tmp_path / "missing")])
    assert result.exit_code == 2 and "does not exist" in result.output


# --- real artifacts -------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is Debian's")
def test_real_debs_built_by_dpkg_deb_with_a_changed_file(tmp_path: Path) -> None:
    debs = []
    for version, text in (("a", "hello\n"), ("b", "hello, world\n")):
        root = tmp_path / f"root-{version}"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text(
            "Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: d\n"
        )
        (root / "usr/share/demo").mkdir(parents=True)
        (root / "usr/share/demo/greeting").write_text(text)
        deb = tmp_path / f"{version}.deb"
        env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True, capture_output=True, env=env
        )
        debs.append(deb)
    e = compare_artifacts(*debs).explanation
    assert e is not None and e.kind == "content"
    assert "data.tar.xz!./usr/share/demo/greeting" in [d.path for d in e.differences]


# --- diffoscope (the real one) --------------------------------------------------

needs_diffoscope = pytest.mark.skipif(
    shutil.which("diffoscope") is None and os.environ.get("CI") != "true", reason="diffoscope not installed"
)


@needs_diffoscope
def test_diffoscope_json_report(tmp_path: Path) -> None:
    a, b = pair(tmp_path, "content")
    r = run_diffoscope(a, b, tmp_path / "rep", ("json", "text"), timeout_s=300)
    assert r.status == "different" and r.version == "1"
    doc = json.loads(Path(r.reports["json"]).read_text())
    assert doc["source1"].endswith("a-content")
    assert "changed" in Path(r.reports["text"]).read_text()


@needs_diffoscope
def test_diffoscope_timeout_kills_it(tmp_path: Path) -> None:
    big_a = make_zip(tmp_path / "a.zip", [(f"m{i}", os.urandom(2000)) for i in range(3000)])
    big_b = make_zip(tmp_path / "b.zip", [(f"m{i}", os.urandom(2000)) for i in range(3000)])
    r = run_diffoscope(big_a, big_b, tmp_path / "rep", timeout_s=0.5)
    assert r.status == "timeout" and "killed" in r.note
    out = subprocess.run(["pgrep", "-f", str(big_a)], capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_missing_or_crashing_diffoscope_degrades_only_the_explanation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair(tmp_path, "content")
    crasher = write(tmp_path / "diffoscope-crash", b"#!/bin/sh\necho boom >&2\nexit 2\n")
    crasher.chmod(0o755)
    r = run_diffoscope(a, b, tmp_path / "rep", executable=str(crasher))
    assert r.status == "crashed" and "boom" in r.note
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = compare_artifacts(a, b, diffoscope_dir=tmp_path / "rep2")
    assert not report.identical and report.diffoscope is not None and report.diffoscope.status == "missing"
    assert report.explanation is not None and report.explanation.classification == "content of 1 member"


def test_recompressed_gzip_is_named_as_such(tmp_path: Path) -> None:
    """Same tar, same gzip header, another deflate stream (npm's tarballs under another zlib): still different."""
    import gzip
    import io
    import tarfile
    import zlib

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"module.exports = 1;\n" * 50
        info = tarfile.TarInfo("package/index.js")
        info.size, info.mtime = len(data), 499162500
        tar.addfile(info, io.BytesIO(data))
    body = raw.getvalue()
    a = tmp_path / "a.tgz"
    a.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    header = a.read_bytes()[:10]
    fast = zlib.compressobj(1, zlib.DEFLATED, -15)
    stream = fast.compress(body) + fast.flush()
    b = tmp_path / "b.tgz"
    b.write_bytes(header + stream + a.read_bytes()[-8:])  # same header, CRC and size; another stream
    assert gzip.decompress(b.read_bytes()) == body
    report = compare_artifacts(a, b)
    assert not report.identical and report.explanation is not None
    assert report.explanation.classification.startswith("content identical, compressed stream differs")


def test_a_small_text_member_that_differs_is_quoted(tmp_path: Path) -> None:
    """A maintainer sees the line that changed (here: which backend wrote the wheel)."""
    wheel = "demo-1.0.dist-info/WHEEL"
    a = make_zip(tmp_path / "a.whl", [(wheel, b"Wheel-Version: 1.0\nGenerator: poetry-core 1.8.1\n")])
    b = make_zip(tmp_path / "b.whl", [(wheel, b"Wheel-Version: 1.0\nGenerator: poetry-core 1.9.0\n")])
    (diff,) = explain_files(a, b).differences
    assert diff.path == wheel
    assert "line 2: 'Generator: poetry-core 1.8.1' -> 'Generator: poetry-core 1.9.0'" in diff.detail


def _elf(build_id: bytes, code: bytes) -> bytes:
    note = b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00" + build_id
    return b"\x7fELF\x02\x01\x01" + bytes(57) + note + code


def test_elf_members_that_differ_only_in_build_id_are_named(tmp_path: Path) -> None:
    a = make_zip(tmp_path / "a.zip", [("bin/tool", _elf(b"\x01" * 20, b"code"))])
    b = make_zip(tmp_path / "b.zip", [("bin/tool", _elf(b"\x02" * 20, b"code"))])
    e = explain_files(a, b)
    assert e.classification == "only the ELF build-id of 1 member differs"
    assert "ELF: only the build-id differs (build-id 010101010101... -> 020202020202...)" in e.differences[0].detail
    c = make_zip(tmp_path / "c.zip", [("bin/tool", _elf(b"\x02" * 20, b"CODE"))])
    e = explain_files(a, c)
    assert e.classification == "content of 1 member"
    assert "ELF code or data differs in 4 bytes" in e.differences[0].detail
