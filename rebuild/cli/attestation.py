"""`rebuild attestation`: check (with a required policy) or show attestations."""

from __future__ import annotations

from pathlib import Path

import typer

from rebuild.cli.common import JsonOpt, app, errors_to_exit
from rebuild.render import renderer_for

attestation_app = typer.Typer(no_args_is_help=True, help="Check or show attestations.")
app.add_typer(attestation_app, name="attestation")


@attestation_app.command("verify")
def attestation_verify(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, help="An .intoto.jsonl bundle, DSSE envelope or Sigstore bundle (or give --from-feed)."
    ),
    key: list[Path] = typer.Option(..., "--key", help="A trusted public key (repeatable)."),
    from_feed: list[str] = typer.Option(
        None,
        "--from-feed",
        help="A rebuilder's published tree (directory or http(s) URL) or API root (http(s)://HOST/api/v1): "
        "its attestations for the artifact are read (repeatable; see docs/feeds.md).",
    ),
    artifact: Path | None = typer.Option(None, "--artifact", help="The artifact the attestations must be about."),
    digest: str | None = typer.Option(
        None, "--digest", help="Or its digest as ALGORITHM:VALUE (sha256:HEX, or any in-toto DigestSet name)."
    ),
    threshold: int = typer.Option(1, "--threshold", help="Distinct trusted signers required."),
    max_age_days: int | None = typer.Option(None, "--max-age-days", help="Reject summaries older than this."),
    require_level: list[str] = typer.Option(
        None,
        "--require-level",
        help="A verifiedLevels entry the policy accepts (repeatable; any of them). "
        "Default: REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED.",
    ),
    verifier_id: str | None = typer.Option(
        None, "--verifier-id", help="Accept only summaries by this verifier (and this tool's policy URI)."
    ),
    max_snapshot_age: str | None = typer.Option(
        None,
        "--max-snapshot-age",
        help="With --from-feed: refuse a tree whose signed snapshot was published longer "
        "ago than this (e.g. 2d, 12h), even before it expires.",
    ),
    feed_state: Path | None = typer.Option(
        None,
        "--feed-state",
        help="With --from-feed: the file remembering the highest snapshot version seen per "
        "key, to refuse a replayed older one (default: feeds/snapshot-versions.json in the cache directory).",
    ),
    accept: list[str] = typer.Option(
        None,
        "--accept",
        help="Also count these claims, labelled as such: content-equivalent (bytes differ, every member's content "
        "is the same; never counted as PASSED). Not with --from-feed.",
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Verify that trusted rebuilders attested this artifact reproduced (PASSED), from a file or from feeds."""
    from rebuild.attest.keys import load_public_key
    from rebuild.attest.policy import policy_from_options, verify_attestation_file
    from rebuild.errors import InputError, VerificationError

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        policy = policy_from_options(
            [load_public_key(k) for k in key], artifact, digest, threshold=threshold, max_age_days=max_age_days,
            required_levels=require_level or None, verifier_id=verifier_id, accept=accept or (),
        )  # fmt: skip
        if accept and from_feed:
            raise InputError("--accept is for an attestation FILE; feeds count PASSED summaries only")
        if file is not None and from_feed:
            raise InputError("give an attestation FILE or --from-feed, not both")
        if (max_snapshot_age or feed_state) and not from_feed:
            raise InputError("--max-snapshot-age and --feed-state are for --from-feed")
        if from_feed:
            from rebuild.attest.feed_state import default_state_path
            from rebuild.attest.feeds import verify_feeds
            from rebuild.attest.snapshot import parse_duration

            age = parse_duration(max_snapshot_age, "--max-snapshot-age") if max_snapshot_age else None
            combined = verify_feeds(from_feed, policy, max_snapshot_age=age, state=feed_state or default_state_path())
            render.feeds_verdict(combined)
            if not combined.passed:
                raise VerificationError(f"attestation verification failed: {combined.message}")
            return
        if file is None:
            raise InputError("give an attestation FILE, or --from-feed DIR_OR_URL (repeatable)")
        verdict = verify_attestation_file(file, policy)
        if as_json or verdict.passed:
            render.attestation_verdict(verdict, threshold)
        if not verdict.passed:
            raise VerificationError(f"attestation verification failed: {verdict.message}")


@attestation_app.command("verify-layout")
def attestation_verify_layout(
    ctx: typer.Context,
    layout: Path = typer.Argument(..., help="An in-toto layout (Metablock or DSSE envelope)."),
    layout_key: list[Path] = typer.Option(
        ..., "--layout-key", help="A layout owner's public key (repeatable; the layout must be signed by each)."
    ),
    links: Path = typer.Option(..., "--links", help="The directory of link files (STEP.KEYID8.link)."),
    artifact: Path | None = typer.Option(
        None, "--artifact", help="The artifact, placed where the layout's inspections look for it."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Verify an in-toto layout over its links with in-toto (signature, expiry, thresholds, rules, inspections).

    The layout's inspections are commands its owner signed; they run on this machine, as in-toto-verify runs them.
    """
    from rebuild.attest.intoto import verify_layout
    from rebuild.attest.keys import load_public_key
    from rebuild.errors import VerificationError

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        verdict = verify_layout(layout, [load_public_key(k) for k in layout_key], links, artifact)
        if as_json or verdict.passed:
            render.layout_verdict(verdict)
        if not verdict.passed:
            raise VerificationError(f"in-toto verification FAILED, {verdict.message}", verdict.hint)


@attestation_app.command("show")
def attestation_show(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="An attestation file in any supported wrapper."),
    as_json: bool = JsonOpt,
) -> None:
    """Decode and print attestations WITHOUT verifying any signature."""
    from rebuild.attest.show import show_envelopes

    render = renderer_for(as_json)
    with errors_to_exit(ctx, render):
        shown = show_envelopes(file)
    render.attestations(shown)
