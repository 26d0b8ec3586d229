"""Hostile documents, mutated at random from real ones, through the `rebuild` command line.

Every document the verifier reads is written by someone who wants a false PASSED, code on the host, a
file outside the cache and ``--out``, a hang or a crash. These tests start from real documents (the
vectors other projects wrote, the provenance and summaries this project writes, a Debian
``.buildinfo``), change them (any JSON value at any path replaced by hostile JSON, inside base64
payloads too, duplicate keys, long integers, lone surrogates, control and bidi characters, truncation,
flipped bytes, BOMs, random base64, payloads re-signed with a trusted key so the content is judged and
not only the signature) and run them through ``provenance show``, ``attestation verify``, ``verify``
(no Docker engine, no network: it stops at resolve or at "no Docker engine", exit 3) and ``buildinfo``.

What must hold for every document: an exit code of 0, 1, 2 or 3; no traceback and no "internal
error"; no terminal control sequence or bidi override in the output; ``verify`` never exits 0 (it
cannot rebuild without an engine) and never writes an attestation; ``attestation verify`` exits 0
only when an independent, lenient reading of the file finds a PASSED summary about the digest that
the trusted key really signed; nothing appears outside the example's own directories.

The generators take a ``random.Random``: here Hypothesis drives it (fixed budget, derandomized), and
``benchmarks/fuzz_documents.py`` runs the same generators over 10,000+ documents.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import hashlib
import json
import os
import random
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rebuild.attest import dsse, uris
from rebuild.attest.keys import PrivateKey, key_id
from rebuild.attest.statements import ResourceRef, Subject, verification_summary
from rebuild.build.images import ImageSpec
from rebuild.cli import app
from rebuild.errors import Error
from rebuild.plan import Environment, Output, Source
from rebuild.recipes import RecipeBook
from tests.conftest import VECTORS

ARTIFACT = "demo-1.0.tar.gz"
ARTIFACT_BYTES = b"the published bytes of demo 1.0\n"
SOURCE = "demo-source.tar"
SOURCE_BYTES = b"the source of demo 1.0\n"
TIME_VERIFIED = "2025-01-01T00:00:00Z"
IMAGE_DIGEST = "sha256:" + "ab" * 32
# Where a command smuggled into a document would leave its mark (checked after every run).
CANARY = Path(tempfile.gettempdir()) / "rebuild-fuzz-pwned"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection fails at once
# verify must never reach the network: every git URL goes to the unreachable port, and so does any proxy use
GIT_MIRRORS = [f"{scheme}://={UNREACHABLE}/" for scheme in ("https", "http", "ssh", "git")]
OFFLINE_ENV = {
    "DOCKER_HOST": "unix:///nonexistent.sock",
    "http_proxy": UNREACHABLE,
    "https_proxy": UNREACHABLE,
    "HTTP_PROXY": UNREACHABLE,
    "HTTPS_PROXY": UNREACHABLE,
    "ALL_PROXY": UNREACHABLE,
    "no_proxy": "",
    "NO_PROXY": "",
    "GIT_SSH_COMMAND": "false",
    "GIT_TERMINAL_PROMPT": "0",
}
EXIT_CODES = {0, 1, 2, 3}
# What must never reach a terminal from a document: ESC and the other C0/C1 controls but tab and
# newline, bidi embeddings, overrides and isolates (Trojan Source), lone surrogates.
UNSAFE_OUTPUT = {chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
UNSAFE_OUTPUT |= {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), *range(0xD800, 0xE000))}
INVOCATION_SECONDS = 60  # one command on one document; more is a hang


def trusted_key() -> PrivateKey:
    """The key the consumer trusts (``--key``, ``--provenance-key``), fixed so runs are reproducible."""
    k = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    return PrivateKey(k, key_id(k.public_key()))


TRUSTED = trusted_key()
TRUSTED_PEM = TRUSTED.key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


# --- seeds: real documents ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    name: str
    filename: str  # the document's file name (a .buildinfo must end so)
    data: bytes
    kind: str  # "json" or "buildinfo"
    digest: str  # ALGORITHM:VALUE ``attestation verify --digest`` asks about (a subject's, so checks go deep)
    beside: tuple[tuple[str, bytes], ...] = ()  # files next to the document (published artifacts, sources)
    artifact: str | None = None  # one of ``beside`` that ``verify --artifact`` may name
    levels: tuple[str, ...] = ()  # verifiedLevels its summaries state, for ``--require-level``


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _line(payload: bytes, signers: list[PrivateKey]) -> bytes:
    return (dsse.sign(payload, signers).to_json() + "\n").encode()


def own_provenance_payload() -> bytes:
    """A SLSA provenance v1 statement of this project's buildType, as `rebuild build` writes it (no Docker)."""
    recipe = RecipeBook().get("command")
    plan = recipe.plan(
        Source(SOURCE, _sha256(SOURCE_BYTES), "tarball"),
        {"command": "make dist", "outputs": ARTIFACT},
        Environment(1700000000, extra={"DEB_BUILD_OPTIONS": "nocheck"}),
        outputs=(Output(ARTIFACT, _sha256(ARTIFACT_BYTES)),),
        image_digest=IMAGE_DIGEST,
    )
    statement = {
        "_type": uris.STATEMENT_V1,
        "subject": [s.to_dict() for s in plan.subjects()],
        "predicateType": uris.SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": uris.BUILD_TYPE,
                "externalParameters": plan.external_parameters(),
                "resolvedDependencies": [d.to_dict() for d in plan.resolved_dependencies()],
            },
            "runDetails": {
                "builder": {"id": uris.BUILDER_ID},
                "metadata": {"invocationId": "fuzz", "startedOn": TIME_VERIFIED, "finishedOn": TIME_VERIFIED},
            },
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def own_summary_payload() -> bytes:
    return verification_summary(
        Subject(ARTIFACT, {"sha256": _sha256(ARTIFACT_BYTES)}),
        True,
        ARTIFACT,
        [ResourceRef(f"{ARTIFACT}.provenance.intoto.jsonl", {"sha256": "cd" * 32}, name="original-provenance")],
        time_verified=TIME_VERIFIED,
    )


BUILDINFO_FIELDS: list[tuple[str, str]] = [
    ("Format", "1.0"),
    ("Source", "hello"),
    ("Binary", "hello"),
    ("Architecture", "amd64"),
    ("Version", "2.10-3"),
    ("Checksums-Md5", "\n 0123456789abcdef0123456789abcdef 53044 hello_2.10-3_amd64.deb"),
    (
        "Checksums-Sha256",
        f"\n {'5b' * 32} 53044 hello_2.10-3_amd64.deb\n {'6c' * 32} 1288 hello-dbgsym_2.10-3_amd64.deb",
    ),
    ("Build-Origin", "Debian"),
    ("Build-Architecture", "amd64"),
    ("Build-Date", "Sat, 01 Jul 2023 00:00:00 +0000"),
    ("Build-Path", "/build/reproducible-path/hello-2.10"),
    (
        "Installed-Build-Depends",
        "\n autoconf (= 2.71-3),\n base-files (= 12.4+deb12u1),\n debhelper (= 13.11.4),\n gcc-12 (= 12.2.0-14),"
        "\n libc6:amd64 (= 2.36-9+deb12u1),\n make (= 4.3-4.1)",
    ),
    (
        "Environment",
        '\n DEB_BUILD_OPTIONS="parallel=2"\n LANG="C.UTF-8"\n LC_ALL="C.UTF-8"\n SOURCE_DATE_EPOCH="1664357004"',
    ),
]


