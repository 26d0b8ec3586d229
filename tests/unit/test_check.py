"""`rebuild check` without Docker: the bisection's bound, each variation as data, the check's decisions."""

from __future__ import annotations

import io
import json
import math
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rebuild.build.images import BuilderImage, ImageSpec
from rebuild.build.sandbox import BuildRequest, BuildResult, _check_request
from rebuild.check import NAMES, PREDICATE_TYPE, check_release, parse_vary, variations
from rebuild.check.bisect import bisect
from rebuild.check.differences import beyond_noise, moved_timestamps, signature
from rebuild.check.report import check_statement
from rebuild.check.variations import (
    FAKETIME_LIBRARY,
    TOOLS_MOUNT,
    VARIED_HOME,
    Tools,
    vary_environment,
    vary_request,
)
from rebuild.check.varied import reverse_archive, reversed_order
from rebuild.errors import BuildFailedError, InputError, PlanError, SandboxError
from rebuild.fetch.cache import BlobCache
from rebuild.pipeline import Backends
from rebuild.plan import Environment
from rebuild.recipes import RecipeBook

IMAGE = "sha256:" + "ab" * 32
ARTIFACT = "out.txt"

# --- bisection: a pure function, counted with a fake build --------------------------------------------------


def bound(n: int) -> float:
    return 2 * math.log2(n) + 2


@pytest.mark.parametrize("n", range(1, 17), ids=lambda n: f"{n}-variations")
def test_one_culprit_is_found_within_2_log2_n_plus_2_builds_wherever_it_is(n: int) -> None:
    names = [f"v{i}" for i in range(n)]
    for culprit in names:
        calls: list[frozenset[str]] = []

        def differs(tried: frozenset[str], culprit: str = culprit, calls: list[frozenset[str]] = calls) -> bool:
            calls.append(tried)
            return culprit in tried

        found = bisect(names, differs)
        assert found.culprits == (culprit,)
        assert found.interacting == ()
        assert len(calls) == len(set(calls)) == len(found.tests)  # no build twice
        assert len(calls) <= bound(n), (n, culprit, calls)
        assert found.differed(frozenset({culprit})) is True  # the culprit's own build is its evidence


def test_thirteen_variations_one_culprit_takes_at_most_7_builds() -> None:
    names = list(NAMES)
    worst = max(len(bisect(names, lambda s, c=c: c in s).tests) for c in names)  # type: ignore[misc]
    assert worst <= 7 <= bound(len(names))


def test_nothing_differs_costs_one_build() -> None:
    found = bisect(["a", "b", "c"], lambda s: False)
    assert found.culprits == () and len(found.tests) == 1


def test_no_variation_costs_nothing() -> None:
    assert bisect([], lambda s: pytest.fail("no build expected")).tests == ()


def test_builds_already_known_are_not_run_again() -> None:
    calls: list[frozenset[str]] = []

    def differs(tried: frozenset[str]) -> bool:
        calls.append(tried)
        return "b" in tried

    found = bisect(["a", "b"], differs, known={frozenset({"a", "b"}): True})
    assert found.culprits == ("b",) and frozenset({"a", "b"}) not in calls


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 13).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_every_culprit_is_found_when_each_differs_on_its_own(case: tuple[int, set[int]]) -> None:
    n, culprits = case
    names = [f"v{i}" for i in range(n)]
    found = bisect(names, lambda s: any(names[i] in s for i in culprits))
    assert set(found.culprits) == {names[i] for i in culprits}
    assert list(found.culprits) == [n for n in names if n in found.culprits]  # the registry's order


def test_a_difference_only_two_variations_make_together_is_not_blamed_on_one() -> None:
    names = [f"v{i}" for i in range(12)]
    found = bisect(names, lambda s: "v3" in s and "v9" in s)
    assert found.culprits == ()
    (group,) = found.interacting
    assert {"v3", "v9"} <= set(group)


# --- variations as data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("all", NAMES), ("umask", ("umask",)), ("umask,time, tz", ("time", "tz", "umask")), ("tz,tz", ("tz",))],
    ids=["all", "one", "registry-order", "duplicates"],
)
def test_parse_vary(text: str, expected: tuple[str, ...]) -> None:
    assert parse_vary(text) == expected


@pytest.mark.parametrize("text", ["clock", "", "all,umask", "time,,nope"], ids=["unknown", "empty", "all-and", "typo"])
def test_parse_vary_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(InputError) as info:
        parse_vary(text)
    assert "file-order" in info.value.hint


