"""Rebuild real Debian bookworm packages, with a cold then a warm builder image, and print the times.

    python benchmarks/debian_packages.py [SOURCE ...]     (default: base-files distro-info-data hello)

Cold: the package's builder image (its build-dependency set) is removed first, so mmdebstrap makes it
again (the .deb download cache is kept). Warm: the same verify again.
"""

from __future__ import annotations

import json
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


def main() -> None:
    targets = sys.argv[1:] or ["base-files", "distro-info-data", "hello"]
    with tempfile.TemporaryDirectory(prefix="rebuild-deb-bench-") as tmp:
        for source in targets:
            _, report = verify(f"deb:{source}", Path(tmp) / f"{source}-0")
            tag = report["plan"]["builderImage"]["reference"]
            subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)
            cold, report = verify(f"deb:{source}", Path(tmp) / f"{source}-cold")
            warm, report = verify(f"deb:{source}", Path(tmp) / f"{source}-warm")
            verdict = "reproduced" if report["reproduced"] else "NOT reproduced"
            build = report["build_seconds"]
            figure(
                f"deb:{source} {report['summary']['version']}",
                f"{verdict}; cold {cold:.1f} s, warm {warm:.1f} s (build step {build:.1f} s)",
            )


if __name__ == "__main__":
    main()
