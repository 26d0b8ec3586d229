"""`rebuild provenance show`: what a provenance file claims, who signed it, and what would run.

The Sigstore options (trust root and identity policy) are defined here once and shared with `rebuild verify`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.attest.sigstore import GITHUB_ISSUER, IdentityPolicy, SigstorePolicy
from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.render import renderer_for

provenance_app = typer.Typer(no_args_is_help=True, help="Read provenance written by anyone.")
app.add_typer(provenance_app, name="provenance")

TrustRootOpt = typer.Option(
    None, "--trust-root", help="Sigstore trusted_root.json to verify with (default: the pinned public-good root)."
)
ExpectRepoOpt = typer.Option(
    None, "--expect-repo", help="Sigstore: the source repository (OWNER/REPO) the certificate must name."
)
ExpectWorkflowOpt = typer.Option(
    None, "--expect-workflow", help="Sigstore: the signing workflow, PATH[@REF] (.github/..., OWNER/REPO/PATH or URL)."
)
ExpectIssuerOpt = typer.Option(GITHUB_ISSUER, "--expect-issuer", help="Sigstore: the OIDC issuer of the certificate.")
ExpectIdentityOpt = typer.Option(None, "--expect-identity", help="Sigstore: the certificate's SAN, exactly.")


def sigstore_policy(
    trust_root: Path | None,
    repo: str | None,
    workflow: str | None,
    issuer: str,
    identity: str | None,
    trusted_builders: list[str] | None = None,
) -> SigstorePolicy:
    """The options as a policy; a bad --trust-root or expectation is exit 2, before anything else runs."""
    from rebuild.attest.sigstore import load_trust_root

    return SigstorePolicy(
        IdentityPolicy(repository=repo or "", workflow=workflow or "", issuer=issuer, identity=identity or ""),
        load_trust_root(trust_root) if trust_root else None,
        tuple(trusted_builders or ()),
    )


@provenance_app.command("show")
def provenance_show(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="A provenance file in any wrapper (jsonl, DSSE, Sigstore bundle, npm, PEP 740)."
    ),
    provenance_key: list[Path] = typer.Option(None, "--provenance-key", help="Check signatures with this key."),
    trust_root: Path | None = TrustRootOpt,
    expect_repo: str | None = ExpectRepoOpt,
    expect_workflow: str | None = ExpectWorkflowOpt,
    expect_issuer: str = ExpectIssuerOpt,
    expect_identity: str | None = ExpectIdentityOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Print each statement's subjects, signer, builder, buildType, source (repository + commit), and what would
    be rebuilt. Exit 1 when a Sigstore signature does not verify or is not the expected identity."""
    from rebuild.attest.keys import load_public_key
    from rebuild.resolve.show import describe_file, refusal

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        policy = sigstore_policy(trust_root, expect_repo, expect_workflow, expect_issuer, expect_identity)
        statements, problems = describe_file(file, [load_public_key(k) for k in provenance_key or []], policy)
    render.provenance(file, statements, problems)
    refused = refusal(statements, policy.identity.pinned)
    if refused is not None:
        with errors_to_exit(ctx, render):
            raise refused
