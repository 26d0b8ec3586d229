"""`rebuild check` against the real engine: the variations really apply, and each example names its culprit.

Budget: about a minute and a half on a 2-core machine (builds take about a second each); one `--vary all`
that bisects (the build-path example), one that does not (hello), subsets elsewhere.
"""

from __future__ import annotations

import json
import math
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from rebuild.build.sandbox import BuildRequest, DockerSandbox
from rebuild.check import tools as check_tools
from rebuild.check.variations import NAMES, TIME_SHIFT_DAYS, vary_request
from rebuild.pipeline import connect_backends
from rebuild.plan import Environment, Source
from rebuild.recipes import RecipeBook
from tests.integration.test_pipeline import EXAMPLES, rebuild

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("builder_image", "no_leftover_containers")]
DAY = 86400
SHIFT = TIME_SHIFT_DAYS * DAY
SLACK = 600  # seconds between the host's clock reading and the build's

PROBE = r"""
date +%s > /out/date
touch made-now
stat -c %Y made-now > /out/stat
python3 -c 'import os; print(int(os.stat("made-now").st_mtime))' > /out/python-stat
tar -cf /out/made-now.tar made-now
touch -d @1700000000 set-explicitly && stat -c %Y set-explicitly > /out/explicit
date -d @0 +%B > /out/month
printf 'b\nA\na\nB\n' | sort | tr '\n' ' ' > /out/sorted
{ id -u; id -g; id -un 2>&1 || true; echo "${USER:-}"; } > /out/user
{ hostname; domainname; } > /out/host
nproc > /out/cpus
echo "$HOME" > /out/home && touch "$HOME/writable"
pwd > /out/pwd
umask > /out/umask
"""


