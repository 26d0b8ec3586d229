"""in-toto links and layouts without Docker: keys in in-toto's form, links checked by the in-toto package,
layouts verified (and refused) for each named reason, hostile layouts and links, and when a link is written.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from in_toto.models.link import Link
from in_toto.models.metadata import Envelope, Metablock, Metadata
from securesystemslib.signer import CryptoSigner
from typer.testing import CliRunner

from compare.digest import sha256_bytes
from rebuild.attest import intoto
from rebuild.attest.keys import PrivateKey, generate, load_private_key, load_public_key, write_keypair
from rebuild.attest.show import key_info
from rebuild.build.sandbox import BuildRequest, BuildResult
from rebuild.cli import app
from rebuild.errors import BuildFailedError, InputError, KeyLoadError
from rebuild.plan import BuildPlan, Input
from tests.conftest import ROOT
from tests.unit.test_verify_loop import NAME, PUBLISHED, FakeSandbox, resolution, run

ARTIFACT = "demo-1.0.tar.gz"
runner = CliRunner()


def load_example() -> ModuleType:
    """examples/in-toto/make-layout.py, the layout the docs tell a release team to write, made here."""
    spec = importlib.util.spec_from_file_location("make_layout", ROOT / "examples" / "in-toto" / "make-layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Keys:
    dir: Path

    def private(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    def public(self, name: str) -> Path:
        return self.dir / f"{name}.pub"

    def signer(self, name: str) -> PrivateKey:
        return load_private_key(self.private(name))


@pytest.fixture(scope="module")
def keyring(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("keys")
    for name, kind in (("owner", "ed25519"), ("alice", "ed25519"), ("bob", "ecdsa-p256"), ("mallory", "ed25519")):
        write_keypair(generate(kind), d / name)  # type: ignore[arg-type]
    return Keys(d)


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> BuildPlan:
    made = resolution(tmp_path_factory.mktemp("plan"), [1]).candidates[0].plan
    extra = Input("deb", "libfoo_1.0_amd64.deb", "https://deb.example.org/libfoo_1.0_amd64.deb", "ee" * 32)
    return dataclasses.replace(made, inputs=(extra,))


ARTIFACT_BYTES = b"the release everyone rebuilt"


def write_links(keyring: Keys, plan: BuildPlan, directory: Path, *names: str, digest: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    products = {ARTIFACT: digest or sha256_bytes(ARTIFACT_BYTES)}
    return [intoto.write_rebuild_link(plan, products, directory, keyring.signer(name)) for name in names]


def write_layout(
    keyring: Keys,
    path: Path,
    *,
    rebuilders: tuple[str, ...] = ("alice", "bob"),
    threshold: int = 2,
    expires: datetime | None = None,
    dsse: bool = False,
) -> Path:
    layout = load_example().make_layout(
        [keyring.public(name) for name in rebuilders],
        threshold,
        ARTIFACT,
        expires or datetime.now(UTC) + timedelta(days=30),
        "rebuild",
    )
    private = serialization.load_pem_private_key(keyring.private("owner").read_bytes(), None)
    metadata = Envelope.from_signable(layout) if dsse else Metablock(signed=layout)
    metadata.create_signature(CryptoSigner(private))  # type: ignore[arg-type]
    path.write_text(json.dumps(metadata.to_dict()))
    return path


@pytest.fixture()
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "release" / ARTIFACT
    path.parent.mkdir()
    path.write_bytes(ARTIFACT_BYTES)
    return path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


# --- keys ------------------------------------------------------------------------------------------


def pem(public: Any) -> bytes:
    return bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


@pytest.mark.parametrize(
    ("make", "keytype", "scheme"),
    [
        (lambda: generate("ed25519").key.public_key(), "ed25519", "ed25519"),
        (lambda: generate("ecdsa-p256").key.public_key(), "ecdsa", "ecdsa-sha2-nistp256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()).public_key(), "ecdsa", "ecdsa-sha2-nistp384"),
        (lambda: rsa.generate_private_key(65537, 2048).public_key(), "rsa", "rsassa-pss-sha256"),
    ],
    ids=["ed25519", "ecdsa-p256", "ecdsa-p384", "rsa"],
)
def test_key_show_gives_the_key_as_in_toto_loads_it(
    tmp_path: Path, make: Callable[[], Any], keytype: str, scheme: str
) -> None:
    from in_toto.models._signer import load_public_key_from_file  # what in-toto-verify and a layout use

    path = tmp_path / "k.pub"
    path.write_bytes(pem(make()))
    form = key_info(path)["in_toto"]
    assert form == load_public_key_from_file(str(path))
    assert (form["keytype"], form["scheme"]) == (keytype, scheme)
    assert form["keyid"] != load_public_key(path).keyid  # in-toto's id is not the project's: both are shown


def test_key_show_prints_both_ids_and_the_layout_form(keyring: Keys) -> None:
    code, output = invoke("key", "show", str(keyring.private("bob")))
    assert code == 0, output
    form = key_info(keyring.public("bob"))["in_toto"]
    assert f"in-toto keyid {form['keyid']} (ecdsa, scheme ecdsa-sha2-nistp256)" in output
    assert json.dumps(form, sort_keys=True) in output  # one line, to paste into a layout's "keys"
    code, output = invoke("key", "show", str(keyring.public("alice")), "--json")
    assert json.loads(output)["in_toto"] == key_info(keyring.public("alice"))["in_toto"]


def test_a_key_in_toto_has_no_form_for_is_said_so(tmp_path: Path) -> None:
    path = tmp_path / "ed448.pub"
    path.write_bytes(pem(ed448.Ed448PrivateKey.generate().public_key()))
    assert key_info(path)["in_toto"] is None
    code, output = invoke("key", "show", str(path))
    assert code == 0 and "in-toto: no form for this key type" in output
    with pytest.raises(KeyLoadError, match="has no in-toto form"):
        intoto.in_toto_key(ed448.Ed448PrivateKey.generate().public_key())


# --- links -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "bob"], ids=["ed25519", "ecdsa-p256"])
def test_link_is_named_for_in_toto_key_id_and_verifies_with_in_toto(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, name: str
) -> None:
    (path,) = write_links(keyring, plan, tmp_path, name)
    form = key_info(keyring.public(name))["in_toto"]
    assert path.name == f"rebuild.{form['keyid'][:8]}.link"
    metadata = Metadata.load(str(path))
    assert isinstance(metadata, Metablock)  # the traditional format apt-transport-in-toto reads
    metadata.verify_signature(form)
    link = metadata.get_payload()
    assert isinstance(link, Link) and link.name == "rebuild"
    assert link.materials == {
        "source": {"sha256": plan.source.sha256},
        "deb/libfoo_1.0_amd64.deb": {"sha256": "ee" * 32},
    }
    assert link.products == {ARTIFACT: {"sha256": sha256_bytes(ARTIFACT_BYTES)}}


def test_the_step_name_is_overridable(keyring: Keys, plan: BuildPlan, tmp_path: Path) -> None:
    path = intoto.write_rebuild_link(
        plan, {ARTIFACT: "ab" * 32}, tmp_path, keyring.signer("alice"), "rebuild x_1.0.deb"
    )
    assert (
        path.name.startswith("rebuild x_1.0.deb.")
        and Metadata.load(str(path)).get_payload().name == "rebuild x_1.0.deb"
    )


@pytest.mark.parametrize("step", ["", "../up", "a/b", ".hidden", "-opt", "x" * 201, "tab\there"])
def test_a_step_name_that_cannot_name_a_file_is_refused(step: str) -> None:
    with pytest.raises(InputError, match="step name"):
        intoto.check_step_name(step)


@pytest.mark.parametrize("keyid", ["../../etc", "AB" * 32, "ab" * 31])
def test_only_hex_of_a_key_id_reaches_a_file_name(keyid: str) -> None:
    with pytest.raises(InputError, match="64 hex"):
        intoto.link_file_name("rebuild", keyid)


def test_in_toto_link_needs_a_key_and_a_good_step_before_anything_runs(tmp_path: Path) -> None:
    code, output = invoke("verify", "nothing.json", "--in-toto-link", "--out", str(tmp_path / "o"))
    assert code == 2 and "--in-toto-link needs --key" in output
    key = tmp_path / "k"
    write_keypair(generate(), key)
    code, output = invoke(
        "verify", "nothing.json", "--in-toto-link", "--key", f"{key}.key", "--in-toto-step", "a/b",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2 and "step name 'a/b' is not allowed" in output


class FailingSandbox(FakeSandbox):
    def run(self, request: BuildRequest, out_dir: Path) -> BuildResult:
        raise BuildFailedError("the build exited 2")


def test_a_link_only_for_a_full_match(tmp_path: Path) -> None:
    signer = generate("ed25519")
    out = tmp_path / "out"
    report = run(
        tmp_path, FakeSandbox(matching_epoch="1"), resolution(tmp_path, [1]), signer=signer, in_toto_step="rebuild"
    )
    assert report.reproduced and report.in_toto_link is not None
    assert list(out.glob("*.link")) == [report.in_toto_link]
    link = Metadata.load(str(report.in_toto_link)).get_payload()
    assert link.products == {NAME: {"sha256": sha256_bytes(PUBLISHED)}}
    assert json.loads((out / "verify-report.json").read_text())["in_toto_link"] == str(report.in_toto_link)
    # the next run in the same directory mismatches: the earlier link is gone, no new one
    report = run(
        tmp_path, FakeSandbox(matching_epoch=None), resolution(tmp_path, [1]), signer=signer, in_toto_step="rebuild",
        attest_failures=True,
    )  # fmt: skip
    assert not report.reproduced and report.in_toto_link is None
    assert not list(out.glob("*.link"))


def test_no_link_without_the_option_or_when_the_build_fails(tmp_path: Path) -> None:
    signer = generate("ed25519")
    report = run(tmp_path, FakeSandbox(matching_epoch="1"), resolution(tmp_path, [1]), signer=signer)
    assert report.reproduced and report.in_toto_link is None
    assert not list((tmp_path / "out").glob("*.link"))
    with pytest.raises(BuildFailedError):
        run(tmp_path, FailingSandbox(None), resolution(tmp_path, [1]), signer=signer, in_toto_step="rebuild")
    assert not list((tmp_path / "out").glob("*.link"))


# --- verifying a layout ----------------------------------------------------------------------------


def links_case(keyring: Keys, plan: BuildPlan, d: Path, case: str) -> None:
    if case in ("both", "artifact-differs", "no-artifact"):
        write_links(keyring, plan, d, "alice", "bob")
    elif case == "one":
        write_links(keyring, plan, d, "alice")
    elif case == "tampered":
        _, bob = write_links(keyring, plan, d, "alice", "bob")
        bob.write_text(bob.read_text().replace(sha256_bytes(ARTIFACT_BYTES), "00" * 32))
    elif case == "unauthorised":
        write_links(keyring, plan, d, "alice", "mallory")
    elif case == "disagree":  # properly signed, but bob reports other bytes
        write_links(keyring, plan, d, "alice")
        write_links(keyring, plan, d, "bob", digest="11" * 32)


@pytest.mark.parametrize(
    ("case", "reason", "note"),
    [
        ("both", "", ""),
        ("one", "too-few-links", ""),
        ("tampered", "too-few-links", "Broken link signature"),
        ("unauthorised", "too-few-links", "which the layout does not authorise for step 'rebuild'"),
        ("disagree", "links-disagree", ""),
        ("artifact-differs", "rule-failed", ""),
        ("no-artifact", "rule-failed", "no --artifact"),
    ],
    ids=lambda v: v or "-",
)
def test_verify_layout_passes_with_two_agreeing_links_and_names_each_failure(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path, case: str, reason: str, note: str
) -> None:
    layout = write_layout(keyring, tmp_path / "root.layout")
    links_case(keyring, plan, tmp_path / "links", case)
    if case == "artifact-differs":
        artifact.write_bytes(b"a different release")
    verdict = intoto.verify_layout(
        layout,
        [load_public_key(keyring.public("owner"))],
        tmp_path / "links",
        None if case == "no-artifact" else artifact,
    )
    assert verdict.passed is (reason == "")
    assert verdict.reason == reason
    assert note in " ".join(verdict.notes)
    if reason:
        assert verdict.message.startswith(intoto.REASONS[reason])
    assert [s.name for s in verdict.steps] == ["rebuild"] and verdict.steps[0].threshold == 2
    assert os.getcwd() != str(tmp_path)  # the working directory is given back


def test_wrong_layout_key_and_expired_layout_are_named(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path
) -> None:
    links = tmp_path / "links"
    write_links(keyring, plan, links, "alice", "bob")
    layout = write_layout(keyring, tmp_path / "root.layout")
    wrong = intoto.verify_layout(layout, [load_public_key(keyring.public("alice"))], links, artifact)
    assert (wrong.passed, wrong.reason) == (False, "layout-signature")
    assert wrong.notes == ()  # nothing ran: no note about inspections
    expired = write_layout(keyring, tmp_path / "old.layout", expires=datetime.now(UTC) - timedelta(days=1))
    verdict = intoto.verify_layout(expired, [load_public_key(keyring.public("owner"))], links, artifact)
    assert (verdict.passed, verdict.reason) == (False, "layout-expired")
    assert verdict.message.startswith("the layout expired at ")


@pytest.mark.parametrize(
    ("run", "outcome"),
    [(["false"], "inspection-failed"), (["/nonexistent/inspect"], "exit 3")],
    ids=["fails", "cannot-run"],
)
def test_an_inspection_that_fails_or_cannot_run(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path, run: list[str], outcome: str
) -> None:
    """A command that ran and said no is a failed check (exit 1); one that could not run is exit 3."""
    write_links(keyring, plan, tmp_path / "links", "alice", "bob")
    layout = load_example().make_layout(
        [keyring.public(n) for n in ("alice", "bob")], 2, ARTIFACT, datetime.now(UTC) + timedelta(days=1), "rebuild"
    )
    layout.inspect[0].run = run
    metablock = Metablock(signed=layout)
    metablock.create_signature(CryptoSigner(keyring.signer("owner").key))
    (tmp_path / "root.layout").write_text(repr(metablock))
    code, output = verify_layout_cli(keyring, tmp_path / "root.layout", tmp_path / "links", "--artifact", str(artifact))
    if outcome == "exit 3":
        assert code == 3 and "an inspection of" in output and "could not run" in output, output
    else:
        assert code == 1 and "FAILED, an inspection command failed" in output, output


def test_a_layout_in_a_dsse_envelope_verifies_too(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path
) -> None:
    write_links(keyring, plan, tmp_path / "links", "alice", "bob")
    layout = write_layout(keyring, tmp_path / "root.layout", dsse=True)
    assert intoto.verify_layout(layout, [load_public_key(keyring.public("owner"))], tmp_path / "links", artifact).passed


def test_threshold_one_of_two(keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path) -> None:
    write_links(keyring, plan, tmp_path / "links", "bob")
    layout = write_layout(keyring, tmp_path / "root.layout", threshold=1)
    verdict = intoto.verify_layout(layout, [load_public_key(keyring.public("owner"))], tmp_path / "links", artifact)
    assert verdict.passed and verdict.steps[0].links == (
        intoto.link_file_name("rebuild", key_info(keyring.public("bob"))["in_toto"]["keyid"]),
    )


# --- the command line ------------------------------------------------------------------------------


def verify_layout_cli(keyring: Keys, layout: Path, links: Path, *extra: str) -> tuple[int, str]:
    owner = str(keyring.public("owner"))
    return invoke("attestation", "verify-layout", str(layout), "--layout-key", owner, "--links", str(links), *extra)


def test_cli_passed_and_failed(keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path) -> None:
    layout = write_layout(keyring, tmp_path / "root.layout")
    links = tmp_path / "links"
    write_links(keyring, plan, links, "alice", "bob")
    code, output = verify_layout_cli(keyring, layout, links, "--artifact", str(artifact))
    assert code == 0, output
    assert "PASSED in-toto verification of" in output and "threshold 2, links rebuild." in output
    next(links.glob("*.link")).unlink()
    code, output = verify_layout_cli(keyring, layout, links, "--artifact", str(artifact))
    assert code == 1
    assert "error: in-toto verification FAILED, too few links: Step 'rebuild' requires '2'" in output
    assert "Traceback" not in output
    result = runner.invoke(
        app, ["attestation", "verify-layout", str(layout), "--layout-key", str(keyring.public("owner")),
              "--links", str(links), "--artifact", str(artifact), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["verified"], doc["result"], doc["reason"]) == (False, "FAILED", "too-few-links")


def test_in_toto_does_not_print_text_from_links_itself(
    keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """in-toto warns about a link's command on stderr by itself; here it becomes an escaped note."""
    layout = write_layout(keyring, tmp_path / "root.layout")
    links = tmp_path / "links"
    links.mkdir()
    for name in ("alice", "bob"):
        link = intoto.rebuild_link(plan, {ARTIFACT: sha256_bytes(ARTIFACT_BYTES)})
        link.command = ["\x1b[2Jrm", "-rf"]
        metablock = Metablock(signed=link)
        metablock.create_signature(CryptoSigner(keyring.signer(name).key))
        keyid = key_info(keyring.public(name))["in_toto"]["keyid"]
        (links / intoto.link_file_name("rebuild", keyid)).write_text(repr(metablock))
    verdict = intoto.verify_layout(layout, [load_public_key(keyring.public("owner"))], links, artifact)
    assert verdict.passed
    assert any("\\x1b[2Jrm" in note for note in verdict.notes)
    assert "\x1b" not in capfd.readouterr().err