def test_names_are_the_documented_ones() -> None:
    assert NAMES == (
        "time",
        "sde",
        "tz",
        "locale",
        "umask",
        "build-path",
        "user",
        "home",
        "hostname",
        "domain",
        "cpus",
        "env",
        "file-order",
    )


def test_plan_level_variations_change_only_their_field_and_stay_valid() -> None:
    env = Environment(1700000000)
    varied = vary_environment(env, ["sde", "tz", "locale", "umask", "build-path"])
    assert varied.source_date_epoch == 1700000000 + 400 * 86400
    assert (varied.tz, varied.locale, varied.umask) == ("GMT-14", "fr_CH.UTF-8", "0002")
    assert varied.build_path == "/srv/rebuild-check/elsewhere"
    assert vary_environment(env, ["hostname"]) == env
    # the reference already has the first choice: the other one is used, so something always changes
    assert vary_environment(Environment(1, tz="GMT-14", umask="0002"), ["tz", "umask"]).tz == "GMT+12"


def request(**kw: Any) -> BuildRequest:
    return BuildRequest(
        image=IMAGE, steps=("true",), env={"PATH": "/bin", "HOME": "/tmp", "LC_ALL": "fr_CH.UTF-8"}, **kw
    )


def test_sandbox_level_variations(tmp_path: Path) -> None:
    for name in ("passwd", "group"):
        (tmp_path / name).write_text("root:x:0:\n")
    tools = Tools(tmp_path, tmp_path / "passwd", tmp_path / "group", cpus=4)
    base = request()
    varied = vary_request(base, NAMES, tools)
    assert varied.env["LD_PRELOAD"] == FAKETIME_LIBRARY and varied.env["FAKETIME"] == "+400d"
    assert varied.env["LOCPATH"].startswith(TOOLS_MOUNT) and varied.env["LANGUAGE"] == "fr_CH:fr"
    assert (varied.uid, varied.gid, varied.env["USER"]) == (2000, 2000, "rebuildcheck")
    assert varied.env["HOME"] == VARIED_HOME and VARIED_HOME in varied.scratch
    assert (varied.hostname, varied.domainname, varied.cpuset) == ("varied-host", "varied.example", "0")
    assert varied.env["CAPTURE_ENVIRONMENT"]
    targets = {m.target: m.source for m in varied.inputs}
    assert targets == {TOOLS_MOUNT: tmp_path, "/etc/passwd": tmp_path / "passwd", "/etc/group": tmp_path / "group"}
    assert base == request()  # nothing mutated
    assert vary_request(base, (), tools) == base
    _check_request(varied)  # the sandbox accepts every variation


def test_variations_that_need_tools_refuse_to_run_without_them() -> None:
    with pytest.raises(InputError, match="need the check's tools"):
        vary_request(request(), ["time"], Tools())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"uid": 0}, "never root"),
        ({"gid": 0}, "never root"),
        ({"uid": 65534}, "never root"),
        ({"hostname": "a;reboot"}, "hostname"),
        ({"hostname": "host\n"}, "hostname"),
        ({"domainname": "-x.example"}, "domain name"),
        ({"cpuset": "0; rm"}, "cpuset"),
        ({"scratch": ("/etc",)}, "overlaps /etc"),
        ({"scratch": ("/build",)}, "share a container path"),
    ],
    ids=[
        "uid-root",
        "gid-root",
        "uid-nobody",
        "hostname-shell",
        "hostname-newline",
        "domain-dash",
        "cpuset",
        "scratch-reserved",
        "scratch-twice",
    ],
)
def test_the_sandbox_refuses_a_variation_that_would_weaken_it(change: dict[str, Any], message: str) -> None:
    with pytest.raises((SandboxError, PlanError), match=message):
        _check_request(request(**change))


def test_settings_record_reference_and_varied_values(tmp_path: Path) -> None:
    plan = (
        RecipeBook()
        .get("command")
        .plan(_source(), {"command": "make", "outputs": ARTIFACT}, Environment(1700000000), image_digest=IMAGE)
    )
    rows = {s.name: s for s in variations.settings(NAMES, plan, Tools(cpus=2))}
    assert set(rows) == set(NAMES)
    assert (rows["umask"].reference, rows["umask"].varied) == ("0022", "0002")
    assert rows["sde"].varied == str(1700000000 + 400 * 86400)
    assert all(s.reference and s.varied and s.what for s in rows.values())


