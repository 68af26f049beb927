"""The pacer: calls spaced at the configured rate, bursts bounded, slots unique across threads."""

from __future__ import annotations

import itertools
import threading

import pytest

from permheal.config import Settings
from permheal.errors import ConfigError
from permheal.pacing import QUOTAS, THROTTLE_ROUNDS, Pacer, Quota, TokenBucket


class FakeClock:
    """A clock that only moves when someone sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def start_times(bucket: TokenBucket, clock: FakeClock, calls: int) -> list[float]:
    """When each of `calls` sequential callers gets to make its call."""
    times = []
    for _ in range(calls):
        bucket.acquire()
        times.append(clock.now)
    return times


def test_calls_are_spaced_at_the_rate() -> None:
    # Given a bucket of 10 calls per second, no burst
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)

    # When 21 calls are made back to back
    times = start_times(bucket, clock, 21)

    # Then the first goes at once and each next one 0.1 s later: 20 intervals in 2 s
    assert times[0] == 100.0
    assert times[-1] == pytest.approx(102.0)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(times))


def test_a_burst_goes_at_once_then_the_rate_holds() -> None:
    # Given a bucket of 2 calls per second with a burst of 5, idle so far
    clock = FakeClock()
    bucket = TokenBucket(2, 5, clock=clock, sleep=clock.sleep)

    # When 9 calls are made back to back
    times = start_times(bucket, clock, 9)

    # Then 5 go at once, then one every 0.5 s
    assert times[:5] == [100.0] * 5
    assert times[5:] == pytest.approx([100.5, 101.0, 101.5, 102.0])


def test_over_any_window_no_more_than_rate_times_window_plus_burst_calls_start() -> None:
    # Given a bucket of 15/s, burst 3, and callers arriving irregularly
    clock = FakeClock()
    bucket = TokenBucket(15, 3, clock=clock, sleep=clock.sleep)
    times = []
    for index in range(200):
        clock.now += (index % 7) * 0.013  # some callers come late, most come at once
        bucket.acquire()
        times.append(clock.now)

    # Then every window [t, t + w] holds at most 15 * w + 3 starts (the token bucket's promise)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            assert j - i + 1 <= 15 * window + 3 + 1e-9


def test_an_idle_bucket_refills_only_up_to_its_burst() -> None:
    # Given a bucket of 10/s, burst 2, used once and then idle for a minute
    clock = FakeClock()
    bucket = TokenBucket(10, 2, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 60

    # When 4 calls come at once
    times = start_times(bucket, clock, 4)

    # Then only 2 go at once: idle time does not bank more than the burst
    assert times == pytest.approx([160.0, 160.0, 160.1, 160.2])


def test_threads_sharing_a_bucket_never_get_the_same_slot() -> None:
    # Given one bucket of 20/s shared by 8 threads, on a clock that does not move while they wait
    clock = FakeClock()
    bucket = TokenBucket(20, clock=clock, sleep=lambda _: None)
    waits: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(50):
            wait = bucket.reserve()
            with lock:
                waits.append(wait)

    # When they all reserve slots at the same instant
    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the 400 slots are exactly 0, 0.05, ..., 19.95 s away: none given twice, none skipped
    assert sorted(round(w, 6) for w in waits) == [round(i * 0.05, 6) for i in range(400)]
    assert bucket.waited == pytest.approx(sum(waits))


def test_a_pause_delays_every_caller_and_cancels_the_burst() -> None:
    # Given a bucket of 10/s with a burst of 4, idle
    clock = FakeClock()
    bucket = TokenBucket(10, 4, clock=clock, sleep=clock.sleep)

    # When AWS throttles and the bucket pauses for 2 s
    bucket.pause(2.0)
    times = start_times(bucket, clock, 3)

    # Then the next calls start 2 s later, one per interval, not as a burst
    assert times == pytest.approx([102.0, 102.1, 102.2])


def test_a_bucket_needs_a_positive_rate_and_burst() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="burst >= 1"):
        TokenBucket(1, 0)


# ----------------------------------------------------------------------------------------- Pacer


def test_the_pacer_runs_each_quota_at_its_share() -> None:
    # Given a pacer at 90 % of AWS's quotas
    pacer = Pacer(0.9)

    # Then each bucket's rate is 90 % of the documented quota, with its burst
    assert pacer.buckets["lambda:GetPolicy"].rate == pytest.approx(13.5)
    assert pacer.buckets["apigateway:total"].rate == pytest.approx(9.0)
    # And half of AWS's burst, so AWS's own bucket never runs dry
    assert pacer.buckets["apigateway:total"].burst == QUOTAS["apigateway:total"].burst // 2
    assert pacer.buckets["apigateway:GetResources"].burst == 2
    assert pacer.buckets["lambda:GetPolicy"].burst == 1


@pytest.mark.parametrize("share", [0.0, -0.5, 1.01])
def test_a_share_outside_0_to_1_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        Pacer(share)


def test_get_resources_counts_against_its_own_quota_and_the_total() -> None:
    # Given a pacer with a GetResources quota of 1/s and a total of 100/s
    clock = FakeClock()
    quotas = {"apigateway:GetResources": Quota(1.0), "apigateway:total": Quota(100.0)}
    pacer = Pacer(quotas=quotas, clock=clock, sleep=clock.sleep)

    # When GetResources is called 3 times and GetStages 3 times
    for _ in range(3):
        pacer.wait("apigateway", "GetResources")
    after_resources = clock.now
    for _ in range(3):
        pacer.wait("apigateway", "GetStages")

    # Then GetResources went at 1/s, GetStages only waited for the total's few slots
    assert after_resources == pytest.approx(102.0)
    assert clock.now - after_resources < 0.05
    assert pacer.buckets["apigateway:total"].waited < 0.05


def test_lambda_reads_and_writes_draw_from_separate_quotas() -> None:
    # Given a pacer at 1 call/s per quota
    clock = FakeClock()
    quotas = {"lambda:GetPolicy": Quota(1.0), "lambda:control": Quota(1.0)}
    pacer = Pacer(quotas=quotas, clock=clock, sleep=clock.sleep)

    # When a GetPolicy and an AddPermission are made
    pacer.wait("lambda", "GetPolicy")
    pacer.wait("lambda", "AddPermission")

    # Then neither waits for the other; a second AddPermission waits a second
    assert clock.now == 100.0
    pacer.wait("lambda", "RemovePermission")
    assert clock.now == pytest.approx(101.0)


class Throttled(Exception):
    pass


def test_a_throttled_call_is_retried_after_a_pause_and_its_result_returned() -> None:
    # Given a call AWS throttles twice (beyond the SDK's own retries) and then answers
    clock = FakeClock()
    pacer = Pacer(quotas={"lambda:GetPolicy": Quota(10.0)}, clock=clock, sleep=clock.sleep)
    answers: list[Exception | str] = [Throttled(), Throttled(), "policy"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    # When it is made through the pacer
    result = pacer.call("lambda", "GetPolicy", call, lambda exc: isinstance(exc, Throttled))

    # Then it returns the answer after pausing 2 s, then 4 s
    assert result == "policy"
    assert clock.sleeps == pytest.approx([2.0, 4.0])


def test_a_call_throttled_every_round_raises_and_other_errors_are_not_retried() -> None:
    pacer = Pacer(quotas={"lambda:GetPolicy": Quota(10.0)}, sleep=lambda _: None)
    calls: list[int] = []

    def throttled_call() -> str:
        calls.append(1)
        raise Throttled()

    with pytest.raises(Throttled):
        pacer.call("lambda", "GetPolicy", throttled_call, lambda exc: isinstance(exc, Throttled))
    assert len(calls) == THROTTLE_ROUNDS

    def failing_call() -> str:
        calls.append(1)
        raise KeyError("not throttling")

    calls.clear()
    with pytest.raises(KeyError):
        pacer.call("lambda", "GetPolicy", failing_call, lambda exc: isinstance(exc, Throttled))
    assert len(calls) == 1


def test_the_processes_of_one_map_together_keep_to_lambdas_quotas() -> None:
    # Given the pacers of 4 processes sharing 95 % of the quotas
    pacer = Pacer.one_of(4, 0.95)

    # Then together they call at most 95 % of each Lambda rate, each with a burst for one repair
    for name in ("lambda:GetPolicy", "lambda:control"):
        bucket = pacer.buckets[name]
        assert 4 * bucket.rate == pytest.approx(0.95 * QUOTAS[name].rate)
        assert bucket.burst == 3
    # And API Gateway, read once per execution by the resolve step, is not paced there
    assert not any(name.startswith("apigateway") for name in pacer.buckets)
    assert pacer.rounds == 1  # longer waits are the state machine's (no Lambda time spent waiting)


# ---------------------------------------------------------------------------------------- settings


def test_the_quota_share_is_read_from_the_environment_and_defaults_under_the_quota() -> None:
    assert Settings.from_env({}).quota_share == 0.95
    assert Settings.from_env({"PERMHEAL_QUOTA_SHARE": "0.5"}).quota_share == 0.5
    assert Settings.from_env({"PERMHEAL_QUOTA_SHARE": "1"}).quota_share == 1.0


@pytest.mark.parametrize("raw", ["0", "-0.2", "1.5", "half", "nan", "inf"])
def test_a_quota_share_outside_0_to_1_is_a_config_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="PERMHEAL_QUOTA_SHARE"):
        Settings.from_env({"PERMHEAL_QUOTA_SHARE": raw})
