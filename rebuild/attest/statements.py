"""in-toto Statement v1 payloads: SLSA provenance v1 of a rebuild, and SLSA VSA v1.

Documents written here are strict: canonical key order, fixed fields, only
validated digests. Statements read from elsewhere are parsed tolerantly from
the verified payload bytes, keeping every unknown field, but never
ambiguously: ``load_document`` is the one way this module and
``rebuild.envelopes`` turn untrusted bytes into JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from compare.digest import is_valid_hex
from rebuild import __version__
from rebuild.attest import uris
from rebuild.errors import InputError
from rebuild.untrusted import load_json, printable

# Digest algorithms whose values are hex of a fixed length: checked so, and compared lowercased.
# Every other DigestSet algorithm (gce_image_id, ...) is compared exactly.
HEX_DIGESTS = {"sha256": 64, "sha384": 96, "sha512": 128}
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Collisions are practical for these; a summary pinned by one proves little.
WEAK_DIGESTS = frozenset({"md5", "sha1"})
_ALGORITHM = re.compile(r"[A-Za-z0-9_-]{1,64}")  # in-toto DigestSet names: sha256, gitCommit, dirHash, ...
_OPAQUE_VALUE = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII, no space
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Subject:
    name: str
    digest: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(sorted(self.digest.items()))}


@dataclass(frozen=True)
class ResourceRef:
    """An in-toto ResourceDescriptor with a uri and digests."""

    uri: str
    digest: Mapping[str, str]
    name: str = ""
    annotations: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"uri": self.uri, "digest": dict(sorted(self.digest.items()))}
        if self.name:
            doc["name"] = self.name
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_digest(algorithm: str, value: str) -> str:
    """``value`` as compared with subjects: lowercase hex for ``HEX_DIGESTS``, exact otherwise.

    Raises:
        InputError: an unknown-shaped algorithm name, a weak algorithm, or a
            value that is not valid for the algorithm.
    """
    if algorithm in HEX_DIGESTS:
        lowered = value.lower()
        if len(lowered) != HEX_DIGESTS[algorithm] or not _HEX.fullmatch(lowered):
            raise InputError(
                f"{algorithm} digest {printable(repr(value), 200)} is not {HEX_DIGESTS[algorithm]} hex digits"
            )
        return lowered
    if algorithm != algorithm.lower() and (algorithm.lower() in HEX_DIGESTS or algorithm.lower() in WEAK_DIGESTS):
        raise InputError(  # SHA256 is no twin of sha256: one spelling per algorithm
            f"digest algorithm {printable(repr(algorithm), 200)} is not a DigestSet name (write it in lowercase)",
            "for example sha256:<64 hex digits> or sha512:<128 hex digits>",
        )
    if not _ALGORITHM.fullmatch(algorithm):
        raise InputError(
            f"digest algorithm {printable(repr(algorithm), 200)} is not a DigestSet name ([A-Za-z0-9_-], 1 to 64)",
            "for example sha256:<64 hex digits> or sha512:<128 hex digits>",
        )
    if algorithm in WEAK_DIGESTS:
        raise InputError(f"digest algorithm {algorithm} is too weak to pin an artifact", "use sha256 or sha512")
    if not _OPAQUE_VALUE.fullmatch(value):
        raise InputError(
            f"digest {algorithm}:{printable(repr(value), 200)} is not a printable ASCII value without spaces"
        )
    return value


def serialize(statement: Mapping[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def statement(subjects: Sequence[Subject], predicate_type: str, predicate: Mapping[str, Any]) -> bytes:
    """The bytes of an in-toto Statement v1.

    Raises:
        InputError: a subject digest is not valid hex of a known algorithm.
    """
    for s in subjects:
        for algorithm, value in s.digest.items():
            if not is_valid_hex(algorithm, value):
                raise InputError(f"subject {s.name}: invalid {algorithm} digest {value!r}")
    return serialize(
        {
            "_type": uris.STATEMENT_V1,
            "subject": [s.to_dict() for s in subjects],
            "predicateType": predicate_type,
            "predicate": dict(predicate),
        }
    )


def rebuild_provenance(
    subjects: Sequence[Subject],
    external_parameters: Mapping[str, Any],
    resolved_dependencies: Sequence[ResourceRef],
    invocation_id: str,
    started_on: str,
    finished_on: str,
    builder_dependencies: Sequence[ResourceRef] = (),
    internal_parameters: Mapping[str, Any] | None = None,
) -> bytes:
    """A SLSA provenance v1 statement describing one hermetic build by this project."""
    build_definition: dict[str, Any] = {
        "buildType": uris.BUILD_TYPE,
        "externalParameters": dict(external_parameters),
        "resolvedDependencies": [d.to_dict() for d in resolved_dependencies],
    }
    if internal_parameters:
        build_definition["internalParameters"] = dict(internal_parameters)
    predicate = {
        "buildDefinition": build_definition,
        "runDetails": {
            "builder": {
                "id": uris.BUILDER_ID,
                "version": {"rebuild-verifier": __version__},
                "builderDependencies": [d.to_dict() for d in builder_dependencies],
            },
            "metadata": {"invocationId": invocation_id, "startedOn": started_on, "finishedOn": finished_on},
        },
    }
    return statement(subjects, uris.SLSA_PROVENANCE_V1, predicate)


def verification_summary(
    subject: Subject,
    passed: bool,
    resource_uri: str,
    input_attestations: Sequence[ResourceRef],
    verifier_id: str = uris.VERIFIER_ID,
    deviations: Sequence[str] = (),
    report: ResourceRef | None = None,
    time_verified: str | None = None,
    extra_levels: Sequence[str] = (),
) -> bytes:
    """A SLSA VSA v1 statement about the published artifact.

    ``extra_levels`` (e.g. ``SLSA_BUILD_LEVEL_3`` for provenance a trusted builder signed) go beside the
    reproduced level, and only on a PASSED summary.
    """
    levels: list[str] = []
    if passed:
        levels = [uris.LEVEL_REPRODUCED_WITH_DEVIATIONS if deviations else uris.LEVEL_REPRODUCED, *extra_levels]
    predicate: dict[str, Any] = {
        "verifier": {"id": verifier_id, "version": {"rebuild-verifier": __version__}},
        "timeVerified": time_verified or now_rfc3339(),
        "resourceUri": resource_uri,
        "policy": {"uri": uris.POLICY_URI, "digest": {"sha256": uris.POLICY_SHA256}},
        "inputAttestations": [a.to_dict() for a in input_attestations],
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": levels,
        "slsaVersion": "1.0",
    }
    if deviations:
        predicate["deviations"] = list(deviations)
    if report is not None:
        predicate["report"] = report.to_dict()
    return statement([subject], uris.SLSA_VSA_V1, predicate)


@dataclass(frozen=True)
class ParsedStatement:
    """A statement read from verified (or shown) bytes; unknown fields are kept in ``raw``."""

    type: str
    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: Mapping[str, Any]
    raw: Mapping[str, Any]

    def matches(self, algorithm: str, value: str) -> Subject | None:
        """The first subject whose ``algorithm`` digest is ``value``.

        Hex digests (``HEX_DIGESTS``) compare case-insensitively; any other
        algorithm's value is an opaque string and compares exactly.
        """
        hex_digest = algorithm in HEX_DIGESTS
        wanted = value.lower() if hex_digest else value
        for s in self.subjects:
            have = s.digest.get(algorithm)
            if have is not None and (have.lower() if hex_digest else have) == wanted:
                return s
        return None


def load_document(data: str | bytes, what: str) -> Any:
    """Parse one untrusted JSON document (``untrusted.load_json``: strict, bounded, UTF-8, no lone surrogates)."""
    return load_json(data, what)


def parse_statement(payload: bytes, where: str = "statement") -> ParsedStatement:
    """Parse an in-toto Statement (v0.1 or v1) tolerantly, naming any bad field.

    Raises:
        InputError: not strict JSON (see ``load_document``), not an object, or
            a required field is missing or mistyped.
    """
    doc = load_document(payload, f"{where}: payload")
    if not isinstance(doc, dict):
        raise InputError(f"{where}: payload is not a JSON object")
    type_ = doc.get("_type")
    if type_ not in (uris.STATEMENT_V1, uris.STATEMENT_V01):
        raise InputError(f"{where}: '_type' is {printable(repr(type_), 200)}, not an in-toto Statement")
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str):
        raise InputError(f"{where}: field 'predicateType' is missing or not a string")
    predicate = doc.get("predicate")
    predicate = {} if predicate is None else predicate  # optional in in-toto (PyPI's publish attestation: null)
    if not isinstance(predicate, dict):
        raise InputError(f"{where}: field 'predicate' is not an object")
    raw_subjects = doc.get("subject")
    if not isinstance(raw_subjects, list):
        raise InputError(f"{where}: field 'subject' is missing or not a list")
    subjects = []
    for i, s in enumerate(raw_subjects):
        if not isinstance(s, dict):
            raise InputError(f"{where}: subject[{i}] is not an object")
        digest = s.get("digest")
        if not isinstance(digest, dict) or not all(isinstance(v, str) for v in digest.values()):
            raise InputError(f"{where}: subject[{i}].digest is missing or not a map of strings")
        name = s.get("name", "")  # optional in in-toto v0.1; "_" when nameless in v1
        if not isinstance(name, str):
            raise InputError(f"{where}: subject[{i}].name is {printable(repr(name), 200)}, not a string")
        subjects.append(Subject(name, digest))
    return ParsedStatement(type_, predicate_type, tuple(subjects), predicate, doc)
