"""Pace AWS control-plane calls under the account's quotas instead of hitting them and backing off.

AWS throttles Lambda's and API Gateway's control planes per account and region (figures below). A
scan of a large account, or many repairs at once, that calls as fast as it can is answered with
`TooManyRequestsException` and then waits out botocore's exponential backoff: throughput falls far
below the quota and a long enough run gives up. A token bucket per quota, filled at a configured
share of it, spaces the calls instead, so the quota is used almost fully and throttling stays the
exception; when it happens anyway (another caller in the account shares the quota), the whole
bucket pauses before the call is retried.

Pure: the clock and the sleep are injected, no boto3; one `Pacer` per account+region (the adapters
of one account share it, another account has its own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Quota:
    """A documented AWS request quota: `rate` requests per second, `burst` at once."""

    rate: float
    burst: int = 1


# Per account and region (AWS docs, "Lambda quotas" → API requests; "Amazon API Gateway quotas" →
# "quotas for creating, deploying and managing an API"). None of them can be increased.
QUOTAS: Mapping[str, Quota] = {
    "lambda:GetPolicy": Quota(15.0),
    # Every other Lambda control-plane call permheal makes (AddPermission, RemovePermission,
    # GetFunctionConfiguration): "remainder of the control plane API requests".
    "lambda:control": Quota(15.0),
    "apigateway:GetResources": Quota(2.5, 5),  # 5 requests every 2 seconds
    # All API Gateway management operations together (REST and v2): 10/s, burst 40.
    "apigateway:total": Quota(10.0, 40),
}

BUCKETS_BY_OPERATION: Mapping[str, tuple[str, ...]] = {
    "lambda:GetPolicy": ("lambda:GetPolicy",),
    "apigateway:GetResources": ("apigateway:GetResources", "apigateway:total"),
}
"""The buckets an operation draws from, when not just its service's default below."""

DEFAULT_BUCKETS: Mapping[str, tuple[str, ...]] = {
    "lambda": ("lambda:control",),
    "apigateway": ("apigateway:total",),
    "apigatewayv2": ("apigateway:total",),
}

REPAIR_CONCURRENCY = 4
"""MaxConcurrency of the state machine's "Repair each function" Map (a test keeps them equal): each
repair Lambda paces its calls at 1/REPAIR_CONCURRENCY of the quotas, so one execution's Map keeps
to them whatever AWS's latency."""

THROTTLE_ROUNDS = 4
"""Times a call throttled beyond botocore's own retries is tried again after the bucket pauses."""
THROTTLE_PAUSE_SECONDS = 2.0
"""The first pause after such a throttle; it doubles each round (2, 4, 8 s)."""


class TokenBucket:
    """`rate` calls per second with at most `burst` at once, safe to share between threads.

    A generic cell-rate algorithm: `_next` is the time the bucket is empty again. A caller
    reserves its slot under the lock and sleeps outside it, so waiting threads never hold each
    other up and every slot is given out exactly once.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = clock()
        self.waited = 0.0
        """Seconds callers spent waiting in total (for benchmarks and logs)."""

    def reserve(self) -> float:
        """Take the next free slot; the seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(self._next, now)
            wait = max(0.0, start - (self.burst - 1) * self._interval - now)
            self._next = start + self._interval
            self.waited += wait
            return wait

    def acquire(self) -> float:
        """Wait for a slot; the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """No slot before `seconds` from now, and no burst right after: AWS said slow down."""
        with self._lock:
            resume = self._clock() + seconds + (self.burst - 1) * self._interval
            self._next = max(self._next, resume)


class Pacer:
    """A token bucket per quota of one account and region: `share` of its rate, `burst_share` of its burst."""

    def __init__(
        self,
        share: float = 1.0,
        quotas: Mapping[str, Quota] = QUOTAS,
        *,
        burst_share: float = 0.5,
        rounds: int = THROTTLE_ROUNDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a quota share is more than 0 and at most 1, not {share}")
        self.share = share
        self.rounds = max(1, rounds)
        # Half of AWS's burst: AWS's bucket then never runs dry, and a call that latency jitter
        # brings in a little early still finds a token.
        self.buckets = {
            name: TokenBucket(
                quota.rate * share, max(1, int(quota.burst * burst_share)), clock=clock, sleep=sleep
            )
            for name, quota in quotas.items()
        }
        self._sleep = sleep

    @classmethod
    def one_of(cls, processes: int, share: float, burst: int = 3) -> Pacer:
        """The pacer of one of `processes` that together keep to `share` of Lambda's quotas.

        For the repair Lambdas a Map runs at once. Each gets `share / processes` of every rate,
        and a small burst of its own so that a repair's reads and writes (up to two statements:
        read, write, re-read, write, re-read) never wait; all of them at once, processes x burst
        calls, stay within the burst AWS allows (undocumented: assumed one second of the rate).
        API Gateway is read once per execution, by the resolve step: its few calls fit in API
        Gateway's documented burst of 40 and are not paced.
        """
        quotas = {
            name: Quota(quota.rate, burst) for name, quota in QUOTAS.items() if name.startswith("lambda:")
        }
        return cls(share / processes, quotas, burst_share=1.0, rounds=1)

    def _buckets(self, service: str, operation: str) -> tuple[TokenBucket, ...]:
        names = BUCKETS_BY_OPERATION.get(f"{service}:{operation}") or DEFAULT_BUCKETS.get(service, ())
        return tuple(self.buckets[name] for name in names if name in self.buckets)

    def wait(self, service: str, operation: str) -> None:
        """Wait until the call may be made under every quota it counts against."""
        for bucket in self._buckets(service, operation):
            bucket.acquire()

    def call(
        self,
        service: str,
        operation: str,
        make_call: Callable[[], T],
        throttled: Callable[[BaseException], bool],
    ) -> T:
        """`make_call()` paced; throttled beyond the SDK's retries, pause the buckets and try again.

        After `rounds` rounds (THROTTLE_ROUNDS: about a minute with the SDK's own backoff) the
        throttling error is raised: AWS has been refusing for longer than any pacing explains.
        """
        pause = THROTTLE_PAUSE_SECONDS
        for round_ in range(self.rounds):
            self.wait(service, operation)
            try:
                return make_call()
            except Exception as exc:
                if round_ == self.rounds - 1 or not throttled(exc):
                    raise
            buckets = self._buckets(service, operation)
            for bucket in buckets:
                bucket.pause(pause)
            if not buckets:  # nothing to pause: the retry still waits
                self._sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")  # pragma: no cover


def unlimited() -> Pacer:
    """No quota and no round beyond the SDK's retries: calls made exactly as the SDK makes them.

    What an adapter uses unless given a pacer: a single Lambda invocation calls one at a time (its
    calls take longer than a slot), and its retries beyond the SDK's are the state machine's.
    """
    return Pacer(quotas={}, rounds=1)
