"""deb822 and .buildinfo reading (python-debian behind ``rebuild.debian.control``), without the network."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pytest
from debian import deb822
from hypothesis import given, settings
from hypothesis import strategies as st

from rebuild.debian import control
from rebuild.errors import InputError, PlanError
from rebuild.resolve.buildinfo import read_buildinfo
from rebuild.resolve.debian import DPKG_TABLES, build_dependency_names, build_mode, parse_target

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
HEADER = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
SIGNATURE = "-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"
HAVE_DPKG_TABLES = Path(DPKG_TABLES, "tupletable").is_file() or Path(DPKG_TABLES, "triplettable").is_file()


def read(text: str, kind: type[deb822.Deb822] = deb822.BuildInfo) -> control.Parsed[deb822.Deb822]:
    return control.read_document(text, "t", kind)


def test_fields_relations_environment_and_checksums() -> None:
    parsed = control.read_document(BUILDINFO, "t", deb822.BuildInfo)
    fields = parsed.fields
    assert fields["Source"] == "hello (2.10-3)" and fields["source"] == "hello (2.10-3)"  # names: any case
    assert not parsed.signed
    assert control.exact_versions(fields["Installed-Build-Depends"], "t") == [
        ("autoconf", "2.71-3"),
        ("base-files", "12.4+deb12u5"),
        ("libc6", "2.36-9+deb12u4"),
    ]
    assert control.environment(fields, "t") == {
        "DEB_BUILD_OPTIONS": "parallel=4",
        "LANG": "C.UTF-8",
        "SOURCE_DATE_EPOCH": "1660000000",
    }
    ((name, (sha, size)),) = control.checksums(fields, "Checksums-Sha256", "t").items()
    assert name == "hello_2.10-3_amd64.deb" and size == 53080 and sha.startswith("2e6e2f1a")
    assert control.checksums(fields, "Checksums-Sha1", "t") == {}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("\n nothex 1 x.deb", id="not-hex"),
        pytest.param("\n " + "5b" * 32 + " -1 x.deb", id="negative-size"),
        pytest.param("\n " + "5b" * 32 + " 1", id="no-name"),
        pytest.param("\n " + "5b" * 32 + " 1 a b.deb", id="space-in-name"),
        pytest.param("\n " + "AB" * 32 + " 1 x.deb", id="uppercase-hex"),
        pytest.param("\n " + "5b" * 32 + " " + "9" * 4301 + " x.deb", id="size-longer-than-int-converts"),
        pytest.param("\n " + "5b" * 32 + " \u0661\u0662 x.deb", id="size-in-arabic-digits"),
    ],
)
def test_a_malformed_checksums_line_is_named(value: str) -> None:
    fields = read(f"Source: x\nChecksums-Sha256:{value}\n").fields
    with pytest.raises(InputError, match="t: malformed Checksums-Sha256 line"):
        control.checksums(fields, "Checksums-Sha256", "t")


def test_a_single_line_checksums_field_is_read() -> None:
    fields = read("Checksums-Sha256: " + "5b" * 32 + " 7 x.deb\n").fields
    assert control.checksums(fields, "Checksums-Sha256", "t") == {"x.deb": ("5b" * 32, 7)}


def test_clearsigned_text_is_unwrapped_and_dash_escaping_undone() -> None:
    """python-debian leaves dash-escaping in place; it is undone here, and an escaped armor line is text."""
    body = "- -leading dash\n" + BUILDINFO.replace(
        "Binary: hello\n", "- Binary: hello\n- -----BEGIN PGP SIGNATURE-----\n"
    )
    parsed = read(HEADER + body + SIGNATURE)
    assert parsed.signed and parsed.fields["Binary"] == "hello"  # optionally escaped: a field
    assert parsed.fields["Format"] == "1.0" and parsed.fields["Version"] == "2.10-3"  # read past the escaped armor
    assert "-leading dash" not in "".join(parsed.fields)  # no field starts with '-' (policy 5.1)
    assert not read(BUILDINFO).signed


def test_a_clearsigned_dsc_with_a_blank_line_before_its_signature() -> None:
    dsc = "Format: 3.0 (quilt)\nSource: hello\nChecksums-Sha256:\n " + "5b" * 32 + " 1 hello_2.10.orig.tar.gz\n\n"
    parsed = control.read_document("\n" + HEADER + dsc + SIGNATURE + "\n", "hello.dsc", deb822.Dsc)
    assert parsed.signed and control.checksums(parsed.fields, "Checksums-Sha256", "t") == {
        "hello_2.10.orig.tar.gz": ("5b" * 32, 1)
    }


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        pytest.param(HEADER + BUILDINFO, "no complete signature", id="no-signature"),
        pytest.param(
            HEADER + BUILDINFO + "-----BEGIN PGP SIGNATURE-----\n\n%%%\n", "no complete signature", id="unterminated"
        ),
        pytest.param(
            "-----BEGIN PGP SIGNED MESSAGE-----\n\n" + BUILDINFO + SIGNATURE.replace("iQIzBAEBCgAdFiEE", "not base64!"),
            "not base64",
            id="armor-not-base64",
        ),
        pytest.param(BUILDINFO + SIGNATURE, "a signature without a signed message", id="signature-without-message"),
        pytest.param(HEADER + BUILDINFO + SIGNATURE.replace("iQIz", " iQIz"), "not base64", id="indented-armor-line"),
        pytest.param(
            HEADER + BUILDINFO + SIGNATURE.replace("-----END", " -----END"),
            "no complete signature",
            id="indented-end-line",
        ),
        pytest.param("Evil: yes\n" + HEADER + BUILDINFO + SIGNATURE, "text before the signed message", id="prefix"),
        pytest.param(HEADER + BUILDINFO + SIGNATURE + "Evil: yes\n", "text after the signature", id="suffix"),
        pytest.param(HEADER + "-x\n" + BUILDINFO + SIGNATURE, "not dash-escaped", id="unescaped-dash"),
        pytest.param(HEADER.replace("\n\n", "\n") + BUILDINFO + SIGNATURE, "no signed text", id="no-empty-line"),
        pytest.param(HEADER + "\n" + SIGNATURE, "no signed text", id="empty-message"),
        pytest.param(
            HEADER.replace("\n\n", "\n") + "Source: x\n\nSource: y\n" + SIGNATURE,
            "armor headers",
            id="a-field-among-armor-headers",
        ),
        pytest.param(
            HEADER + BUILDINFO + "\nSource: evil\n" + SIGNATURE, "more than one paragraph", id="two-paragraphs"
        ),
        pytest.param(
            HEADER + BUILDINFO + "-----BEGIN PGP MESSAGE-----\n" + SIGNATURE,
            "no complete signature",
            id="another-armor-block",
        ),
        pytest.param(
            BUILDINFO + "-----BEGIN PGP SIGNED MESSAGE----- \n", "text before the signed message", id="late-marker"
        ),
    ],
)
def test_garbled_signature_blocks_are_refused(broken: str, problem: str) -> None:
    with pytest.raises(InputError, match=f"^t: garbled OpenPGP signature block \\(.*{problem}"):
        read(broken)


def test_a_marker_inside_a_field_is_text() -> None:
    """Only a line that starts with the armor is armor (the old parser crashed on this one)."""
    parsed = read(BUILDINFO + "Comment: x -----BEGIN PGP SIGNED MESSAGE-----\n")
    assert not parsed.signed and parsed.fields["Comment"] == "x -----BEGIN PGP SIGNED MESSAGE-----"


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", HEADER + "# a comment\n" + SIGNATURE], ids=repr)
def test_no_fields_is_named(text: str) -> None:
    with pytest.raises(InputError, match=r"^t: no deb822 fields found"):
        read(text)


def test_not_utf8_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^t: not UTF-8 text \(byte 8 is b'\\xff'\)"):
        control.decode(b"Source: \xff\n", "t")
    for text in (BUILDINFO + "Evil: \udc80\n", HEADER + "Evil: \udc80\n" + SIGNATURE):  # lone surrogates
        with pytest.raises(InputError, match=r"^t: not "):
            read(text)
    path = tmp_path / "x.buildinfo"
    path.write_bytes(BUILDINFO.replace("hello", "h\xe9llo").encode("latin-1"))
    with pytest.raises(InputError, match=r"x.buildinfo: not UTF-8 text"):
        read_buildinfo(path)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_is_read_or_refused_as_input(text: str) -> None:
    """Whatever the text, python-debian's exceptions never leave the boundary."""
    with contextlib.suppress(InputError):
        read(text)