@pytest.fixture(scope="module")
def probes(docker_client: Any, builder_image: str, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The same probe in the reference sandbox and with every sandbox-level variation applied."""
    plan = RecipeBook().get("command").plan(
        Source("src.tar", "0" * 64), {"command": "true", "outputs": "x"}, Environment(1700000000),
        image_digest=builder_image,
    )  # fmt: skip
    engine = connect_backends(cache_dir, limits=check_tools.PREPARE_LIMITS)
    tools = check_tools.prepare(engine, plan, need_tools=True, need_passwd=True)
    assert tools.directory is not None and tools.passwd is not None, tools.problem
    env = {**plan.environment.variables(), "LC_ALL": "fr_CH.UTF-8", "LANG": "fr_CH.UTF-8"}  # as `locale` sets them
    results = {}
    for label, names in (("reference", ()), ("varied", NAMES)):
        out = tmp_path_factory.mktemp(label)
        request = BuildRequest(image=builder_image, steps=(PROBE,), env=plan.environment.variables())
        if names:
            request = vary_request(BuildRequest(image=builder_image, steps=(PROBE,), env=env), names, tools)
        DockerSandbox(docker_client).run(request, out)
        results[label] = out
    return results, time.time()


def read(out: Path, name: str) -> str:
    return (out / name).read_text().strip()


def test_time_variation_moves_date_stat_times_and_file_mtimes(probes: Any) -> None:
    """libfaketime, mounted read-only from the tools image, moves the clock a build sees by 400 days."""
    (results, now) = probes
    for label, shift in (("reference", 0), ("varied", SHIFT)):
        out = results[label]
        for name in ("date", "stat", "python-stat"):
            assert abs(int(read(out, name)) - (now + shift)) < SLACK, (label, name, read(out, name))
        with tarfile.open(out / "made-now.tar") as tar:
            member_mtime = tar.getmember("made-now").mtime
        # what tar records for a file the build just made: the moved clock (libfaketime may add its offset
        # to a time it set itself once more; a check only asks whether a timestamp moved by days)
        assert shift - SLACK <= member_mtime - now <= 2 * shift + SLACK, (label, member_mtime - now)
        # a time the build sets itself (tar -x keeping the source archive's times) reads back unmoved
        assert read(out, "explicit") == "1700000000"


def test_locale_user_host_cpus_home_variations_apply(probes: Any) -> None:
    (results, _) = probes
    ref, varied = results["reference"], results["varied"]
    assert read(ref, "month") == "January" and read(varied, "month") == "janvier"
    assert read(ref, "sorted") == "A B a b" and read(varied, "sorted") == "a A b B"
    assert read(ref, "user").splitlines()[:2] == ["1000", "1000"]
    assert read(varied, "user").splitlines() == ["2000", "2000", "rebuildcheck", "rebuildcheck"]
    assert read(ref, "host").splitlines() == ["rebuild", "(none)"]
    assert read(varied, "host").splitlines() == ["varied-host", "varied.example"]
    assert read(varied, "cpus") == "1" and int(read(ref, "cpus")) >= 1
    assert read(ref, "home") == "/tmp" and read(varied, "home") == "/home/rebuild-check"
    assert read(ref, "pwd") == read(varied, "pwd") == "/build"  # the build path is the plan's: `run_plan` varies it


def check(*args: str, out: Path) -> tuple[Any, dict[str, Any], str]:
    r = rebuild("check", *args, "--out", str(out))
    report = json.loads((out / "check-report.json").read_text())
    return r, report, r.stdout


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["variations"]}


def test_hello_is_reproducible_under_every_variation(tmp_path: Path) -> None:
    r, report, stdout = check(str(EXAMPLES / "hello"), "--vary", "all", out=tmp_path / "c")
    assert r.returncode == 0, r.stderr + stdout
    assert "REPRODUCIBLE under every variation tried" in stdout and "identical?" in stdout
    assert report["culprits"] == [] and report["result"] == "reproducible"
    outcomes = {name: row["outcome"] for name, row in rows(report).items()}
    assert outcomes == {"none": "identical", "sde": "follows", **{n: "identical" for n in NAMES if n != "sde"}}
    assert report["build_count"] == 4  # reference, again, sde, everything else at once
    # progress: each build as it runs, with its number, variations and seconds
    assert "build 2: none (no variation)" in r.stderr and "build 4: all (" in r.stderr
    assert "build 4: all: identical (" in r.stderr


def test_a_single_culprit_is_bisected_and_explained(tmp_path: Path) -> None:
    r, report, stdout = check(str(EXAMPLES / "check-build-path"), "--vary", "all", out=tmp_path / "c")
    assert r.returncode == 1, r.stderr
    assert report["culprits"] == ["build-path"] and report["bisected"] is True
    row = rows(report)["build-path"]
    assert row["outcome"] == "differs" and "where-1.0/where" in row["detail"] and "ELF" in row["detail"]
    assert report["build_count"] - 3 <= 2 * math.log2(len(NAMES) - 1) + 2  # minus the reference pair and sde
    assert "NOT REPRODUCIBLE under: build-path" in stdout


@pytest.mark.parametrize(
    "example, vary, culprit, explained",
    [
        ("check-umask", "umask,locale,file-order", "umask", "content identical, permissions differ"),
        ("check-locale", "locale,tz,umask", "locale", "line 1: 'Apple' -> 'apple'"),
        ("check-tz", "tz,locale,time", "tz", "'released 2023-11-14 22:13' -> 'released 2023-11-15 12:13'"),
        ("check-file-order", "file-order,umask,build-path", "file-order", "member order"),
    ],
    ids=["umask", "locale", "tz", "file-order"],
)
def test_each_example_names_exactly_its_culprit(
    tmp_path: Path, example: str, vary: str, culprit: str, explained: str
) -> None:
    r, report, _ = check(str(EXAMPLES / example), "--vary", vary, "--json", out=tmp_path / "c")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["culprits"] == report["culprits"] == [culprit]
    assert explained in rows(report)[culprit]["detail"]
    assert all(row["outcome"] == "identical" for name, row in rows(report).items() if name != culprit)


def test_clock_is_nondeterministic_and_time_still_named(tmp_path: Path) -> None:
    r, report, stdout = check(str(EXAMPLES / "clock"), "--vary", "time,tz,umask", out=tmp_path / "c")
    assert r.returncode == 1, r.stderr
    assert report["nondeterministic"] is True and report["bisected"] is False
    found = rows(report)
    assert found["none"]["outcome"] == "nondeterministic"
    assert found["time"]["outcome"] == "differs" and "timestamps moved by days" in found["time"]["detail"]
    assert found["umask"]["outcome"] == "differs" and "permissions" in found["umask"]["detail"]
    assert found["tz"]["outcome"] == "noise"
    assert report["culprits"] == ["time", "umask"]
    assert "differs under every variation, including none" in stdout and "nondeterminism" in stdout


def test_signed_statement_is_never_a_passed_summary(tmp_path: Path) -> None:
    keys = tmp_path / "k"
    assert rebuild("key", "generate", "--out", str(keys)).returncode == 0
    out = tmp_path / "c"
    r, report, _ = check(str(EXAMPLES / "hello"), "--vary", "umask,tz", "--key", f"{keys}.key", out=out)
    assert r.returncode == 0, r.stderr
    statement = Path(report["statement"])
    assert statement == out / "hello-1.0.tar.gz.check.intoto.jsonl"
    shown = json.loads(rebuild("attestation", "show", str(statement), "--json").stdout)
    (envelope,) = shown["envelopes"]
    assert envelope["statement"]["predicateType"] == "https://rebuild-verifier.dev/check/v1"
    assert envelope["statement"]["predicate"]["result"] == "reproducible"
    verdict = rebuild(
        "attestation", "verify", str(statement), "--key", f"{keys}.pub", "--artifact",
        str(out / "reference" / "hello-1.0.tar.gz"),
    )  # fmt: skip
    assert verdict.returncode == 1  # a check is not a verification summary: nothing here can pass as one


def test_unhappy_paths(tmp_path: Path) -> None:
    missing = rebuild("check", str(tmp_path / "nowhere"), "--vary", "umask")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr and "Traceback" not in missing.stderr
    down = rebuild("check", str(EXAMPLES / "hello"), env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert down.returncode == 3 and "no Docker engine answers" in down.stderr and "Traceback" not in down.stderr
    broken = rebuild("check", str(EXAMPLES / "hello"), "--vary", "umask", "--param", "command=exit 7")
    assert broken.returncode == 3 and "build failed: exit 7" in broken.stderr
