"""Independent AWS reads made at once, their answers (and failures) taken in sequential order.

Time to heal is mostly round trips: reads that do not depend on each other overlap instead of
queueing. Each call gets its own short-lived thread (a call that itself runs calls together never
waits on a pool its caller holds), every thread is joined before anything is returned or raised
(no read outlives the step), and the caller takes the outcomes in the order a sequential run
would have made the calls: the first failure in that order is the one raised, once, exactly as
the sequential code raised it; the others are dropped, as a sequential run would not have made
those calls. Only reads run together (and writes to independent items, such as the routes
index's): a policy write runs alone, after the reads it depends on.

boto3 clients are safe to share between threads; sessions are not, so clients are made under
`adapters.aws`'s lock, and a caller builds its adapters before starting calls that use them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
THREAD_PREFIX = "permheal-read-"
"""Names the threads reads run in (the local AWS model counts their CPU as the handler's)."""


class Outcome(Generic[T]):
    """A call's answer, or the exception it raised, re-raised unchanged by `get`."""

    __slots__ = ("_error", "_value")

    def __init__(self, value: T | None = None, error: BaseException | None = None) -> None:
        self._value = value
        self._error = error

    def get(self) -> T:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def capture(call: Callable[[], T]) -> Outcome[T]:
    """Run `call` here and keep its answer or its exception for later."""
    try:
        return Outcome(call())
    except Exception as exc:  # re-raised by Outcome.get, where the sequential code raised it
        return Outcome(error=exc)


def run_all(*calls: Callable[[], Any]) -> tuple[Outcome[Any], ...]:
    """Run the calls at once (the first in this thread) and return their outcomes, in order."""
    if len(calls) <= 1:
        return tuple(capture(call) for call in calls)
    outcomes: list[Outcome[Any]] = [Outcome()] * len(calls)

    def work(index: int, call: Callable[[], Any]) -> None:
        outcomes[index] = capture(call)

    threads = [
        threading.Thread(target=work, args=(index, call), name=f"{THREAD_PREFIX}{index}", daemon=True)
        for index, call in enumerate(calls[1:], start=1)
    ]
    for thread in threads:
        thread.start()
    try:
        work(0, calls[0])
    finally:
        for thread in threads:
            thread.join()
    return tuple(outcomes)


def gather(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The calls' answers in order; the first failure in that order is raised (after all finished)."""
    return [outcome.get() for outcome in run_all(*calls)]
