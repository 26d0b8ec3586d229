"""`rebuild verify` of the bundled example: warm-cache overhead over the build step, and cold-cache time."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, figure

REBUILD = str(Path(sys.executable).parent / "rebuild")


def run(*args: str, cache: Path) -> dict:
    env = {**os.environ, "REBUILD_CACHE_DIR": str(cache)}
    proc = subprocess.run([REBUILD, *args, "--json"], capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"rebuild {' '.join(args)} failed: {proc.stderr}")
    return json.loads(proc.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        run("build", str(ROOT / "examples" / "hello"), "--out", str(work / "release"), cache=cache)
        (provenance,) = (work / "release").glob("*.provenance.intoto.jsonl")
        cold_cache = work / "cold"
        started = time.perf_counter()
        run("verify", str(provenance), "--out", str(work / "cold-out"), cache=cold_cache)
        figure("verify, cold cache (image present in the engine)", f"{time.perf_counter() - started:.2f} s")
        walls, builds = [], []
        for i in range(5):
            started = time.perf_counter()
            report = run("verify", str(provenance), "--out", str(work / f"o{i}"), cache=cache)
            walls.append(time.perf_counter() - started)
            builds.append(report["stages"]["build"])
            assert report["reproduced"] and not report["fetched"]
        wall, build = statistics.median(walls), statistics.median(builds)
        figure("verify, warm cache, wall (median of 5)", f"{wall:.2f} s")
        figure("build stage alone (median)", f"{build:.2f} s")
        figure("wall / build", f"{wall / build:.2f}")
        figure("pipeline overhead over the build", f"{wall - build:.2f} s", "< 2 s")


if __name__ == "__main__":
    main()