def _source() -> Any:
    from rebuild.plan import Source

    return Source("src.tar", "0" * 64)


# --- file order -------------------------------------------------------------------------------------------


def test_reversed_order_keeps_each_directory_before_its_content() -> None:
    names = ["d", "d/a", "d/b", "d/sub", "d/sub/x", "e", "f.txt"]
    ordered = [names[i] for i in reversed_order(names)]
    assert ordered == ["f.txt", "e", "d", "d/sub", "d/sub/x", "d/b", "d/a"]
    assert sorted(ordered) == sorted(names)


def _tar(members: list[tuple[str, bytes | None]], compression: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compression}" if compression else "w") as tar:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif name.endswith(".link"):
                info.type, info.linkname = tarfile.LNKTYPE, "d/a"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("compression", ["", "gz", "xz"], ids=["tar", "tar.gz", "tar.xz"])
def test_reverse_archive_same_members_other_order(tmp_path: Path, compression: str) -> None:
    src = tmp_path / "source.tar"
    src.write_bytes(_tar([("d", None), ("d/a", b"A"), ("d/b", b"B"), ("a.link", b""), ("z", b"Z")], compression))
    reverse_archive(src, tmp_path / "reversed.tar")
    with tarfile.open(src) as a, tarfile.open(tmp_path / "reversed.tar") as b:
        assert [m.name for m in b.getmembers()] == ["z", "d", "d/b", "d/a", "a.link"]  # hard links last
        for m in a.getmembers():
            other = b.getmember(m.name)
            assert (other.mode, other.mtime, other.type, other.linkname) == (m.mode, m.mtime, m.type, m.linkname)
            if m.isfile():
                assert b.extractfile(other).read() == a.extractfile(m).read()  # type: ignore[union-attr]


# --- differences beyond a nondeterministic build's noise --------------------------------------------------


