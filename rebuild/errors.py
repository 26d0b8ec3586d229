"""The project's errors and the exit codes the CLI maps them to.

Every failure a user can cause or meet is one of these. Each carries a hint
that tells the user what to do next; the CLI prints ``message`` and ``hint``
on one line each and exits with ``exit_code``. "Different" (exit 1) and
"could not tell" (exit 3) are different outcomes and different classes.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # not reproduced, or an attestation failed verification
EXIT_USAGE = 2  # bad usage or invalid input
EXIT_ENVIRONMENT = 3  # Docker unavailable, fetch failed, build crashed or timed out


class Error(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# --- invalid input (exit 2) -------------------------------------------------


class InputError(Error):
    """The user gave us something we cannot use."""


class ProvenanceError(InputError):
    """A provenance document is unparseable or lacks a field the rebuild needs."""


class KeyLoadError(InputError):
    """A signing or verification key is missing, malformed or unsupported."""


class RecipeError(InputError):
    """A recipe file is invalid or unknown."""


class PlanError(InputError):
    """A build plan is incomplete or inconsistent."""


# --- verification failed (exit 1) -------------------------------------------


class VerificationError(Error):
    """Something was checked and found wrong: a digest, a signature, a policy."""

    exit_code = EXIT_FAILED


class DigestMismatchError(VerificationError):
    """Bytes did not match the digest a document promised for them."""


# --- environment failures (exit 3) ------------------------------------------


class EnvironmentFailure(Error):
    """We could not find out: the machine, the network or the build failed."""

    exit_code = EXIT_ENVIRONMENT


class DockerUnavailableError(EnvironmentFailure):
    """No Docker engine answers."""


class ImageError(EnvironmentFailure):
    """A builder image could not be built, loaded, or found with its digest."""


class FetchError(EnvironmentFailure):
    """An input could not be downloaded or read."""


class SandboxError(EnvironmentFailure):
    """The container could not run the build, or its outputs are unsafe."""

    def __init__(self, message: str, hint: str = "", log: str = "") -> None:
        super().__init__(message, hint)
        self.log = log  # the build log so far, kept for the report


class BuildFailedError(SandboxError):
    """The build ran and failed (non-zero exit, killed by a limit)."""


class BuildTimeoutError(SandboxError):
    """The build ran past its wall-clock limit and was killed."""
