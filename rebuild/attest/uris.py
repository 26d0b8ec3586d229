"""Every type URI and identifier this project writes, in one place.

Documented in docs/attestations.md; change them only with a new version.
"""

from __future__ import annotations

import hashlib

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_VSA_V1 = "https://slsa.dev/verification_summary/v1"
# A content-equivalence claim: bytes differ, every member's content is the same (docs/content-equivalence.md).
CONTENT_EQUIVALENCE_V1 = "https://rebuild-verifier.dev/content-equivalence/v1"

# The buildType of every build this project runs (`rebuild build` and rebuilds).
BUILD_TYPE = "https://rebuild-verifier.dev/buildtypes/hermetic-rebuild/v1"
# builder.id of the hardened Docker sandbox.
BUILDER_ID = "https://rebuild-verifier.dev/builders/docker-sandbox/v1"
# verifier.id of the VSAs this project writes (a rebuilder may name itself with --verifier-id).
VERIFIER_ID = "https://rebuild-verifier.dev/verifier/v1"
# The level a PASSED summary states: every output reproduced bit for bit.
# Custom levels must not start with SLSA_ (VSA v1 spec).
LEVEL_REPRODUCED = "REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED"
# The same, when the rebuild deviated from the recorded inputs (recorded in the statement).
LEVEL_REPRODUCED_WITH_DEVIATIONS = "REBUILD_VERIFIER_BIT_FOR_BIT_REPRODUCED_WITH_DEVIATIONS"

POLICY_URI = "https://rebuild-verifier.dev/policies/bit-for-bit/v1"
POLICY_TEXT = (
    "rebuild-verifier bit-for-bit policy v1: the artifact is rebuilt from its recorded provenance "
    "in a hermetic container (network off, every input checked against its digest); the result is "
    "PASSED if and only if every rebuilt output has the same length and sha256 as the published "
    "artifact.\n"
)
POLICY_SHA256 = hashlib.sha256(POLICY_TEXT.encode()).hexdigest()
