"""Seconds Sigstore verification adds to `provenance show` and `verify` (importing the library, verifying).

Each figure is the median of fresh processes (the import is paid once per process, as a user pays it):
- the import of `sigstore` and `pypi_attestations` alone;
- `rebuild provenance show` of the BCR bundle against the same statement as a bare (unsigned) file;
- `verify`'s resolve step (`read_statements`, which is where verify checks the signature) on the BCR
  bundle, the slsa-github-generator bundle and the PEP 740 object, against the bare statement;
- one more bundle once the library is loaded (what each further target of a batch costs).
No network and an empty HOME: the verification is offline.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, figure

VECTORS = ROOT / "tests/data/vectors"
BCR = VECTORS / "slsa-verifier/bcr/rules_lint-v1.3.1.tar.gz.intoto.jsonl"
GENERIC = VECTORS / "slsa-verifier/gha_generic/v2.1.0/binary-linux-amd64-push-v14.intoto.jsonl"
PEP740 = VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance"
REBUILD = Path(sys.executable).parent / "rebuild"

RESOLVE = """
import sys, time
started = time.perf_counter()
from pathlib import Path
from rebuild.resolve.statements import read_statements
found, _ = read_statements(Path(sys.argv[1]))
assert found, sys.argv[1]
print(time.perf_counter() - started)
"""
WARM = """
import sys, time
from pathlib import Path
from rebuild.resolve.statements import read_statements
read_statements(Path(sys.argv[1]))  # library and trust root loaded
started = time.perf_counter()
(found, *_), _ = read_statements(Path(sys.argv[2]))
assert found.signature.sigstore, found.signature
print(time.perf_counter() - started)
"""


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1]) if argv[1] == "-c" else elapsed


def median(argv: list[str], env: dict[str, str], runs: int) -> float:
    return statistics.median(run(argv, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
        bare = Path(tmp) / "statement.json"  # the BCR statement, unsigned: same parsing, no Sigstore
        bare.write_bytes(base64.b64decode(json.loads(BCR.read_text())["dsseEnvelope"]["payload"]))
        py = sys.executable

        empty = median([py, "-c", "import time; s = time.perf_counter(); print(time.perf_counter() - s)"], env, 1)
        imports = median(
            [py, "-c", "import time; s = time.perf_counter(); import sigstore.verify, sigstore.models, "
             "pypi_attestations; print(time.perf_counter() - s)"], env, args.runs,
        )  # fmt: skip
        figure("import sigstore + pypi_attestations (s)", f"{imports - empty:.3f}")

        signed = median([str(REBUILD), "provenance", "show", str(BCR), "--json"], env, args.runs)
        unsigned = median([str(REBUILD), "provenance", "show", str(bare), "--json"], env, args.runs)
        figure("provenance show, BCR bundle (s)", f"{signed:.3f}")
        figure("provenance show, same statement unsigned (s)", f"{unsigned:.3f}")
        figure("provenance show: seconds added by Sigstore", f"{signed - unsigned:.3f}", "< 3 s")

        base = median([py, "-c", RESOLVE, str(bare)], env, args.runs)
        figure("verify's resolve, statement unsigned (s)", f"{base:.3f}")
        for name, path in (("BCR bundle", BCR), ("slsa-github-generator bundle", GENERIC), ("PEP 740 object", PEP740)):
            added = median([py, "-c", RESOLVE, str(path)], env, args.runs) - base
            figure(f"verify: seconds added by Sigstore ({name})", f"{added:.3f}", "< 3 s")
        warm = median([py, "-c", WARM, str(GENERIC), str(BCR)], env, args.runs)
        figure("one more bundle, library loaded (s)", f"{warm:.4f}", "< 0.1 s")
        written = [p for p in home.rglob("*")]
        figure("files written under HOME", str(len(written)), "0")


if __name__ == "__main__":
    main()
