"""Debian packages from bookworm, rebuilt with real Docker: through `deb:` and through a .buildinfo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rebuild.attest import uris
from tests.integration.test_pipeline import rebuild

pytestmark = [pytest.mark.docker, pytest.mark.network, pytest.mark.usefixtures("no_leftover_containers")]


def vsa_levels(attestation: str) -> list[list[str]]:
    from rebuild.attest.envelopes import read_envelopes
    from rebuild.attest.statements import parse_statement

    levels = []
    for loaded in read_envelopes(Path(attestation)):
        stmt = parse_statement(loaded.envelope.payload)
        if stmt.predicate_type == uris.SLSA_VSA_V1:
            levels.append(list(stmt.predicate["verifiedLevels"]))
    return levels


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    assert rebuild("key", "generate", "--out", str(d / "k")).returncode == 0
    return d


@pytest.fixture(scope="module")
def base_files_run(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Path:
    """`rebuild verify deb:base-files` (the suite's current version), signed."""
    out = tmp_path_factory.mktemp("deb-base-files")
    r = rebuild("verify", "deb:base-files", "--key", str(keys / "k.key"), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    return out


def test_base_files_reproduces_through_deb_with_its_deviation_recorded(base_files_run: Path, keys: Path) -> None:
    report = json.loads((base_files_run / "verify-report.json").read_text())
    assert report["reproduced"] is True
    assert report["summary"]["archiveSignature"] == "InRelease verified with debian-archive-keyring.gpg"
    assert report["deviations"] and report["deviations"][0].startswith("no .buildinfo: build dependencies are")
    assert vsa_levels(report["attestation"]) == [[uris.LEVEL_REPRODUCED_WITH_DEVIATIONS]]
    (deb,) = report["artifacts"]
    check = rebuild(
        "attestation", "verify", report["attestation"], "--key", str(keys / "k.pub"),
        "--digest", f"sha256:{deb['verdict']['a']['sha256']}",
    )  # fmt: skip
    assert check.returncode == 1, check.stdout + check.stderr  # the strict default: bit for bit, no deviations
    assert "does not include the required REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED" in check.stderr
    check = rebuild(
        "attestation", "verify", report["attestation"], "--key", str(keys / "k.pub"),
        "--digest", f"sha256:{deb['verdict']['a']['sha256']}",
        "--require-level", uris.LEVEL_REPRODUCED_WITH_DEVIATIONS,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_second_verify_reads_the_parsed_indices_from_the_cache(base_files_run: Path, tmp_path: Path) -> None:
    """The first verify (same cache) parsed bookworm's Sources and Packages and kept them; this one reads them."""
    r = rebuild("verify", "deb:base-files", "--no-diffoscope", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "bookworm main/source/Sources.xz: parsed form from the cache" in r.stderr, r.stderr
    assert "bookworm main/binary-amd64/Packages.xz: parsed form from the cache" in r.stderr, r.stderr
    assert json.loads((tmp_path / "verify-report.json").read_text())["reproduced"] is True


@pytest.fixture(scope="module")
def base_files_buildinfo(base_files_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("buildinfo")
    r = rebuild("buildinfo", str(base_files_run), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return Path(json.loads(r.stdout)["buildinfo"])


def test_base_files_reproduces_from_a_buildinfo_with_exact_versions(
    base_files_buildinfo: Path, keys: Path, tmp_path: Path
) -> None:
    text = base_files_buildinfo.read_text()
    assert "Installed-Build-Depends:" in text and "SOURCE_DATE_EPOCH=" in text
    r = rebuild("verify", str(base_files_buildinfo), "--key", str(keys / "k.key"), "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads(r.stdout)
    assert report["reproduced"] is True and report["deviations"] == []
    assert vsa_levels(report["attestation"]) == [[uris.LEVEL_REPRODUCED]]
    pinned = report["plan"]["builderImage"]["spec"]["packages"]
    assert any(p.startswith("debhelper=") for p in pinned)  # the image has exactly the recorded versions
    assert report["provenance_signature"] == "unsigned"


def test_distro_info_data_reproduces(tmp_path: Path) -> None:
    r = rebuild("verify", "deb:distro-info-data", "--out", str(tmp_path), "--json", "--no-diffoscope")
    assert r.returncode == 0, r.stderr + r.stdout
    report = json.loads(r.stdout)
    assert [a["name"].endswith("_all.deb") for a in report["artifacts"]] == [True]
    assert report["plan"]["parameters"]["build_mode"] == "-A"


def edited(buildinfo: Path, tmp_path: Path, old: str, new: str) -> Path:
    text = buildinfo.read_text()
    assert old in text
    out = tmp_path / buildinfo.name
    out.write_text(text.replace(old, new, 1))
    return out


def test_a_wrong_checksum_is_named(base_files_buildinfo: Path, tmp_path: Path) -> None:
    text = base_files_buildinfo.read_text()
    sha = text.split("Checksums-Sha256:\n ", 1)[1].split()[0]
    wrong = edited(base_files_buildinfo, tmp_path, sha, "0" * 64)
    r = rebuild("verify", str(wrong), "--out", str(tmp_path / "v"))
    assert r.returncode == 1 and "sha256 is " + sha in r.stderr and "0" * 64 in r.stderr


def test_a_missing_field_is_named(base_files_buildinfo: Path, tmp_path: Path) -> None:
    broken = edited(base_files_buildinfo, tmp_path, "Installed-Build-Depends:", "Installed-Build-Dependencies:")
    r = rebuild("verify", str(broken), "--out", str(tmp_path / "v"))
    assert r.returncode == 2 and "is missing field 'Installed-Build-Depends'" in r.stderr


def test_a_garbled_signature_block_is_named(base_files_buildinfo: Path, tmp_path: Path) -> None:
    signed = tmp_path / base_files_buildinfo.name
    signed.write_text(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + base_files_buildinfo.read_text()
        + "-----BEGIN PGP SIGNATURE-----\n\n%%% not armor %%%\n"
    )  # fmt: skip
    r = rebuild("verify", str(signed), "--out", str(tmp_path / "v"))
    assert r.returncode == 2 and "garbled OpenPGP signature block" in r.stderr


def test_an_unavailable_version_is_listed_and_can_be_allowed(base_files_buildinfo: Path, tmp_path: Path) -> None:
    text = base_files_buildinfo.read_text()
    line = next(x for x in text.splitlines() if x.strip().startswith("debhelper (= "))
    version = line.split("(= ")[1].split(")")[0]
    old = edited(base_files_buildinfo, tmp_path, f"debhelper (= {version})", "debhelper (= 1.0-old)")
    r = rebuild("verify", str(old), "--out", str(tmp_path / "v"))
    assert r.returncode == 3, r.stderr
    assert "1 recorded build dependency is not in http://deb.debian.org/debian bookworm: debhelper (= 1.0-old)" in (
        r.stderr
    )
    assert f"[archive has {version}]" in r.stderr and "snapshot.debian.org" in r.stderr
    allowed = rebuild("verify", str(old), "--allow-newer-build-deps", "--out", str(tmp_path / "a"), "--json")
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads(allowed.stdout)
    assert report["deviations"] == [f"build dependency debhelper: recorded 1.0-old, used the archive's {version}"]


def test_hello_does_not_reproduce_here_and_the_differing_members_are_named(tmp_path: Path) -> None:
    """bookworm's hello was built with an older toolchain than the suite has now: /usr/bin/hello differs."""
    r = rebuild("verify", "deb:hello=2.10-3", "--out", str(tmp_path), "--json", "--attest-failures")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["reproduced"] is False and report["attestation"] is None  # no key: nothing signed either way
    (deb,) = report["artifacts"]
    explanation = deb["explanation"]
    assert explanation["format"] == "ar"
    paths = {d["path"]: d["detail"] for d in explanation["differences"]}
    assert "data.tar.xz!./usr/bin/hello" in paths and "control.tar.xz!./md5sums" in paths
    assert "ELF code or data differs" in paths["data.tar.xz!./usr/bin/hello"]
    assert report["attempts"][0]["classification"].startswith("hello_2.10-3_amd64.deb: content of 2 members")
    assert not list(tmp_path.glob("*.rebuild.intoto.jsonl"))
