"""Who signed it: Sigstore bundles and PEP 740 attestations, verified offline with an identity policy.

A Sigstore signature is a short-lived Fulcio certificate that names a workflow
identity, and a Rekor transparency-log entry that proves when it was logged.
``sigstore`` (4.x) checks both against a trust root; this module gives it the
trust root explicitly (the pinned copy in ``trust/``, or ``--trust-root FILE``,
never the library's home-directory cache or the network), the identity policy
(``IdentityPolicy``: issuer, repository, workflow, SAN), and then reads the
identity out of the verified certificate. The certificate is long expired by
the time anyone rebuilds: it is checked at the log entry's integrated time (or
a signed timestamp), as Sigstore does.

What the library cannot check is named so (``UnsupportedBundle``: npm's
``intoto/0.0.2`` entries, entries without an inclusion proof, bundles signed
with a plain key), never called invalid. The library is imported only when a
bundle is verified: reading a file without one costs nothing.

Everything read out of a certificate is untrusted text until the chain is
verified, and is printed through ``printable`` even after.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rebuild.attest.statements import ResourceRef
from rebuild.errors import InputError, VerificationError
from rebuild.untrusted import dig, dig_str, load_json, printable

if TYPE_CHECKING:  # the library is imported only when a bundle is verified
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

TRUST_DIR = Path(__file__).parent / "trust"
PINNED_ROOT = TRUST_DIR / "sigstore-public-good.trusted_root.json"
# The file carries no date of its own. It is the copy sigstore 4.5.1 embeds (uploaded to PyPI on
# 2026-10-20): taken on or before that day. Its newest entry starts 2025-09-23.
PINNED_ROOT_TAKEN = date(2026, 10, 20)
PINNED_ROOT_SOURCE = "Sigstore public-good, as embedded in sigstore 4.5.1 (released 2026-10-20)"
MAX_TRUST_ROOT_BYTES = 1 << 20
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB = "https://github.com"
SLSA_BUILD_LEVEL_3 = "SLSA_BUILD_LEVEL_3"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)
# The log entry kinds the library verifies a DSSE envelope against (Rekor v1 dsse, Rekor v2 hashedrekord).
SUPPORTED_ENTRIES = (("dsse", "0.0.1"), ("hashedrekord", "0.0.2"))
MAX_CLAIM = 4096  # a certificate claim longer than this is not a claim anyone wrote

# Fulcio's certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md):
# 1.1-1.6 raw bytes (deprecated), 1.8 onwards DER UTF8String.
_OID = "1.3.6.1.4.1.57264.1."
_V1 = {"issuer": "1", "trigger": "2", "commit": "3", "repository": "5", "ref": "6"}
_V2 = {
    "issuer": "8", "build_signer_uri": "9", "runner_environment": "11", "repository_uri": "12", "commit": "13",
    "ref": "14", "build_config_uri": "18", "trigger": "20", "run_uri": "21",
}  # fmt: skip


# --- errors ----------------------------------------------------------------------------------------


class UnsupportedBundle(InputError):
    """A Sigstore bundle this library cannot check (named, never called invalid)."""


class SigstoreVerificationError(VerificationError):
    """The bundle was checked and does not verify: a signature, an inclusion proof, a certificate."""


class IdentityMismatch(VerificationError):
    """The signature verifies up to the certificate, but it names another identity than the policy's."""

    def __init__(self, identity: SigstoreIdentity, problems: Sequence[str]) -> None:
        super().__init__(
            "signed by another identity: " + "; ".join(problems),
            f"the certificate: {identity.describe_signer()}",
        )
        self.identity = identity
        self.problems = tuple(problems)


# --- the trust root --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustRoot:
    """A Sigstore ``trusted_root.json``: Fulcio CAs, Rekor and CT log keys, timestamp authorities."""

    path: Path
    data: bytes = field(repr=False)  # the exact bytes read, handed to the library
    taken: date  # the day it was taken (pinned), or the start of its newest key (a user's file)
    source: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def age_days(self, today: date | None = None) -> int:
        return ((today or datetime.now(UTC).date()) - self.taken).days

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "date": self.taken.isoformat(), "source": self.source, "sha256": self.sha256}