@given(st.lists(st.sampled_from(["-----BEGIN PGP SIGNED MESSAGE-----", "Hash: SHA512", "", "Source: x",
                                 "- -x", "-x", " x", "-----BEGIN PGP SIGNATURE-----", "iQIz", "=abcd",
                                 "-----END PGP SIGNATURE-----", "Version: 1"]), max_size=14))  # fmt: skip
@settings(max_examples=500, deadline=None)
def test_any_arrangement_of_armor_lines_is_read_or_refused_as_input(lines: list[str]) -> None:
    try:
        parsed = read("\n".join(lines))
    except InputError:
        return
    assert all(not name.startswith("-") for name in parsed.fields)


def test_a_control_file_is_read_only_if_regular_and_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "x.buildinfo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is not a regular file"):
        read_buildinfo(fifo)  # returns at once: no writer is waited for
    with pytest.raises(InputError, match="is not a regular file"):
        control.read_file(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        control.read_file(tmp_path / "absent")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (2 << 20) + b"x")
    with pytest.raises(InputError, match="is larger than 2 MiB"):
        control.read_file(big, 2 << 20)


def test_a_buildinfo_missing_a_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "x.buildinfo"
    path.write_text(BUILDINFO.replace("Architecture: amd64\n", "", 1))
    with pytest.raises(PlanError, match="missing field 'Architecture'"):
        read_buildinfo(path)
    path.write_text(BUILDINFO)
    fields, signed = read_buildinfo(path)
    assert fields["Version"] == "2.10-3" and not signed
    path.write_text(HEADER + BUILDINFO + SIGNATURE)
    assert read_buildinfo(path)[1]


