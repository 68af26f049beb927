"""The state machine's concurrency and retries are derived from AWS's quotas, not from moto's speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.arns import FunctionRef
from permheal.errors import ThrottledError
from permheal.pacing import QUOTAS, REPAIR_CONCURRENCY, Pacer

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "remediation.asl.json"
THROTTLING = {"Lambda.TooManyRequestsException", ThrottledError.__name__}
"""Lambda refusing to start the step (concurrency), and AWS refusing the step's calls (rate)."""

STORM_ITERATIONS = 300
"""Design storm: a deploy breaks one function+qualifier of each of the 300 APIs of issue 15's account."""
GET_POLICY_PER_ITERATION = 2
"""A repair reads the policy, writes once, reads it again (repair.py)."""
ASSUMED_AWS_BURST_SECONDS = 1.0
"""Lambda documents rates, not bursts: assumed one second of the rate (as permheal_local.aws_model)."""


def states() -> dict[str, Any]:
    definition = json.loads(ASL.read_text())
    found: dict[str, Any] = {}

    def walk(level: dict[str, Any]) -> None:
        for name, state in level.items():
            found[name] = state
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition["States"])
    return found


def first_retrier(state: dict[str, Any], error: str) -> dict[str, Any] | None:
    """The retrier Step Functions applies to `error`: the first whose ErrorEquals names it."""
    for retrier in state.get("Retry", []):
        if error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return dict(retrier)
    return None


def expected_wait_seconds(retrier: dict[str, Any]) -> float:
    """Mean total wait over all retries: FULL jitter waits uniformly up to each capped delay."""
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", float("inf"))
    delays = [min(interval * rate**attempt, cap) for attempt in range(retrier.get("MaxAttempts", 3))]
    return sum(delays) / (2 if retrier.get("JitterStrategy") == "FULL" else 1)


def test_the_map_runs_as_many_repairs_at_once_as_the_repair_lambda_paces_for() -> None:
    assert states()["Repair each function"]["MaxConcurrency"] == REPAIR_CONCURRENCY


@pytest.mark.parametrize("quota", ["lambda:GetPolicy", "lambda:control"])
@pytest.mark.parametrize("share", [0.5, 0.95, 1.0])
def test_the_maps_repairs_together_keep_to_the_lambda_quotas(quota: str, share: float) -> None:
    # Given as many repair environments as the Map runs at once, each with its own pacer
    concurrency = states()["Repair each function"]["MaxConcurrency"]
    bucket = Pacer.one_of(concurrency, share).buckets[quota]

    # Then together they call at most `share` of the quota, and their bursts fit AWS's (assumed) burst
    assert concurrency * bucket.rate <= share * QUOTAS[quota].rate + 1e-9
    assert concurrency * bucket.burst <= QUOTAS[quota].rate * ASSUMED_AWS_BURST_SECONDS


@pytest.mark.parametrize("state", ["Resolve targets", "Repair the function's policy"])
@pytest.mark.parametrize("error", sorted(THROTTLING))
def test_throttling_is_retried_long_enough_for_the_quota_to_serve_a_storm(state: str, error: str) -> None:
    # Given the retrier Step Functions applies to a throttled step
    retrier = first_retrier(states()[state], error)
    assert retrier is not None, f"{state} does not retry {error}"

    # Then it waits, on average, as long as GetPolicy's quota needs to serve the design storm
    storm_seconds = STORM_ITERATIONS * GET_POLICY_PER_ITERATION / QUOTAS["lambda:GetPolicy"].rate
    assert expected_wait_seconds(retrier) >= storm_seconds
    # And it spreads the retries out (full jitter), so throttled iterations do not come back together
    assert retrier.get("JitterStrategy") == "FULL"


@pytest.mark.parametrize("code", ["TooManyRequestsException", "ThrottlingException"])
def test_a_call_throttled_beyond_retries_raises_the_error_the_retrier_names(code: str) -> None:
    # Given Lambda refusing GetPolicy for its rate (botocore's retries spent)
    class Throttling:
        def get_policy(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "GetPolicy")

    # When the repair reads the policy, then the Lambda fails with the error its retrier names
    # (the Lambda runtime reports an unhandled exception by its class name)
    with pytest.raises(ThrottledError) as raised:
        LambdaPolicies(Throttling()).read(FunctionRef("aws", "us-east-1", "123456789012", "pets"))  # type: ignore[arg-type]
    assert type(raised.value).__name__ in THROTTLING