# --- hostile layouts and links ---------------------------------------------------------------------


def hostile_layout(keyring: Keys, path: Path, kind: str) -> None:
    doc = json.loads(write_layout(keyring, path).read_text())
    if kind == "not-json":
        path.write_text("{not json")
    elif kind == "duplicate-key":
        path.write_text('{"signed": {}, "signed": {}, "signatures": []}')
    elif kind == "deep":
        path.write_text("[" * 10_000 + "]" * 10_000)
    elif kind == "a-list":
        path.write_text("[]")
    elif kind == "a-string":
        path.write_text('"signed payload"')
    elif kind == "wrong-types":
        doc["signed"]["steps"] = "rebuild"
        path.write_text(json.dumps(doc))
    elif kind == "a-link":
        path.write_text(json.dumps({"signed": {"_type": "link", "name": "x"}, "signatures": []}))
    elif kind == "bad-envelope":
        path.write_text(json.dumps({"payload": "%%%", "payloadType": "application/vnd.in-toto+json", "signatures": []}))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not-json", "is not valid JSON"),
        ("duplicate-key", "duplicate key 'signed'"),
        ("deep", "nested too deeply"),
        ("a-list", "is not in-toto metadata"),
        ("a-string", "is not in-toto metadata"),
        ("wrong-types", "is not valid in-toto metadata"),
        ("a-link", "holds a link, not a layout"),
        ("bad-envelope", "payload is not base64"),
    ],
)
def test_a_malformed_layout_is_exit_2_in_one_line(
    keyring: Keys, tmp_path: Path, artifact: Path, kind: str, message: str
) -> None:
    layout = tmp_path / "root.layout"
    hostile_layout(keyring, layout, kind)
    (tmp_path / "links").mkdir()
    code, output = verify_layout_cli(keyring, layout, tmp_path / "links", "--artifact", str(artifact))
    assert code == 2, output
    assert message in output and "Traceback" not in output


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not-json", "is not valid JSON"),
        ("duplicate-key", "duplicate key"),
        ("wrong-types", "is not valid in-toto metadata"),
        ("too-large", "is larger than"),
    ],
)
def test_a_malformed_link_is_exit_2_naming_the_file(
    keyring: Keys,
    plan: BuildPlan,
    tmp_path: Path,
    artifact: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    message: str,
) -> None:
    layout = write_layout(keyring, tmp_path / "root.layout")
    links = tmp_path / "links"
    _, bob = write_links(keyring, plan, links, "alice", "bob")
    if kind == "not-json":
        bob.write_text("{")
    elif kind == "duplicate-key":
        bob.write_text(bob.read_text().replace('"signed": {', '"signed": {"name": "x", ', 1))
    elif kind == "wrong-types":
        bob.write_text(bob.read_text().replace('"products": {', '"products": {"x": 1, ', 1))
    elif kind == "too-large":
        monkeypatch.setattr(intoto, "MAX_DOCUMENT_BYTES", 20_000)  # the layout fits, the padded link does not
        bob.write_text(bob.read_text() + " " * 30_000)
    code, output = verify_layout_cli(keyring, layout, links, "--artifact", str(artifact))
    assert code == 2, output
    assert message in output and bob.name in output and "Traceback" not in output


