"""Retry rules by outcome, job keys, tags and queues: pure functions, table-driven."""

from __future__ import annotations

import pytest

from rebuild.errors import BuildFailedError, BuildTimeoutError, FetchError, InputError, VerificationError
from rebuild.service import broker, jobs
from rebuild.service.runner import outcome_of

POLICY = jobs.RetryPolicy(backoff_seconds=10, max_backoff_seconds=35, infrastructure_attempts=4)


@pytest.mark.parametrize(
    ("outcome", "earlier", "verdict", "delay", "other"),
    [
        pytest.param("reproduced", [], "reproduced", 0, False, id="reproduced-is-final"),
        pytest.param("reproduced", ["not reproduced"], "reproduced", 0, False, id="reproduced-on-recheck"),
        pytest.param("not reproduced", [], None, 0, True, id="not-reproduced-rechecked-elsewhere"),
        pytest.param("not reproduced", ["not reproduced"], "not reproduced", 0, False, id="not-reproduced-twice"),
        pytest.param("build failed", [], None, 0, True, id="build-failed-once-elsewhere"),
        pytest.param("build failed", ["build failed"], "could not rebuild", 0, False, id="build-failed-twice"),
        pytest.param("bad input", [], "bad input", 0, False, id="bad-input-final"),
        pytest.param("failed verification", [], "failed verification", 0, False, id="failed-verification-final"),
        pytest.param("infrastructure", [], None, 10, False, id="infra-first-backoff"),
        pytest.param("infrastructure", ["infrastructure"], None, 20, False, id="infra-doubles"),
        pytest.param("lost", ["infrastructure", "lost"], None, 35, False, id="lost-counts-capped"),
        pytest.param(
            "infrastructure", ["lost", "infrastructure", "lost"], "could not rebuild", 0, False, id="infra-gives-up"
        ),
        pytest.param("interrupted", ["infrastructure"] * 3, None, 0, False, id="interrupted-counts-nothing"),
    ],
)
def test_decide(outcome: str, earlier: list[str], verdict: str | None, delay: float, other: bool) -> None:
    decision = jobs.decide(outcome, earlier, POLICY)
    assert (decision.verdict, decision.delay, decision.other_worker) == (verdict, delay, other)
    assert decision.reason


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(BuildFailedError("build failed: exit 2"), "build failed", id="build"),
        pytest.param(
            BuildFailedError("build failed: killed by the memory limit (exit 137)"), "infrastructure", id="oom"
        ),
        pytest.param(BuildTimeoutError("build timed out"), "infrastructure", id="timeout"),
        pytest.param(FetchError("download failed"), "infrastructure", id="fetch"),
        pytest.param(InputError("no project"), "bad input", id="input"),
        pytest.param(VerificationError("altered"), "failed verification", id="verification"),
    ],
)
def test_errors_map_to_retry_rules(error: Exception, outcome: str) -> None:
    assert outcome_of(error) == outcome  # type: ignore[arg-type]


def test_key_is_stable_and_changes_with_what_decides() -> None:
    base = {"target": "pypi:a==1", "verifier": "v1", "candidates": [{"image": "sha256:" + "1" * 64}]}
    assert jobs.job_key(base) == jobs.job_key(dict(reversed(list(base.items()))))
    new_image = {**base, "candidates": [{"image": "sha256:" + "2" * 64}]}
    assert jobs.job_key(new_image) != jobs.job_key(base)
    assert jobs.job_key({**base, "verifier": "v2"}) != jobs.job_key(base)
    assert len(jobs.job_key(base)) == 64


def test_tags() -> None:
    assert jobs.parse_tags(["mem=high", "arch=x86_64", "mem=high"]) == "arch=x86_64,mem=high"
    assert jobs.takes("arch=x86_64,mem=high", "mem=high") and jobs.takes("mem=high", "")
    assert not jobs.takes("", "mem=high")
    with pytest.raises(InputError, match="KEY=VALUE"):
        jobs.parse_tags(["mem high"])
    assert broker.worker_queues("") == ["rebuild"]
    assert broker.worker_queues("b=2,a=1") == ["rebuild:a=1,b=2", "rebuild:a=1", "rebuild:b=2", "rebuild"]
