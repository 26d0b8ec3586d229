"""A provenance file, whatever its wrapper: find the statement about the artifact, and its plan.

``read_envelopes`` unwraps the file (jsonl, DSSE, Sigstore bundle, npm
response, PEP 740, bare statement); this module picks the SLSA provenance
statements among them, matches their subjects against the artifacts the
user holds (sha256 or sha512; npm's ``pkg:npm/...`` names: the subject digest
is checked here, since Sigstore's ``verify_dsse`` checks only the envelope),
reports what is known of each signature (a Sigstore signature that does not
verify, or names another identity than ``--expect-*``, is refused: exit 1),
and hands the statement to the right mapping: this
project's own buildType reads back exactly (``plan.plan_from_provenance``),
every other buildType goes through ``slsa.py``.
"""

from __future__ import annotations

from pathlib import Path

from rebuild.attest import uris
from rebuild.errors import InputError, ProvenanceError, VerificationError
from rebuild.plan import plan_from_provenance
from rebuild.resolution import Candidate, Resolution
from rebuild.resolve.context import ResolveContext
from rebuild.resolve.published import find_published, held_digests
from rebuild.resolve.statements import (
    SLSA_PROVENANCE_TYPES,
    FoundStatement,
    names_artifact,
    read_statements,
    subject_for,
)
from rebuild.untrusted import dig_str, printable


def resolve_provenance_file(path: Path, ctx: ResolveContext) -> Resolution:
    """Raises: ProvenanceError/PlanError (exit 2) with the reason the file cannot be rebuilt from."""
    from rebuild.resolve.slsa import resolve_foreign

    found, problems = read_statements(path, ctx.provenance_keys, ctx.sigstore)
    provenance = [f for f in found if f.statement.predicate_type in SLSA_PROVENANCE_TYPES]
    if not provenance:
        kinds = sorted({f.statement.predicate_type for f in found})
        detail = problems[0] if problems else (f"it holds {', '.join(kinds)}" if kinds else "it is empty")
        raise ProvenanceError(f"{path} holds no SLSA provenance statement ({detail})")
    pinned = ctx.sigstore.identity.pinned
    if ctx.provenance_keys or pinned:  # only statements signed as the user asked are used, never one ahead of them
        trusted = [f for f in provenance if f.signature.trusted(pinned)]
        if not trusted:
            raise _untrusted(path, provenance, bool(ctx.provenance_keys), pinned)
        provenance = trusted
    else:  # a Sigstore signature that was checked and is wrong: that statement is forged, or not whom it says
        checked = [f for f in provenance if not f.signature.refused]
        if not checked:
            raise VerificationError(
                f"{path.name}: {provenance[0].signature}",
                "the provenance was altered after it was signed, or it does not come from where it claims",
            )
        provenance = checked
    held = held_digests(ctx.artifacts)
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
    elsewhere = [p.name for p, d in held.items() if not subject_for(chosen.statement, d)]
    if elsewhere:
        raise InputError(
            f"--artifact {', '.join(elsewhere)}: another statement in {path.name} is about it, "
            f"not the one rebuilt from ({chosen.loaded.origin})",
            "verify the artifacts of one statement at a time",
        )
    build_type = dig_str(chosen.statement.predicate, "buildDefinition", "buildType")
    if chosen.statement.predicate_type == uris.SLSA_PROVENANCE_V1 and build_type == uris.BUILD_TYPE:
        plan = plan_from_provenance(chosen.statement)
        subjects = {s.name: s.digest for s in chosen.statement.subjects}
        published = find_published(
            {o.name: subjects.get(o.name, {}) for o in plan.outputs}, held, path.parent, path.name
        )
        for output in plan.outputs:
            if output.name not in published:
                raise InputError(
                    f"published artifact {output.name} not found at {path.parent / output.name}",
                    "pass it with --artifact FILE",
                )
        return Resolution(
            target=str(path),
            candidates=[Candidate("as recorded", plan)],
            published=published,
            origin=path,
            signature_status=chosen.signature,
            summary={"buildType": build_type, "subjects": [s.name for s in chosen.statement.subjects]},
        )
    return resolve_foreign(path, chosen, ctx, held)


def _untrusted(path: Path, provenance: list[FoundStatement], keys: bool, pinned: bool) -> VerificationError:
    """Why no statement is signed as the user asked: each statement's signature, in words."""
    why = "; ".join(dict.fromkeys(printable(str(f.signature)) for f in provenance))
    if pinned and not keys:
        return VerificationError(f"{path.name}: provenance is not signed by the expected identity: {why}")
    return VerificationError(
        f"{path}: provenance is not signed by a trusted key"
        + (" or by the expected Sigstore identity" if pinned else ""),
        "every SLSA statement in it is unsigned, or signed by another key (--provenance-key)"
        + (f": {why}" if pinned else ""),
    )