def _archive(path: Path, mtime: int, mode: int, content: bytes) -> Path:
    """pkg/INFO (random content, as clock's BUILD_INFO) and pkg/README (same content, created with ``mode``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, member_mode in (("pkg/INFO", content, 0o644), ("pkg/README", b"read me", mode)):
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.size = mtime, member_mode, len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def test_only_what_the_noise_does_not_explain_counts(tmp_path: Path) -> None:
    from compare.report import compare_artifacts

    ref = _archive(tmp_path / "ref.tar", 1700000000, 0o644, b"random 1")
    again = _archive(tmp_path / "again.tar", 1700000003, 0o644, b"random 2")  # seconds later, other random bytes
    umask = _archive(tmp_path / "umask.tar", 1700000005, 0o664, b"random 3")
    clock = _archive(tmp_path / "clock.tar", 1700000000 + 400 * 86400, 0o644, b"random 4")
    noise = signature([compare_artifacts(ref, again, name="out.tar")])
    assert noise == {("out.tar", "pkg/INFO", "content")}  # timestamps are left to the day rule

    def beyond(path: Path) -> list[str]:
        return beyond_noise([compare_artifacts(ref, path, name="out.tar")], noise, [(ref, path)])

    assert beyond(umask) == ["pkg/README: permissions"]
    assert beyond(clock) == ["timestamps moved by days (pkg/INFO mtime +400 days, pkg/README mtime +400 days)"]
    assert beyond(_archive(tmp_path / "same.tar", 1700000009, 0o644, b"random 5")) == []
    assert moved_timestamps(ref, again) == []


# --- the check, end to end with a fake sandbox -------------------------------------------------------------


def source_order(request: BuildRequest) -> list[str]:
    source = next(m.source for m in request.inputs if m.target == "/inputs/source")
    with tarfile.open(source / "source.tar") as tar:
        return tar.getnames()


class ProjectSandbox:
    """A project whose output follows SOURCE_DATE_EPOCH (as it should) and whatever ``sensitive`` names."""

    def __init__(
        self,
        sensitive: Callable[[BuildRequest], str] = lambda r: "",
        fails: Callable[[BuildRequest], bool] = lambda r: False,
        random: bool = False,
    ) -> None:
        self.sensitive = sensitive
        self.fails = fails
        self.random = random
        self.requests: list[BuildRequest] = []

    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        if any("localedef" in step for step in request.steps):  # the tools
            for rel in ("faketime/libfaketime.so.1", "locale/fr_CH.UTF-8/LC_CTYPE"):
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                (out_dir / rel).write_text("tool")
            return BuildResult(0, "", 0.0, ())
        if request.steps == ("cp /etc/passwd /etc/group /out/",):
            (out_dir / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
            (out_dir / "group").write_text("root:x:0:\n")
            return BuildResult(0, "", 0.0, ())
        self.requests.append(request)
        if self.fails(request):
            raise BuildFailedError("build failed: exit 1: cannot write $HOME", log="log")
        noise = os.urandom(4).hex() if self.random else ""
        text = f"epoch {request.env['SOURCE_DATE_EPOCH']} {self.sensitive(request)} {noise}\n"
        (out_dir / ARTIFACT).write_text(text)
        return BuildResult(0, "log", 0.01, (Path(ARTIFACT),))


class FakeImages:
    def ensure(self, spec: ImageSpec, expected_digest: str | None = None) -> BuilderImage:
        return BuilderImage(spec.tag, expected_digest or IMAGE)

    def pull_pinned(self, reference: str) -> BuilderImage:
        raise AssertionError("never pulled")


def check(tmp_path: Path, sandbox: ProjectSandbox, vary: str = "all", **kw: Any) -> Any:
    tree = tmp_path / "project"
    tree.mkdir(exist_ok=True)
    (tree / "rebuild.toml").write_text(
        '[build]\nrecipe = "command"\nsource_date_epoch = 1700000000\n'
        f'[build.parameters]\ncommand = "make"\noutputs = "{ARTIFACT}"\n'
    )
    (tree / "a.c").write_text("int a;\n")
    engine = Backends(sandbox, FakeImages(), BlobCache(tmp_path / "cache"))
    return check_release(tree, tmp_path / "work", engine, RecipeBook(), vary=parse_vary(vary), **kw)


def outcomes(report: Any) -> dict[str, str]:
    return {r.setting.name: r.outcome for r in report.rows}


def test_a_reproducible_project_is_identical_under_every_variation(tmp_path: Path) -> None:
    report = check(tmp_path, ProjectSandbox())
    assert report.exit_code == 0 and report.result == "reproducible" and report.culprits == ()
    assert outcomes(report) == {"none": "identical", "sde": "follows", **{n: "identical" for n in NAMES if n != "sde"}}
    assert [b.label for b in report.builds] == ["reference", "none", "sde", "all"]  # 4 builds, no bisection
    assert not report.bisected
    saved = json.loads((tmp_path / "work" / "check-report.json").read_text())
    assert saved["culprits"] == [] and saved["build_count"] == 4


@pytest.mark.parametrize(
    "name, sensitive",
    [
        ("time", lambda r: r.env.get("FAKETIME", "")),
        ("tz", lambda r: r.env["TZ"]),
        ("locale", lambda r: r.env["LC_ALL"]),
        ("umask", lambda r: r.umask),
        ("build-path", lambda r: r.build_path),
        ("user", lambda r: str(r.uid)),
        ("home", lambda r: r.env["HOME"]),
        ("hostname", lambda r: r.hostname),
        ("domain", lambda r: r.domainname),
        ("cpus", lambda r: r.cpuset),
        ("env", lambda r: r.env.get("CAPTURE_ENVIRONMENT", "")),
        ("file-order", lambda r: " ".join(source_order(r))),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_variation_is_found_alone_by_bisection(
    tmp_path: Path, name: str, sensitive: Callable[[BuildRequest], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    report = check(tmp_path, ProjectSandbox(sensitive))
    assert report.culprits == (name,) and report.exit_code == 1 and report.bisected
    row = next(r for r in report.rows if r.setting.name == name)
    assert row.outcome == "differs" and "out.txt" in row.detail
    bisection_builds = len(report.builds) - 3  # the reference pair and sde
    assert bisection_builds <= bound(len(NAMES) - 1)
    assert all(outcomes(report)[n] in ("identical", "follows") for n in NAMES if n != name)


def test_a_nondeterministic_build_is_said_so_and_each_variation_judged_beyond_the_noise(tmp_path: Path) -> None:
    report = check(tmp_path, ProjectSandbox(lambda r: r.umask, random=True), vary="umask,tz")
    assert report.nondeterministic and report.exit_code == 1 and not report.bisected
    assert outcomes(report)["none"] == "nondeterministic"
    assert "differs under every variation, including none" in report.notes[0]
    assert [b.label for b in report.builds] == ["reference", "none", "tz", "umask"]
    # a text file that differs anyway: nothing beyond the noise can be told from it
    assert outcomes(report)["umask"] == outcomes(report)["tz"] == "noise"


def test_a_build_that_fails_under_a_variation_is_could_not_tell(tmp_path: Path) -> None:
    report = check(tmp_path, ProjectSandbox(fails=lambda r: r.env["HOME"] == VARIED_HOME), vary="home,tz,umask")
    home = next(r for r in report.rows if r.setting.name == "home")
    assert home.outcome == "failed" and "cannot write $HOME" in home.detail
    assert report.culprits == () and report.exit_code == 3 and report.result == "inconclusive"
    assert outcomes(report)["tz"] == outcomes(report)["umask"] == "identical"


def test_a_variation_that_cannot_be_applied_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    report = check(tmp_path, ProjectSandbox(), vary="cpus,umask")
    row = next(r for r in report.rows if r.setting.name == "cpus")
    assert row.outcome == "not-applied" and "one CPU" in row.detail and report.exit_code == 0


def test_the_output_directory_may_not_be_inside_the_source(tmp_path: Path) -> None:
    tree = tmp_path / "project"
    tree.mkdir()
    engine = Backends(ProjectSandbox(), FakeImages(), BlobCache(tmp_path / "cache"))
    with pytest.raises(InputError, match="inside the source tree"):
        check_release(tree, tree / "out", engine, RecipeBook(), vary=("umask",))


def test_the_signed_statement_is_a_check_never_a_verification_summary(tmp_path: Path) -> None:
    from rebuild.attest.envelopes import read_envelopes
    from rebuild.attest.keys import generate

    report = check(tmp_path, ProjectSandbox(lambda r: r.umask), vary="umask,tz", signer=generate("ed25519"))
    (loaded,) = read_envelopes(report.statement)
    statement = json.loads(loaded.envelope.payload)
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": ARTIFACT, "digest": {"sha256": report.artifacts[ARTIFACT]}}]
    predicate = statement["predicate"]
    assert predicate["result"] == "not-reproducible" and predicate["culprits"] == ["umask"]
    assert [v["name"] for v in predicate["variations"]] == ["none", "tz", "umask"]
    assert "PASSED" not in loaded.envelope.payload.decode() and "verificationResult" not in predicate
    assert check_statement(report, "2024-01-01T00:00:00Z") == check_statement(report, "2024-01-01T00:00:00Z")


def test_renderers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from rebuild.render.json import JsonRenderer
    from rebuild.render.text import TextRenderer

    report = check(tmp_path, ProjectSandbox(lambda r: r.umask), vary="umask,tz")
    out = io.StringIO()
    TextRenderer(Console(file=out, width=200)).check(report)
    text = out.getvalue()
    assert "NOT REPRODUCIBLE under: umask" in text and "0022 -> 0002" in text and "identical?" in text
    JsonRenderer().check(report)
    assert json.loads(capsys.readouterr().out)["culprits"] == ["umask"]


# --- the command line, before any build ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--vary", "clock"], "unknown variation clock"),
        (["--key", "k.key"], "--key writes a signed statement: pass --out DIR"),
    ],
    ids=["unknown-variation", "key-without-out"],
)
def test_cli_usage_errors_exit_2_before_any_build(tmp_path: Path, args: list[str], message: str) -> None:
    from rebuild.cli import app

    result = CliRunner().invoke(app, ["check", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_earlier_check_in_out_is_replaced_and_anything_else_refused(tmp_path: Path) -> None:
    first = check(tmp_path, ProjectSandbox(lambda r: r.umask), vary="umask")
    stale = tmp_path / "work" / "builds" / "99-stale"
    stale.mkdir()
    second = check(tmp_path, ProjectSandbox(), vary="umask")
    assert first.culprits == ("umask",) and second.culprits == () and not stale.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("mine")
    engine = Backends(ProjectSandbox(), FakeImages(), BlobCache(tmp_path / "cache"))
    with pytest.raises(InputError, match="not empty"):
        check_release(tmp_path / "project", other, engine, RecipeBook(), vary=("umask",))
    assert (other / "precious.txt").read_text() == "mine"
