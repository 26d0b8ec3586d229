"""`rebuild check --vary all`: wall time against the number of builds, and the bisection's bound.

Runs the installed CLI, as a release team would: on examples/hello as it is (reproducible: 4 builds, no
bisection); on examples/hello with one fault put back (its command appends what one variation changes
to the tarball: `hello+tz` appends `date +%Z`, ...), so the bisection starts from every position of the
registry; and on the examples, each sensitive to exactly one thing, and clock. For each: the culprits
named, the builds run, the seconds, and the bisection's builds (after the reference pair and `sde`)
against its bound 2·log2(n) + 2 (n = 12 variations: 9.2). `--runs N` repeats each for a median.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, figure

REBUILD = str(Path(sys.executable).parent / "rebuild")
EXAMPLES = ("clock", "check-build-path", "check-umask", "check-locale", "check-tz", "check-file-order")
# hello with one fault: what the command appends to the release tarball changes under one variation only
FAULTS = {
    "time": "date -u +%Y-%m-%d",
    "tz": "date +%Z",
    "locale": "date -d @0 +%B",
    "umask": "umask",
    "build-path": "pwd",
    "user": "id -u",
    "home": 'echo "$HOME"',
    "hostname": "hostname",
    "domain": "domainname",
    "cpus": "nproc",
    "env": "env | grep -c CAPTURE_ENVIRONMENT || true",
    "file-order": "ls -f . | tail -3",
}
CASES = (
    [("hello", "hello", ())]
    + [(f"hello+{name}", "hello", ("--param", f"command=make dist && ({probe}) >> hello-1.0.tar.gz"))
       for name, probe in FAULTS.items()]
    + [(example, example, ()) for example in EXAMPLES]
)  # fmt: skip
REFERENCE_PAIR_AND_SDE = 3  # the reference, the reference again, SOURCE_DATE_EPOCH on its own


def run(example: str, extra: tuple[str, ...] = ()) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="rebuild-bench-check-") as tmp:
        started = time.perf_counter()
        proc = subprocess.run(
            [REBUILD, "check", str(ROOT / "examples" / example), "--vary", "all", "--json", "--out", f"{tmp}/out",
             *extra],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{example}: rebuild check exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return seconds, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("cases", nargs="*", help="case names (default: all): hello, hello+tz, check-umask, ...")
    args = parser.parse_args()
    run("hello")  # warm: the tools image and the cache's tools directory exist before anything is timed
    per_build = []
    bisections = []
    for label, example, extra in CASES:
        if args.cases and label not in args.cases:
            continue
        times, report = [], {}
        for _ in range(args.runs):
            seconds, report = run(example, extra)
            times.append(seconds)
        wall = statistics.median(times)
        builds = int(report["build_count"])  # type: ignore[call-overload]
        culprits = ", ".join(report["culprits"]) or "none"  # type: ignore[arg-type]
        tried = sum(
            1 for v in report["variations"] if v["name"] not in ("none", "sde") and v["outcome"] != "not-applied"
        )  # type: ignore[attr-defined]
        how = (
            "each alone (nondeterministic)"
            if report["nondeterministic"]
            else "bisected"
            if report["bisected"]
            else "all at once"
        )
        figure(f"{label}: culprits", f"{culprits} ({report['result']}, {how})")
        if report["bisected"] and len(report["culprits"]) == 1:  # type: ignore[arg-type]
            bisection = builds - REFERENCE_PAIR_AND_SDE
            bisections.append(bisection)
            figure(f"{label}: bisection builds", f"{bisection} of {tried} variations",
                   f"<= 2*log2({tried})+2 = {2 * math.log2(tried) + 2:.1f}")  # fmt: skip
        figure(f"{label}: builds, wall time", f"{builds} builds in {wall:.1f} s ({wall / builds:.2f} s per build)")
        per_build.append(wall / builds)
    if bisections:
        figure("bisection builds with one culprit (min, median, max)",
               f"{min(bisections)}, {statistics.median(bisections):g}, {max(bisections)}")  # fmt: skip
    figure("median seconds per build (whole check / builds)", f"{statistics.median(per_build):.2f} s")


if __name__ == "__main__":
    main()
