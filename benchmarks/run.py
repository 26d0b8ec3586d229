"""Run every benchmark and print its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    cold = ["--cold"] if "--cold" in sys.argv else []
    for script, extra in (("sandbox.py", cold), ("pipeline.py", []), ("compare.py", [])):
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True, cwd=HERE)


if __name__ == "__main__":
    main()
