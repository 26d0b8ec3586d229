"""What a job is and what happens after each attempt: its key, its tags, and the retry rules.

A job's key is the sha256 of the canonical JSON of what decides its result: the normalized target, the
digests of everything upstream (published files, source, inputs, the provenance document), the builder
image, the recipe and the verifier's version. The same work is never queued twice, and a new builder
image or verifier makes a new job.

Retries depend on the outcome, because "could not tell" and "different" are different things:
infrastructure failures (fetch, Docker, timeout, out of memory, a lost worker) back off exponentially up
to a limit; a failed build is retried once on another worker; "not reproduced" is re-checked once on
another worker and is then final until the builder image or the verifier changes (a new key).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rebuild.errors import InputError

# what one attempt came to
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
FAILED_VERIFICATION = "failed verification"  # checked and found wrong before building (exit 1)
BAD_INPUT = "bad input"  # exit 2: nothing to retry
BUILD_FAILED = "build failed"  # the build ran and exited non-zero
INFRASTRUCTURE = "infrastructure"  # fetch, Docker, timeout, out of memory, an internal error
LOST = "lost"  # the worker stopped heartbeating (killed, machine gone)
INTERRUPTED = "interrupted"  # the worker was stopped on purpose; the job goes back, nothing counted
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, FAILED_VERIFICATION, BAD_INPUT, BUILD_FAILED, INFRASTRUCTURE, LOST, INTERRUPTED)

# what a job finally came to
COULD_NOT_REBUILD = "could not rebuild"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, FAILED_VERIFICATION, BAD_INPUT, COULD_NOT_REBUILD)

_TAG = re.compile(r"[a-z0-9_.-]{1,32}=[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class RetryPolicy:
    backoff_seconds: float = 60.0  # the first infrastructure retry waits this long, then twice as long, ...
    max_backoff_seconds: float = 3600.0
    infrastructure_attempts: int = 5  # attempts that failed for infrastructure reasons before giving up

    def as_settings(self) -> dict[str, str]:
        return {
            "backoff_seconds": str(self.backoff_seconds),
            "max_backoff_seconds": str(self.max_backoff_seconds),
            "infrastructure_attempts": str(self.infrastructure_attempts),
        }

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> RetryPolicy:
        default = cls()
        return cls(
            float(settings.get("backoff_seconds", default.backoff_seconds)),
            float(settings.get("max_backoff_seconds", default.max_backoff_seconds)),
            int(settings.get("infrastructure_attempts", default.infrastructure_attempts)),
        )


@dataclass(frozen=True)
class Decision:
    """After an attempt: a final verdict, or a retry (after ``delay``, perhaps on another worker)."""

    verdict: str | None  # final when set
    delay: float = 0.0
    other_worker: bool = False
    reason: str = ""

    @property
    def final(self) -> bool:
        return self.verdict is not None


def decide(outcome: str, earlier: Sequence[str], policy: RetryPolicy) -> Decision:
    """What follows an attempt with ``outcome``, given the outcomes of this round's earlier attempts."""
    if outcome == REPRODUCED:
        recheck = NOT_REPRODUCED in earlier
        return Decision(REPRODUCED, reason="reproduced on the re-check" if recheck else "reproduced")
    if outcome == NOT_REPRODUCED:
        if NOT_REPRODUCED in earlier:
            return Decision(NOT_REPRODUCED, reason="not reproduced twice (re-checked on another worker if any)")
        return Decision(None, other_worker=True, reason="not reproduced: re-checked once on another worker")
    if outcome in (FAILED_VERIFICATION, BAD_INPUT):
        return Decision(outcome, reason="final: retrying cannot change it")
    if outcome == BUILD_FAILED:
        if BUILD_FAILED in earlier:
            return Decision(COULD_NOT_REBUILD, reason="the build failed twice")
        return Decision(None, other_worker=True, reason="the build failed: retried once on another worker")
    if outcome == INTERRUPTED:
        return Decision(None, reason="the worker was stopped: the job goes back to the queue")
    # infrastructure, or a lost worker
    failures = 1 + sum(1 for o in earlier if o in (INFRASTRUCTURE, LOST))
    if failures >= policy.infrastructure_attempts:
        return Decision(COULD_NOT_REBUILD, reason=f"{failures} attempts failed for infrastructure reasons")
    delay = min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (failures - 1))
    return Decision(None, delay=delay, reason=f"{outcome}: retry {failures} of {policy.infrastructure_attempts - 1}")


def canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def job_key(decided_by: Mapping[str, Any]) -> str:
    """The sha256 of the canonical JSON of what decides the result."""
    return hashlib.sha256(canonical(decided_by).encode()).hexdigest()


def parse_tags(values: Iterable[str]) -> str:
    """``K=V`` tags as stored: sorted, comma-joined, each checked.

    Raises:
        InputError: a tag is not ``key=value`` of letters, digits, ``_.-``.
    """
    tags = set()
    for value in values:
        if not _TAG.fullmatch(value):
            raise InputError(f"tag {value!r} is not KEY=VALUE", "for example --tag mem=high")
        tags.add(value)
    return ",".join(sorted(tags))


def tag_set(tags: str) -> frozenset[str]:
    return frozenset(t for t in tags.split(",") if t)


def takes(worker_tags: str, job_tags: str) -> bool:
    """A worker takes a job when it has every tag the job asks for (an untagged job: any worker)."""
    return tag_set(job_tags) <= tag_set(worker_tags)
