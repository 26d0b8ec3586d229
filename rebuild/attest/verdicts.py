"""The statements a verify run signs about its verdict: provenance of the rebuild, SLSA verification
summaries (PASSED or FAILED), and content-equivalence claims (``docs/content-equivalence.md``).

The verdict itself is decided in ``rebuild/verify.py`` (``_decide``); this module only writes it down.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from compare.digest import sha256_file
from compare.equivalence import Equivalence
from compare.report import ComparisonReport
from rebuild.attest import dsse, statements
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.equivalence import content_equivalence_statement
from rebuild.attest.keys import Signer
from rebuild.attest.sigstore import SLSA_BUILD_LEVEL_3
from rebuild.attest.statements import ResourceRef, Subject
from rebuild.plan import BuildPlan
from rebuild.resolution import Signature


def sign_verdict(
    plan: BuildPlan,
    origin: Path,
    comparisons: Sequence[ComparisonReport],
    reproduced: bool,
    report_path: Path,
    rebuilt_dir: Path,
    out_dir: Path,
    signer: Signer,
    verifier_id: str,
    started_on: str,
    signed_by: Signature | None = None,
    claims: Mapping[str, Equivalence] | None = None,
) -> Path:
    """Sign what a verify run decided into ``out_dir/FIRST.rebuild[-failed].intoto.jsonl``.

    Reproduced: the rebuild's provenance (subjects = the rebuilt files) and a PASSED summary per artifact.
    Not reproduced: a FAILED summary per artifact naming the comparison report, and beside it (never instead
    of it) a content-equivalence claim for each artifact in ``claims``.
    """
    original = ResourceRef(origin.name, {"sha256": sha256_file(origin)}, name="original-provenance")
    # who signed the provenance (Sigstore: identity and the bundle's digest); L3 only for a verified trusted builder
    signatures = [r.resource_ref() for r in signed_by.sigstore] if signed_by is not None else []
    levels = (SLSA_BUILD_LEVEL_3,) if signed_by is not None and signed_by.trusted_builder else ()
    envelopes = []
    if reproduced:
        subjects = [Subject(c.name, {"sha256": sha256_file(rebuilt_dir / c.name)}) for c in comparisons]
        deps = [*plan.resolved_dependencies(), original, *signatures]
        payload = statements.rebuild_provenance(
            subjects,
            plan.external_parameters(),
            deps,
            invocation_id=str(uuid.uuid4()),
            started_on=started_on,
            finished_on=statements.now_rfc3339(),
        )
        envelopes.append(dsse.sign(payload, [signer]))
    report_ref = None if reproduced else ResourceRef(report_path.name, {"sha256": sha256_file(report_path)})
    for c in comparisons:
        vsa = statements.verification_summary(
            Subject(c.name, {"sha256": c.verdict.a.sha256}),
            passed=reproduced and c.identical,
            resource_uri=c.name,
            input_attestations=[original, *signatures],
            verifier_id=verifier_id,
            deviations=plan.deviations,
            report=report_ref,
            extra_levels=levels,
        )
        envelopes.append(dsse.sign(vsa, [signer]))
    for c in comparisons:  # beside the FAILED summary, never instead of it: a claim of its own predicate type
        if not reproduced and not c.identical and claims and c.name in claims:
            claim = content_equivalence_statement(
                Subject(c.name, {"sha256": c.verdict.a.sha256}), Subject(c.name, {"sha256": c.verdict.b.sha256}),
                claims[c.name], verifier_id=verifier_id, input_attestations=[original, *signatures],
            )  # fmt: skip
            envelopes.append(dsse.sign(claim, [signer]))
    first = sorted(c.name for c in comparisons)[0].replace("/", "_")
    path = out_dir / f"{first}.{'rebuild' if reproduced else 'rebuild-failed'}.intoto.jsonl"
    write_jsonl(path, envelopes)
    return path
