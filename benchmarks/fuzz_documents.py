"""Hostile documents through the CLI at volume: the generators of tests/unit/test_fuzz_documents.py, N times.

    .venv/bin/python benchmarks/fuzz_documents.py --count 10000 --seed 1 --save /tmp/fuzz-findings

Each document is a real one (a vector, this project's provenance or summary, a .buildinfo) mutated at
random, and runs through `provenance show`, `attestation verify` (JSON documents) and `verify` (no
Docker engine, no network); every tenth also feeds `rebuild buildinfo` a hostile run directory.
Prints the runs per command, the exit-code histogram, the most common refusals (how deep the documents
got), and the non-project exceptions: tracebacks, internal errors, unexpected exit codes, hangs, and
every other rule a run broke (see the test module). The first reproducers of each kind go under --save.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import figure

from tests.unit.test_fuzz_documents import (
    commands_for,
    mutate,
    run_buildinfo_command,
    run_command,
    seeds,
    workspace,
)

KEEP_PER_KIND = 3  # reproducers saved for each kind of finding


@dataclass
class Record:
    index: int
    seed: str
    command: str
    exit_code: int
    refusal: str  # the first "error:" line, normalised
    problems: list[str]
    steps: list[str] = field(default_factory=list)
    argv: list[str] = field(default_factory=list)
    output: str = ""
    document: bytes = b""


def _refusal(output: str) -> str:
    """The error line without the parts that change from document to document."""
    line = next((ln for ln in output.splitlines() if ln.startswith(("error:", "internal error:"))), "")
    line = re.sub(r"/tmp/[^\s:'\"]*", "PATH", line)
    line = re.sub(r"[0-9a-f]{16,}", "HEX", line)
    line = re.sub(r"0x[0-9a-f]{2}", "0xHH", line)
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    line = re.sub(r"\d+", "N", line)
    return line[:110]


def kind_of(problem: str) -> str:
    """A finding's kind: what it is, without the values of this one document."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'|\"[^\"]*\"|/tmp/\S*", "…", problem))[:120]


def run_one(job: tuple[int, int]) -> list[Record]:
    from typer.testing import CliRunner

    seed_value, index = job
    rnd = random.Random(f"{seed_value}:{index}")
    runner = CliRunner()
    all_seeds = seeds()
    seed = all_seeds[rnd.randrange(len(all_seeds))]
    doc = mutate(seed, rnd)
    records = []
    with workspace(Path(os.environ["FUZZ_TMP"])) as ws:
        for command in commands_for(seed):
            outcome = run_command(command, doc, ws, rnd, runner)
            record = Record(index, seed.name, command, outcome.exit_code, _refusal(outcome.output), outcome.problems)
            if outcome.problems:
                record.steps, record.argv, record.document = doc.steps, outcome.argv, doc.data
                record.output = outcome.output
            records.append(record)
    if index % 10 == 0:
        with workspace(Path(os.environ["FUZZ_TMP"])) as ws:
            outcome, steps = run_buildinfo_command(ws, rnd, runner)
            refusal = _refusal(outcome.output)
            record = Record(index, "hostile run directory", "buildinfo", outcome.exit_code, refusal, outcome.problems)
            if outcome.problems:
                record.steps, record.argv, record.output = steps, outcome.argv, outcome.output
            records.append(record)
    return records


def save(record: Record, directory: Path, number: int) -> Path:
    where = directory / f"finding-{number:03d}-{record.command}"
    where.mkdir(parents=True, exist_ok=True)
    if record.document:
        (where / "document").write_bytes(record.document)
    (where / "finding.json").write_text(
        json.dumps(
            {
                "index": record.index,
                "seed": record.seed,
                "mutations": record.steps,
                "command": ["rebuild", *record.argv],
                "exit_code": record.exit_code,
                "problems": record.problems,
                "output": record.output[-4000:],
            },
            indent=2,
            ensure_ascii=True,
        )
        + "\n"
    )
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="documents to generate")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (document i uses SEED:i)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument("--save", type=Path, default=None, help="directory for the first reproducers of each kind")
    parser.add_argument("--tmp", type=Path, default=None, help="parent of the per-document directories")
    args = parser.parse_args()
    tmp = args.tmp or Path(os.environ.get("BENCH_TMP", "/tmp"))
    os.environ["FUZZ_TMP"] = str(tmp)

    started = time.perf_counter()
    records: list[Record] = []
    documents: collections.Counter[str] = collections.Counter()
    jobs = [(args.seed, i) for i in range(args.count)]
    with multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=500) as pool:
        for done, batch in enumerate(pool.imap_unordered(run_one, jobs, chunksize=20), 1):
            records += batch
            documents[batch[0].seed] += 1
            if done % 1000 == 0:
                print(f"... {done} documents, {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started

    runs = collections.Counter(r.command for r in records)
    exits: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    refusals: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in records:
        exits[r.command][r.exit_code] += 1
        refusals[r.command][r.refusal or "(no error line)"] += 1
    findings = [r for r in records if r.problems]
    kinds: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[Record]] = collections.defaultdict(list)
    for r in findings:
        for problem in r.problems:
            kind = f"{r.command}: {kind_of(problem)}"
            if problem.startswith(("an internal error", "a traceback")):
                kind += f" [{_refusal(r.output)}]"
            kinds[kind] += 1
            if len(examples[kind]) < KEEP_PER_KIND:
                examples[kind].append(r)

    figure("documents", f"{args.count} (seed {args.seed}, {seconds:.0f} s, {args.count / seconds:.1f} documents/s)")
    for name, n in sorted(documents.items()):
        figure(f"  from {name}", str(n))
    figure("runs per command", ", ".join(f"{c} {n}" for c, n in sorted(runs.items())))
    for command in sorted(exits):
        histogram = ", ".join(f"exit {code}: {n}" for code, n in sorted(exits[command].items()))
        figure(f"exit codes, {command}", histogram)
    for command in sorted(refusals):
        print(f"most common outcomes, {command}:")
        for line, n in refusals[command].most_common(8):
            print(f"  {n:6d}  {line}")
    crash_marks = ("an internal error", "a traceback", "uncaught", "exit code")
    crashes = sum(1 for r in findings if any(p.startswith(crash_marks) for p in r.problems))
    hangs = sum(1 for r in findings if any(p.startswith("hang") for p in r.problems))
    figure("non-project exceptions (tracebacks, internal errors, uncaught, unexpected exit codes)", str(crashes), "0")
    figure("hangs", str(hangs), "0")
    figure("runs breaking any rule", str(len(findings)), "0")
    number = 0
    for kind, n in kinds.most_common():
        saved = ""
        if args.save is not None:
            paths = []
            for example in examples[kind]:
                number += 1
                paths.append(str(save(example, args.save, number)))
            saved = f" -> {', '.join(paths)}"
        print(f"  {n:6d}  {kind}{saved}")


if __name__ == "__main__":
    main()