# --- relations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("evil; id (= 1)", "malformed package relation 'evil; id \\(= 1\\)'", id="unparsable"),
        pytest.param("gcc ($(id))", "malformed package relation", id="shell-in-version"),
        pytest.param("GCC (= 12)", "malformed package relation 'GCC'", id="uppercase-name"),
        pytest.param("a (= 1)", "malformed package relation 'a'", id="one-letter-name"),
        pytest.param("aa (= 1) | bb (= 2)", "is not 'package \\(= version\\)'", id="alternatives"),
        pytest.param("aa (>= 1)", "is not 'package \\(= version\\)'", id="not-exact"),
        pytest.param("aa (= 1) [amd64]", "is not 'package \\(= version\\)'", id="arch-restricted"),
        pytest.param("aa (= 1) <!nocheck>", "is not 'package \\(= version\\)'", id="profile-restricted"),
        pytest.param("aa (= 1), | bb", "malformed package relation ''", id="empty-alternative"),
    ],
)
def test_installed_build_depends_must_be_exact_versions(value: str, problem: str) -> None:
    with pytest.raises(InputError, match=f"^t: .*{problem}"):
        control.exact_versions(value, "t")


def test_relations_of_python_debian_with_empty_entries_and_qualifiers() -> None:
    assert control.exact_versions("aa (= 1),\n bb:amd64 (=2:1.0-1), cc,", "t") == [
        ("aa", "1"),
        ("bb", "2:1.0-1"),
        ("cc", ""),
    ]
    assert control.exact_versions("", "t") == []


def test_an_unparsable_relation_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """python-debian logs the raw text (control characters and all); it is refused instead, and not logged."""
    with caplog.at_level(logging.DEBUG), pytest.raises(InputError):
        control.relations("\x1b[2Jevil", "t")
    assert not caplog.records
    assert not logging.getLogger("debian.deb822").filters  # the filter is gone afterwards


