"""Sigstore verification offline, on the real bundles other projects published (tests/data/vectors).

Every vector here was signed by a GitHub Actions workflow with a Fulcio certificate and logged in
Rekor; the certificates expired years before these tests run, so each verification happens at the
log entry's integrated time against the pinned trust root, with no network and no home directory.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rebuild.attest.sigstore import (
    GITHUB_ISSUER,
    PINNED_ROOT,
    PINNED_ROOT_TAKEN,
    SLSA_BUILD_LEVEL_3,
    IdentityPolicy,
    SigstorePolicy,
    load_trust_root,
)
from rebuild.cli import app
from rebuild.errors import InputError
from rebuild.resolution import Signature, SignatureStatus
from rebuild.resolve.statements import read_statements
from tests.conftest import VECTORS

runner = CliRunner()
BCR = VECTORS / "slsa-verifier/bcr/rules_lint-v1.3.1.tar.gz.intoto.jsonl"
GENERIC = VECTORS / "slsa-verifier/gha_generic/v2.1.0/binary-linux-amd64-push-v14.intoto.jsonl"
PEP740 = VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance"
PEP740_SLSA = VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.slsa.json"
NPM_V1 = VECTORS / "slsa-verifier/npm/gha/gundam-visor-cli-v1-tag.tgz.json"
NPM_V02 = VECTORS / "slsa-verifier/npm/gha/provenance-npm-test-cli-v02-prega.tgz.json"
DELEGATOR = VECTORS / "slsa-verifier/gha_delegator/v1.10.0/binary-linux-amd64-push-v14.build.slsa"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"


@pytest.fixture(autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No network and an empty home: a verification that needs either fails here."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield home
    assert not any(home.rglob("*")), "verification wrote into the home directory"


def show(path: Path, *options: str) -> Any:
    return runner.invoke(app, ["provenance", "show", str(path), *options])


def show_json(path: Path, *options: str) -> tuple[int, list[dict[str, Any]]]:
    result = show(path, "--json", *options)
    return result.exit_code, json.loads(result.stdout)["statements"]


# --- each vector: verified, with the repository, ref and commit ----------------------------------------


VERIFIED = [
    (
        BCR,
        "https://github.com/bazel-contrib/.github/.github/workflows/release_ruleset.yaml@refs/tags/v7.1.0",
        "aspect-build/rules_lint",
        "refs/heads/publish-to-bcr",
        "8f70009fde0c94ade6ce2a054b94718c819126ec",
        188622791,
        True,
    ),
    (
        GENERIC,
        f"{GENERATOR}@refs/tags/v2.1.0",
        "slsa-framework/example-package",
        "refs/tags/v14",
        "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
        174298180,
        True,
    ),
    (
        PEP740,
        "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19",
        "trailofbits/pypi-attestations",
        "refs/tags/v0.0.19",
        "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
        153454663,
        False,
    ),
    (
        PEP740_SLSA,
        "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19",
        "trailofbits/pypi-attestations",
        "refs/tags/v0.0.19",
        "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
        153454647,
        False,
    ),
]


@pytest.mark.parametrize(
    ("path", "san", "repository", "ref", "commit", "log_index", "reusable"),
    VERIFIED,
    ids=["bcr-v0.3-bundle", "slsa-github-generator-generic", "pep740-provenance", "pep740-attestation"],
)
def test_each_vector_verifies_offline_and_names_who_signed(
    path: Path, san: str, repository: str, ref: str, commit: str, log_index: int, reusable: bool
) -> None:
    result = show(path)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert f"verified with Sigstore: signed by {san}" in text
    assert f"for {repository}@{ref} ({commit}), log entry {log_index} at " in text
    assert f"(trust root of {PINNED_ROOT_TAKEN.isoformat()})" in text
    assert "identity not pinned" in text
    assert ("a reusable workflow, called by https://github.com/" in text) is reusable  # both are printed
    code, (doc, *_) = show_json(path)
    (signer,) = doc["sigstore"]
    assert doc["signatureStatus"] == "verified with Sigstore" and code == 0
    assert (signer["repository"], signer["ref"], signer["commit"], signer["san"]) == (repository, ref, commit, san)
    assert signer["issuer"] == GITHUB_ISSUER and signer["logIndex"] == log_index and not signer["identityPinned"]
    assert signer["bundle"]["uri"] == path.name and len(signer["bundle"]["sha256"]) == 64


def test_the_certificate_is_long_expired_and_is_checked_at_the_integrated_time() -> None:
    from cryptography import x509

    doc = json.loads(BCR.read_text())
    cert = x509.load_der_x509_certificate(base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"]))
    ((found,), _) = read_statements(BCR)
    (result,) = found.signature.sigstore
    integrated = int(doc["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    assert result.signed_at is not None and int(result.signed_at.timestamp()) == integrated
    assert cert.not_valid_before_utc <= result.signed_at <= cert.not_valid_after_utc  # valid then, ...
    assert cert.not_valid_after_utc.year < 2026  # ... long expired now


# --- formats the library cannot check: named, never invalid, never a crash ------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (NPM_V1, ["(intoto/0.0.2 log entry)", "signed with a key (SHA256:"]),
        (NPM_V02, ["(intoto/0.0.2 log entry, no inclusion proof)", "signed with a key (SHA256:"]),
        (DELEGATOR, ["(intoto/0.0.2 log entry)"]),
    ],
    ids=["npm-v1-intoto-0.0.2", "npm-v0.2-no-inclusion-proof", "byob-delegator"],
)
def test_bundles_the_library_cannot_check_are_named_unsupported(path: Path, words: list[str]) -> None:
    result = show(path)
    assert result.exit_code == 0, result.output
    assert "not checked: unsupported Sigstore bundle" in result.stdout
    for word in words:
        assert word in result.stdout
    assert "invalid" not in result.stdout.lower() and "Traceback" not in result.output
    _, docs = show_json(path)
    assert {d["signatureStatus"] for d in docs} == {"sigstore, not checked"}


# --- the identity policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "options", "expected", "found"),
    [
        (BCR, ["--expect-repo", "other/repo"], "expected repository other/repo", "found aspect-build/rules_lint"),
        (GENERIC, ["--expect-repo", "slsa-framework/slsa-verifier"], "expected repository", "example-package"),
        (
            GENERIC,
            ["--expect-workflow", ".github/workflows/release.yml"],
            "expected workflow .github/workflows/release.yml",
            f"found {GENERATOR}@refs/tags/v2.1.0",
        ),
        (GENERIC, ["--expect-workflow", f"{GENERATOR}@refs/tags/v1.0.0"], "expected workflow", "@refs/tags/v2.1.0"),
        (PEP740, ["--expect-identity", "someone@example.org"], "expected identity someone@example.org", "found https:"),
        (PEP740, ["--expect-issuer", "https://gitlab.com"], "expected issuer https://gitlab.com", GITHUB_ISSUER),
    ],
    ids=["bcr-other-repo", "generic-other-repo", "generic-own-workflow", "generic-other-ref", "pep740-san", "issuer"],
)
def test_another_identity_is_exit_1_naming_expected_and_found(
    path: Path, options: list[str], expected: str, found: str
) -> None:
    result = show(path, *options)
    assert result.exit_code == 1, result.output
    assert expected in result.stderr and found in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("path", "options"),
    [
        (BCR, ["--expect-repo", "aspect-build/rules_lint"]),
        (BCR, ["--expect-repo", "https://github.com/aspect-build/rules_lint"]),
        (BCR, ["--expect-workflow", "bazel-contrib/.github/.github/workflows/release_ruleset.yaml@refs/tags/v7.1.0"]),
        (GENERIC, ["--expect-workflow", GENERATOR, "--expect-repo", "slsa-framework/example-package"]),
        (PEP740, ["--expect-workflow", ".github/workflows/release.yml@refs/tags/v0.0.19"]),
        (
            PEP740_SLSA,
            ["--expect-identity", VERIFIED[3][1], "--expect-issuer", GITHUB_ISSUER],
        ),
    ],
    ids=["repo", "repo-url", "shared-workflow-at-ref", "generator-and-repo", "relative-workflow", "san"],
)
def test_the_expected_identity_passes_and_is_said_pinned(path: Path, options: list[str]) -> None:
    result = show(path, *options)
    assert result.exit_code == 0, result.output
    assert "identity pinned (issuer https://token.actions.githubusercontent.com" in result.stdout
    _, (doc, *_) = show_json(path, *options)
    assert doc["sigstore"][0]["identityPinned"] is True


def test_a_pinned_identity_refuses_what_cannot_be_checked() -> None:
    result = show(NPM_V1, "--expect-repo", "slsa-framework/example-package")
    assert result.exit_code == 1 and "no statement is signed by the expected identity" in result.stderr
    assert "unsupported Sigstore bundle (intoto/0.0.2 log entry)" in result.stderr


# --- tampering: one byte, and the reason ----------------------------------------------------------------


def _payload(doc: dict[str, Any]) -> None:
    envelope = doc["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    index = payload.index(b'"name":"') + len(b'"name":"')
    envelope["payload"] = base64.b64encode(payload[:index] + b"X" + payload[index + 1 :]).decode()


def _proof_hash(doc: dict[str, Any]) -> None:
    proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    first = bytearray(base64.b64decode(proof["hashes"][0]))
    first[0] ^= 0x01
    proof["hashes"][0] = base64.b64encode(bytes(first)).decode()


def _integrated_time(doc: dict[str, Any]) -> None:
    entry = doc["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)


def _signature(doc: dict[str, Any]) -> None:
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()


def _checkpoint(doc: dict[str, Any]) -> None:
    proof = doc["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    root = bytearray(base64.b64decode(proof["rootHash"]))
    root[0] ^= 0x01
    proof["rootHash"] = base64.b64encode(bytes(root)).decode()


TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("payload", _payload, "DSSE: invalid signature"),
    ("inclusion-proof-hash", _proof_hash, "invalid log entry: inclusion proof contains invalid root hash"),
    ("integrated-time", _integrated_time, "invalid log entry: SET: invalid inclusion promise"),
    ("dsse-signature", _signature, "DSSE: invalid signature"),
    ("root-hash", _checkpoint, "invalid log entry: inclusion proof contains invalid root hash"),
]


@pytest.mark.parametrize("vector", [BCR, GENERIC], ids=["bcr", "generic"])
@pytest.mark.parametrize(("what", "tamper", "reason"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_one_changed_byte_is_exit_1_with_the_reason(
    vector: Path, what: str, tamper: Callable[[dict[str, Any]], None], reason: str, tmp_path: Path
) -> None:
    doc = json.loads(vector.read_text())
    tamper(doc)
    altered = tmp_path / vector.name
    altered.write_text(json.dumps(doc))
    result = show(altered)
    assert result.exit_code == 1, result.output
    assert "Sigstore signature does NOT verify: " in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_a_tampered_pep740_statement_is_exit_1(tmp_path: Path) -> None:
    doc = json.loads(PEP740_SLSA.read_text())
    statement = base64.b64decode(doc["envelope"]["statement"]).replace(b"9bb1add0", b"9bb1add1")
    doc["envelope"]["statement"] = base64.b64encode(statement).decode()
    altered = tmp_path / PEP740_SLSA.name
    altered.write_text(json.dumps(doc))
    result = show(altered)
    assert result.exit_code == 1 and "Sigstore signature does NOT verify" in result.stderr, result.output


# --- the trust root: explicit, dated, never the library's cache -----------------------------------------


def test_the_pinned_root_is_dated_and_shipped_in_the_package() -> None:
    root = load_trust_root()
    assert root.path == PINNED_ROOT and PINNED_ROOT.parent.name == "trust"
    assert root.taken == PINNED_ROOT_TAKEN and "sigstore 4.5.1" in root.source
    assert root.sha256 == "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"


def test_a_planted_file_in_the_librarys_cache_changes_nothing(offline: Path) -> None:
    """sigstore's own trust store lives under the user's data and cache dirs: it is never read."""
    for base in (offline / ".local/share/sigstore-python", offline / ".cache/sigstore-python"):
        planted = base / "tuf/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
        planted.mkdir(parents=True)
        (planted / "trusted_root.json").write_text('{"mediaType": "planted"}')
    ((found,), _) = read_statements(BCR)
    assert found.signature.status is SignatureStatus.SIGSTORE_VERIFIED
    for base in (offline / ".local", offline / ".cache"):  # the fixture checks the home is untouched otherwise
        import shutil

        shutil.rmtree(base)


def _root_without(key: str) -> dict[str, Any]:
    doc = json.loads(PINNED_ROOT.read_text())
    doc[key] = [entry for entry in doc[key] if "2021" not in json.dumps(entry.get("publicKey", entry))]
    return doc


def test_another_trust_root_is_used_when_given(tmp_path: Path) -> None:
    """A root without the Rekor key that signed these entries does not verify them: the root is what counts."""
    root = tmp_path / "private.trusted_root.json"
    root.write_text(json.dumps(_root_without("tlogs")))
    result = show(BCR, "--trust-root", str(root))
    assert result.exit_code == 1, result.output
    assert "Sigstore signature does NOT verify: invalid log entry" in result.stderr
    taken = load_trust_root(root)
    assert taken.taken.isoformat() == "2025-09-23" and "--trust-root" in taken.source  # dated by its newest key
    assert show(BCR, "--trust-root", str(PINNED_ROOT)).exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "not valid JSON"), ('{"mediaType": "x"}', "is not a Sigstore trusted root")],
    ids=["not-json", "not-a-root"],
)
def test_a_bad_trust_root_is_exit_2(tmp_path: Path, content: str, message: str) -> None:
    root = tmp_path / "root.json"
    root.write_text(content)
    result = show(BCR, "--trust-root", str(root))
    assert result.exit_code == 2 and message in result.stderr, result.output
    with pytest.raises(InputError):
        load_trust_root(tmp_path / "missing.json")


def test_doctor_shows_the_root_its_date_and_age() -> None:
    from rebuild.doctor import trust_root_check

    check, info = trust_root_check()
    assert check.name == "sigstore trust root" and PINNED_ROOT_TAKEN.isoformat() in check.detail
    assert "days old" in check.detail and info["age_days"] == load_trust_root().age_days()


# --- SLSA Build L3: a verified trusted builder, and never without one -----------------------------------


def _signed(path: Path, policy: SigstorePolicy) -> Signature:
    ((found, *_), _) = read_statements(path, (), policy)
    return found.signature


@pytest.mark.parametrize(
    ("builders", "level"),
    [
        ((GENERATOR,), True),
        ((f"{GENERATOR}@refs/tags/v2.1.0",), True),
        ((f"{GENERATOR}@refs/tags/v1",), False),
        ((), False),
    ],
    ids=["generator", "generator-at-ref", "other-ref", "none"],
)
def test_a_trusted_builder_adds_slsa_build_level_3_to_a_passed_summary(
    builders: tuple[str, ...], level: bool, tmp_path: Path
) -> None:
    from rebuild.attest.keys import generate
    from tests.unit.test_verify_loop import FakeSandbox, resolution, run

    signature = _signed(GENERIC, SigstorePolicy(trusted_builders=builders))
    assert signature.trusted_builder is level
    res = resolution(tmp_path, [1])
    res.signature = signature
    report = run(tmp_path, FakeSandbox(matching_epoch="1"), res, signer=generate("ed25519"))
    assert report.reproduced and report.attestation is not None
    lines = report.attestation.read_text().splitlines()
    payloads = [json.loads(base64.b64decode(json.loads(line)["payload"])) for line in lines]
    provenance, vsa = payloads
    levels = vsa["predicate"]["verifiedLevels"]
    assert levels[0] == "REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED" and (SLSA_BUILD_LEVEL_3 in levels) is level
    (bundle,) = [a for a in vsa["predicate"]["inputAttestations"] if a.get("name") == "sigstore-bundle"]
    assert bundle["uri"] == GENERIC.name and bundle["annotations"]["sigstore"]["repository"] == (
        "slsa-framework/example-package"
    )
    deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert any(d.get("name") == "sigstore-bundle" and d["digest"] == bundle["digest"] for d in deps)
    recorded = json.loads(report.report.read_text())
    assert recorded["provenance_sigstore"][0]["san"] == f"{GENERATOR}@refs/tags/v2.1.0"


def test_no_level_3_without_a_verified_identity(tmp_path: Path) -> None:
    """A builder named in a signature that did not verify is nobody's."""
    doc = json.loads(GENERIC.read_text())
    _integrated_time(doc)
    altered = tmp_path / GENERIC.name
    altered.write_text(json.dumps(doc))
    signature = _signed(altered, SigstorePolicy(trusted_builders=(GENERATOR,)))
    assert signature.status is SignatureStatus.SIGSTORE_DOES_NOT_VERIFY and not signature.trusted_builder
    unpinned = _signed(GENERIC, SigstorePolicy(IdentityPolicy(issuer="https://gitlab.com"), None, (GENERATOR,)))
    assert unpinned.status is SignatureStatus.IDENTITY_MISMATCH and not unpinned.trusted_builder


