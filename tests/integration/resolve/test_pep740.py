"""`pypi:` with PEP 740 publish attestations, from a local index on 127.0.0.1 with an Integrity API.

The index serves ``pypi_attestations-0.0.19.tar.gz``'s real provenance object (tests/data/vectors);
the files it lists are made up here where the test is about refusing them (their digest is not the
one attested), or the real release's (fetched from PyPI) for the end-to-end rebuild.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rebuild.attest.sigstore import IdentityPolicy, SigstorePolicy
from rebuild.errors import VerificationError
from rebuild.python.pep740 import check_release, integrity_url
from rebuild.resolution import SignatureStatus
from tests.conftest import VECTORS
from tests.integration.test_pipeline import rebuild

PROVENANCE = VECTORS / "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance"
SDIST = "pypi_attestations-0.0.19.tar.gz"
WHEEL = "pypi_attestations-0.0.19-py3-none-any.whl"
SDIST_SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"  # what the vector attests
PUBLISHER = "published by GitHub trailofbits/pypi-attestations workflow release.yml (PEP 740, verified)"
INTEGRITY = f"/integrity/pypi-attestations/0.0.19/{SDIST}/provenance"


@dataclass
class Index:
    """A PEP 691 index with an Integrity API; unknown projects are redirected to PyPI (only the rebuild asks)."""

    url: str = ""
    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def project(self, name: str, files: list[dict[str, object]]) -> None:
        page = {"meta": {"api-version": "1.0"}, "name": name, "files": files}
        self.routes[f"/simple/{name}/"] = ("application/vnd.pypi.simple.v1+json", json.dumps(page).encode())

    def serve_file(self, name: str, data: bytes) -> dict[str, object]:
        self.routes[f"/files/{name}"] = ("application/octet-stream", data)
        sha = hashlib.sha256(data).hexdigest()
        return {"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": sha}}


@pytest.fixture
def index() -> Iterator[Index]:
    state = Index()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path in state.routes:
                kind, body = state.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path.startswith("/simple/"):
                self.send_response(302)
                self.send_header("Location", "https://pypi.org" + self.path)
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def made_up_release(index: Index) -> None:
    """An sdist and a wheel of that name whose bytes are not the attested ones."""
    sdist = io.BytesIO()
    with tarfile.open(fileobj=sdist, mode="w:gz") as tf:
        data = b"Name: pypi-attestations\n"
        info = tarfile.TarInfo("pypi_attestations-0.0.19/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pypi_attestations/__init__.py", "x = 1\n")
    index.project(
        "pypi-attestations", [index.serve_file(SDIST, sdist.getvalue()), index.serve_file(WHEEL, wheel.getvalue())]
    )


def test_the_integrity_api_is_beside_the_simple_index() -> None:
    assert integrity_url("https://pypi.org/simple", "PyPI_Attestations", "0.0.19", SDIST) == (
        f"https://pypi.org/integrity/pypi-attestations/0.0.19/{SDIST}/provenance"
    )
    assert integrity_url("file:///srv/simple", "x", "1", "x-1.tar.gz") is None


def test_publish_attestations_verify_against_the_digest_and_name_the_publisher(index: Index, tmp_path: Path) -> None:
    index.routes[INTEGRITY] = ("application/vnd.pypi.integrity.v1+json", PROVENANCE.read_bytes())
    files = [(SDIST, SDIST_SHA256), (WHEEL, "0" * 64)]
    found = check_release(index.url, "pypi-attestations", "0.0.19", files, SigstorePolicy(), tmp_path)
    assert found.signature.status is SignatureStatus.SIGSTORE_VERIFIED
    words = str(found.signature)
    assert words.startswith(f"{PUBLISHER} for {SDIST}; no publish attestation for {WHEEL} (none offered)")
    assert "identity not pinned" in words
    (result,) = found.signature.sigstore
    assert result.identity.repository == "trailofbits/pypi-attestations"
    assert result.bundle.uri == index.url.removesuffix("simple/") + INTEGRITY.lstrip("/")
    assert result.bundle.sha256 == hashlib.sha256(PROVENANCE.read_bytes()).hexdigest()
    sdist_record, wheel_record = found.records
    assert sdist_record["publishers"] == ["GitHub trailofbits/pypi-attestations workflow release.yml"]
    assert Path(sdist_record["saved"]).read_bytes() == PROVENANCE.read_bytes()  # the exact bytes, kept
    assert wheel_record["offered"] is False and wheel_record["note"] == "none offered"
    pinned = SigstorePolicy(
        IdentityPolicy(repository="trailofbits/pypi-attestations", workflow=".github/workflows/release.yml")
    )
    assert check_release(index.url, "pypi-attestations", "0.0.19", files, pinned, tmp_path).signature.sigstore


def test_an_index_that_offers_none_is_not_an_error_unless_an_identity_is_pinned(index: Index, tmp_path: Path) -> None:
    files = [(SDIST, SDIST_SHA256)]
    found = check_release(index.url, "pypi-attestations", "0.0.19", files, SigstorePolicy(), tmp_path)
    assert found.signature.status is SignatureStatus.UNSIGNED
    assert (
        str(found.signature) == "not signed: no publish attestations offered (files checked against the index's sha256)"
    )
    pinned = SigstorePolicy(IdentityPolicy(repository="trailofbits/pypi-attestations"))
    with pytest.raises(VerificationError, match="no verified publish attestation"):
        check_release(index.url, "pypi-attestations", "0.0.19", files, pinned, tmp_path)


@pytest.mark.parametrize(
    ("route", "options", "message"),
    [
        (INTEGRITY, [], f"{SDIST}: the publish attestation is for sha256 {SDIST_SHA256}, not the file the index lists"),
        (INTEGRITY.replace(SDIST, WHEEL), [], f"{WHEEL}: the publish attestation is about {SDIST}, not this file"),
        (None, ["--expect-repo", "trailofbits/pypi-attestations"], "no verified publish attestation"),
    ],
    ids=["another-digest", "another-file", "pinned-but-none-offered"],
)
def test_verify_refuses_a_release_its_publisher_did_not_attest(
    index: Index, tmp_path: Path, route: str | None, options: list[str], message: str
) -> None:
    made_up_release(index)
    if route is not None:
        index.routes[route] = ("application/vnd.pypi.integrity.v1+json", PROVENANCE.read_bytes())
    r = rebuild(
        "verify", "pypi:pypi-attestations==0.0.19", "--index-url", index.url, "--out", str(tmp_path / "v"), *options
    )
    assert r.returncode == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "v").glob("*.intoto.jsonl"))
    report = json.loads((tmp_path / "v" / "verify-report.json").read_text())
    assert report["reproduced"] is False and report["exit_code"] == 1


def test_verify_with_another_expected_publisher_is_exit_1(index: Index, tmp_path: Path) -> None:
    made_up_release(index)
    index.routes[INTEGRITY] = ("application/vnd.pypi.integrity.v1+json", PROVENANCE.read_bytes())
    r = rebuild(
        "verify", "pypi:pypi-attestations==0.0.19", "--index-url", index.url, "--out", str(tmp_path / "v"),
        "--expect-repo", "pypa/pip",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "expected repository pypa/pip, found trailofbits/pypi-attestations" in r.stderr


@pytest.mark.docker
@pytest.mark.network
@pytest.mark.usefixtures("builder_image", "no_leftover_containers")
def test_verify_prints_and_records_the_publisher(index: Index, tmp_path: Path) -> None:
    """The real release on the local index, its sdist's real attestation: the rebuild records who published."""
    request = urllib.request.Request(
        "https://pypi.org/simple/pypi-attestations/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        listed = json.loads(response.read())["files"]
    files = [f for f in listed if f["filename"] in (SDIST, WHEEL)]
    assert {f["filename"] for f in files} == {SDIST, WHEEL}
    index.project("pypi-attestations", files)
    index.routes[INTEGRITY] = ("application/vnd.pypi.integrity.v1+json", PROVENANCE.read_bytes())
    rebuild("key", "generate", "--out", str(tmp_path / "k"))
    r = rebuild(
        "verify", "pypi:pypi-attestations==0.0.19", "--index-url", index.url, "--out", str(tmp_path / "v"),
        "--expect-repo", "trailofbits/pypi-attestations", "--key", str(tmp_path / "k.key"), "--no-diffoscope",
    )  # fmt: skip
    assert r.returncode in (0, 1), r.stderr
    assert PUBLISHER in r.stdout and "identity pinned" in r.stdout
    report = json.loads((tmp_path / "v" / "verify-report.json").read_text())
    assert report["provenance_signature"].startswith(PUBLISHER)
    (signer,) = report["provenance_sigstore"]
    assert signer["repository"] == "trailofbits/pypi-attestations" and signer["identityPinned"] is True
    recorded = json.loads((tmp_path / "v" / "pypi-release.json").read_text())["publish_attestations"]
    assert [f["offered"] for f in recorded] == [True, False]
    if report["reproduced"]:  # the VSA's input attestations carry the identity and the bundle's digest
        lines = Path(report["attestation"]).read_text().splitlines()
        import base64

        vsa = json.loads(base64.b64decode(json.loads(lines[-1])["payload"]))
        (bundle,) = [a for a in vsa["predicate"]["inputAttestations"] if a.get("name") == "sigstore-bundle"]
        assert bundle["digest"]["sha256"] == hashlib.sha256(PROVENANCE.read_bytes()).hexdigest()


def _hostile(change: str) -> bytes:
    doc = json.loads(PROVENANCE.read_text())
    group = doc["attestation_bundles"][0]
    if change == "not-json":
        return b"{not json"
    if change == "no-bundles":
        doc["attestation_bundles"] = []
    elif change == "attestations-not-a-list":
        group["attestations"] = {"0": group["attestations"][0]}
    elif change == "publisher-repository-with-a-newline":
        group["publisher"]["repository"] = "trailofbits/pypi-attestations\n\x1b[31m"
    elif change == "another-publisher":
        group["publisher"]["repository"] = "pypa/pip"
    elif change == "too-many":
        group["attestations"] = group["attestations"] * 40
    elif change == "statement-not-base64":
        group["attestations"][0]["envelope"]["statement"] = "%%%"
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("not-json", "publish attestations refused"),
        ("no-bundles", "has no 'attestation_bundles'"),
        ("attestations-not-a-list", "attestations is not a list"),
        ("publisher-repository-with-a-newline", "is not a GitHub repository and workflow file"),
        ("another-publisher", "expected the Trusted Publisher's repository https://github.com/pypa/pip"),
        ("too-many", "more than 32 attestations"),
        ("statement-not-base64", "envelope.statement is not valid base64"),
    ],
    ids=lambda v: v if " " not in v else "",
)
def test_a_hostile_provenance_object_is_refused_with_a_reason(change: str, message: str, tmp_path: Path) -> None:
    from rebuild.python.pep740 import verify_provenance

    with pytest.raises(VerificationError) as refused:
        verify_provenance(_hostile(change), "https://index/x", SDIST, SDIST_SHA256, SigstorePolicy())
    assert message in refused.value.message
    assert "\x1b" not in refused.value.message and "\n" not in refused.value.message


def test_a_publisher_of_another_kind_is_named_not_supported() -> None:
    from rebuild.python.pep740 import verify_provenance

    doc = json.loads(PROVENANCE.read_text())
    doc["attestation_bundles"][0]["publisher"] = {"kind": "GitLab", "repository": "a/b", "workflow_filepath": "x"}
    results, publishers, unsupported = verify_provenance(
        json.dumps(doc).encode(), "https://index/x", SDIST, SDIST_SHA256, SigstorePolicy()
    )
    assert results == () and publishers == () and unsupported == ("Trusted Publisher of kind GitLab (GitHub only)",)
