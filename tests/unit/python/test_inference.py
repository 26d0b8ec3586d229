"""The PyPI adapter's reading of indexes, wheels and sdists, without Docker or the network."""

from __future__ import annotations

import calendar
import io
import json
import tarfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rebuild.errors import InputError, PlanError
from rebuild.python import distributions as dist
from rebuild.python.index import SimpleIndex
from rebuild.python.pinning import epoch_candidates
from rebuild.resolve.pypi import _choose_files, _choose_version, parse_target


def make_wheel(path: Path, generator: str, date: tuple[int, ...], mode: int = 0o644) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in (("demo/__init__.py", "x = 1\n"), ("demo-1.0.dist-info/WHEEL", f"Generator: {generator}\n")):
            info = zipfile.ZipInfo(name, date)
            info.external_attr = mode << 16
            zf.writestr(info, text)
    return path


def make_sdist(path: Path, pyproject: str | None, mtime: int) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        files = {"demo-1.0/PKG-INFO": "Name: demo\n", "demo-1.0/demo/__init__.py": "x = 1\n"}
        if pyproject is not None:
            files["demo-1.0/pyproject.toml"] = pyproject
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mtime = len(data), mtime
            tf.addfile(info, io.BytesIO(data))
    return path


def test_generator_lines_of_every_backend(tmp_path: Path) -> None:
    cases = {
        "flit 3.9.0": ("flit", "3.9.0"),
        "hatchling 1.24.2": ("hatchling", "1.24.2"),
        "bdist_wheel (0.43.0)": ("bdist_wheel", "0.43.0"),
        "setuptools (70.2.0)": ("setuptools", "70.2.0"),
        "poetry-core 1.8.1": ("poetry-core", "1.8.1"),
        "pdm-backend (2.3.3)": ("pdm-backend", "2.3.3"),
    }
    for line, (name, version) in cases.items():
        facts = dist.read_wheel(make_wheel(tmp_path / "w.whl", line, (2024, 1, 1, 0, 0, 0)))
        assert (facts.generator_name, facts.generator_version) == (name, version)
        assert name in dist.GENERATOR_DISTRIBUTIONS


def test_sdist_build_system_and_legacy_default(tmp_path: Path) -> None:
    modern = dist.read_sdist(
        make_sdist(
            tmp_path / "a.tar.gz",
            '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\nbackend-path = ["."]\n',
            1700000000,
        )
    )
    system = modern.build_system
    assert system.requires == ("hatchling",) and system.backend == "hatchling.build" and system.in_tree_backend
    assert modern.pkg_info_mtime == 1700000000
    legacy = dist.read_sdist(make_sdist(tmp_path / "b.tar.gz", None, 1))
    assert legacy.build_system.requires is None
    assert legacy.build_system.requirements == ["setuptools>=40.8.0", "wheel"]
    assert legacy.build_system.inference() is not None and "no pyproject.toml" in legacy.build_system.inference().reason
    with pytest.raises(InputError, match="not a readable sdist"):
        dist.read_sdist(tmp_path / "missing.tar.gz")


def test_epoch_candidates_follow_the_backend(tmp_path: Path) -> None:
    wheel = dist.read_wheel(make_wheel(tmp_path / "w.whl", "hatchling 1.0", (2024, 1, 1, 0, 0, 0)))
    hatch = dist.SdistFacts("demo-1.0", dist.BuildSystem(("hatchling",), "hatchling.build"), 1600000000)
    first = epoch_candidates(hatch, wheel)
    assert [value for _, value, _ in first] == [calendar.timegm((2024, 1, 1, 0, 0, 0)), 1600000000, None]
    flit = dist.SdistFacts("demo-1.0", dist.BuildSystem(("flit_core",), "flit_core.buildapi"), 1600000000)
    assert epoch_candidates(flit, wheel)[0][1] is None  # fixed-timestamp backends: unset first
    zoned = epoch_candidates(hatch, wheel, ("CET-1CEST,M3.5.0,M10.5.0/3", "Europe/Berlin"))
    assert zoned[0] == (
        "SOURCE_DATE_EPOCH unset, TZ of the publisher (Europe/Berlin)",
        None,
        "CET-1CEST,M3.5.0,M10.5.0/3",
    )


