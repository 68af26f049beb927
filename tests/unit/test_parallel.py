"""permheal.parallel: reads made at once, outcomes taken in the order a sequential run made them."""

from __future__ import annotations

import threading

import pytest

from permheal.errors import AwsCallError, NotFoundError
from permheal.parallel import capture, gather, run_all


def test_the_calls_run_at_the_same_time() -> None:
    # Given calls that can only finish when all of them have started (made one at a time, the
    # first would wait for the others forever: the barrier breaks after its timeout)
    barrier = threading.Barrier(3, timeout=30)

    def meet(n: int) -> int:
        barrier.wait()
        return n

    # When they run together
    # Then every one finished, and the answers are in the calls' order
    assert gather([lambda: meet(1), lambda: meet(2), lambda: meet(3)]) == [1, 2, 3]


def test_the_first_failure_in_call_order_is_raised_once_after_every_call_finished() -> None:
    # Given a second call failing at once and a third failing later, while a fourth succeeds slowly
    second, third = NotFoundError("second"), AwsCallError("third")
    finished: list[str] = []
    release = threading.Event()

    def fail_now() -> None:
        raise second

    def fail_later() -> None:
        release.wait(30)
        raise third

    def succeed_slowly() -> str:
        release.set()
        finished.append("fourth")
        return "fourth"

    # When they run together
    with pytest.raises(NotFoundError) as raised:
        gather([lambda: "first", fail_now, fail_later, succeed_slowly])
    # Then the exception is the second call's own object (its translation unchanged), and no call
    # was still running when it was raised
    assert raised.value is second
    assert finished == ["fourth"]


def test_outcomes_keep_each_failure_for_where_the_sequential_code_would_raise_it() -> None:
    # Given one call failing and one succeeding
    failing, fine = run_all(lambda: int("x"), lambda: "ok")
    # Then nothing is raised until the failing outcome is asked for
    assert fine.get() == "ok"
    with pytest.raises(ValueError):
        failing.get()


def test_calls_made_together_inside_a_call_made_together_do_not_wait_on_each_other() -> None:
    # Given calls that themselves run calls together, all meeting at one barrier
    barrier = threading.Barrier(4, timeout=30)

    def inner(n: int) -> int:
        barrier.wait()
        return n

    def outer(base: int) -> list[int]:
        return gather([lambda: inner(base), lambda: inner(base + 1)])

    # Then every inner call ran at once (none queued behind its caller) and the order is kept
    assert gather([lambda: outer(0), lambda: outer(2)]) == [[0, 1], [2, 3]]


def test_a_single_call_runs_in_the_callers_thread() -> None:
    (outcome,) = run_all(threading.get_ident)
    assert outcome.get() == threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        capture(lambda: 1 // 0).get()
