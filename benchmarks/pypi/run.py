"""Verify every release in packages.txt against PyPI, cold then warm, and write the table.

    python benchmarks/pypi/run.py [--warm-only] [--out DIR]

Cold: a fresh cache directory (sdists, wheels and wheelhouses downloaded; the
builder image, once built, is found in Docker). Warm: the same run again.
Writes results.md (the table) and results.json beside this script, and prints
the reproduction rate and the median seconds per package. The Python column is
the builder Python of the attempt that matched (of every attempt, when none did).

Every release is verified with ``--content-equivalence`` and a throwaway key: a
release whose bytes differ but whose every member's content is identical gets a
signed content-equivalence statement (beside its FAILED summary); the
"content-equivalent" column says so, and the summary counts the statements
found in the attestation bundles and checks that none was signed where a
member's content differs.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REBUILD = Path(sys.executable).with_name("rebuild")


CE_PREDICATE = "https://rebuild-verifier.dev/content-equivalence/v1"


def run_batch(cache: Path, out: Path, key: Path) -> list[dict]:
    cmd = [str(REBUILD), "verify", "--from", str(HERE / "packages.txt"), "--json", "--no-diffoscope"]
    cmd += ["--cache-dir", str(cache), "--out", str(out), "--content-equivalence", "--key", str(key)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if not proc.stdout.strip():
        sys.exit(f"rebuild verify printed nothing (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout)["results"]


def backend(row: dict) -> str:
    summary = row.get("summary") or {}
    generator = summary.get("generator") or ""
    return generator or summary.get("backend") or "?"


def pythons(row: dict) -> str:
    """The builder Python(s) of a row, from its report's attempts ("Python 3.11, SOURCE_DATE_EPOCH unset")."""
    try:
        report = json.loads(Path(row["report"]).read_text())
    except (KeyError, TypeError, OSError, ValueError):
        return ""
    labels = [a.get("label", "") for a in report.get("attempts", [])]
    if row.get("matched"):
        labels = [row["matched"]]
    found = [label.split(",")[0].removeprefix("Python ") for label in labels if label.startswith("Python ")]
    return " / ".join(dict.fromkeys(found))


def claims(row: dict) -> int:
    """Content-equivalence statements in the row's attestation bundle (payloads decoded, not verified here)."""
    try:
        lines = Path(row["attestation"]).read_text().splitlines() if row.get("attestation") else []
    except OSError:
        return 0
    types = [json.loads(base64.b64decode(json.loads(line)["payload"]))["predicateType"] for line in lines if line]
    return types.count(CE_PREDICATE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-only", action="store_true", help="reuse the default cache; one run")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rebuild-pypi-bench")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    cache = args.out / "cache"
    args.out.mkdir(parents=True)
    made = subprocess.run([str(REBUILD), "key", "generate", "--out", str(args.out / "bench")], capture_output=True)
    if made.returncode:
        sys.exit(f"rebuild key generate failed: {made.stderr.decode()[-500:]}")
    key = args.out / "bench.key"
    cold = None if args.warm_only else run_batch(cache, args.out / "cold", key)
    warm = run_batch(cache, args.out / "warm", key)
    cold_by = {r["target"]: r for r in cold or []}
    lines = [
        "| package | backend (wheel Generator) | Python | verdict | classification / reason | content-equivalent |"
        " attempts | matched with | warm s | cold s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in warm:
        c = cold_by.get(r["target"], {})
        r["content_equivalence_statements"] = claims(r)
        lines.append(
            f"| {r['target'].removeprefix('pypi:')} | {backend(r)} | {pythons(r)} | {r['verdict']} | {r['detail']} |"
            f" {r.get('equivalence') or ''} | {r['attempts']} |"
            f" {r.get('matched') or ''} | {r['seconds']} | {c.get('seconds', '')} |"
        )
    reproduced = sum(r["verdict"] == "reproduced" for r in warm)
    metadata_only = [r for r in warm if "content identical" in r["detail"]]
    content = [r for r in warm if "content of" in r["detail"] or "only in" in r["detail"]]
    signed = [r for r in warm if r["content_equivalence_statements"]]
    summary = [
        f"reproduced: {reproduced} of {len(warm)} ({100 * reproduced / len(warm):.0f}%)",
        f"content-equivalence statements: {len(signed)} releases; of the {len(metadata_only)} 'content identical' "
        f"releases, {sum(1 for r in metadata_only if r['content_equivalence_statements'])} have one; "
        f"of the {len(content)} with a member's content differing, {sum(1 for r in content if r in signed)} have one",
        f"median seconds per package, warm: {statistics.median(r['seconds'] for r in warm):.1f}   (target < 15)",
    ]
    if cold:
        summary.append(f"median seconds per package, cold: {statistics.median(r['seconds'] for r in cold):.1f}")
    (HERE / "results.md").write_text("\n".join(lines + [""] + [f"- {s}" for s in summary]) + "\n")
    (HERE / "results.json").write_text(json.dumps({"warm": warm, "cold": cold}, indent=2, sort_keys=True) + "\n")
    print("\n".join(lines))
    print("\n".join(summary))


if __name__ == "__main__":
    main()