def test_time_zone_of_the_publisher_from_zip_times(tmp_path: Path) -> None:
    """The zip holds the files' mtimes in local time: 2 hours ahead in a Berlin summer."""
    mtime = calendar.timegm((2023, 6, 3, 10, 0, 0))
    sdist = make_sdist(tmp_path / "s.tar.gz", None, mtime)
    wheel = make_wheel(tmp_path / "w.whl", "flit 3.9.0", time.gmtime(mtime + 7200)[:6])
    rule, zone = dist.infer_timezone(wheel, sdist) or ("", "")
    assert zone == "Europe/Berlin" and rule.startswith("CET-1CEST")
    utc = make_wheel(tmp_path / "u.whl", "flit 3.9.0", time.gmtime(mtime)[:6])
    assert dist.infer_timezone(utc, sdist) is None
    fixed = make_wheel(tmp_path / "f.whl", "poetry-core 1.8.1", (1980, 1, 1, 0, 0, 0))
    assert dist.infer_timezone(fixed, sdist) is None  # a fixed timestamp is not a time zone


def test_umask_from_the_project_files_not_the_record(tmp_path: Path) -> None:
    assert dist.read_wheel(make_wheel(tmp_path / "a.whl", "flit 1", (2024, 1, 1, 0, 0, 0), 0o664)).group_writable
    assert not dist.read_wheel(make_wheel(tmp_path / "b.whl", "flit 1", (2024, 1, 1, 0, 0, 0))).group_writable


def test_simple_index_html_and_json(tmp_path: Path) -> None:
    html = tmp_path / "simple" / "demo"
    html.mkdir(parents=True)
    (html / "index.html").write_text(
        '<a href="../../files/demo-1.0.tar.gz#sha256=' + "a" * 64 + '" data-upload-time="2024-01-02T03:04:05Z">x</a>'
        '<a href="https://files.example/demo-1.0-py3-none-any.whl#sha256=' + "b" * 64 + '" data-yanked="">y</a>'
    )
    files = SimpleIndex(f"file://{tmp_path}/simple").files("Demo")
    assert [f.url for f in files] == [
        f"file://{tmp_path}/files/demo-1.0.tar.gz",
        "https://files.example/demo-1.0-py3-none-any.whl",
    ]
    assert files[0].upload_time == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC) and files[1].yanked
    doc = {"files": [{"filename": "demo-1.0.tar.gz", "url": "/f/demo-1.0.tar.gz", "hashes": {"sha256": "c" * 64}}]}
    parsed = SimpleIndex._from_json(json.dumps(doc).encode(), "https://pypi.example/simple/demo/")
    assert parsed[0].url == "https://pypi.example/f/demo-1.0.tar.gz" and parsed[0].sha256 == "c" * 64
    with pytest.raises(InputError, match=r"no project .nothing."):
        SimpleIndex(f"file://{tmp_path}/simple").files("nothing")


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("Demo", "demo"), ("Foo.Bar_baz", "foo-bar-baz"), ("a--_.b", "a-b"), ("zope.interface", "zope-interface")],
    ids=["case", "separators", "runs", "dots"],
)
def test_the_index_page_of_a_project_is_under_its_pep503_name(name: str, normalized: str) -> None:
    assert SimpleIndex("https://pypi.example/simple").project_url(name) == f"https://pypi.example/simple/{normalized}/"


@pytest.mark.parametrize(
    ("uploaded", "expected"),
    [
        ("2024-01-02T03:04:05.123456Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2024-01-02T05:04:05+02:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", None),  # no offset: not comparable with the wheel's time
        ("2024-01-02", None),
        (1704164645, None),
        (None, None),
    ],
    ids=["pep700", "offset", "no-offset", "date-only", "number", "null"],
)
def test_upload_times_are_rfc3339_with_an_offset(uploaded: object, expected: datetime | None) -> None:
    item = {"filename": "demo-1.0.tar.gz", "url": "/f/demo-1.0.tar.gz", "upload-time": uploaded}
    (parsed,) = SimpleIndex._from_json(json.dumps({"files": [item]}).encode(), "https://pypi.example/simple/demo/")
    assert parsed.upload_time == expected


