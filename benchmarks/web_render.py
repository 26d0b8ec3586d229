"""Dashboard render times: the overview over 10,000 releases, a package with 1,000 attempts, and a release with
1,000 attempts, each rendered N times in process (FastAPI's TestClient: routing, queries, templates, headers).

A throwaway SQLite store is made with `rebuild init`'s code and filled in bulk; nothing else is touched.
    .venv/bin/python benchmarks/web_render.py [--runs 30] [--releases 10000] [--attempts 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from _common import figure
from sqlalchemy import insert

from rebuild.service.config import ServicePaths, init_service
from rebuild.service.models import Attempt, Job, Target
from rebuild.service.store import Store

TARGET_MS = 200.0
VERDICTS = ["reproduced"] * 8 + ["not reproduced", "could not rebuild"]
ECOSYSTEMS = ("pypi", "debian", "generic")


def _rows(ecosystem: str, name: str, version: str, target_id: int, key: str, verdict: str | None, at: float,
          attempts: int, report: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    target = {"id": target_id, "target": f"{ecosystem}:{name}=={version}", "ecosystem": ecosystem, "name": name,
              "version": version, "created_at": at - 600}  # fmt: skip
    job = {"key": key, "target_id": target_id, "status": "done" if verdict else "queued", "tags": "",
           "decided_by": "{}", "round": 1, "not_before": 0.0, "detail": "", "created_at": at - 600, "updated_at": at,
           "finished_at": at if verdict else None, "verdict": verdict}  # fmt: skip
    outcome = verdict if verdict != "could not rebuild" else "build failed"
    tries = [{"job_key": key, "round": 1, "number": n, "worker": f"w{n % 4}", "started_at": at - 60 + n,
              "finished_at": at, "seconds": 12.5, "outcome": outcome, "classification": outcome or "",
              "detail": "", "exit_code": 1, "image_digest": "sha256:" + "c" * 64, "verifier_version": "bench",
              "artifacts": json.dumps({f"{name}-{version}.tar": "a" * 64}),
              "rebuilt_blobs": json.dumps({f"{name}-{version}.tar": "b" * 64}),
              "compare_blob": report if verdict == "not reproduced" else None}
             for n in range(1, attempts + 1)] if verdict else []  # fmt: skip
    return target, job, tries


def fill(store: Store, report: str, releases: int, attempts: int) -> dict[str, int]:
    """``releases`` releases (5 versions per package over three ecosystems, spread over 90 days), the package
    ``big`` whose 50 versions have ``attempts`` attempts in all, and the release ``huge 1.0`` with ``attempts``."""
    rng = random.Random(1)
    now = time.time()
    targets, jobs, tries = [], [], []
    for i in range(releases):
        ecosystem = ECOSYSTEMS[i % 3]
        verdict = None if i % 50 == 0 else rng.choice(VERDICTS)
        rows = _rows(ecosystem, f"pkg{i // 5}", f"1.{i % 5}", i + 1, f"{i:064x}", verdict,
                     now - rng.uniform(0, 90 * 86400), 1, report)  # fmt: skip
        targets.append(rows[0])
        jobs.append(rows[1])
        tries += rows[2]
    ids = {}
    per_version = attempts // 50
    for v in range(50):
        tid = releases + 1 + v
        rows = _rows("pypi", "big", f"2.{v}", tid, f"b{v:063x}", rng.choice(VERDICTS), now - v * 3600, per_version,
                     report)  # fmt: skip
        targets.append(rows[0])
        jobs.append(rows[1])
        tries += rows[2]
    ids["huge"] = releases + 51
    rows = _rows("pypi", "huge", "1.0", ids["huge"], "f" * 64, "not reproduced", now, attempts, report)
    targets.append(rows[0])
    jobs.append(rows[1])
    tries += rows[2]
    with store.session() as s:
        s.execute(insert(Target), targets)
        s.execute(insert(Job), jobs)
        s.execute(insert(Attempt), tries)
    return ids


def compare_report() -> bytes:
    detail = "same size 15, other bytes; line 1: 'built at 11:00' -> 'built at 10:00'"
    return json.dumps({"comparisons": [{
        "name": "huge-1.0.tar", "identical": False,
        "verdict": {"identical": False, "a": {"size": 9, "sha256": "a" * 64}, "b": {"size": 9, "sha256": "b" * 64}},
        "explanation": {"format": "tar", "classification": "content of 1 member", "kind": "content",
                        "categories": ["content"], "notes": [], "differences_total": 1,
                        "differences": [{"path": "clock/stamp.txt", "status": "content", "categories": ["content"],
                                         "detail": detail}]}, "diffoscope": None}]}).encode()  # fmt: skip


def timed(client: Any, url: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--attempts", type=int, default=1_000)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the TestClient's deprecation notice
    from fastapi.testclient import TestClient

    from rebuild.web.app import create_app

    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        paths = ServicePaths.of(None, Path(tmp))
        init_service(paths)
        store = Store.open(paths.db)
        started = time.perf_counter()
        ids = fill(store, paths.blobs.put_bytes(compare_report()), args.releases, args.attempts)
        figure("store filled (s)", f"{time.perf_counter() - started:.1f}")
        figure("releases", str(args.releases + 51))
        client = TestClient(create_app(store, paths.blobs))
        pages = {
            f"overview ({args.releases} releases)": "/",
            f"package with {args.attempts} attempts (50 versions)": "/packages/pypi/big",
            f"release with {args.attempts} attempts": f"/releases/{ids['huge']}",
            "queue and workers": "/queue",
        }
        for name, url in pages.items():
            client.get(url)  # warm: templates compiled, connections open
            median, p95 = timed(client, url, args.runs)
            figure(f"{name}: median ms", f"{median:.1f}", f"< {TARGET_MS:g}")
            figure(f"{name}: p95 ms", f"{p95:.1f}")
        store.close()


if __name__ == "__main__":
    main()
