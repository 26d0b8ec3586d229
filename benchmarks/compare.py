"""The verdict vs sha256sum on 1 GiB files; the structural diff vs diffoscope on a 10,000-member zip."""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from _common import figure, median_seconds

from compare.explain import explain_files
from compare.verdict import compare_files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        a, b = Path(tmp) / "a.bin", Path(tmp) / "b.bin"
        block = os.urandom(1 << 20)
        with open(a, "wb") as f:
            for _ in range(int(args.gib * 1024)):
                f.write(block)
        subprocess.run(["cp", str(a), str(b)], check=True)
        compare_files(a, b)  # page cache warm for both
        ours = median_seconds(lambda: compare_files(a, b), 3)
        theirs = median_seconds(
            lambda: subprocess.run(["sha256sum", str(a), str(b)], check=True, capture_output=True), 3
        )
        figure(f"verdict on two identical {args.gib:g} GiB files", f"{ours:.2f} s")
        figure("sha256sum of both", f"{theirs:.2f} s")
        figure("verdict / sha256sum", f"{ours / theirs:.2f}", "<= 1.1")
        a.unlink(), b.unlink()

        za, zb = Path(tmp) / "a.whl", Path(tmp) / "b.whl"
        for path, year in ((za, 2020), (zb, 2024)):
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                for i in range(args.members):
                    z.writestr(zipfile.ZipInfo(f"pkg/m{i:05}.py", (year, 1, 1, 0, 0, 0)), f"x = {i}\n" * 5)
        started = time.perf_counter()
        e = explain_files(za, zb)
        structural = time.perf_counter() - started
        figure(f"structural diff, {args.members} members, timestamps only", f"{structural:.2f} s ({e.classification})")
        started = time.perf_counter()
        proc = subprocess.run(
            ["diffoscope", "--no-progress", "--json", str(Path(tmp) / "d.json"), str(za), str(zb)],
            capture_output=True,
            timeout=3600,
        )
        diffo = time.perf_counter() - started
        figure("diffoscope on the same pair", f"{diffo:.2f} s (exit {proc.returncode})")
        figure("structural / diffoscope", f"{structural / diffo:.3f}")


if __name__ == "__main__":
    main()