def test_a_malformed_index_entry_is_read_tolerantly() -> None:
    items = [{"url": "/f/a.tar.gz", "hashes": ["sha256"], "filename": 7}, {"url": 3}, "x"]
    (parsed,) = SimpleIndex._from_json(json.dumps({"files": items}).encode(), "https://pypi.example/simple/demo/")
    assert (parsed.filename, parsed.sha256, parsed.upload_time) == ("", "", None)


def test_release_selection_and_its_refusals(tmp_path: Path) -> None:
    from rebuild.python.index import IndexFile

    def f(name: str) -> IndexFile:
        return IndexFile(name, f"https://x/{name}", "d" * 64, None, False)

    files = [
        f("demo-1.0.tar.gz"),
        f("demo-1.0-py3-none-any.whl"),
        f("demo-2.0rc1.tar.gz"),
        f("demo-1.1-cp311-cp311-manylinux_2_17_x86_64.whl"),
        f("demo-1.1.tar.gz"),
    ]
    assert str(_choose_version(files, "demo", None)) == "1.1"
    with pytest.raises(InputError, match=r"has no release 3\.0"):
        _choose_version(files, "demo", "3.0")
    sdist, wheel, _ = _choose_files(files, "demo", _choose_version(files, "demo", "1.0"))
    assert (sdist.filename, wheel.filename) == ("demo-1.0.tar.gz", "demo-1.0-py3-none-any.whl")
    with pytest.raises(PlanError, match="only platform wheels"):
        _choose_files(files, "demo", _choose_version(files, "demo", "1.1"))
    with pytest.raises(PlanError, match="has no sdist"):
        _choose_files(
            [f("demo-1.0-py3-none-any.whl")], "demo", _choose_version([f("demo-1.0-py3-none-any.whl")], "demo", "1.0")
        )
    assert parse_target("pypi:Demo==1.0") == ("Demo", "1.0") and parse_target("pypi:demo") == ("demo", None)
    with pytest.raises(InputError):
        parse_target("pypi:demo>=1")


def test_a_wheel_or_sdist_member_that_inflates_hugely_is_read_only_up_to_the_cap(tmp_path: Path) -> None:
    """A deflate bomb in WHEEL or pyproject.toml: read up to MAX_METADATA, never inflated whole into memory."""
    import tracemalloc

    bomb = b"Generator: hatchling 1.0\n" + b" " * (64 << 20)  # 64 MiB, a few dozen KiB deflated
    wheel = tmp_path / "bomb-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb-1.0.dist-info/WHEEL", bomb)
    sdist = tmp_path / "bomb-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("bomb-1.0/pyproject.toml")
        info.size = len(bomb)
        tf.addfile(info, io.BytesIO(bomb))
    tracemalloc.start()
    try:
        assert dist.read_wheel(wheel).generator == "hatchling 1.0"
        with pytest.raises(InputError):  # the capped text is not valid TOML: named, not a traceback
            dist.read_sdist(sdist)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak >> 20} MiB: the member was inflated whole"


def test_a_wheel_whose_deflate_stream_is_broken_is_named_not_a_traceback(tmp_path: Path) -> None:
    wheel = tmp_path / "broken-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("broken-1.0.dist-info/WHEEL", b"Generator: hatchling 1.0\n" * 200)
    raw = bytearray(wheel.read_bytes())
    start = raw.index(b"broken-1.0.dist-info/WHEEL") + len(b"broken-1.0.dist-info/WHEEL")
    raw[start + 4 : start + 12] = b"\xff" * 8  # garbage inside the compressed data
    wheel.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="not a readable wheel"):
        dist.read_wheel(wheel)