def test_a_symlinked_link_is_not_read(keyring: Keys, plan: BuildPlan, tmp_path: Path, artifact: Path) -> None:
    layout = write_layout(keyring, tmp_path / "root.layout")
    elsewhere = tmp_path / "elsewhere"
    _, bob = write_links(keyring, plan, elsewhere, "alice", "bob")
    links = tmp_path / "links"
    links.mkdir()
    for path in elsewhere.iterdir():
        (links / path.name).symlink_to(path) if path == bob else (links / path.name).write_bytes(path.read_bytes())
    verdict = intoto.verify_layout(layout, [load_public_key(keyring.public("owner"))], links, artifact)
    assert verdict.reason == "too-few-links"
    assert f"{bob.name} is not a regular file (a symlink?): not read" in verdict.notes


def test_a_layout_step_name_that_leaves_the_links_directory_is_refused(keyring: Keys, tmp_path: Path) -> None:
    layout = load_example().make_layout(
        [keyring.public("alice")], 1, ARTIFACT, datetime.now(UTC) + timedelta(days=1), "../x"
    )
    metablock = Metablock(signed=layout)
    metablock.create_signature(CryptoSigner(keyring.signer("owner").key))
    path = tmp_path / "root.layout"
    path.write_text(repr(metablock))
    (tmp_path / "links").mkdir()
    with pytest.raises(InputError, match="cannot name a link file"):
        intoto.verify_layout(path, [load_public_key(keyring.public("owner"))], tmp_path / "links")


