"""Powertools singletons shared by the handlers (service name and namespace come from POWERTOOLS_*).

Tracing has two levels. Always: with `Tracing: Active` Lambda itself records each invocation's
segment (initialization, invocation, overhead) and Step Functions links the states, with no SDK in
the function. Opt-in (`TraceAwsCalls=true`, config.trace_aws_calls): Powertools' Tracer adds a
`## lambda_handler` subsegment and one subsegment per AWS call (which call was slow, throttled or
failed). The X-Ray SDK it needs (aws_xray_sdk, wrapt, asyncio, patching botocore) costs a cold start
about a sixth of its imports (benchmarks/coldstart.py), so it is imported only when that is on, at
the first call: nothing here reads the environment at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

from permheal.config import trace_aws_calls

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

H = TypeVar("H", bound=Callable[..., Any])

logger = Logger()
metrics = Metrics()


@functools.cache
def tracer() -> Tracer:
    """Powertools' Tracer, created once (this is what imports the X-Ray SDK)."""
    from aws_lambda_powertools.tracing import Tracer

    # botocore is the only I/O permheal does; patching every library X-Ray supports (the default)
    # imports the ones that happen to be installed (sqlite3, requests, httplib, ...).
    return Tracer(patch_modules=("botocore",))


def traced(handler: H) -> H:
    """The handler under Powertools' Tracer when PERMHEAL_TRACE_AWS_CALLS is true, else as it is.

    Decided at the first call (the variable cannot change during a sandbox's life). Responses are not
    recorded: they carry policy statements and API ids that belong in the logs, not in traces.
    """

    @functools.cache
    def chosen() -> Callable[..., Any]:
        if not trace_aws_calls():
            return handler
        return tracer().capture_lambda_handler(handler, capture_response=False)

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> Any:
        return chosen()(event, context)

    return cast(H, run)