def load_trust_root(path: Path | None = None) -> TrustRoot:
    """The pinned root (``path`` None) or the user's ``--trust-root`` file, read and checked for shape.

    Raises:
        InputError: unreadable, too large, not strict JSON, or not a trusted root (exit 2).
    """
    where = path or PINNED_ROOT
    try:
        with where.open("rb") as f:
            data = f.read(MAX_TRUST_ROOT_BYTES + 1)
    except OSError as e:
        raise InputError(f"--trust-root {where} cannot be read: {e.strerror or e}") from e
    if len(data) > MAX_TRUST_ROOT_BYTES:
        raise InputError(f"--trust-root {where} is larger than {MAX_TRUST_ROOT_BYTES >> 20} MiB")
    doc = load_json(data, f"trust root {where}")
    if dig_str(doc, "mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
        raise InputError(
            f"{where} is not a Sigstore trusted root (mediaType {printable(dig(doc, 'mediaType'), 200)})",
            f"expected {TRUSTED_ROOT_MEDIA_TYPE}, as in trusted_root.json of a Sigstore TUF repository",
        )
    if path is None:
        return TrustRoot(PINNED_ROOT, data, PINNED_ROOT_TAKEN, PINNED_ROOT_SOURCE)
    return TrustRoot(path, data, _newest_start(doc), f"--trust-root {path} (dated by its newest key)")


def _newest_start(doc: object) -> date:
    starts = []
    for group, key in (("tlogs", "publicKey"), ("ctlogs", "publicKey"), ("certificateAuthorities", None)):
        entries = dig(doc, group)
        for entry in entries if isinstance(entries, list) else []:
            holder = dig(entry, key) if key else entry
            start = dig_str(holder, "validFor", "start")
            try:
                starts.append(datetime.fromisoformat(start.replace("Z", "+00:00")).date())
            except ValueError:
                continue
    if not starts:
        raise InputError("the trust root names no key with a validity start (validFor.start)")
    return max(starts)


# --- the identity in a certificate -----------------------------------------------------------------


@dataclass(frozen=True)
class SigstoreIdentity:
    """What a Fulcio certificate says about the workflow that signed. Untrusted text: print with ``printable``."""

    san: str  # the Subject Alternative Name: for GitHub Actions, the workflow that ran (with @ref)
    issuer: str
    repository_uri: str  # the source repository, https://github.com/OWNER/REPO
    ref: str
    commit: str
    build_signer_uri: str  # the workflow file that signed (a reusable workflow for slsa-github-generator)
    build_config_uri: str = ""  # the project's workflow that called it
    runner_environment: str = ""
    trigger: str = ""
    run_uri: str = ""

    @property
    def repository(self) -> str:
        """OWNER/REPO on github.com, else the repository URI."""
        uri = self.repository_uri
        return uri.removeprefix(GITHUB + "/") if uri.startswith(GITHUB + "/") else uri

    @property
    def reusable(self) -> bool:
        """Signed by a shared workflow another workflow called: the SAN is not the project's own."""
        return bool(self.build_config_uri) and _strip_ref(self.build_config_uri) != _strip_ref(self.build_signer_uri)

    def describe_signer(self) -> str:
        signer = f"signed by {printable(self.san or '?')}"
        if self.reusable:
            signer += f" (a reusable workflow, called by {printable(self.build_config_uri)})"
        where = printable(self.repository or "?") + (f"@{printable(self.ref)}" if self.ref else "")
        return signer + f" for {where}" + (f" ({printable(self.commit)})" if self.commit else "")

    def as_dict(self) -> dict[str, str]:
        return {
            "san": self.san, "issuer": self.issuer, "repository": self.repository,
            "repositoryUri": self.repository_uri, "ref": self.ref, "commit": self.commit,
            "buildSignerUri": self.build_signer_uri, "buildConfigUri": self.build_config_uri,
            "runnerEnvironment": self.runner_environment, "trigger": self.trigger, "runInvocationUri": self.run_uri,
        }  # fmt: skip


def _strip_ref(uri: str) -> str:
    return uri.partition("@")[0]


def _der_utf8(raw: bytes) -> str:
    """A DER UTF8String's text ("" when it is not one: a claim that cannot be read is no claim)."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return ""
    length, offset = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or len(raw) < 2 + count:
            return ""
        length, offset = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    if offset + length != len(raw) or length > MAX_CLAIM:
        return ""
    try:
        return raw[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return ""


def identity_from_certificate(cert: Certificate) -> SigstoreIdentity:
    """The Fulcio claims of a certificate (v2 extensions, falling back to the deprecated v1 ones)."""
    from cryptography import x509

    raw: dict[str, bytes] = {}
    san = ""
    for extension in cert.extensions:
        oid = extension.oid.dotted_string
        if oid.startswith(_OID) and isinstance(extension.value, x509.UnrecognizedExtension):
            raw[oid.removeprefix(_OID)] = extension.value.value
        elif isinstance(extension.value, x509.SubjectAlternativeName):
            names = [
                *extension.value.get_values_for_type(x509.UniformResourceIdentifier),
                *extension.value.get_values_for_type(x509.RFC822Name),
            ]
            san = names[0] if names else ""

    def claim(name: str) -> str:
        if name in _V2 and _V2[name] in raw:
            return _der_utf8(raw[_V2[name]])
        if name in _V1 and _V1[name] in raw and len(raw[_V1[name]]) <= MAX_CLAIM:
            return raw[_V1[name]].decode("utf-8", "replace")
        return ""

    repository_uri = claim("repository_uri")
    if not repository_uri and claim("repository"):
        repository_uri = f"{GITHUB}/{claim('repository')}"
    return SigstoreIdentity(
        san=san[:MAX_CLAIM],
        issuer=claim("issuer"),
        repository_uri=repository_uri,
        ref=claim("ref"),
        commit=claim("commit"),
        build_signer_uri=claim("build_signer_uri") or san[:MAX_CLAIM],
        build_config_uri=claim("build_config_uri"),
        runner_environment=claim("runner_environment"),
        trigger=claim("trigger"),
        run_uri=claim("run_uri"),
    )


# --- the identity policy ---------------------------------------------------------------------------


def workflow_matches(expected: str, identity: SigstoreIdentity) -> bool:
    """Whether the workflow that signed is ``expected``: ``PATH[@REF]``.

    PATH is a URL (``https://github.com/OWNER/REPO/.github/workflows/F.yml``), ``OWNER/REPO/PATH`` on
    the source repository's server, or ``.github/...`` inside the source repository. Without ``@REF``
    any ref matches.
    """
    path, _, ref = expected.partition("@")
    signer, _, signer_ref = identity.build_signer_uri.partition("@")
    if not signer:
        return False
    if path.startswith(("https://", "http://")):
        wanted = path
    elif path.startswith(".github/"):
        if not identity.repository_uri:
            return False
        wanted = f"{identity.repository_uri}/{path}"
    else:
        scheme, _, rest = (identity.repository_uri or GITHUB).partition("://")
        wanted = f"{scheme}://{rest.partition('/')[0]}/{path.strip('/')}"
    return signer == wanted and (not ref or signer_ref == ref)


def repository_uri(expected: str) -> str:
    """``OWNER/REPO`` on GitHub, or a repository URL as given."""
    return expected if "://" in expected else f"{GITHUB}/{expected.strip('/')}"


@dataclass(frozen=True)
class IdentityPolicy:
    """Whom a signature must come from. The issuer is always checked (GitHub Actions' by default).

    ``repository``, ``workflow`` and ``identity`` pin the identity; without any of them verification
    still runs and the identity found is reported as "not pinned". ``publisher`` is a PEP 740 Trusted
    Publisher's workflow (``https://github.com/OWNER/REPO/.github/workflows/FILE``), checked as PyPI
    does against the certificate's build config URI.
    """

    repository: str = ""
    workflow: str = ""
    issuer: str = GITHUB_ISSUER
    identity: str = ""
    publisher: str = ""

    def __post_init__(self) -> None:
        if not self.issuer:
            raise InputError("--expect-issuer must not be empty", f"the default is {GITHUB_ISSUER}")
        for name in ("repository", "workflow", "issuer", "identity"):
            value = getattr(self, name)
            if value != value.strip() or any(c.isspace() for c in value):
                raise InputError(f"--expect-{name.replace('repository', 'repo')} {printable(value)!r} has spaces")

    @property
    def pinned(self) -> bool:
        """Whether the user named whom they expect (the issuer alone pins nothing)."""
        return bool(self.repository or self.workflow or self.identity)

    def describe(self) -> str:
        parts = [f"issuer {self.issuer}"]
        parts += [f"repository {self.repository}"] if self.repository else []
        parts += [f"workflow {self.workflow}"] if self.workflow else []
        parts += [f"identity {self.identity}"] if self.identity else []
        return ", ".join(parts)

    def mismatches(self, found: SigstoreIdentity) -> list[str]:
        """What differs from the expectations, each as "expected X, found Y"."""
        problems = []
        if found.issuer != self.issuer:
            problems.append(f"expected issuer {self.issuer}, found {printable(found.issuer or 'none')}")
        if self.repository and found.repository_uri != repository_uri(self.repository):
            problems.append(f"expected repository {self.repository}, found {printable(found.repository or 'none')}")
        if self.workflow and not workflow_matches(self.workflow, found):
            problems.append(f"expected workflow {self.workflow}, found {printable(found.build_signer_uri or 'none')}")
        if self.identity and found.san != self.identity:
            problems.append(f"expected identity {self.identity}, found {printable(found.san or 'none')}")
        publisher_repository = self.publisher.partition("/.github/workflows/")[0]
        if self.publisher and found.repository_uri != publisher_repository:
            problems.append(
                f"expected the Trusted Publisher's repository {publisher_repository}, "
                f"found {printable(found.repository_uri or 'none')}"
            )
        if self.publisher and found.build_config_uri not in {
            f"{self.publisher}@{suffix}" for suffix in (found.ref, found.commit) if suffix
        }:
            problems.append(
                f"expected the Trusted Publisher's workflow {self.publisher}, "
                f"found {printable(found.build_config_uri or 'none')}"
            )
        return problems

    def verify(self, cert: Certificate) -> None:
        """The ``sigstore.verify.policy.VerificationPolicy`` protocol: raise when the certificate is not ours."""
        from sigstore.errors import VerificationError as LibraryVerificationError

        problems = self.mismatches(identity_from_certificate(cert))
        if problems:
            raise LibraryVerificationError("; ".join(problems))


@dataclass(frozen=True)
class SigstorePolicy:
    """What Sigstore verification trusts: the root (None: the pinned one), whom, and which builders are L3."""

    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    trust_root: TrustRoot | None = None
    trusted_builders: tuple[str, ...] = ()


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleRef:
    """Where a bundle is: the sha256 of the exact JSON document (a file, a JSON line, a response) holding
    it, and the path inside that document ("" when the document is the bundle)."""

    uri: str  # the file's name, or the URL it came from
    sha256: str
    document: str = "document"  # or "line N"
    path: str = ""


@dataclass(frozen=True)
class SigstoreResult:
    """A verified signature: who signed, when it was logged, under which trust root and policy."""

    identity: SigstoreIdentity
    bundle: BundleRef
    log_index: int | None
    signed_at: datetime | None
    trust_root: TrustRoot
    policy: IdentityPolicy
    trusted_builder: str = ""  # the --trusted-builder the signer matched
    payload_sha256: str = ""

    def describe(self) -> str:
        when = self.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.signed_at else "an unknown time"
        entry = f"log entry {self.log_index}" if self.log_index is not None else "a log entry"
        text = (
            f"verified with Sigstore: {self.identity.describe_signer()}, {entry} at {when} "
            f"(trust root of {self.trust_root.taken.isoformat()})"
        )
        if not self.policy.pinned:
            return text + "; identity not pinned (no --expect-repo, --expect-workflow or --expect-identity)"
        return text + f"; identity pinned ({self.policy.describe()})"

    def resource_ref(self) -> ResourceRef:
        """The bundle as an in-toto ResourceDescriptor, the identity in its annotations."""
        digest = {"sha256": self.bundle.sha256}
        return ResourceRef(self.bundle.uri, digest, "sigstore-bundle", {"sigstore": self.as_dict()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": True,
            **self.identity.as_dict(),
            "logIndex": self.log_index,
            "signedAt": self.signed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if self.signed_at else None,
            "bundle": {"uri": self.bundle.uri, "sha256": self.bundle.sha256, "document": self.bundle.document,
                       "path": self.bundle.path},
            "payloadSha256": self.payload_sha256,
            "trustRoot": {"date": self.trust_root.taken.isoformat(), "sha256": self.trust_root.sha256,
                          "source": self.trust_root.source},
            "identityPinned": self.policy.pinned,
            "policy": self.policy.describe(),
            "trustedBuilder": self.trusted_builder or None,
        }  # fmt: skip


# --- what the library can check --------------------------------------------------------------------


def unsupported_reasons(bundle: Mapping[str, Any]) -> list[str]:
    """Why the library cannot check this Sigstore bundle (empty when it can)."""
    reasons = []
    media = dig_str(bundle, "mediaType")
    if media not in BUNDLE_MEDIA_TYPES:
        reasons.append(f"media type {printable(media, 200)}")
    material = dig(bundle, "verificationMaterial")
    if dig(material, "publicKey") is not None and not _has_certificate(material):
        hint = dig_str(material, "publicKey", "hint")
        reasons.append(f"signed with a key{f' ({printable(hint, 200)})' if hint else ''}, not a certificate")
    reasons += _entry_reasons(dig(material, "tlogEntries"))
    return reasons


def pep740_unsupported_reasons(attestation: Mapping[str, Any]) -> list[str]:
    return _entry_reasons(dig(attestation, "verification_material", "transparency_entries"))


def _has_certificate(material: object) -> bool:
    chain = dig(material, "x509CertificateChain", "certificates")
    return dig(material, "certificate") is not None or (isinstance(chain, list) and bool(chain))


def _entry_reasons(entries: object) -> list[str]:
    """Rekor entries as protobuf JSON (camelCase in bundles and in PEP 740 attestations alike)."""
    if not isinstance(entries, list) or not entries:
        return ["no transparency log entry"]
    if len(entries) > 1:
        return [f"{len(entries)} transparency log entries"]
    kind = dig_str(entries[0], "kindVersion", "kind")
    version = dig_str(entries[0], "kindVersion", "version")
    reasons = []
    if (kind, version) not in SUPPORTED_ENTRIES:
        reasons.append(f"{printable(kind or '?', 100)}/{printable(version or '?', 100)} log entry")
    if dig(entries[0], "inclusionProof", "checkpoint") is None:
        reasons.append("no inclusion proof")
    return reasons


# --- verification ----------------------------------------------------------------------------------


class SigstoreVerifier:
    """Verifies bundles offline under one ``SigstorePolicy``; the library and the root are loaded once, when needed."""

    def __init__(self, policy: SigstorePolicy) -> None:
        self.policy = policy
        self._root: TrustRoot | None = policy.trust_root
        self._verifier: Verifier | None = None

    @property
    def trust_root(self) -> TrustRoot:
        if self._root is None:
            self._root = load_trust_root()
        return self._root

    def _library(self) -> Verifier:
        if self._verifier is None:
            from sigstore.models import TrustedRoot
            from sigstore.verify import Verifier

            try:  # from this file: never the library's home-directory cache, never the network (TUF)
                root = TrustedRoot.from_file(str(self.trust_root.path))
                self._verifier = Verifier(trusted_root=root)
            except Exception as e:  # the library's own check of a root we read (a user's file is hostile too)
                raise InputError(f"trust root {self.trust_root.path} is not usable: {_reason(e)}") from e
        return self._verifier

    def verify_bundle(self, bundle: Mapping[str, Any], where: BundleRef, payload: bytes) -> SigstoreResult:
        """Verify a Sigstore bundle (``dsseEnvelope``) whose payload must be ``payload``, the bytes that were read.

        Raises:
            UnsupportedBundle: a bundle the library cannot check (exit 2 if it ever escapes; callers name it).
            IdentityMismatch: the certificate names another identity (exit 1).
            SigstoreVerificationError: the bundle does not verify (exit 1).
        """
        reasons = unsupported_reasons(bundle)
        if reasons:
            raise UnsupportedBundle(f"unsupported Sigstore bundle ({', '.join(reasons)})")
        from sigstore.models import Bundle

        try:
            parsed = Bundle.from_json(json.dumps(bundle))
        except Exception as e:  # the library parses a hostile document: whatever it raises, it does not verify
            raise SigstoreVerificationError(f"Sigstore bundle refused: {_reason(e)}") from e
        return self._verify(parsed, dig(bundle, "verificationMaterial", "tlogEntries", default=None), where, payload)

    def verify_pep740(self, attestation: Mapping[str, Any], where: BundleRef, payload: bytes) -> SigstoreResult:
        """Verify one PEP 740 attestation object whose statement must be ``payload``.

        Raises: as ``verify_bundle``.
        """
        reasons = pep740_unsupported_reasons(attestation)
        if reasons:
            raise UnsupportedBundle(f"unsupported PEP 740 attestation ({', '.join(reasons)})")
        from pypi_attestations import Attestation

        try:
            bundle = Attestation.model_validate(dict(attestation)).to_bundle()
        except Exception as e:  # pydantic and the library on a hostile document
            raise SigstoreVerificationError(f"PEP 740 attestation refused: {_reason(e)}") from e
        entries = dig(attestation, "verification_material", "transparency_entries")
        return self._verify(bundle, entries, where, payload)

    def _verify(self, bundle: Bundle, entries: object, where: BundleRef, payload: bytes) -> SigstoreResult:
        verifier = self._library()
        policy = self.policy.identity
        try:
            payload_type, verified = verifier.verify_dsse(bundle, policy)
        except Exception as e:  # sigstore.errors.VerificationError, and anything a hostile bundle provokes
            try:
                identity = identity_from_certificate(bundle.signing_certificate)
            except Exception:  # a certificate we cannot read names nobody
                identity = None
            problems = policy.mismatches(identity) if identity is not None else []
            if identity is not None and problems:
                raise IdentityMismatch(identity, problems) from e
            raise SigstoreVerificationError(_reason(e)) from e
        if payload_type != INTOTO_PAYLOAD_TYPE:
            raise SigstoreVerificationError(f"the signed payload is {printable(payload_type, 200)}, not in-toto")
        if verified != payload:  # what is used must be what was verified, byte for byte
            raise SigstoreVerificationError("the verified payload is not the statement that was read")
        identity = identity_from_certificate(bundle.signing_certificate)
        entry = entries[0] if isinstance(entries, list) and entries else None
        return SigstoreResult(
            identity=identity,
            bundle=where,
            log_index=_integer(dig(entry, "logIndex")),
            signed_at=_signed_at(bundle, _integer(dig(entry, "integratedTime"))),
            trust_root=self.trust_root,
            policy=policy,
            trusted_builder=next((b for b in self.policy.trusted_builders if workflow_matches(b, identity)), ""),
            payload_sha256=hashlib.sha256(verified).hexdigest(),
        )


def _integer(value: object) -> int | None:
    """A protobuf-JSON int64 (a string of digits, or a number)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def _signed_at(bundle: Bundle, integrated: int | None) -> datetime | None:
    if integrated is not None:
        return datetime.fromtimestamp(integrated, tz=UTC)
    data = bundle.verification_material.timestamp_verification_data
    stamps = data.rfc3161_timestamps if data else []
    return stamps[0].tst_info.gen_time if stamps else None


def _reason(error: BaseException) -> str:
    """A library's error in one printable line (pydantic's and the Merkle proof's quote the hostile input)."""
    lines = str(error).strip().splitlines()
    text = (lines[0] if lines else type(error).__name__).split(": expected ")[0]
    return printable(text, 200)
