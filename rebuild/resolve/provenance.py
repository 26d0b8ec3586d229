"""A provenance file, whatever its wrapper: find the statement about the artifact, and its plan.

``read_envelopes`` unwraps the file (jsonl, DSSE, Sigstore bundle, npm
response, PEP 740, bare statement); this module picks the SLSA provenance
statements among them, matches their subjects against the artifacts the
user holds (sha256 or sha512; npm's ``pkg:npm/...`` names), reports what is
known of each signature, and hands the statement to the right mapping: this
project's own buildType reads back exactly (``plan.plan_from_provenance``),
every other buildType goes through ``slsa.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rebuild.attest import uris
from rebuild.errors import InputError, ProvenanceError, VerificationError
from rebuild.plan import Output, plan_from_provenance
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.statements import (
    SLSA_PROVENANCE_TYPES,
    SignatureStatus,
    file_digests,
    names_artifact,
    read_statements,
    subject_for,
)
from rebuild.untrusted import printable


def resolve_provenance_file(path: Path, ctx: ResolveContext) -> Resolution:
    """Raises: ProvenanceError/PlanError (exit 2) with the reason the file cannot be rebuilt from."""
    from rebuild.resolve.slsa import resolve_foreign

    found, problems = read_statements(path, ctx.provenance_keys)
    provenance = [f for f in found if f.statement.predicate_type in SLSA_PROVENANCE_TYPES]
    if not provenance:
        kinds = sorted({f.statement.predicate_type for f in found})
        detail = problems[0] if problems else (f"it holds {', '.join(kinds)}" if kinds else "it is empty")
        raise ProvenanceError(f"{path} holds no SLSA provenance statement ({detail})")
    if ctx.provenance_keys:  # only statements signed by a trusted key are used, never one ahead of them
        provenance = [f for f in provenance if f.signature.status is SignatureStatus.VERIFIED]
        if not provenance:
            raise VerificationError(
                f"{path}: provenance is not signed by a trusted key",
                "every SLSA statement in it is unsigned, or signed by another key (--provenance-key)",
            )
    held = {p: file_digests(p) for p in ctx.artifacts}  # each file the user holds is read once
    for artifact, digests in held.items():
        if not any(subject_for(f.statement, digests) for f in provenance):
            named = any(names_artifact(f.statement, artifact) for f in provenance)
            names = ", ".join(printable(s.name) for f in provenance for s in f.statement.subjects) or "none"
            raise VerificationError(
                f"{artifact.name} is not an artifact {path.name} names"
                + (" (a subject has its name, but not its digest: the file was altered)" if named else ""),
                f"no subject has its sha256 {digests['sha256']}; the subjects are: {names}",
            )
    if held:
        provenance = [f for f in provenance if any(subject_for(f.statement, d) for d in held.values())]
    chosen = provenance[0]
    build_type = str(chosen.statement.predicate.get("buildDefinition", {}).get("buildType", ""))
    if chosen.statement.predicate_type == uris.SLSA_PROVENANCE_V1 and build_type == uris.BUILD_TYPE:
        plan = plan_from_provenance(chosen.statement)
        return Resolution(
            target=str(path),
            candidates=[Candidate("as recorded", plan)],
            published=_published_beside(plan.outputs, path, ctx.artifacts),
            origin=path,
            signature_status=str(chosen.signature),
            summary={"buildType": build_type, "subjects": [s.name for s in chosen.statement.subjects]},
        )
    return resolve_foreign(path, chosen, ctx, held)


def _published_beside(outputs: Sequence[Output], provenance: Path, given: Sequence[Path]) -> dict[str, Path]:
    """The published artifacts to compare against: given files, else the outputs beside the provenance."""
    names = [o.name for o in outputs]
    if given:
        by_name = {p.name: p for p in given}
        unknown = sorted(set(by_name) - set(names))
        if unknown:
            raise InputError(
                f"--artifact {', '.join(unknown)} is not an output of this provenance",
                f"its outputs are: {', '.join(names)}",
            )
        chosen = by_name
    else:
        chosen = {name: provenance.parent / name for name in names}
    for name, path in chosen.items():
        if not path.is_file():
            raise InputError(f"published artifact {name} not found at {path}", "pass it with --artifact FILE")
    return chosen