def test_verify_goes_on_with_an_unsupported_bundle_and_says_so(tmp_path: Path) -> None:
    """npm's bundles cannot be checked: the rebuild still runs, and the report says the signature was not."""
    from rebuild.attest.keys import generate
    from tests.unit.test_verify_loop import FakeSandbox, resolution, run

    found, _ = read_statements(NPM_V1)
    provenance = [f for f in found if f.statement.predicate_type == "https://slsa.dev/provenance/v1"]
    res = resolution(tmp_path, [1])
    res.signature = provenance[0].signature
    report = run(tmp_path, FakeSandbox(matching_epoch="1"), res, signer=generate("ed25519"))
    recorded = json.loads(report.report.read_text())
    assert report.reproduced and recorded["provenance_signature_status"] == "sigstore, not checked"
    assert recorded["provenance_signature"] == "not checked: unsupported Sigstore bundle (intoto/0.0.2 log entry)"
    assert recorded["provenance_sigstore"] == []


# --- rebuild verify: the same policy, refused before anything is fetched ----------------------------------


@pytest.mark.parametrize(
    ("tamper", "options", "message"),
    [
        (None, ["--expect-repo", "other/repo"], "expected repository other/repo, found aspect-build/rules_lint"),
        (_integrated_time, [], "Sigstore signature does NOT verify: invalid log entry: SET: invalid inclusion promise"),
        (_payload, [], "Sigstore signature does NOT verify: DSSE: invalid signature"),
    ],
    ids=["another-repository", "integrated-time", "payload"],
)
def test_verify_refuses_another_identity_or_a_tampered_bundle(
    tamper: Callable[[dict[str, Any]], None] | None, options: list[str], message: str, tmp_path: Path
) -> None:
    doc = json.loads(BCR.read_text())
    if tamper is not None:
        tamper(doc)
    provenance = tmp_path / BCR.name
    provenance.write_text(json.dumps(doc))
    artifact = BCR.parent / "rules_lint-v1.3.1.tar.gz"
    out = tmp_path / "v"
    result = runner.invoke(app, ["verify", str(provenance), "--artifact", str(artifact), "--out", str(out), *options])
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output
    report = json.loads((out / "verify-report.json").read_text())
    assert report["reproduced"] is False and report["exit_code"] == 1 and message in report["error"]


def test_verify_with_the_expected_identity_goes_on_to_the_rebuild(tmp_path: Path) -> None:
    """The BCR's ruleset tarball has no recipe: past the signature, the plan is what stops it (exit 2)."""
    artifact = BCR.parent / "rules_lint-v1.3.1.tar.gz"
    options = [
        "--expect-repo",
        "aspect-build/rules_lint",
        "--expect-workflow",
        "bazel-contrib/.github/.github/workflows/release_ruleset.yaml",
    ]
    result = runner.invoke(app, ["verify", str(BCR), "--artifact", str(artifact), "--out", str(tmp_path), *options])
    assert result.exit_code == 2 and "cannot rebuild: no recipe rebuilds rules_lint-v1.3.1.tar.gz" in result.stderr