@pytest.mark.parametrize("what", ["links", "artifact", "key"])
def test_bad_options_are_exit_2(keyring: Keys, tmp_path: Path, what: str) -> None:
    layout = write_layout(keyring, tmp_path / "root.layout")
    (tmp_path / "links").mkdir()
    ed448_key = tmp_path / "ed448.pub"
    ed448_key.write_bytes(pem(ed448.Ed448PrivateKey.generate().public_key()))
    args = {
        "links": ["--layout-key", str(keyring.public("owner")), "--links", str(layout)],
        "artifact": [
            "--layout-key",
            str(keyring.public("owner")),
            "--links",
            str(tmp_path / "links"),
            "--artifact",
            str(tmp_path),
        ],
        "key": ["--layout-key", str(ed448_key), "--links", str(tmp_path / "links")],
    }[what]
    code, output = invoke("attestation", "verify-layout", str(layout), *args)
    assert code == 2, output
    assert {"links": "is not a directory", "artifact": "is not a regular file", "key": "has no in-toto form"}[
        what
    ] in output


def test_the_example_layout_in_the_repository_is_a_valid_signed_layout() -> None:
    """examples/in-toto/root.layout: step rebuild, two rebuilder keys, threshold 2, signed by owner.pub."""
    from in_toto.verifylib import verify_metadata_signatures

    example = ROOT / "examples" / "in-toto"
    metadata = intoto.load_layout(example / "root.layout")
    owner = key_info(example / "owner.pub")["in_toto"]
    verify_metadata_signatures(metadata, {owner["keyid"]: owner})
    layout = metadata.get_payload()
    (step,) = layout.steps
    rebuilders = {key_info(example / f"rebuilder-{x}.pub")["in_toto"]["keyid"] for x in "ab"}
    assert (step.name, step.threshold, set(step.pubkeys)) == ("rebuild", 2, rebuilders)
    assert [i.name for i in layout.inspect] == ["check-artifact"]
