"""Text for people: results on stdout, progress and errors on stderr.

Everything from outside goes through ``esc`` (rich markup escaped, control characters and lone
surrogates made visible). Progress is plain text when stderr is not a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from compare.report import ComparisonReport, PathsComparison
from rebuild.attest.policy import AttestationVerdict
from rebuild.batch import VERDICTS, BatchRow
from rebuild.build.images import BuilderImage
from rebuild.check.report import CheckReport
from rebuild.doctor import DoctorReport
from rebuild.release import BuildReport
from rebuild.report import VerifyReport
from rebuild.untrusted import printable

if TYPE_CHECKING:  # in-toto is imported only by the commands that speak it
    from rebuild.attest.feeds import FeedsVerdict
    from rebuild.attest.intoto import LayoutVerdict

COLOURS = dict(zip(VERDICTS, ("green", "red", "red", "yellow"), strict=True))
TOP_DIFFERENCES = 10
CHECK_OUTCOMES = {  # `rebuild check`: a row's outcome in the "identical?" column
    "identical": "[green]yes[/]",
    "differs": "[bold red]no[/]",
    "follows": "[yellow]no, as it should[/]",
    "noise": "[yellow]noise only[/]",
    "nondeterministic": "[bold red]no: nondeterministic[/]",
    "failed": "[red]build failed[/]",
    "not-applied": "[dim]not applied[/]",
    "unresolved": "[red]only combined[/]",
}


def esc(value: object) -> str:
    """Text from outside printed literally: never read as rich markup, never a control character."""
    return escape(printable(value))


class TextRenderer:
    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)

    # --- progress and errors (stderr) ------------------------------------------------------------------

    def progress(self, stage: str, message: str) -> None:
        if self.err.is_terminal:
            self.err.print(f"[cyan]{stage:>8}[/] {esc(message)}")
        else:  # a log or a pipe: no markup, no colour codes
            self.err.file.write(f"{stage:>8} {printable(message)}\n")
            self.err.file.flush()

    def error(self, message: str, hint: str) -> None:
        self.err.print(f"[bold red]error:[/] {esc(message)}")
        if hint:
            self.err.print(f"[dim]hint:[/] {esc(hint)}")

    # --- results (stdout) ------------------------------------------------------------------------------

    def doctor(self, report: DoctorReport) -> None:
        table = Table(show_header=False, box=None)
        for check in report.checks:
            table.add_row("[green]ok[/]" if check.ok else "[red]!![/]", esc(check.name), esc(check.detail))
        self.out.print(table)

    def images(self, images: Sequence[BuilderImage]) -> None:
        for image in images:
            verb = "built" if image.built else "present"
            self.out.print(f"image {esc(image.reference)} {verb}: {esc(image.digest)}")

    def build(self, report: BuildReport, out_dir: Path) -> None:
        for name, sha in report.artifacts.items():
            self.out.print(f"[bold green]built[/] {esc(out_dir / name)}  sha256:{esc(sha)}")
        signed = "signed" if report.signed else "UNSIGNED: pass --key to sign"
        self.out.print(f"provenance {esc(report.provenance)} ({signed})")
        self.out.print(f"source     {esc(report.source_archive)}")

    def verify(self, report: VerifyReport) -> None:
        out = self.out
        out.print(f"provenance {esc(report.provenance)} ({esc(report.provenance_signature)})")
        for inference in report.plan.inferences:
            out.print(f"  inferred {esc(inference.field)} = {esc(inference.value)} ({esc(inference.reason)})")
        if len(report.attempts) > 1 or (report.attempts and report.attempts[0].label != "as recorded"):
            for number, attempt in enumerate(report.attempts, start=1):
                mark = "[green]match[/]" if attempt.reproduced else f"[red]differs[/]: {esc(attempt.classification)}"
                if attempt.outcome == "build failed":  # could not tell: never shown as a difference
                    mark = f"[yellow]build failed[/]: {esc(attempt.error)}"
                out.print(f"  attempt {number}: {esc(attempt.label)}: {mark} ({attempt.seconds:.1f}s)")
        for c in report.comparisons:
            self._comparison(c)
        for note in report.notes:
            out.print(f"[yellow]note:[/] {esc(note)}")
        if report.reproduced:
            out.print("[bold green]REPRODUCED[/] bit for bit")
        else:
            out.print(f"[bold red]NOT REPRODUCED[/]; report: {esc(report.report.parent / 'compare-report.json')}")
        for name, e in report.equivalence.items():  # never instead of the verdict above: a claim of its own
            colour = "yellow" if e.equivalent else "red"
            out.print(f"  {esc(name)}: [{colour}]{esc(e.label)}[/]")
            if e.equivalent and not report.attestation:
                out.print("  [yellow]no --key given: the content-equivalence claim was not signed[/]")
        if report.attestation:
            out.print(f"attestation {esc(report.attestation)}")
        if report.in_toto_link:
            out.print(f"in-toto link {esc(report.in_toto_link)}")
        elif report.reproduced:
            out.print("[yellow]no --key given: nothing was attested[/]")
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.stages.items())
        out.print(
            f"[dim]{timings}; fetched {len(report.fetched)}, from cache {len(report.cached)}, "
            f"image {'built' if report.image_built else 'present'}[/]"
        )

    def verify_failed(self, report_file: Path) -> None:
        pass  # the error line on stderr says it; the report file is for machines

    def batch(self, rows: Sequence[BatchRow]) -> None:
        table = Table(title="rebuild verify")
        for column in ("target", "verdict", "classification / reason", "content-equivalent", "attempts", "seconds"):
            table.add_column(column)
        for row in rows:
            verdict = f"[{COLOURS[row.verdict]}]{row.verdict}[/]"
            table.add_row(
                esc(row.target), verdict, esc(row.detail), esc(row.equivalence), str(row.attempts), f"{row.seconds:.1f}"
            )
        self.out.print(table)
        counts = {v: sum(1 for r in rows if r.verdict == v) for v in VERDICTS}
        self.out.print(", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(rows)}")

    def buildinfo(self, path: Path) -> None:
        self.out.print(f"buildinfo {esc(path)}")

    def provenance(self, file: Path, statements: Sequence[dict[str, Any]], problems: Sequence[str]) -> None:
        out = self.out
        for doc in statements:
            out.print(f"[bold]{esc(doc['where'])}[/] ({esc(doc['wrapper'])}): {esc(doc['predicateType'])}")
            out.print(f"  signature   {esc(doc['signature'])}")
            for s in doc["subjects"]:
                digests = ", ".join(f"{k}:{str(v)[:16]}..." for k, v in sorted(s["digest"].items()))
                out.print(f"  subject     {esc(s['name'])}  {esc(digests)}")
            for field in ("builder", "buildType", "invocation"):
                if doc.get(field):
                    out.print(f"  {field:<11} {esc(doc[field])}")
            source = doc.get("source")
            if source:
                where = source.get("repository") or source.get("uri")
                ref = f" ({source['ref']})" if source.get("ref") else ""
                out.print(f"  source      {esc(where)}{esc(ref)} at commit {esc(source.get('commit') or '?')}")
            elif "source" in doc:
                out.print("  source      [yellow]none recorded[/]")
            rebuild = doc.get("rebuild", {})
            if rebuild.get("possible", True) and rebuild.get("recipe"):
                outputs = ", ".join(rebuild.get("outputs", []))
                out.print(f"  rebuild     recipe {esc(rebuild['recipe'])} -> {esc(outputs)}")
                for step in rebuild.get("willRun", []):
                    out.print(f"  [bold]will run in the sandbox:[/] {esc(step)}")
            elif rebuild:
                out.print(f"  rebuild     [yellow]not possible:[/] {esc(rebuild.get('reason'))}")
        for problem in problems:
            out.print(f"[yellow]unreadable:[/] {esc(problem)}")

    def comparison(self, result: PathsComparison) -> None:
        sets = result.sets
        if sets is not None:
            self.out.print(
                f"{len(sets.matching)} identical, {len(sets.differing)} different, "
                f"{len(sets.only_a)} only in {esc(result.a)}, {len(sets.only_b)} only in {esc(result.b)}"
            )
            for name in sets.only_a:
                self.out.print(f"  only in {esc(result.a)}: {esc(name)}")
            for name in sets.only_b:
                self.out.print(f"  only in {esc(result.b)}: {esc(name)}")
        for report in result.reports:
            self._comparison(report)

    def _comparison(self, r: ComparisonReport) -> None:
        out = self.out
        if r.identical:
            out.print(f"[bold green]identical[/] {esc(r.name)}  sha256:{r.verdict.a.sha256}  {r.verdict.a.size} bytes")
            return
        out.print(
            f"[bold red]different[/] {esc(r.name)}: {r.verdict.a.size} vs {r.verdict.b.size} bytes, "
            f"sha256 {r.verdict.a.sha256[:16]}... vs {r.verdict.b.sha256[:16]}..."
        )
        e = r.explanation
        if e is not None:
            out.print(f"  [bold]{esc(e.classification)}[/]" + (f"  ({esc(e.format)})" if e.format else ""))
            for d in e.differences[:TOP_DIFFERENCES]:
                out.print(f"    {esc(d.status):9} {esc(d.path)}" + (f"  [dim]{esc(d.detail)}[/]" if d.detail else ""))
            if len(e.differences) > TOP_DIFFERENCES:
                out.print(f"    ... and {len(e.differences) - TOP_DIFFERENCES} more")
            for note in e.notes:
                out.print(f"  [yellow]note:[/] {esc(note)}")
        if r.diffoscope is not None and r.diffoscope.reports:
            for fmt, path in r.diffoscope.reports.items():
                out.print(f"  diffoscope {esc(fmt)}: {esc(path)}")

    def key(self, info: dict[str, Any]) -> None:
        if "public" in info:  # a new key pair
            self.out.print(f"wrote {esc(info['private'])} (private, 0600) and {esc(info['public'])}")
            self.out.print(f"keyid {esc(info['keyid'])}")
            return
        kind = "private" if info["private"] else "public"
        self.out.print(f"{esc(info['type'])} {kind} key, keyid {esc(info['keyid'])}")
        if "in_toto" not in info:
            return
        form = info["in_toto"]
        if form is None:
            self.out.print("in-toto: no form for this key type (in-toto keys are Ed25519, ECDSA or RSA)")
            return
        self.out.print(f"in-toto keyid {esc(form['keyid'])} ({esc(form['keytype'])}, scheme {esc(form['scheme'])})")
        self.out.print("in-toto key, as the keys of a layout list it:")
        self.out.print(esc(json.dumps(form, sort_keys=True)))

    def attestation_verdict(self, verdict: AttestationVerdict, threshold: int) -> None:
        out = self.out
        for summary in verdict.accepted:
            label = summary.get("label")  # a content-equivalence claim: said on every line where it counts
            tag = f": [bold yellow]{esc(label)}[/]" if label else ""
            out.print(f"[bold green]verified[/] {esc(summary['subject'])} ({esc(summary['digest'])}){tag}")
            if label:
                out.print(f"  result    {esc(label)}, NOT bit for bit; rebuilt {esc(summary.get('rebuilt'))}")
            else:
                out.print(f"  result    PASSED, levels {esc(', '.join(summary['verifiedLevels'] or []))}")
            signers = ", ".join(k[:16] for k in summary["signers"])
            out.print(f"  verifier  {esc(summary['verifier'])}, signed by {esc(signers)}{tag}")
            out.print(f"  when      {esc(summary['timeVerified'])}")
            sources = [a.get("uri") for a in summary["inputAttestations"] if isinstance(a, dict)]
            provenance = ", ".join(map(str, sources)) or "-"
            out.print(f"  source    {esc(summary['resourceUri'])}; provenance {esc(provenance)}")
            for deviation in summary["deviations"]:
                out.print(f"  deviation {esc(deviation)}")
        labels = sorted({str(s["label"]) for s in verdict.accepted if s.get("label")})
        counting = f", counting {esc('; '.join(labels))}" if labels else ""
        out.print(f"{len(verdict.signers)} distinct trusted signer(s); threshold {threshold} met{counting}")

    def feeds_verdict(self, verdict: FeedsVerdict) -> None:
        out = self.out
        for feed in verdict.feeds:
            where = f", snapshot signed by {feed.publisher[:16]}" if feed.publisher else ""
            where += f", version {feed.version}, expires {feed.expires}" if feed.version else ""
            out.print(f"feed {esc(feed.feed)} ({feed.kind}): {esc(feed.status)}{esc(where)}")
            if feed.problem:
                out.print(f"  [red]{esc(feed.problem)}[/]")
            for s in feed.said:
                counts = "[green]PASSED[/]" if s.accepted else f"[red]{esc(s.result)}[/]"
                why = f" (not accepted: {esc(s.problem)})" if s.problem else ""
                out.print(f"  key {esc(s.signer[:16])} said {counts}{why}, verified {esc(s.time_verified)}")
            if feed.status == "read" and not feed.said:
                out.print("  no attestation for this artifact")
            for note in feed.notes:
                out.print(f"  [yellow]note:[/] {esc(note)}")
        met = "met" if len(verdict.signers) >= verdict.threshold else "not met"
        out.print(f"{len(verdict.signers)} distinct trusted signer(s) said PASSED; threshold {verdict.threshold} {met}")
        for c in verdict.conflicts:
            out.print(f"[bold red]conflict:[/] {esc(c.feed)}: key {esc(c.signer[:16])} said {esc(c.result)}")

    def layout_verdict(self, verdict: LayoutVerdict) -> None:
        out = self.out
        result = "[bold green]PASSED[/]" if verdict.passed else "[bold red]FAILED[/]"
        out.print(f"{result} in-toto verification of {esc(verdict.layout)} (expires {esc(verdict.expires)})")
        for step in verdict.steps:
            links = ", ".join(step.links) or "none"
            out.print(f"  step       {esc(step.name)}: threshold {step.threshold}, links {esc(links)}")
        for name in verdict.inspections:
            out.print(f"  inspection {esc(name)}")
        out.print(f"  artifact   {esc(verdict.artifact or 'none given')}")
        for note in verdict.notes:
            out.print(f"[yellow]note:[/] {esc(note)}")

    def attestations(self, shown: Sequence[dict[str, Any]]) -> None:
        self.err.print("[yellow]not verified:[/] signatures were not checked (use `rebuild attestation verify`)")
        for item in shown:
            self.out.print(
                f"[bold]{esc(item['origin'])}[/] {esc(item['wrapper'])}, {esc(item['signatures'])} signature(s)"
            )
            if "statement" in item:
                for line in json.dumps(item["statement"], indent=2, sort_keys=True).splitlines():
                    self.out.print(esc(line))  # line by line: a value never forges a line of its own
            else:
                self.out.print(f"  [red]{esc(item['error'])}[/]")

    def check(self, report: CheckReport) -> None:
        out = self.out
        for name, sha in sorted(report.artifacts.items()):
            out.print(f"reference {esc(name)}  sha256:{esc(sha)}")
        table = Table(title="rebuild check")
        table.add_column("variation", overflow="fold", max_width=34)
        table.add_column("identical?")
        table.add_column("what differs", overflow="fold", ratio=1)
        for row in report.rows:
            s = row.setting
            values = f"{esc(s.reference)} -> {esc(s.varied)}" if s.reference or s.varied else esc(s.what)
            detail = esc(row.detail)
            if row.outcome == "follows":
                detail = f"follows SOURCE_DATE_EPOCH, which rebuilders take from the plan: {detail}"
            if row.build is not None:
                detail += f" [dim](build {row.build})[/]"
            outcome = CHECK_OUTCOMES.get(row.outcome, esc(row.outcome))
            table.add_row(f"[bold]{esc(s.name)}[/]\n[dim]{values}[/]", outcome, detail)
        out.print(table)
        for note in report.notes:
            out.print(f"[yellow]note:[/] {esc(note)}")
        not_varied = ", ".join(what for what, _ in report.not_varied)
        out.print(f"[dim]not varied in a hardened container (see docs/check.md): {esc(not_varied)}[/]")
        how = "all at once, then bisected" if report.bisected else "each on its own" if report.nondeterministic else ""
        building = sum(b.seconds for b in report.builds)
        how_text = f" ({how})" if how else ""
        out.print(f"{len(report.builds)} builds{how_text} in {report.seconds:.1f} s ({building:.1f} s building)")
        if report.statement:
            out.print(f"statement {esc(report.statement)}")
        if report.out_dir:
            out.print(f"builds and report in {esc(report.out_dir)}")
        if report.nondeterministic:
            also = f"; also sensitive to {esc(', '.join(report.culprits))}" if report.culprits else ""
            out.print(f"[bold red]NOT REPRODUCIBLE[/]: nondeterministic (differs with nothing varied){also}")
        elif report.culprits or report.interacting:
            groups = [" + ".join(g) for g in report.interacting]
            out.print(f"[bold red]NOT REPRODUCIBLE[/] under: {esc(', '.join([*report.culprits, *groups]))}")
        elif report.failed:
            out.print(f"[yellow]COULD NOT TELL[/]: the build failed under {esc(', '.join(report.failed))}")
        else:
            out.print("[bold green]REPRODUCIBLE[/] under every variation tried")
