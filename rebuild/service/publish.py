"""`rebuild publish --out DIR`: a static, write-once tree that anyone can mirror and check.

Layout (OSS Rebuild's, so tools that read it read this)::

    {ecosystem}/{name}/{version}/{artifact}/rebuild.intoto.jsonl   the first signed bundle, never rewritten
    {ecosystem}/{name}/{version}/{artifact}/rebuild.{sha256:16}.intoto.jsonl   later ones (new image, verifier)
    {ecosystem}/{name}/{version}/{artifact}/rebuild.{keyid:8}.link   the in-toto link of a PASSED first bundle
    {ecosystem}/{name}/{version}/{artifact}/rebuild.{sha256:16}/rebuild.{keyid:8}.link   that of a later one
    {ecosystem}/{name}/{version}/{artifact}/reports/{sha256}.json  the report a FAILED summary names
    {ecosystem}/{name}/index.json     every version, artifact and bundle of the package, with digests
    changes.jsonl, changes.atom       one entry per bundle, in publication order, with a regression flag
    keys/{keyid}.pub, keys.json       the service's public keys
    snapshot.json                     a DSSE envelope, signed by the service, listing every file's sha256

Bundles, links and reports are write-once: a file that exists with other bytes is an error, never overwritten
(a link signed again with a randomised scheme, ECDSA or RSA-PSS, is kept if it says the same and verifies).
A link is written for a PASSED bundle only (never a FAILED one): step ``rebuild``, signed with the service key,
materials and products read back from the rebuild provenance in the bundle (``rebuild.attest.intoto``, the link
``rebuild verify --in-toto-link`` writes).
The feed, the indexes and the snapshot are made again from the store on every run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import parse_envelopes
from rebuild.attest.keys import PublicKey, Signer
from rebuild.attest.snapshot import DEFAULT_VALID_FOR, SNAPSHOT_TYPE, parse_snapshot, safe_path, snapshot_payload
from rebuild.attest.statements import parse_statement
from rebuild.errors import InputError, KeyLoadError, PlanError, VerificationError
from rebuild.service.blobs import BlobStore
from rebuild.service.models import Attempt, Attestation, Job, Target
from rebuild.service.signing import sign_pending
from rebuild.service.store import Store
from rebuild.untrusted import dig_str, path_component

__all__ = ["SNAPSHOT_TYPE", "publish", "verify_snapshot"]
FEED_ENTRIES = 100
def publish(store: Store, blobs: BlobStore, out: Path, signer: Signer, public_key: PublicKey,
            public_pem: bytes, valid_for: timedelta = DEFAULT_VALID_FOR) -> dict[str, Any]:  # fmt: skip
    """Sign what is pending, write new bundles once, then the indexes, the feed, the keys and the snapshot.

    A result whose statements disagree with the store is refused (listed in ``refused``), never signed.
    """
    signed, refused = sign_pending(store, blobs, signer)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    links: dict[str, str] = {}
    skipped: list[str] = []
    entries: list[dict[str, Any]] = []
    with store.session() as s:
        rows = s.execute(
            select(Attestation, Job, Target, Attempt)
            .join(Job, Attestation.job_key == Job.key)
            .join(Target, Job.target_id == Target.id)
            .join(Attempt, Attestation.attempt_id == Attempt.id)
            .order_by(Attestation.published_at.is_(None), Attestation.published_at, Attestation.id)
        ).all()
        for attestation, job, target, attempt in rows:
            base = Path(path_component(target.ecosystem), path_component(target.name), path_component(target.version),
                        path_component(attestation.artifact))  # fmt: skip
            data = blobs.read_bytes(attestation.bundle_blob)
            if attestation.published_path is None:
                first = base / "rebuild.intoto.jsonl"
                taken = (out / first).exists() and (out / first).read_bytes() != data
                attestation.published_path = str(base / f"rebuild.{attestation.bundle_blob[:16]}.intoto.jsonl"
                                                 if taken else first)  # fmt: skip
                attestation.published_at = time.time()
                written.append(attestation.published_path)
            _write_once(out / attestation.published_path, data)
            if attestation.verdict == "FAILED" and attempt.compare_blob:
                _write_once(
                    out / base / "reports" / f"{attempt.compare_blob}.json", blobs.read_bytes(attempt.compare_blob)
                )
            entry = _entry(attestation, job, target, attempt, data)
            if attestation.verdict == "PASSED":
                entry["link"] = _publish_link(out, attestation, base, data, signer, public_key, links, skipped)
            entries.append(entry)
    _flag_regressions(entries)
    files = {e["path"]: e["sha256"] for e in entries}
    files.update(links)
    files.update(_write_indexes(out, entries))
    files.update(_write_feed(out, entries))
    files.update(_write_keys(out, public_key, public_pem))
    snapshot = _write_snapshot(out, files, signer, valid_for)
    return {"out": str(out), "signed": signed, "refused": refused, "published": written, "bundles": len(entries),
            "links": sorted(links), "links_skipped": skipped, "snapshot": snapshot}  # fmt: skip


def _publish_link(out: Path, attestation: Attestation, base: Path, bundle: bytes, signer: Signer,
                  public_key: PublicKey, links: dict[str, str], skipped: list[str]) -> str | None:  # fmt: skip
    """Write (once) the in-toto link of a PASSED bundle beside it; add it to ``links``. Returns its path.

    The plan and the products come from the bundle's rebuild provenance (checked and signed by
    ``sign_pending``); the version in the link's environment is the worker's, so a later publish makes the
    same link. A key with no in-toto form, or a bundle with no provenance, is noted in ``skipped``.
    """
    from rebuild.attest.intoto import signed_rebuild_link  # imports in-toto: only with a PASSED result
    from rebuild.plan import plan_from_provenance

    assert attestation.published_path is not None
    folder = base if Path(attestation.published_path).name == "rebuild.intoto.jsonl" else \
        base / f"rebuild.{attestation.bundle_blob[:16]}"  # fmt: skip
    try:
        provenance = next(
            statement
            for loaded in parse_envelopes(bundle.decode(), f"bundle {attestation.published_path}")
            if (statement := parse_statement(loaded.envelope.payload)).predicate_type == uris.SLSA_PROVENANCE_V1
        )
        plan = plan_from_provenance(provenance)
        products = {s.name: s.digest["sha256"] for s in provenance.subjects}
        version = dig_str(provenance.predicate, "runDetails", "builder", "version", "rebuild-verifier")
        name, data = signed_rebuild_link(plan, products, signer, version=version)
    except StopIteration:
        skipped.append(f"{attestation.published_path}: the bundle has no rebuild provenance")
        return None
    except (KeyLoadError, PlanError, InputError, KeyError) as e:
        skipped.append(f"{attestation.published_path}: no in-toto link: {getattr(e, 'message', e)}")
        return None
    path = folder / name
    links[str(path)] = _write_link_once(out / path, data, public_key)
    return str(path)


def _write_link_once(path: Path, data: bytes, public_key: PublicKey) -> str:
    """``_write_once`` for a link; one already there with other bytes is kept if it is the same link, signed
    by the same key (an ECDSA or RSA-PSS signature differs each time it is made).

    Raises:
        VerificationError: the file there is not that link, or its signature does not verify.
    """
    import hashlib

    from in_toto.models.metadata import Metablock

    from rebuild.attest.intoto import in_toto_key, parse_metadata

    if not path.exists() or path.read_bytes() == data:
        return _write_once(path, data)
    existing = path.read_bytes()
    try:
        there = parse_metadata(existing, f"in-toto link {path}")
        same = isinstance(there, Metablock) and there.signed.to_dict() == json.loads(data)["signed"]
        if same:
            there.verify_signature(in_toto_key(public_key.key))  # raises when it does not verify
    except Exception:  # in-toto's and securesystemslib's errors, and ours
        same = False
    if not same:
        raise VerificationError(f"{path} exists with other bytes; published files are write-once",
                                "publish into an empty directory, or restore the mirror")  # fmt: skip
    return hashlib.sha256(existing).hexdigest()


def _entry(attestation: Attestation, job: Job, target: Target, attempt: Attempt, data: bytes) -> dict[str, Any]:
    import hashlib

    return {
        "path": attestation.published_path,
        "sha256": hashlib.sha256(data).hexdigest(),
        "verdict": attestation.verdict,
        "ecosystem": target.ecosystem,
        "name": target.name,
        "version": target.version,
        "artifact": attestation.artifact,
        "subject_sha256": attestation.subject_sha256,
        "target": target.target,
        "job": job.key,
        "classification": attempt.classification,
        "image": attempt.image_digest,
        "verifier": attempt.verifier_version,
        "keyid": attestation.keyid,
        "published": _iso(attestation.published_at or time.time()),
    }


def _flag_regressions(entries: Sequence[dict[str, Any]]) -> None:
    """A FAILED after a PASSED for the same artifact is a regression signal (and the other way, a fix)."""
    last: dict[tuple[str, ...], str] = {}
    for seq, e in enumerate(entries, start=1):
        where = (e["ecosystem"], e["name"], e["version"], e["artifact"])
        e["seq"], e["previous"] = seq, last.get(where)
        e["regression"] = e["previous"] == "PASSED" and e["verdict"] == "FAILED"
        last[where] = e["verdict"]


def _write_indexes(out: Path, entries: Sequence[dict[str, Any]]) -> dict[str, str]:
    packages: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        package = packages.setdefault((e["ecosystem"], e["name"]), {"ecosystem": e["ecosystem"], "name": e["name"],
                                                                    "versions": {}})  # fmt: skip
        artifact = package["versions"].setdefault(e["version"], {}).setdefault(e["artifact"], {"bundles": []})
        artifact["bundles"].append({k: e.get(k) for k in ("path", "sha256", "verdict", "subject_sha256", "published",
                                                          "image", "verifier", "regression", "link")})  # fmt: skip
        artifact["latest"] = e["verdict"]
    written = {}
    for (ecosystem, name), doc in packages.items():
        path = Path(path_component(ecosystem), path_component(name), "index.json")
        written[str(path)] = _replace(out / path, _json(doc))
    return written


def _write_feed(out: Path, entries: Sequence[dict[str, Any]]) -> dict[str, str]:
    lines = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries).encode()
    items = []
    for e in reversed(entries[-FEED_ENTRIES:]):
        title = f"{e['verdict']}{' (regression)' if e['regression'] else ''}: {e['ecosystem']} {e['name']} " \
                f"{e['version']} {e['artifact']}"  # fmt: skip
        items.append(
            f"  <entry>\n    <id>urn:sha256:{e['sha256']}</id>\n    <title>{escape(title)}</title>\n"
            f'    <updated>{e["published"]}</updated>\n    <link href="{escape(e["path"])}"/>\n'
            f"    <summary>{escape(e['classification'] or e['verdict'])}</summary>\n  </entry>\n"
        )
    updated = entries[-1]["published"] if entries else _iso(time.time())
    atom = ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
            "  <id>urn:rebuild-verifier:changes</id>\n  <title>rebuild-verifier: published verdicts</title>\n"
            f"  <updated>{updated}</updated>\n{''.join(items)}</feed>\n")  # fmt: skip
    return {"changes.jsonl": _replace(out / "changes.jsonl", lines),
            "changes.atom": _replace(out / "changes.atom", atom.encode())}  # fmt: skip


def _write_keys(out: Path, key: PublicKey, pem: bytes) -> dict[str, str]:
    path = Path("keys", f"{key.keyid}.pub")
    written = {str(path): _write_once(out / path, pem)}
    doc = {"keys": [{"keyid": key.keyid, "algorithm": key.algorithm, "path": str(path)}]}
    written["keys.json"] = _replace(out / "keys.json", _json(doc))
    return written


def _write_snapshot(out: Path, files: dict[str, str], signer: Signer, valid_for: timedelta) -> str:
    """Sign the listing with the next version (one more than the snapshot there) and an expiry ``valid_for``
    from now (``rebuild.attest.snapshot``): a reader refuses it once expired, and a lower version than one seen.

    Raises:
        VerificationError: a snapshot.json there whose version cannot be read (so the next one would not
            be higher): named, with what to do.
    """
    version = _previous_version(out / "snapshot.json") + 1
    payload = _json(snapshot_payload(files, signer.keyid, version, datetime.now(UTC).replace(microsecond=0),
                                     valid_for))  # fmt: skip
    envelope = dsse.sign(payload, [signer], payload_type=SNAPSHOT_TYPE)
    _replace(out / "snapshot.json", (envelope.to_json() + "\n").encode())
    return str(out / "snapshot.json")


def _previous_version(path: Path) -> int:
    """The version of the snapshot already published there; 0 for none. Its signature is not checked (the key
    may have been rotated): a forged high version only makes the next one higher; a low one makes readers
    who saw more refuse the tree, loudly."""
    from rebuild.attest.snapshot import MAX_VERSION
    from rebuild.untrusted import dig, load_json

    if not path.exists():
        return 0
    try:
        envelope = dsse.Envelope.from_dict(load_json(path.read_bytes(), str(path)), str(path))
        version = dig(load_json(envelope.payload, f"{path}'s payload"), "version", default=0)
    except (InputError, OSError) as e:
        raise VerificationError(f"{path} is not a snapshot this tool can read ({getattr(e, 'message', e)}), so "
                                "the next version cannot be told", "restore it, or remove it to restart at "
                                "version 1 (readers who saw a higher one will refuse the tree)") from None  # fmt: skip
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < MAX_VERSION:
        raise VerificationError(f"{path} has version {version!r}, not an integer from 0 to {MAX_VERSION - 1}",
                                "restore it, or remove it to restart at version 1")  # fmt: skip
    return version


def verify_snapshot(out: Path, keys: Sequence[PublicKey], now: datetime | None = None) -> dict[str, Any]:
    """Check a published tree: the snapshot's signature, its expiry and version, then every file it lists.

    Raises:
        VerificationError: a bad signature, an expired snapshot or one with no expiry, a missing file, or a
            file whose bytes changed.
    """
    import hashlib

    envelope = dsse.Envelope.from_dict(json.loads((out / "snapshot.json").read_text()), "snapshot.json")
    verified = dsse.verify(envelope, keys)
    if not verified.signers or verified.payload_type != SNAPSHOT_TYPE:
        raise VerificationError("snapshot.json is not signed by a trusted key")
    snapshot = parse_snapshot(verified.payload, "snapshot.json", now or datetime.now(UTC))
    for rel, sha256 in snapshot.files.items():
        try:
            path = out / safe_path(rel, "snapshot.json")  # a listed name never leaves the tree
        except InputError as e:
            raise VerificationError(e.message) from e
        if path.is_symlink() or not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            raise VerificationError(f"{rel} is missing or not the file the snapshot lists")
    return {"files": len(snapshot.files), "keyid": verified.signers[0].keyid, "version": snapshot.version,
            "expires": snapshot.expires.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip


def _write_once(path: Path, data: bytes) -> str:
    """Raises: VerificationError: the file exists with other bytes (published files are never rewritten)."""
    import hashlib

    if path.exists():
        if path.read_bytes() != data:
            raise VerificationError(f"{path} exists with other bytes; published files are write-once",
                                    "publish into an empty directory, or restore the mirror")  # fmt: skip
    else:
        _replace(path, data)
    return hashlib.sha256(data).hexdigest()


def _replace(path: Path, data: bytes) -> str:
    import hashlib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
