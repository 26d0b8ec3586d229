"""`rebuild key` and `rebuild attestation verify|show` through the CLI: exit codes and messages."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from typer.testing import CliRunner

from rebuild.attest import dsse, uris
from rebuild.attest.envelopes import write_jsonl
from rebuild.attest.keys import load_private_key
from rebuild.attest.statements import ResourceRef, Subject, verification_summary
from rebuild.cli import app
from tests.conftest import VECTORS

DIGEST = "ab" * 32
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    code, output = invoke("key", "generate", "--out", str(tmp_path / "alice"))
    assert code == 0, output
    return tmp_path / "alice.key", tmp_path / "alice.pub"


def make_vsa(
    tmp_path: Path,
    keys: list[Path],
    *,
    digest: str = DIGEST,
    passed: bool = True,
    time_verified: str | None = None,
    name: str = "vsa.intoto.jsonl",
    sign: bool = True,
) -> Path:
    payload = verification_summary(
        Subject("demo-1.0.tar.gz", {"sha256": digest}),
        passed,
        "file:release/demo-1.0.tar.gz",
        [ResourceRef("file:release/demo.provenance.intoto.jsonl", {"sha256": "cd" * 32})],
        time_verified=time_verified,
    )
    signers = [load_private_key(k) for k in keys] if sign else []
    path = tmp_path / name
    write_jsonl(path, [dsse.sign(payload, signers)])
    return path


def test_key_generate_writes_0600_and_refuses_overwrite(keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()
    code, output = invoke("key", "generate", "--out", str(private.with_suffix("")))
    assert code == 2 and "refusing to overwrite" in output


def test_key_show_prints_the_same_id_for_both_halves(keypair: tuple[Path, Path]) -> None:
    ids = [json.loads(invoke("key", "show", str(p), "--json")[1])["keyid"] for p in keypair]
    assert ids[0] == ids[1] and len(ids[0]) == 64


def test_encrypted_key_needs_its_passphrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBUILD_KEY_PASSPHRASE", "s3cret")
    code, output = invoke("key", "generate", "--out", str(tmp_path / "enc"), "--encrypt", "--type", "ecdsa-p256")
    assert code == 0, output
    assert load_private_key(tmp_path / "enc.key").keyid
    monkeypatch.delenv("REBUILD_KEY_PASSPHRASE")
    code, output = invoke("key", "show", str(tmp_path / "enc.key"))
    assert code == 2 and "encrypted and no passphrase" in output


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"not a key", "not a PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "could not be loaded"),
    ],
    ids=["missing", "garbage-public", "garbage-private"],
)
def test_bad_key_files_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "k.pem"
    if content is not None:
        path.write_bytes(content)
    code, output = invoke("key", "show", str(path))
    assert code == 2 and message in output and "Traceback" not in output


def test_verify_passes_and_says_what_was_verified(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    vsa = make_vsa(tmp_path, [keypair[0]])
    code, output = invoke("attestation", "verify", str(vsa), "--key", str(keypair[1]), "--digest", f"sha256:{DIGEST}")
    assert code == 0, output
    assert "verified demo-1.0.tar.gz" in output and uris.LEVEL_REPRODUCED in output
    assert "file:release/demo.provenance.intoto.jsonl" in output


def test_verify_against_an_artifact_file(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    import hashlib

    artifact = tmp_path / "demo-1.0.tar.gz"
    artifact.write_bytes(b"release bytes")
    vsa = make_vsa(tmp_path, [keypair[0]], digest=hashlib.sha256(b"release bytes").hexdigest())
    code, output = invoke("attestation", "verify", str(vsa), "--key", str(keypair[1]), "--artifact", str(artifact))
    assert code == 0, output
    artifact.write_bytes(b"release bytez")
    code, output = invoke("attestation", "verify", str(vsa), "--key", str(keypair[1]), "--artifact", str(artifact))
    assert code == 1 and "subject digest mismatch" in output


def _other_key(tmp_path: Path, name: str) -> tuple[Path, Path]:
    assert invoke("key", "generate", "--out", str(tmp_path / name))[0] == 0
    return tmp_path / f"{name}.key", tmp_path / f"{name}.pub"


def test_failure_messages(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    private, public = keypair
    bob = _other_key(tmp_path, "bob")
    ed448_pub = tmp_path / "ed448.pub"
    ed448_pub.write_bytes(
        ed448.Ed448PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    cases = {
        "wrong key": (
            make_vsa(tmp_path, [private], name="a.jsonl"),
            [bob[1]],
            [],
            "no signature verifies with a trusted key",
        ),
        "missing signature": (make_vsa(tmp_path, [], name="b.jsonl", sign=False), [public], [], "carries no signature"),
        "subject mismatch": (
            make_vsa(tmp_path, [private], digest="cd" * 32, name="c.jsonl"),
            [public],
            [],
            "subject digest mismatch",
        ),
        "failed result": (
            make_vsa(tmp_path, [private], passed=False, name="d.jsonl"),
            [public],
            [],
            "'FAILED', not PASSED",
        ),
        "too few signers": (
            make_vsa(tmp_path, [private], name="e.jsonl"),
            [public, bob[1]],
            ["--threshold", "2"],
            "too few distinct signers: 1",
        ),
        "expired": (
            make_vsa(tmp_path, [private], time_verified="2020-01-01T00:00:00Z", name="f.jsonl"),
            [public],
            ["--max-age-days", "30"],
            "summary expired",
        ),
        "unsupported algorithm": (
            make_vsa(tmp_path, [private], name="g.jsonl"),
            [ed448_pub],
            [],
            "algorithm not supported",
        ),
    }
    for case, (vsa, keys, extra, message) in cases.items():
        args = ["attestation", "verify", str(vsa), "--digest", f"sha256:{DIGEST}", *extra]
        for k in keys:
            args += ["--key", str(k)]
        code, output = invoke(*args)
        assert code == 1, (case, output)
        assert message in output, (case, output)
        assert "Traceback" not in output


def test_two_distinct_signers_meet_a_threshold_of_two(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    bob = _other_key(tmp_path, "bob")
    vsa = make_vsa(tmp_path, [keypair[0], bob[0]])
    code, output = invoke(
        "attestation",
        "verify",
        str(vsa),
        "--key",
        str(keypair[1]),
        "--key",
        str(bob[1]),
        "--digest",
        f"sha256:{DIGEST}",
        "--threshold",
        "2",
    )
    assert code == 0, output
    # the same key twice is one signer
    twice = make_vsa(tmp_path, [keypair[0], keypair[0]], name="twice.jsonl")
    code, output = invoke(
        "attestation",
        "verify",
        str(twice),
        "--key",
        str(keypair[1]),
        "--key",
        str(keypair[1]),
        "--digest",
        f"sha256:{DIGEST}",
        "--threshold",
        "2",
    )
    assert code == 1 and "too few distinct signers" in output


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"payload": "e30=", "payloadType": "application/vnd.in-toto+json", "signatures": [', "not valid JSON"),
        ('{"payload": "!!!not base64", "payloadType": "x", "signatures": []}', "not valid base64"),
        ('{"something": "else"}', "is not a DSSE envelope"),
        ("", "is empty"),
    ],
    ids=["truncated-json", "bad-base64", "unknown-shape", "empty"],
)
def test_malformed_files_exit_2(tmp_path: Path, keypair: tuple[Path, Path], content: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    code, output = invoke("attestation", "verify", str(bad), "--key", str(keypair[1]), "--digest", f"sha256:{DIGEST}")
    assert code == 2 and message in output and "Traceback" not in output


def test_verify_needs_an_artifact_or_digest(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    vsa = make_vsa(tmp_path, [keypair[0]])
    code, output = invoke("attestation", "verify", str(vsa), "--key", str(keypair[1]))
    assert code == 2 and "exactly one of --artifact" in output


def test_the_slsa_verifier_vsa_vector_through_the_cli() -> None:
    d = VECTORS / "slsa-verifier/vsa/gce/v1"
    result = runner.invoke(
        app,
        [
            "attestation",
            "verify",
            str(d / "gke-gce-pre.bcid-vsa.jsonl"),
            "--key",
            str(d / "vsa_signing_public_key.pem"),
            "--digest",
            f"sha256:{DIGEST}",
            "--json",
        ],
    )
    # the signature verifies; its subject is a gce_image_id, not our digest
    doc = json.loads(result.stdout)
    assert result.exit_code == 1
    assert doc["envelopes"][0]["reached"] == "subject" and "subject digest mismatch" in doc["message"]


def test_show_decodes_without_verifying(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    vsa = make_vsa(tmp_path, [keypair[0]])
    result = runner.invoke(app, ["attestation", "show", str(vsa), "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["verified"] is False
    assert doc["envelopes"][0]["statement"]["predicateType"] == uris.SLSA_VSA_V1
    result = runner.invoke(
        app, ["attestation", "show", str(VECTORS / "slsa-verifier/bcr/rules_lint-v1.3.1.tar.gz.intoto.jsonl")]
    )
    assert result.exit_code == 0 and "not verified" in result.output and "rules_lint" in result.output
