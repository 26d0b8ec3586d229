"""Rebuild real Debian bookworm packages, with a cold then a warm builder image, and print the times.

    python benchmarks/debian_packages.py [SOURCE ...]     (default: base-files distro-info-data hello)
    python benchmarks/debian_packages.py --resolve [--runs N] [SOURCE ...]     (default: base-files)

Cold: the package's builder image (its build-dependency set) is removed first, so mmdebstrap makes it
again (the .deb download cache is kept). Warm: the same verify again. Each line also gives the resolve
stage of both verifies (``stages.resolve`` of the report).

``--resolve`` times the resolve stage alone, as ``rebuild verify`` runs it (in process, median of N runs,
default 5), with the parsed-index cache empty (``cold``: ``Sources.xz`` and ``Packages.xz`` are
decompressed and scanned, and the tables written: what every resolve did before the cache) and with it
filled (``warm``). It uses a private cache directory whose blobs are the user's cache's, so the indices
are not downloaded again (the InRelease is, on every resolve: it is what says whether they changed).
The file was ``benchmarks/debian.py``; a top-level ``debian.py`` hid the python-debian package.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import figure

REBUILD = Path(sys.executable).with_name("rebuild")


def verify(target: str, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    proc = subprocess.run(
        [str(REBUILD), "verify", target, "--json", "--no-diffoscope", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if not proc.stdout.strip():
        sys.exit(f"{target}: rebuild verify printed nothing (exit {proc.returncode}): {proc.stderr[-500:]}")
    return seconds, json.loads(proc.stdout)


def rebuilds(targets: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="rebuild-deb-bench-") as tmp:
        for source in targets:
            _, report = verify(f"deb:{source}", Path(tmp) / f"{source}-0")
            tag = report["plan"]["builderImage"]["reference"]
            subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
            cold, report = verify(f"deb:{source}", Path(tmp) / f"{source}-cold")
            cold_resolve = report["stages"]["resolve"]
            warm, report = verify(f"deb:{source}", Path(tmp) / f"{source}-warm")
            verdict = "reproduced" if report["reproduced"] else "NOT reproduced"
            build = report["build_seconds"]
            figure(
                f"deb:{source} {report['summary']['version']}",
                f"{verdict}; cold {cold:.1f} s, warm {warm:.1f} s (build step {build:.1f} s; "
                f"resolve {cold_resolve:.2f} s, then {report['stages']['resolve']:.2f} s)",
            )


def resolves(targets: list[str], runs: int) -> None:
    from rebuild.fetch.cache import BlobCache, default_cache_dir
    from rebuild.recipes import RecipeBook
    from rebuild.resolve import resolve
    from rebuild.resolve.context import ResolveContext

    book = RecipeBook()
    shared = default_cache_dir() / "blobs"
    shared.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rebuild-deb-resolve-") as tmp:
        root = Path(tmp) / "cache"
        root.mkdir()
        (root / "blobs").symlink_to(shared, target_is_directory=True)
        reports: list[str] = []

        def once(target: str, run: int) -> float:
            ctx = ResolveContext(
                BlobCache(root), book, Path(tmp) / f"out-{run}", progress=lambda s, m: reports.append(m)
            )
            started = time.perf_counter()
            resolve(target, ctx)
            return time.perf_counter() - started

        for source in targets:
            target = f"deb:{source}"
            once(target, 0)  # the indices, .dsc and .debs into the shared blobs
            cold, warm = [], []
            for run in range(runs):
                shutil.rmtree(root / "debian-indices", ignore_errors=True)
                cold.append(once(target, run))
                reports.clear()
                warm.append(once(target, run))
            said = next((m for m in reports if "parsed form from the cache" in m), "the cache was not used")
            figure(
                f"{target} resolve (median of {runs})",
                f"cold (indices parsed, tables written) {statistics.median(cold):.2f} s, "
                f"warm {statistics.median(warm):.2f} s  [{said}]",
            )


def main() -> None:
    args = sys.argv[1:]
    if "--resolve" in args:
        args.remove("--resolve")
        runs = 5
        if "--runs" in args:
            at = args.index("--runs")
            runs = int(args[at + 1])
            del args[at : at + 2]
        resolves(args or ["base-files"], runs)
    else:
        rebuilds(args or ["base-files", "distro-info-data", "hello"])


if __name__ == "__main__":
    main()