# --- Environment ----------------------------------------------------------------------------


def test_environment_quoting_as_deb_buildinfo_says() -> None:
    fields = read('Environment:\n DEB_BUILD_OPTIONS="a \\"b\\""\n TZ="UTC"\n').fields
    assert control.environment(fields, "t") == {"DEB_BUILD_OPTIONS": 'a "b"', "TZ": "UTC"}
    assert control.environment(read("Source: x\n").fields, "t") == {}


@pytest.mark.parametrize(
    "line",
    ["DEB_X=unquoted value", "NOEQUALS", '="empty name"', 'DEB_X="no end', 'DEB_X="bad \\escape"', 'A B="x"'],
)
def test_malformed_environment_is_refused(line: str) -> None:
    with pytest.raises(InputError, match=r"^t: Environment: "):
        control.environment(read(f"Environment:\n {line}\n").fields, "t")


# --- Build-Depends --------------------------------------------------------------------------


def test_build_modes_dependencies_and_targets() -> None:
    assert (
        build_mode(["all"]) == "-A" and build_mode(["amd64"]) == "-B" and build_mode(["source", "all", "amd64"]) == "-b"
    )
    assert build_dependency_names({"Build-Depends": "debhelper-compat (= 13), python3:any <!nocheck>, libbar-dev"}) == [
        "build-essential",
        "debhelper",
        "fakeroot",
        "libbar-dev",
        "python3",
    ]
    assert parse_target("deb:hello=2.10-3") == ("hello", "2.10-3") and parse_target("deb:hello") == ("hello", None)
    with pytest.raises(InputError):
        parse_target("deb:Hello World")


@pytest.mark.skipif(not HAVE_DPKG_TABLES, reason="dpkg's architecture tables are not on this machine")
@pytest.mark.parametrize(
    ("build_depends", "chosen"),
    [
        pytest.param("libfoo-dev [amd64] | libbar-dev", ["libfoo-dev"], id="first-alternative"),
        pytest.param("libfoo-dev [i386] | libbar-dev", ["libbar-dev"], id="first-that-applies-on-amd64"),
        pytest.param("libfoo-dev [!amd64]", [], id="not-on-amd64"),
        pytest.param("libseccomp-dev [linux-any], libc6-dev [any-amd64]", ["libc6-dev", "libseccomp-dev"], id="wild"),
        pytest.param("cross-tool <cross>, tests <!nocheck>", ["tests"], id="profiles"),
        pytest.param("aa <cross> <!nocheck>", ["aa"], id="either-restriction-list"),
        pytest.param("aa (>= 1.0) | bb, cc:native", ["aa", "cc"], id="versions-and-qualifiers-dropped"),
    ],
)
def test_build_dependencies_that_apply_on_amd64_without_profiles(build_depends: str, chosen: list[str]) -> None:
    names = build_dependency_names({"Build-Depends-Arch": build_depends})
    assert names == sorted({*chosen, "build-essential", "fakeroot"})


def test_a_build_dependency_python_debian_cannot_parse_is_named() -> None:
    with pytest.raises(InputError, match=r"^hello Build-Depends-Indep: malformed package relation"):
        build_dependency_names({"Build-Depends-Indep": "aa, bb (>= $(id))"}, where="hello")


def test_an_inrelease_whose_signature_does_not_verify_is_refused(tmp_path: Path) -> None:
    """gpgv with the Debian archive keyring: a forged InRelease is a verification failure (exit 1)."""
    import shutil

    from rebuild.debian.archive import KEYRING, DebianArchive
    from rebuild.errors import VerificationError

    if shutil.which("gpgv") is None or not KEYRING.is_file():
        pytest.skip("gpgv or the Debian archive keyring is not on this machine")
    forged = tmp_path / "InRelease"
    forged.write_text(HEADER + "Suite: bookworm\n" + SIGNATURE)
    with pytest.raises(VerificationError, match="InRelease signature does not verify"):
        DebianArchive._check_signature(forged)
