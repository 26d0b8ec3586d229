"""deb822 and .buildinfo reading, without the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebuild.debian import control
from rebuild.errors import InputError, PlanError
from rebuild.resolve.buildinfo import read_buildinfo
from rebuild.resolve.debian import build_dependency_names, build_mode, parse_target

BUILDINFO = """Format: 1.0
Source: hello (2.10-3)
Binary: hello
Architecture: amd64
Version: 2.10-3
Checksums-Sha256:
 2e6e2f1a0007dc43d2a8e0b6c2b9f7a4b4c4e5f6a7b8c9d0e1f2a3b4c5d6e7f8 53080 hello_2.10-3_amd64.deb
Build-Architecture: amd64
Build-Path: /build/reproducible-path/hello-2.10
Installed-Build-Depends:
 autoconf (= 2.71-3),
 base-files (= 12.4+deb12u5),
 libc6:amd64 (= 2.36-9+deb12u4)
Environment:
 DEB_BUILD_OPTIONS="parallel=4"
 LANG="C.UTF-8"
 SOURCE_DATE_EPOCH="1660000000"
"""
SIGNATURE = "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"


def test_fields_relations_environment_and_checksums() -> None:
    fields = control.parse_one(BUILDINFO, "t")
    assert fields["Source"] == "hello (2.10-3)"
    assert control.relations(fields["Installed-Build-Depends"]) == [
        ("autoconf", "2.71-3"),
        ("base-files", "12.4+deb12u5"),
        ("libc6", "2.36-9+deb12u4"),
    ]
    assert control.environment(fields["Environment"]) == {
        "DEB_BUILD_OPTIONS": "parallel=4",
        "LANG": "C.UTF-8",
        "SOURCE_DATE_EPOCH": "1660000000",
    }
    ((name, (sha, size)),) = control.checksums(fields["Checksums-Sha256"], "t").items()
    assert name == "hello_2.10-3_amd64.deb" and size == 53080 and sha.startswith("2e6e2f1a")
    with pytest.raises(InputError, match="malformed Checksums-Sha256 line"):
        control.checksums("\n nothex 1 x.deb", "t")


def test_clearsigned_text_is_unwrapped_and_dash_escaping_undone() -> None:
    signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n- -leading dash\n" + BUILDINFO + SIGNATURE
    unwrapped = control.unwrap_clearsigned(signed, "t")
    assert unwrapped.signed and unwrapped.text.startswith("-leading dash\nFormat: 1.0")
    assert not control.unwrap_clearsigned(BUILDINFO, "t").signed


@pytest.mark.parametrize(
    "broken",
    [
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + BUILDINFO,  # no signature at all
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + BUILDINFO + "-----BEGIN PGP SIGNATURE-----\n\n%%%\n",
        "-----BEGIN PGP SIGNED MESSAGE-----\n\n" + BUILDINFO + SIGNATURE.replace("iQIzBAEBCgAdFiEE", "not base64!"),
        BUILDINFO + SIGNATURE,  # a signature without a signed message
    ],
)
def test_garbled_signature_blocks_are_refused(broken: str) -> None:
    with pytest.raises(InputError, match="garbled OpenPGP signature block"):
        control.unwrap_clearsigned(broken, "t")


def test_a_buildinfo_missing_a_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "x.buildinfo"
    path.write_text(BUILDINFO.replace("Architecture: amd64\n", "", 1))
    with pytest.raises(PlanError, match="missing field 'Architecture'"):
        read_buildinfo(path)
    path.write_text(BUILDINFO)
    fields, signed = read_buildinfo(path)
    assert fields["Version"] == "2.10-3" and not signed


def test_build_modes_dependencies_and_targets() -> None:
    assert (
        build_mode(["all"]) == "-A" and build_mode(["amd64"]) == "-B" and build_mode(["source", "all", "amd64"]) == "-b"
    )
    names = build_dependency_names(
        {"Build-Depends": "debhelper-compat (= 13), python3:any <!nocheck>, libfoo-dev [amd64] | libbar-dev"}
    )
    assert names == ["build-essential", "debhelper", "fakeroot", "libfoo-dev", "python3"]
    assert parse_target("deb:hello=2.10-3") == ("hello", "2.10-3") and parse_target("deb:hello") == ("hello", None)
    with pytest.raises(InputError):
        parse_target("deb:Hello World")


def test_an_inrelease_whose_signature_does_not_verify_is_refused(tmp_path: Path) -> None:
    """gpgv with the Debian archive keyring: a forged InRelease is a verification failure (exit 1)."""
    import shutil

    from rebuild.debian.archive import KEYRING, DebianArchive
    from rebuild.errors import VerificationError

    if shutil.which("gpgv") is None or not KEYRING.is_file():
        pytest.skip("gpgv or the Debian archive keyring is not on this machine")
    forged = tmp_path / "InRelease"
    forged.write_text("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSuite: bookworm\n" + SIGNATURE)
    with pytest.raises(VerificationError, match="InRelease signature does not verify"):
        DebianArchive._check_signature(forged)
