"""Run permheal's real handlers when moto's Lambda is invoked (moto without Docker only echoes).

`install()` patches moto's Lambda `invoke` so a function whose Handler is `permheal.handlers.*`
runs in this process with its configured environment, and answers like Lambda: the return value
as JSON, or `X-Amz-Function-Error: Unhandled` with `{"errorType", "errorMessage"}` so Step
Functions sees the exception's class name as the error, as it does on AWS.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend

HANDLER_PACKAGE = "permheal.handlers."
_LOCK = threading.RLock()  # handlers run one at a time: they share os.environ
_ORIGINALS: dict[type[Any], Any] = {}
invocations: list[tuple[str, float]] = []
"""(function name, seconds) of every handler run, for timelines and benchmarks."""
observers: list[Callable[[str, Any, Any], None]] = []
"""Called with (function name, event, result-or-exception) after each run: the demo's progress."""


@dataclass
class LocalContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def install(extra_env: dict[str, str] | None = None) -> None:
    """Patch moto's Lambda backends; `extra_env` is added to every handler's environment."""
    _serialize_workflow_clients()
    for backend in (LambdaBackend, LambdaSimpleBackend):
        if backend not in _ORIGINALS:
            _ORIGINALS[backend] = backend.__dict__.get("invoke", backend.invoke)
        backend.invoke = _make_invoke(_ORIGINALS[backend], dict(extra_env or {}))  # type: ignore[method-assign]


class _SerializedBoto3:
    """moto's Step Functions interpreter makes a boto3 client per task from the shared default session,
    from one thread per execution; botocore's session is not thread-safe, so concurrent executions
    (a storm, a Map) can crash a step in moto where AWS would not. Creating clients one at a time, under
    the same lock the handlers run under, fixes it.
    """

    def __init__(self, boto3: Any):
        self._boto3 = boto3

    def client(self, *args: Any, **kwargs: Any) -> Any:
        # The handlers' lock: they create clients too, from the same default session.
        with _LOCK:
            return self._boto3.client(*args, **kwargs)


def _serialize_workflow_clients() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    current = getattr(boto_client, "boto3")  # noqa: B009  (not re-exported: mypy would refuse the attribute)
    if not isinstance(current, _SerializedBoto3):
        setattr(boto_client, "boto3", _SerializedBoto3(current))  # noqa: B010


def uninstall() -> None:
    for backend, original in _ORIGINALS.items():
        backend.invoke = original  # type: ignore[method-assign]
    _ORIGINALS.clear()


def _make_invoke(original: Any, extra_env: dict[str, str]) -> Any:
    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes | str | None:
        fn = self.get_function(function_name, qualifier)
        if not str(fn.handler or "").startswith(HANDLER_PACKAGE):
            return original(self, function_name, qualifier, body, headers, response_headers)  # type: ignore[no-any-return]
        event = json.loads(body) if body else {}
        context = LocalContext(fn.function_name, fn.function_arn, int(fn.memory_size or 256))
        env = {**{k: str(v) for k, v in (fn.environment_vars or {}).items()}, **extra_env}
        payload = run_handler(fn.handler, event, context, env, response_headers)
        encoded = json.dumps(payload).encode()
        response_headers["Content-Length"] = str(len(encoded))
        return encoded

    return invoke


def run_handler(
    handler: str, event: Any, context: LocalContext, env: dict[str, str], response_headers: dict[str, str]
) -> Any:
    """Import and call `module.function` like the Lambda runtime; errors become Lambda error payloads.

    With an AWS model installed (permheal_local.aws_model), an invocation that finds no idle
    execution environment of its function first waits the modelled cold start, and the handler's
    CPU time is stretched to its memory's CPU share.
    """
    from permheal_local import aws_model

    module_name, _, attribute = handler.rpartition(".")
    model = aws_model.current()
    if model is not None and not model.active:
        model = None
    if model is None:
        return _run(module_name, attribute, event, context, env, response_headers)
    # Before the lock: concurrent invocations each find (or start) an environment, as on AWS.
    record = model.start_invocation(context.function_name, module_name)
    try:
        waiting = time.perf_counter()
        with _LOCK:
            record.queued_ms = (time.perf_counter() - waiting) * 1000
            with contextlib.suppress(Exception):  # importing here is the cold start's, not the handler's
                importlib.import_module(module_name)  # (a failing import fails again in _run, reported)
            mark = model.cpu_mark()
            result = _run(module_name, attribute, event, context, env, response_headers)
            cpu = model.cpu_since(mark)
        model.slow_to_memory(record, context.memory_limit_in_mb, cpu)  # outside the lock, as it waits
        return result
    finally:
        model.end_invocation(context.function_name)


def _run(
    module_name: str,
    attribute: str,
    event: Any,
    context: LocalContext,
    env: dict[str, str],
    response_headers: dict[str, str],
) -> Any:
    with _LOCK, _environment(env):
        started = time.perf_counter()
        try:
            result: Any = getattr(importlib.import_module(module_name), attribute)(event, context)
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
            outcome: Any = exc
        else:
            outcome = result
        finally:
            invocations.append((context.function_name, time.perf_counter() - started))
        for observer in list(observers):
            observer(context.function_name, event, outcome)
        return result


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
