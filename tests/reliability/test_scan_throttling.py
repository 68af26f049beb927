"""A scan never fails on throttling: bursts of TooManyRequestsException longer than botocore's retries,
on GetPolicy and on API Gateway reads, end with the findings of a scan AWS never throttled."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from permheal.adapters.aws import RETRY_ATTEMPTS
from permheal.adapters.ports import Adapters
from permheal.errors import AwsCallError
from permheal.pacing import Pacer
from permheal.planner import PlanOptions
from permheal.workflow.scan import scan
from permheal_local.builder import World
from tests.integration.test_scan_scale import mixed_account
from tests.reliability.conftest import Record
from tests.reliability.support import _REJECTED, Faults, _error_response

pytestmark = pytest.mark.reliability

BURST = 40
"""Consecutive GetPolicy attempts throttled at first: more than 4 readers x 6 attempts, so at least
one call is throttled beyond every retry botocore makes."""


@dataclass
class Bursts(Faults):
    """Throttle the first `burst` attempts of each chosen operation, then every fifth one."""

    operations: tuple[str, ...] = ()
    burst: int = BURST
    seen: Counter[str] = field(default_factory=Counter)
    _lock: Any = field(default_factory=threading.Lock)

    def _before_send(self, request: Any, event_name: str, **_: Any) -> Any:
        _, service, operation = event_name.split(".", 2)
        if operation not in self.operations:
            return None
        with self._lock:
            self.seen[operation] += 1
            count = self.seen[operation]
            if count > self.burst and count % 5:
                return None
            self.injected[operation] += 1
        setattr(request, _REJECTED, True)
        return _error_response(request, service, "throttling")


def bursts(faults: Faults, *operations: str, burst: int = BURST) -> Bursts:
    """Turn the installed fault injector into one throttling `operations` in bursts."""
    faults.__class__ = Bursts
    assert isinstance(faults, Bursts)
    faults.operations, faults.burst, faults.seen, faults._lock = (
        operations,
        burst,
        Counter(),
        threading.Lock(),
    )
    faults._clients.clear()  # new clients, whose before-send hook is the bursts' one
    return faults


def paced_scan(rounds: int | None = None) -> list[Any]:
    pacer = Pacer(sleep=lambda _: None, **({"rounds": rounds} if rounds else {}))
    return scan(Adapters.default(pacer=pacer), [], None, PlanOptions())


@pytest.mark.parametrize(
    ("operations", "burst"),
    [(("GetPolicy",), BURST), (("GetPolicy", "GetExport", "GetRoutes"), 2 * RETRY_ATTEMPTS + 3)],
)
def test_throttling_bursts_end_with_the_findings_of_an_unthrottled_scan(
    world: World, faults: Faults, record: Record, operations: tuple[str, ...], burst: int
) -> None:
    # Given an account, and its findings when AWS throttles nothing
    mixed_account(world)
    expected = paced_scan()

    # When AWS throttles bursts of `operations` longer than botocore's retries, and the scan runs
    throttled = bursts(faults, *operations, burst=burst)
    findings = paced_scan()
    record(f"fault: throttling bursts of {burst} on {', '.join(operations)} during scan", "same findings", 0)

    # Then the throttling happened, beyond what botocore alone retries, and the scan reports the same
    assert all(throttled.injected[op] >= min(burst, throttled.seen[op]) for op in operations)
    assert throttled.injected["GetPolicy"] > RETRY_ATTEMPTS
    assert findings == expected


def test_without_the_pacers_rounds_the_same_burst_fails_the_scan(world: World, faults: Faults) -> None:
    # Given the same account and a GetPolicy burst longer than botocore's retries
    mixed_account(world)
    bursts(faults, "GetPolicy")

    # When the scan runs with botocore's retries only, then it fails on throttling: the rounds matter
    with pytest.raises(AwsCallError, match="TooManyRequests"):
        paced_scan(rounds=1)