def render_deb822(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{name}:{'' if value.startswith(chr(10)) else ' '}{value}\n" for name, value in fields)


def clearsign(text: str, armor: str = "iQIzBAEBCgAdFiEEexample0signature0not0checked0AAAA=") -> str:
    body = "".join(("- " + line if line.startswith("-") else line) + "\n" for line in text.splitlines())
    return (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        f"{body}-----BEGIN PGP SIGNATURE-----\n\n{armor}\n=abcd\n-----END PGP SIGNATURE-----\n"
    )


def _vector(path: str) -> bytes:
    return (VECTORS / path).read_bytes()


@cache
def seeds() -> tuple[Seed, ...]:
    """Every document the mutations start from (read once)."""
    own = own_provenance_payload()
    vsa = own_summary_payload()
    digest = "sha256:" + _sha256(ARTIFACT_BYTES)
    beside = ((ARTIFACT, ARTIFACT_BYTES), (SOURCE, SOURCE_BYTES))
    found = [
        Seed("own provenance, unsigned", f"{ARTIFACT}.provenance.intoto.jsonl", _line(own, []), "json", digest, beside),
        Seed(
            "own provenance, signed",
            f"{ARTIFACT}.provenance.intoto.jsonl",
            _line(own, [TRUSTED]),
            "json",
            digest,
            beside,
        ),
        Seed(
            "own provenance, bare statement",
            f"{ARTIFACT}.provenance.json",
            own + b"\n",
            "json",
            digest,
            beside,
            ARTIFACT,
        ),
        Seed("own summary, signed", f"{ARTIFACT}.vsa.intoto.jsonl", _line(vsa, [TRUSTED]), "json", digest, beside),
        Seed(
            "own verify output",
            f"{ARTIFACT}.rebuild.intoto.jsonl",
            _line(own, [TRUSTED]) + _line(vsa, [TRUSTED]),
            "json",
            digest,
            beside,
            ARTIFACT,
        ),
        Seed(
            "dsse spec vector", "spec-vector.envelope.json", _vector("dsse/spec-vector.envelope.json"), "json", digest
        ),
    ]
    for name, path, artifact in (
        ("slsa-verifier gce vsa", "slsa-verifier/vsa/gce/v1/gke-gce-pre.bcid-vsa.jsonl", None),
        ("npm v1", "slsa-verifier/npm/gha/gundam-visor-cli-v1-tag.tgz.json", "gundam-visor-cli-v1-tag.tgz"),
        (
            "npm v0.2",
            "slsa-verifier/npm/gha/provenance-npm-test-cli-v02-prega.tgz.json",
            "provenance-npm-test-cli-v02-prega.tgz",
        ),
        ("gha generic v0.2", "slsa-verifier/gha_generic/v2.1.0/binary-linux-amd64-push-v14.intoto.jsonl", None),
        ("gha delegator v1", "slsa-verifier/gha_delegator/v1.10.0/binary-linux-amd64-push-v14.build.slsa", None),
        ("bcr sigstore bundle", "slsa-verifier/bcr/rules_lint-v1.3.1.tar.gz.intoto.jsonl", "rules_lint-v1.3.1.tar.gz"),
        ("pep740 provenance", "pypi-attestations/pypi_attestations-0.0.19.tar.gz.provenance", None),
        ("pypi slsa", "pypi-attestations/pypi_attestations-0.0.19.tar.gz.slsa.json", None),
    ):
        data = _vector(path)
        files: tuple[tuple[str, bytes], ...] = ()
        if artifact:
            files = ((artifact, (VECTORS / path).parent.joinpath(artifact).read_bytes()),)
        subject = next(iter(subject_digests(data)), digest)
        levels = ("BCID_L1",) if "vsa" in name else ()
        found.append(Seed(name, Path(path).name, data, "json", subject, files, artifact, levels))
    text = render_deb822(BUILDINFO_FIELDS)
    found += [
        Seed("buildinfo", "hello_2.10-3_amd64.buildinfo", text.encode(), "buildinfo", digest),
        Seed("buildinfo, clearsigned", "hello_2.10-3_amd64.buildinfo", clearsign(text).encode(), "buildinfo", digest),
    ]
    return tuple(found)


# --- reading documents leniently (for the seeds' digests and the independent verdict) ------------------


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _lenient_json(data: bytes | str) -> list[Any]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        return []
    try:
        return [json.loads(text)]
    except (ValueError, RecursionError):
        pass
    docs = []
    for line in text.split("\n"):
        with contextlib.suppress(ValueError, RecursionError):
            docs.append(json.loads(line))
    return docs


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def envelopes_in(data: bytes) -> Iterator[tuple[Any, bytes, list[bytes]]]:
    """(payloadType, payload, signatures) of everything in ``data`` that looks like a DSSE or PEP 740 envelope."""
    for doc in _lenient_json(data):
        for obj in _objects(doc):
            if "payload" in obj and "payloadType" in obj:
                payload = _b64(obj.get("payload"))
                sigs = obj.get("signatures")
                raw = [_b64(s.get("sig")) for s in sigs if isinstance(s, dict)] if isinstance(sigs, list) else []
                if payload is not None:
                    yield obj.get("payloadType"), payload, [s for s in raw if s is not None]
            if "statement" in obj and "signature" in obj:
                payload, sig = _b64(obj.get("statement")), _b64(obj.get("signature"))
                if payload is not None:
                    yield dsse.INTOTO_PAYLOAD_TYPE, payload, [sig] if sig is not None else []
            if "_type" in obj and "predicateType" in obj:  # a bare statement
                yield None, json.dumps(obj).encode(), []


def _digests(statement: Any) -> Iterator[str]:
    """``algorithm:value`` of every subject digest of a statement (hex ones lowercased)."""
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    for s in subjects if isinstance(subjects, list) else []:
        digest = s.get("digest") if isinstance(s, dict) else None
        for algorithm, value in digest.items() if isinstance(digest, dict) else ():
            if isinstance(value, str):
                yield f"{algorithm}:{value.lower() if algorithm.startswith('sha') else value}"


def subject_digests(data: bytes) -> list[str]:
    """Every subject digest in the file, sha256 first."""
    found = [d for _type, payload, _sigs in envelopes_in(data) for doc in _lenient_json(payload) for d in _digests(doc)]
    return sorted(found, key=lambda d: not d.startswith("sha256:"))


def independently_passed(data: bytes, digest: str, levels: tuple[str, ...] = (uris.LEVEL_REPRODUCED,)) -> bool:
    """Whether a lenient reading finds a PASSED bit-for-bit summary about ``digest`` the trusted key signed.

    More lenient than the verifier (duplicate keys, any base64), so the verifier passing a file this
    refuses is a false PASSED.
    """
    public = TRUSTED.key.public_key()
    for payload_type, payload, sigs in envelopes_in(data):
        if payload_type != dsse.INTOTO_PAYLOAD_TYPE:
            continue
        message = dsse.pae(payload_type, payload)
        signed = False
        for sig in sigs:
            with contextlib.suppress(InvalidSignature, ValueError):
                public.verify(sig, message)
                signed = True
        if not signed:
            continue
        for doc in _lenient_json(payload):
            if not isinstance(doc, dict) or doc.get("predicateType") != uris.SLSA_VSA_V1:
                continue
            predicate = doc.get("predicate")
            if not isinstance(predicate, dict) or predicate.get("verificationResult") != "PASSED":
                continue
            stated = predicate.get("verifiedLevels")
            if not isinstance(stated, list) or not set(levels) & {x for x in stated if isinstance(x, str)}:
                continue
            if digest in _digests(doc):
                return True
    return False


# --- hostile values --------------------------------------------------------------------------------------


@dataclass
class Raw:
    """JSON text written as is: what ``json.dumps`` cannot write (long integers, NaN, deep nesting)."""

    text: str


@dataclass
class Pairs:
    """An object with its keys in order, duplicates allowed."""

    pairs: list[tuple[str, Any]]


@dataclass
class Embedded:
    """A base64 payload holding JSON, mutated as a tree and written back (and re-signed if asked)."""

    value: Any
    original: str  # the base64 text as found: written back unchanged unless the tree was changed
    dirty: bool = False
    resign: bool = False
    style: str = "std"  # std, urlsafe, unpadded, wrapped
    ascii: bool = True


HOSTILE_STRINGS = [
    "",
    " ",
    "\ud800",
    "\udfff",
    "a\udc80b",
    "\ud83d\ude00",
    "\x00",
    "nul\x00inside",
    "\x1b[31mRED\x1b[0m",
    "\x1b]0;owned\x07",
    "\x1b[2J\x1b[H",
    "\x9b31m",
    "\r\n",
    "line one\nline two",
    "\u202eevil\u202c",
    "\u2066isolate\u2069",
    "\u200f\u200e\u061c",
    "\u2028\u2029",
    "\ufeff",
    "\u200b",
    "[bold red]markup[/]",
    "[link=file:///etc/passwd]x[/link]",
    "%s%n%x",
    "{0}{__class__}",
    "../../../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "/",
    "//",
    "-rf",
    "--upload-pack=touch " + str(CANARY),
    "--customize-hook=touch " + str(CANARY),
    "$(touch " + str(CANARY) + ")",
    "`touch " + str(CANARY) + "`",
    "; touch " + str(CANARY),
    "| touch " + str(CANARY),
    "ext::sh -c touch% " + str(CANARY),
    "file:///etc/passwd",
    "file:///dev/zero",
    "file://host/share",
    UNREACHABLE + "/x.tar.gz",
    "https://[::1]:0/",
    "http://",
    "git+--upload-pack=touch " + str(CANARY),
    "git+https://github.com/o/r@refs/tags/v1",
    "git+file:///tmp",
    "git+ssh://-oProxyCommand=touch%20" + str(CANARY) + "/x",
    "pkg:npm/%40scope/..%2F..%2Fevil@1.0.0",
    "pkg:npm/a@/../../../etc/x",
    "sha256:" + "ab" * 32,
    "ab" * 32,
    "AB" * 32,
    "ab" * 20,
    "ab" * 64,
    "0" * 63,
    uris.SLSA_PROVENANCE_V1,
    uris.SLSA_VSA_V1,
    uris.STATEMENT_V1,
    uris.STATEMENT_V01,
    uris.BUILD_TYPE,
    uris.LEVEL_REPRODUCED,
    uris.LEVEL_REPRODUCED_WITH_DEVIATIONS,
    dsse.INTOTO_PAYLOAD_TYPE,
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "PASSED",
    "FAILED",
    "passed",
    TIME_VERIFIED,
    "2999-01-01T00:00:00Z",
    "2025-13-45T25:61:61+99:99",
    "9999-12-31T23:59:60-23:59",
    "0001-01-01T00:00:00+23:59",
    "python-build",
    "debian-binary",
    "command",
    "demo-1.0-py3-none-any.whl",
    "../demo-1.0-py3-none-any.whl",
    "demo_1.0.tar.gz",
    "x.tgz",
    "hello_2.10-3_amd64.deb",
    "DEB_BUILD_OPTIONS",
    "LD_PRELOAD",
    "/build",
    "/out",
    "/build/../etc",
    "0022",
    "0022; id",
    "UTC; touch " + str(CANARY),
    "C.UTF-8",
    "\\",
    '"',
    "ﬁ",
    "İ",
    "ß",
]


def hostile_string(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.7:
        return rnd.choice(HOSTILE_STRINGS)
    if roll < 0.8:
        return rnd.choice(HOSTILE_STRINGS) * rnd.choice((2, 100, 5000, 70000))
    if roll < 0.9:
        return rnd.choice(HOSTILE_STRINGS) + rnd.choice(HOSTILE_STRINGS)
    return "".join(chr(rnd.choice((rnd.randrange(0x20), rnd.randrange(0x110000)))) for _ in range(rnd.randrange(1, 40)))


def _digits(n: int, rnd: random.Random) -> str:
    return str(rnd.randrange(1, 10)) + "".join(str(rnd.randrange(10)) for _ in range(n - 1))


def hostile_number(rnd: random.Random) -> Any:
    return rnd.choice(
        [
            0,
            -1,
            1,
            1700000000,
            2**31,
            2**40,
            2**63,
            2**64,
            -(2**63),
            10**39,
            10**40,
            -(10**41),
            0.5,
            -0.0,
            1e308,
            Raw(_digits(41, rnd)),
            Raw(_digits(400, rnd)),
            Raw(_digits(5000, rnd)),
            Raw("-" + _digits(100, rnd)),
            Raw("1e400"),
            Raw("-1e400"),
            Raw("1e-400"),
            Raw("NaN"),
            Raw("Infinity"),
            Raw("-Infinity"),
            Raw("1E+2"),
            Raw("0." + "0" * 300 + "1"),
        ]
    )


def hostile_value(rnd: random.Random, depth: int = 0) -> Any:
    """Arbitrary JSON, with a taste for what breaks parsers and checks."""
    roll = rnd.random()
    if roll < 0.35 or depth > 3:
        return hostile_string(rnd)
    if roll < 0.5:
        return hostile_number(rnd)
    if roll < 0.57:
        return rnd.choice([True, False, None])
    if roll < 0.65:
        n = rnd.choice((63, 64, 65, 100, 1000, 100000))
        opener, closer = rnd.choice((("[", "]"), ('{"a":', "}")))
        return Raw(opener * n + rnd.choice(("1", '"x"', "[]", "{}")) + closer * n)
    if roll < 0.72:
        return [hostile_value(rnd, depth + 1) for _ in range(rnd.choice((0, 1, 2, 3, 65)))]
    if roll < 0.78:
        return Raw("[" + ",".join(["0"] * rnd.choice((1000, 100000))) + "]")
    if roll < 0.9:
        return {hostile_string(rnd): hostile_value(rnd, depth + 1) for _ in range(rnd.randrange(0, 4))}
    # well-formed shapes with hostile insides: subjects, digests, resource descriptors, envelopes
    return rnd.choice(
        [
            {"name": hostile_string(rnd), "digest": {"sha256": rnd.choice(["ab" * 32, hostile_string(rnd)])}},
            {
                rnd.choice(
                    ["sha256", "sha512", "gitCommit", "sha1", "md5", "SHA256", hostile_string(rnd)]
                ): hostile_string(rnd)
            },
            {"uri": hostile_string(rnd), "digest": {"gitCommit": "a" * 40}, "name": hostile_string(rnd)},
            {
                "payloadType": dsse.INTOTO_PAYLOAD_TYPE,
                "payload": base64.b64encode(rnd.randbytes(rnd.randrange(0, 64))).decode(),
                "signatures": [{"keyid": hostile_string(rnd), "sig": base64.b64encode(rnd.randbytes(64)).decode()}],
            },
            [{"name": hostile_string(rnd), "digest": {"sha256": "ab" * 32}}] * rnd.choice((1, 2, 100)),
        ]
    )


KEYS = [
    "payload",
    "payloadType",
    "signatures",
    "sig",
    "keyid",
    "dsseEnvelope",
    "mediaType",
    "verificationMaterial",
    "attestations",
    "bundle",
    "attestation_bundles",
    "envelope",
    "statement",
    "signature",
    "_type",
    "predicateType",
    "predicate",
    "subject",
    "name",
    "digest",
    "sha256",
    "buildDefinition",
    "buildType",
    "externalParameters",
    "resolvedDependencies",
    "internalParameters",
    "materials",
    "invocation",
    "configSource",
    "environment",
    "GITHUB_REPOSITORY",
    "GITHUB_SHA",
    "GITHUB_SERVER_URL",
    "verificationResult",
    "verifiedLevels",
    "timeVerified",
    "verifier",
    "inputAttestations",
    "deviations",
    "source",
    "recipe",
    "parameters",
    "builderImage",
    "steps",
    "outputs",
    "extra",
    "buildPath",
    "spec",
    "mirror",
    "packages",
]


# --- the mutable tree of a JSON document -------------------------------------------------------------


def _decode_payload(text: Any) -> dict[str, Any] | list[Any] | None:
    """The JSON object or array a base64 payload holds, if it holds one."""
    raw = _b64(text)
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def expand(node: Any) -> Any:
    """Turn every JSON payload in base64 (DSSE ``payload``, PEP 740 ``statement``) into an ``Embedded`` tree."""
    if isinstance(node, list):
        return [expand(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: expand(value) for key, value in node.items()}
    for key in ("payload", "statement"):
        decoded = _decode_payload(out.get(key)) if key in out else None
        if decoded is not None:
            out[key] = Embedded(expand(decoded), out[key])
    return out


Path_ = tuple[Any, ...]


def nodes(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, value
    if isinstance(value, Embedded):
        yield from nodes(value.value, (*path, Embedded))
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, (*path, index))
    elif isinstance(value, Pairs):
        for index, (_key, child) in enumerate(value.pairs):
            yield from nodes(child, (*path, ("pair", index)))


def _child(node: Any, step: Any) -> Any:
    if step is Embedded:
        node.dirty = True
        return node.value
    if isinstance(node, Pairs):
        return node.pairs[step[1]][1]
    return node[step]


def _set_child(node: Any, step: Any, value: Any) -> None:
    if step is Embedded:
        node.dirty = True
        node.value = value
    elif isinstance(node, Pairs):
        node.pairs[step[1]] = (node.pairs[step[1]][0], value)
    else:
        node[step] = value


def _walk(tree: Any, path: Path_) -> Any:
    node = tree
    for step in path:
        node = _child(node, step)
    return node


def set_at(root: list[Any], path: Path_, value: Any) -> None:
    *parents, last = path
    _set_child(_walk(root, tuple(parents)), last, value)


Mutation = Callable[[list[Any], random.Random], str]


def m_replace(root: list[Any], rnd: random.Random) -> str:
    path, _ = rnd.choice(list(nodes(root))[1:])
    set_at(root, path, hostile_value(rnd))
    return f"replace {_show_path(path)}"


def m_retype(root: list[Any], rnd: random.Random) -> str:
    """A value replaced by a hostile one of the same type: it gets past the type checks, to the grammar."""
    path, value = rnd.choice(list(nodes(root))[1:])
    if isinstance(value, str):
        new: Any = hostile_string(rnd)
    elif isinstance(value, bool) or value is None:
        new = rnd.choice([True, False, None])
    elif isinstance(value, int | float):
        new = hostile_number(rnd)
    elif isinstance(value, list):
        new = [*value, hostile_value(rnd)] if rnd.random() < 0.5 or not value else value[: rnd.randrange(len(value))]
    else:
        return m_add_key(root, rnd)
    set_at(root, path, new)
    return f"retype {_show_path(path)}"


def m_splice(root: list[Any], rnd: random.Random) -> str:
    """A value from elsewhere in the same document (a subject where a digest was, a statement in a list...)."""
    every = list(nodes(root))[1:]
    path, _ = rnd.choice(every)
    _, other = rnd.choice(every)
    set_at(root, path, copy.deepcopy(other))
    return f"splice into {_show_path(path)}"


def m_delete(root: list[Any], rnd: random.Random) -> str:
    objects = [(p, v) for p, v in nodes(root) if isinstance(v, dict) and v]
    if not objects:
        return "delete: no object"
    path, obj = rnd.choice(objects)
    key = rnd.choice(list(obj))
    _walk(root, path)  # marks the payloads on the way as changed
    del obj[key]
    return f"delete {_show_path((*path, key))}"


def m_add_key(root: list[Any], rnd: random.Random) -> str:
    objects = [(p, v) for p, v in nodes(root) if isinstance(v, dict)]
    if not objects:
        return "add: no object"
    path, obj = rnd.choice(objects)
    key = rnd.choice(KEYS) if rnd.random() < 0.8 else hostile_string(rnd)
    _walk(root, path)
    obj[key] = hostile_value(rnd)
    return f"add {_show_path((*path, key))}"


def m_duplicate_key(root: list[Any], rnd: random.Random) -> str:
    objects = [(p, v) for p, v in nodes(root) if isinstance(v, dict) and v]
    if not objects:
        return "duplicate: no object"
    path, obj = rnd.choice(objects)
    pairs = list(obj.items())
    key, value = rnd.choice(pairs)
    twin = value if rnd.random() < 0.5 else hostile_value(rnd)
    pairs.insert(rnd.randrange(len(pairs) + 1), (key, twin))
    if path:
        set_at(root, path, Pairs(pairs))
    else:  # pragma: no cover - the root is a list
        return "duplicate: root"
    return f"duplicate key {_show_path((*path, key))}"


def m_wrap(root: list[Any], rnd: random.Random) -> str:
    path, value = rnd.choice(list(nodes(root))[1:])
    set_at(root, path, rnd.choice([[value], {"value": value}, [value, value]]))
    return f"wrap {_show_path(path)}"


def m_payload_bytes(root: list[Any], rnd: random.Random) -> str:
    """A payload or signature replaced by random (or broken) base64."""
    targets = [
        (p, v)
        for p, v in nodes(root)
        if p and p[-1] in ("payload", "statement", "sig", "signature", "rawBytes") and isinstance(v, str | Embedded)
    ]
    if not targets:
        return "payload: none"
    path, _ = rnd.choice(targets)
    blob = rnd.randbytes(rnd.choice((0, 1, 16, 64, 65, 1000)))
    text = rnd.choice(
        [
            base64.b64encode(blob).decode(),
            base64.urlsafe_b64encode(blob).decode().rstrip("="),
            base64.b64encode(blob).decode() + "=",
            " " + base64.b64encode(blob).decode() + "\n",
            "!!!not base64!!!",
            base64.b64encode(hostile_string(rnd).encode("utf-8", "surrogatepass")).decode(),
            "=" * 4,
        ]
    )
    set_at(root, path, text)
    return f"random base64 at {_show_path(path)}"


def m_resign(root: list[Any], rnd: random.Random) -> str:
    """The trusted key signs whatever payload is there (changed or not): the content must be judged."""
    envelopes = [v for _p, v in nodes(root) if isinstance(v, Embedded)]
    if not envelopes:
        return "resign: no payload"
    chosen = rnd.choice(envelopes)
    chosen.resign = True
    return "resign a payload with the trusted key"


def m_payload_style(root: list[Any], rnd: random.Random) -> str:
    envelopes = [v for _p, v in nodes(root) if isinstance(v, Embedded)]
    if not envelopes:
        return "style: no payload"
    chosen = rnd.choice(envelopes)
    chosen.dirty = True
    chosen.style = rnd.choice(("std", "urlsafe", "unpadded", "wrapped"))
    chosen.ascii = rnd.random() < 0.5
    chosen.resign = chosen.resign or rnd.random() < 0.7
    return f"payload re-encoded ({chosen.style}, ascii={chosen.ascii})"


JSON_MUTATIONS: list[tuple[Mutation, int]] = [
    (m_retype, 12),
    (m_replace, 8),
    (m_splice, 3),
    (m_delete, 4),
    (m_add_key, 4),
    (m_duplicate_key, 2),
    (m_wrap, 2),
    (m_payload_bytes, 2),
    (m_resign, 3),
    (m_payload_style, 1),
]


def _show_path(path: Path_) -> str:
    parts = []
    for step in path:
        if step is Embedded:
            parts.append("<payload>")
        elif isinstance(step, tuple):
            parts.append(f"<pair {step[1]}>")
        else:
            parts.append(repr(step)[:40])
    return "/".join(parts) or "/"


# --- writing the tree back ------------------------------------------------------------------------------


def emit(value: Any, ascii: bool = True) -> str:
    """JSON text of the tree: ``Raw`` as is, ``Pairs`` with their duplicates, payloads base64 again."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Embedded):
        return json.dumps(_payload_text(value))
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{emit(k, ascii)}:{emit(v, ascii)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{emit(k, ascii)}:{emit(v, ascii)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(emit(v, ascii) for v in value) + "]"
    if isinstance(value, str) and not ascii:
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value)


def _payload_bytes(item: Embedded) -> bytes:
    return emit(item.value, item.ascii).encode("utf-8", "surrogatepass")


def _payload_text(item: Embedded) -> str:
    if not item.dirty:
        return item.original
    data = _payload_bytes(item)
    text = base64.b64encode(data).decode()
    if item.style == "urlsafe":
        return base64.urlsafe_b64encode(data).decode()
    if item.style == "unpadded":
        return text.rstrip("=")
    if item.style == "wrapped":
        return "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    return text


def _signed_bytes(item: Embedded) -> bytes:
    return _payload_bytes(item) if item.dirty else (_b64(item.original) or b"")


def resign(tree: Any, rnd: random.Random) -> None:
    """Sign each payload marked ``resign`` with the trusted key, where its envelope has a place for it.

    Most changed payloads are re-signed too: a signature that no longer verifies stops every document at
    the first check, and the checks after it are the ones worth attacking.
    """
    for _path, node in list(nodes(tree)):
        if isinstance(node, Embedded) and node.dirty and rnd.random() < 0.75:
            node.resign = True
    for _path, node in list(nodes(tree)):
        if isinstance(node, dict) and isinstance(node.get("payload"), Embedded) and node["payload"].resign:
            payload_type = node.get("payloadType")
            if not isinstance(payload_type, str):
                continue
            try:
                message = dsse.pae(payload_type, _signed_bytes(node["payload"]))
            except UnicodeEncodeError:
                continue
            signature = {"keyid": TRUSTED.keyid, "sig": base64.b64encode(TRUSTED.sign(message)).decode()}
            old = node.get("signatures")
            node["signatures"] = [signature, *(old if isinstance(old, list) else [])][: dsse.MAX_SIGNATURES]
        if isinstance(node, dict) and isinstance(node.get("statement"), Embedded) and node["statement"].resign:
            message = dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, _signed_bytes(node["statement"]))
            node["signature"] = base64.b64encode(TRUSTED.sign(message)).decode()


def write_tree(docs: list[Any], lines: bool, rnd: random.Random) -> bytes:
    resign(docs, rnd)
    ascii = rnd.random() < 0.8
    text = "".join(emit(doc, ascii) + "\n" for doc in docs) if lines or len(docs) > 1 else emit(docs[0], ascii)
    return text.encode("utf-8", "surrogatepass")


# --- byte-level mutations ------------------------------------------------------------------------------


BYTE_MUTATIONS = ("truncate", "flip", "bom", "insert", "crlf", "duplicate-line", "blank-lines", "nul", "latin1")


def mutate_bytes(data: bytes, rnd: random.Random) -> tuple[bytes, str]:
    kind = rnd.choice(BYTE_MUTATIONS)
    if not data:
        return b"\n", "empty"
    at = rnd.randrange(len(data) + 1)
    if kind == "truncate":
        return data[:at], f"truncate at {at}"
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(rnd.randrange(1, 9)):
            i = rnd.randrange(len(buf))
            buf[i] ^= 1 << rnd.randrange(8)
        return bytes(buf), "flip bits"
    if kind == "bom":
        bom = rnd.choice((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", "\ufeff".encode()))
        where = 0 if rnd.random() < 0.6 else at
        return data[:where] + bom + data[where:], f"BOM at {where}"
    if kind == "insert":
        blob = rnd.choice((rnd.randbytes(rnd.randrange(1, 16)), b"\x1b[2J", b"\xed\xa0\x80", b"\xc0\x80", b"}", b"]"))
        return data[:at] + blob + data[at:], f"insert bytes at {at}"
    if kind == "crlf":
        return data.replace(b"\n", b"\r\n"), "CRLF"
    if kind == "duplicate-line":
        lines = data.split(b"\n")
        i = rnd.randrange(len(lines))
        lines.insert(i, lines[i])
        return b"\n".join(lines), f"duplicate line {i}"
    if kind == "blank-lines":
        return b"\n\n" + data.replace(b"\n", b"\n \n") + b"\n\n", "blank lines"
    if kind == "nul":
        return data[:at] + b"\x00" + data[at:], f"NUL at {at}"
    return data.decode("utf-8", "replace").encode("latin-1", "replace"), "latin-1"


# --- a mutated document -----------------------------------------------------------------------------------


@dataclass
class Document:
    seed: Seed
    data: bytes
    steps: list[str]

    def describe(self) -> str:
        return f"{self.seed.name}: " + "; ".join(self.steps or ["unchanged"])


def _choose(rnd: random.Random, weighted: list[tuple[Mutation, int]]) -> Mutation:
    return rnd.choices([m for m, _ in weighted], [w for _, w in weighted])[0]


def parse_seed(data: bytes) -> tuple[list[Any], bool]:
    """The documents of a seed, and whether it is JSON Lines."""
    text = data.decode("utf-8")
    stripped = text.strip()
    try:
        return [json.loads(stripped)], text.endswith("\n") and "\n" not in stripped
    except ValueError:
        return [json.loads(line) for line in stripped.split("\n") if line.strip()], True


def mutate_json(seed: Seed, rnd: random.Random) -> Document:
    docs, lines = parse_seed(seed.data)
    tree = [expand(doc) for doc in docs]
    steps = []
    roll = rnd.random()
    if roll < 0.05:
        return Document(seed, seed.data, [])
    count = rnd.choice((1, 1, 1, 2, 2, 3, 5))
    for _ in range(count):
        steps.append(_choose(rnd, JSON_MUTATIONS)(tree, rnd))
    if rnd.random() < 0.15 and len(tree) >= 1:
        extra = rnd.choice(tree)
        tree.append(copy.deepcopy(extra) if rnd.random() < 0.5 else hostile_value(rnd))
        steps.append("another line")
    if seed.name.startswith("own") and rnd.random() < 0.5:
        steps += repair(tree)
    data = write_tree(tree, lines, rnd)
    if rnd.random() < 0.2:
        data, what = mutate_bytes(data, rnd)
        steps.append(what)
    return Document(seed, data, steps)


def repair(tree: Any) -> list[str]:
    """Make a mutated plan of ours consistent again where a rebuilder could (steps rendered from the
    parameters, the image reference from its spec), so the document reaches the checks behind those."""
    done = []
    for _path, node in list(nodes(tree)):
        statement = node.value if isinstance(node, Embedded) else node
        ext = _deep_get(statement, "predicate", "buildDefinition", "externalParameters")
        if not isinstance(ext, dict):
            continue
        image = ext.get("builderImage")
        if isinstance(image, dict):
            with contextlib.suppress(Error, TypeError, ValueError, AttributeError):
                image["reference"] = ImageSpec.from_dict(image.get("spec")).tag
                done.append("repaired the image reference")
        recipe, env, params = ext.get("recipe"), ext.get("environment"), ext.get("parameters")
        if isinstance(recipe, dict) and isinstance(env, dict) and isinstance(params, dict):
            with contextlib.suppress(Error, TypeError, ValueError, AttributeError, KeyError):
                ext["steps"] = list(RecipeBook().get(recipe["name"]).render_steps(params, env["buildPath"]))
                done.append("repaired the steps")
        if isinstance(node, Embedded):
            node.dirty = True
    return done


def _deep_get(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


BUILDINFO_NAMES = [name for name, _ in BUILDINFO_FIELDS] + ["Binary-Only-Changes", "Build-Kernel-Version", "Hash"]


def hostile_deb822_value(rnd: random.Random, name: str) -> str:
    sha = rnd.choice(("5b" * 32, "AB" * 32, "5b" * 31, hostile_string(rnd).replace("\n", "")))
    size = rnd.choice(("53044", "-1", "0x10", "99999999999999999999999", "9" * 5000, "", "1e3"))
    filename = rnd.choice(
        (
            "hello_2.10-3_amd64.deb",
            "../../../tmp/evil.deb",
            "/etc/evil.deb",
            "-rf.deb",
            "x.udeb",
            ".deb",
            "a b.deb",
            "hello.dsc",
            "\x1b[2Jevil.deb",
            str(CANARY) + ".deb",
        )
    )
    package = rnd.choice(("gcc", "gcc:amd64", "libc6:any", "-evil", "a", "gcc-12", "evil; id", "GCC", "x" * 300))
    version = rnd.choice(("12.2.0-14", "", "1:2.0~rc1+dfsg-1", "$(id)", "1.0 (= 2)", ")", "=", "\x1b[31m1"))
    choices = [
        lambda: hostile_string(rnd).replace("\n", " "),
        lambda: f"\n {sha} {size} {filename}" * rnd.choice((1, 2, 300)),
        lambda: ",\n ".join(f"{package} (= {version})" for _ in range(rnd.choice((1, 2, 50)))),
        lambda: f"{package} (>= {version}) | other",
        lambda: (
            "\n "
            + rnd.choice(
                (
                    'DEB_BUILD_OPTIONS="nocheck; touch ' + str(CANARY) + '"',
                    'LD_PRELOAD="/tmp/evil.so"',
                    'DEB_CHECK_COMMAND="touch ' + str(CANARY) + '"',
                    'SOURCE_DATE_EPOCH="-1"',
                    'SOURCE_DATE_EPOCH="99999999999999999999999999999999"',
                    'SOURCE_DATE_EPOCH="١٢٣"',
                    'SOURCE_DATE_EPOCH="1e9"',
                    'TZ="UTC; touch ' + str(CANARY) + '"',
                    'LC_ALL="../../etc"',
                    'LANGUAGE="\x1b[2J"',
                    "DEB_X=unquoted value",
                    "NOEQUALS",
                    '="empty name"',
                    'DEB_lower="x"',
                )
            )
        ),
        lambda: rnd.choice(
            (
                "/build/../etc/x",
                "/",
                "/out/x",
                "/tmp/x",
                "relative/path",
                "/build/reproducible-path/hello-2.10; touch " + str(CANARY),
                "/build/-rf",
                "/build/.hidden",
                "//build/x",
                "/build/x/",
                "/build/" + "a" * 300,
            )
        ),
        lambda: rnd.choice(("amd64", "arm64", "all", "source", "", "amd64 all", "i386\x00")),
        lambda: f"hello ({version})",
        lambda: "\n" + "\n".join(" " + hostile_string(rnd).replace("\n", "") for _ in range(rnd.randrange(1, 4))),
        lambda: "x" * rnd.choice((1000, 100000)),
    ]
    return rnd.choice(choices)()


def mutate_buildinfo(seed: Seed, rnd: random.Random) -> Document:
    fields = list(BUILDINFO_FIELDS)
    steps = []
    if rnd.random() < 0.05:
        return Document(seed, seed.data, [])
    for _ in range(rnd.choice((1, 1, 2, 3, 5))):
        kind = rnd.choice(("replace", "replace", "replace", "delete", "duplicate", "add", "shuffle"))
        i = rnd.randrange(len(fields))
        name = fields[i][0]
        if kind == "replace":
            fields[i] = (name, hostile_deb822_value(rnd, name))
        elif kind == "delete" and len(fields) > 1:
            del fields[i]
        elif kind == "duplicate":
            fields.insert(i, (name, hostile_deb822_value(rnd, name)))
        elif kind == "add":
            name = rnd.choice([*BUILDINFO_NAMES, hostile_string(rnd).replace("\n", "").replace(":", "")])
            fields.insert(i, (name, hostile_deb822_value(rnd, name)))
        else:
            rnd.shuffle(fields)
        steps.append(f"{kind} {name[:40]!r}")
    text = render_deb822(fields)
    roll = rnd.random()
    if roll < 0.3 or "clearsigned" in seed.name:
        armor = rnd.choice(("iQIzBAEBCgAdFiEEexampleAAAA=", "", "not base64 !!!", "=====", "Version: 1\n\nAAAA"))
        text = clearsign(text, armor)
        steps.append(f"clearsigned, armor {armor!r}")
    if rnd.random() < 0.25:
        marker = rnd.choice(
            (
                "-----BEGIN PGP SIGNED MESSAGE-----",
                "-----BEGIN PGP SIGNATURE-----",
                "-----END PGP SIGNATURE-----",
                "Comment: x -----BEGIN PGP SIGNED MESSAGE-----",
                "-----BEGIN PGP SIGNED MESSAGE----- ",
            )
        )
        lines = text.split("\n")
        lines.insert(rnd.randrange(len(lines) + 1), marker)
        text = "\n".join(lines)
        steps.append(f"marker {marker!r}")
    data = text.encode("utf-8", "surrogatepass")
    if rnd.random() < 0.2:
        data, what = mutate_bytes(data, rnd)
        steps.append(what)
    return Document(seed, data, steps)


def mutate(seed: Seed, rnd: random.Random) -> Document:
    return mutate_buildinfo(seed, rnd) if seed.kind == "buildinfo" else mutate_json(seed, rnd)


# --- running a command on a document ----------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    argv: list[str]
    exit_code: int
    output: str
    problems: list[str] = field(default_factory=list)


class Hang(BaseException):
    """A command ran longer than ``INVOCATION_SECONDS``."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def expired(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Workspace:
    """One example's own directories; anything written elsewhere is a finding."""

    root: Path

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def key(self) -> Path:
        return self.root / "keys" / "trusted.pub"


@contextlib.contextmanager
def workspace(parent: Path | None = None) -> Iterator[Workspace]:
    base = Path(tempfile.mkdtemp(prefix="rebuild-fuzz-", dir=parent))
    try:
        ws = Workspace(base / "w")
        for d in (ws.docs, ws.home, ws.cwd, ws.key.parent):
            d.mkdir(parents=True)
        ws.key.write_bytes(TRUSTED_PEM)
        yield ws
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _argv(command: str, doc: Document, path: Path, ws: Workspace, rnd: random.Random) -> list[str]:
    if command == "show":
        argv = ["provenance", "show", str(path)]
        if rnd.random() < 0.3:
            argv.append("--json")
        if rnd.random() < 0.3:
            argv += ["--provenance-key", str(ws.key)]
        return argv
    if command == "attestation":
        argv = ["attestation", "verify", str(path), "--key", str(ws.key), "--digest", doc.seed.digest]
        if rnd.random() < 0.3:
            argv.append("--json")
        for level in required_levels(doc.seed, rnd):
            argv += ["--require-level", level]
        return argv
    if command == "verify":
        argv = ["verify", str(path), "--out", str(ws.out), "--index-url", f"{UNREACHABLE}/simple"]
        argv += ["--archive", f"{UNREACHABLE}/debian"]
        for mirror in GIT_MIRRORS:
            argv += ["--git-mirror", mirror]
        if doc.seed.artifact and rnd.random() < 0.5:
            argv += ["--artifact", str(ws.docs / doc.seed.artifact)]
        if rnd.random() < 0.25:
            argv += ["--provenance-key", str(ws.key)]
        if rnd.random() < 0.2:
            argv.append("--json")
        return argv
    raise ValueError(command)


def required_levels(seed: Seed, rnd: random.Random) -> tuple[str, ...]:
    """The levels to ask for: the default, or also those with deviations, or the seed's own."""
    roll = rnd.random()
    if roll < 0.1:
        return (uris.LEVEL_REPRODUCED_WITH_DEVIATIONS, uris.LEVEL_REPRODUCED)
    if roll < 0.5 and seed.levels:
        return seed.levels
    return ()


def _snapshot(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")} if path.exists() else set()


def _output_problems(output: str) -> list[str]:
    problems = []
    if "Traceback" in output:
        problems.append("a traceback")
    if "internal error" in output:
        problems.append("an internal error")
    unsafe = sorted({c for c in output if c in UNSAFE_OUTPUT})
    if unsafe:
        problems.append(f"unescaped control/bidi characters in the output: {unsafe!r}")
    return problems


def run_command(command: str, doc: Document, ws: Workspace, rnd: random.Random, runner: CliRunner) -> Outcome:
    """Run one command on one document in ``ws``; the outcome lists every rule it broke."""
    path = ws.docs / doc.seed.filename
    path.write_bytes(doc.data)
    for name, data in doc.seed.beside:
        (ws.docs / name).write_bytes(data)
    docs_before = _snapshot(ws.docs)
    shutil.rmtree(ws.out, ignore_errors=True)
    argv = _argv(command, doc, path, ws, rnd)
    env = {
        **OFFLINE_ENV,
        "REBUILD_CACHE_DIR": str(ws.cache),
        "HOME": str(ws.home),
        "XDG_CACHE_HOME": str(ws.home / ".cache"),
        "COLUMNS": "200",
    }
    outside_before = _snapshot(ws.root.parent)
    cwd = Path.cwd()
    os.chdir(ws.cwd)
    try:
        with deadline(INVOCATION_SECONDS):
            result = runner.invoke(app, argv, env=env)
        exception = result.exception
    except Hang as e:
        result, exception = None, e
    finally:
        os.chdir(cwd)
    output = result.output if result is not None else ""
    code = result.exit_code if result is not None else -1
    outcome = Outcome(command, argv, code, output)
    if isinstance(exception, Hang):
        outcome.problems.append(f"hang: {exception}")
    elif exception is not None and not isinstance(exception, SystemExit):
        outcome.problems.append(f"uncaught {type(exception).__name__}: {str(exception)[:300]}")
    if code not in EXIT_CODES and not isinstance(exception, Hang):
        outcome.problems.append(f"exit code {code}")
    outcome.problems += _output_problems(output)
    if CANARY.exists():
        outcome.problems.append(f"{CANARY} exists: a command from the document ran")
    created = {
        p
        for p in _snapshot(ws.root.parent) - outside_before
        if not p.startswith(("w/out", "w/cache", "w/home/.cache")) or ".." in p
    }
    if created:
        outcome.problems.append(f"files created outside --out and the cache: {sorted(created)[:5]}")
    if _snapshot(ws.docs) != docs_before:
        outcome.problems.append("the document's directory changed")
    if any(ws.cwd.iterdir()):
        outcome.problems.append(f"files written to the working directory: {sorted(os.listdir(ws.cwd))[:5]}")
    if command == "verify":
        if code == 0:
            outcome.problems.append("verify exited 0 without a Docker engine (a PASSED from nothing)")
        attested = sorted(str(p) for p in ws.out.rglob("*.intoto.jsonl")) if ws.out.exists() else []
        if attested:
            outcome.problems.append(f"verify wrote attestations: {attested}")
    levels = tuple(argv[i + 1] for i, a in enumerate(argv) if a == "--require-level") or (uris.LEVEL_REPRODUCED,)
    if command == "attestation" and code == 0 and not independently_passed(doc.data, doc.seed.digest, levels):
        outcome.problems.append("attestation verify passed a file with no PASSED summary the trusted key signed")
    return outcome


def commands_for(seed: Seed) -> tuple[str, ...]:
    return ("show", "verify") if seed.kind == "buildinfo" else ("show", "attestation", "verify")


def report(doc: Document, outcome: Outcome) -> str:
    return (
        f"{doc.describe()}\n$ rebuild {' '.join(outcome.argv)}\nexit {outcome.exit_code}: "
        f"{'; '.join(outcome.problems)}\n--- output ---\n{outcome.output[-2000:]}\n--- document (start) ---\n"
        f"{doc.data[:600]!r}"
    )


# --- `rebuild buildinfo` over a hostile run directory ----------------------------------------------------


def hostile_run_dir(ws: Workspace, rnd: random.Random) -> tuple[Path, list[str]]:
    """A `rebuild verify --out` directory of a Debian rebuild, with its report and .buildinfo mutated."""
    run = ws.docs / "run"
    (run / "rebuilt").mkdir(parents=True)
    deb = "hello_2.10-3_amd64.deb"
    honest = {
        "reproduced": True,
        "plan": {"recipe": {"name": "debian-binary", "version": "1.1.0"}},
        "artifacts": [{"name": deb, "verdict": {"a": {"sha256": "5b" * 32}, "b": {"sha256": "5b" * 32}}}],
    }
    steps = []
    tree = [expand(honest)]
    for _ in range(rnd.choice((0, 1, 2, 3))):
        steps.append(_choose(rnd, JSON_MUTATIONS)(tree, rnd))
    report_bytes = write_tree(tree, False, rnd)
    if rnd.random() < 0.2:
        report_bytes, what = mutate_bytes(report_bytes, rnd)
        steps.append(what)
    (run / "verify-report.json").write_bytes(report_bytes)
    seed = next(s for s in seeds() if s.kind == "buildinfo")
    info = mutate_buildinfo(seed, rnd)
    steps += info.steps
    name = rnd.choice(("hello_2.10-3_amd64.buildinfo", "a.buildinfo", ".buildinfo", "-x.buildinfo"))
    if rnd.random() < 0.1:
        (run / "rebuilt" / name).mkdir()
        steps.append(f"{name} is a directory")
    else:
        (run / "rebuilt" / name).write_bytes(info.data)
    return run, steps


def run_buildinfo_command(ws: Workspace, rnd: random.Random, runner: CliRunner) -> tuple[Outcome, list[str]]:
    run, steps = hostile_run_dir(ws, rnd)
    dest = ws.out / "written"
    argv = ["buildinfo", str(run), "--out", str(dest)]
    cwd = Path.cwd()
    os.chdir(ws.cwd)
    try:
        with deadline(INVOCATION_SECONDS):
            result = runner.invoke(app, argv, env={**OFFLINE_ENV, "HOME": str(ws.home)})
    finally:
        os.chdir(cwd)
    outcome = Outcome("buildinfo", argv, result.exit_code, result.output)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        outcome.problems.append(f"uncaught {type(result.exception).__name__}: {str(result.exception)[:300]}")
    if result.exit_code not in EXIT_CODES:
        outcome.problems.append(f"exit code {result.exit_code}")
    outcome.problems += _output_problems(result.output)
    if any(ws.cwd.iterdir()):
        outcome.problems.append("files written to the working directory")
    return outcome, steps


# --- the tests ---------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
runner = CliRunner()


def _check(command: str, seed_index: int, rnd: random.Random) -> None:
    seed = seeds()[seed_index]
    doc = mutate(seed, rnd)
    with workspace() as ws:
        outcome = run_command(command, doc, ws, rnd, runner)
    assert not outcome.problems, report(doc, outcome)


JSON_SEEDS = [i for i, s in enumerate(seeds()) if s.kind == "json"]
BUILDINFO_SEEDS = [i for i, s in enumerate(seeds()) if s.kind == "buildinfo"]


@FUZZ
@given(seed=st.sampled_from(JSON_SEEDS), rnd=st.randoms(use_true_random=False))
def test_provenance_show_survives_mutated_documents(seed: int, rnd: random.Random) -> None:
    _check("show", seed, rnd)


@FUZZ
@given(seed=st.sampled_from(JSON_SEEDS), rnd=st.randoms(use_true_random=False))
def test_attestation_verify_judges_mutated_and_resigned_documents(seed: int, rnd: random.Random) -> None:
    _check("attestation", seed, rnd)


@FUZZ
@given(seed=st.sampled_from(JSON_SEEDS), rnd=st.randoms(use_true_random=False))
def test_verify_refuses_mutated_provenance_without_a_trace(seed: int, rnd: random.Random) -> None:
    _check("verify", seed, rnd)


OWN_PROVENANCE_SEEDS = [i for i, s in enumerate(seeds()) if s.name.startswith("own provenance")]


@FUZZ
@given(seed=st.sampled_from(OWN_PROVENANCE_SEEDS), rnd=st.randoms(use_true_random=False))
def test_verify_refuses_mutated_plans_of_our_own_buildtype(seed: int, rnd: random.Random) -> None:
    """Our own provenance is read back into a plan field by field: the richest surface a document has."""
    _check("verify", seed, rnd)


@FUZZ
@given(seed=st.sampled_from(BUILDINFO_SEEDS), rnd=st.randoms(use_true_random=False))
def test_verify_refuses_mutated_buildinfo_without_a_trace(seed: int, rnd: random.Random) -> None:
    _check("verify", seed, rnd)


@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_buildinfo_command_survives_a_hostile_run_directory(rnd: random.Random) -> None:
    with workspace() as ws:
        outcome, steps = run_buildinfo_command(ws, rnd, runner)
    assert not outcome.problems, f"{'; '.join(steps)}\n$ rebuild {' '.join(outcome.argv)}\n{outcome.output[-2000:]}"


def test_the_seeds_are_honest() -> None:
    """Unchanged, the seeds do what they should: our summary passes, our provenance reaches the engine."""
    own_summary = next(s for s in seeds() if s.name == "own summary, signed")
    own = next(s for s in seeds() if s.name == "own provenance, signed")
    rnd = random.Random(0)
    with workspace() as ws:
        passed = run_command("attestation", Document(own_summary, own_summary.data, []), ws, rnd, runner)
        assert passed.exit_code == 0 and not passed.problems, passed.output
        assert independently_passed(own_summary.data, own_summary.digest)
    gce = next(s for s in seeds() if s.name == "slsa-verifier gce vsa")
    assert gce.digest == "gce_image_id:8970095005306000053"
    with workspace() as ws:
        verified = run_command("verify", Document(own, own.data, []), ws, rnd, runner)
        assert verified.exit_code == 3 and "no Docker engine" in verified.output, verified.output
        assert not verified.problems, verified.problems
    buildinfo = next(s for s in seeds() if s.kind == "buildinfo")
    with workspace() as ws:
        fetched = run_command("verify", Document(buildinfo, buildinfo.data, []), ws, rnd, runner)
        assert fetched.exit_code == 3 and "127.0.0.1:9" in fetched.output, fetched.output
    for seed in seeds():
        if seed.kind == "json":
            assert seed.digest in subject_digests(seed.data) or seed.name == "dsse spec vector", seed.name


# --- what the fuzzing found, each as its smallest document -------------------------------------------------

OURS = uris.BUILD_TYPE
STATEMENT = '{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[],'
HEX = "a" * 64
FOUND: list[tuple[str, str, bytes]] = [
    ("pgp-marker-inside-a-line", "x.buildinfo", b"X: -----BEGIN PGP SIGNED MESSAGE-----\n"),
    (
        "checksums-size-longer-than-python-converts",
        "x.buildinfo",
        b"Source: hello\nVersion: 1\nArchitecture: amd64\nInstalled-Build-Depends: gcc (= 1)\nChecksums-Sha256:\n "
        + f"{HEX} {'9' * 4301} a.deb\n".encode(),
    ),
    ("build-definition-a-list", "p.json", f'{STATEMENT}"predicate":{{"buildDefinition":[]}}}}'.encode()),
    (
        "dependency-name-an-object",
        "p.json",
        f'{STATEMENT}"predicate":{{"buildDefinition":{{"buildType":"{OURS}","externalParameters":{{}},'
        '"resolvedDependencies":[{"name":{}}]}}}'.encode(),
    ),
    (
        "output-name-a-list",
        "p.json",
        f'{STATEMENT}"predicate":{{"buildDefinition":{{"buildType":"{OURS}","externalParameters":'
        '{"environment":{},"outputs":[[]]},"resolvedDependencies":[{"name":"source","digest":{}},'
        '{"name":"recipe"},{"name":"builder-image"}]}}}'.encode(),
    ),
]


@pytest.mark.parametrize(("name", "filename", "data"), FOUND, ids=[f[0] for f in FOUND])
def test_what_the_fuzzing_found_is_refused_cleanly(name: str, filename: str, data: bytes) -> None:
    seed = Seed(name, filename, data, "buildinfo" if filename.endswith(".buildinfo") else "json", "sha256:" + HEX)
    with workspace() as ws:
        outcome = run_command("verify", Document(seed, data, []), ws, random.Random(0), runner)
    assert not outcome.problems, report(Document(seed, data, []), outcome)


RUN_DIRS: list[tuple[str, bytes, bytes | None]] = [
    ("report-a-list", b"[]", b"Source: x\n"),
    ("report-nested-deep", b"[" * 100000 + b"]" * 100000, b"Source: x\n"),
    ("report-a-long-integer", b'{"a":' + b"9" * 5000 + b"}", b"Source: x\n"),
    ("buildinfo-not-utf8", b'{"plan":{"recipe":{"name":"debian-binary"}}}', b"Source: x\n\xff\n"),
    ("buildinfo-a-directory", b'{"plan":{"recipe":{"name":"debian-binary"}}}', None),
    (
        "artifact-without-verdict",
        b'{"plan":{"recipe":{"name":"debian-binary"}},"artifacts":[{"name":"a.deb"}]}',
        f"Checksums-Sha256:\n {HEX} 1 a.deb\n".encode(),
    ),
    ("artifact-a-number", b'{"plan":{"recipe":{"name":"debian-binary"}},"artifacts":[1]}', b"A: b\n"),
]


@pytest.mark.parametrize(("name", "report_bytes", "buildinfo"), RUN_DIRS, ids=[r[0] for r in RUN_DIRS])
def test_a_hostile_run_directory_found_by_fuzzing_is_refused_cleanly(
    name: str, report_bytes: bytes, buildinfo: bytes | None, tmp_path: Path
) -> None:
    (tmp_path / "run" / "rebuilt").mkdir(parents=True)
    (tmp_path / "run" / "verify-report.json").write_bytes(report_bytes)
    target = tmp_path / "run" / "rebuilt" / "x.buildinfo"
    target.mkdir() if buildinfo is None else target.write_bytes(buildinfo)
    result = runner.invoke(app, ["buildinfo", str(tmp_path / "run"), "--out", str(tmp_path / "dest")])
    assert result.exit_code in EXIT_CODES and not _output_problems(result.output), result.output


@pytest.mark.parametrize("filename", ["p.intoto.jsonl", "x.buildinfo"])
def test_a_fifo_in_place_of_a_document_does_not_block(filename: str, tmp_path: Path) -> None:
    """A directory of documents from elsewhere may hold a fifo: reading it must not wait for a writer."""
    fifo = tmp_path / filename
    os.mkfifo(fifo)
    argv = ["verify", str(fifo), "--out", str(tmp_path / "out"), "--archive", f"{UNREACHABLE}/debian"]
    try:
        with deadline(10):
            result = runner.invoke(app, argv, env={**OFFLINE_ENV, "REBUILD_CACHE_DIR": str(tmp_path / "cache")})
    except Hang:
        pytest.fail(f"rebuild verify {filename} waited for a writer on a fifo for 10 s")
    assert result.exit_code in EXIT_CODES and not _output_problems(result.output), result.output
