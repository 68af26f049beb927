"""Run permheal's real handlers when moto's Lambda is invoked (moto without Docker only echoes).

`install()` patches moto's Lambda `invoke` so a function whose Handler is `permheal.handlers.*`
runs in this process with its configured environment, and answers like Lambda: the return value
as JSON, or `X-Amz-Function-Error: Unhandled` with `{"errorType", "errorMessage"}` so Step
Functions sees the exception's class name as the error, as it does on AWS.

What a run prints is what Lambda would ship to the function's CloudWatch Logs stream: it still
reaches stdout, and `log_observers` get it; `install()` adds `metrics.forward_emf`, which turns its
Embedded Metric Format lines into CloudWatch metrics, as CloudWatch does on AWS.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
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
log_observers: list[Callable[[LocalContext, str], None]] = []
"""Called with (context, what the run printed) after each run, in the function's environment."""


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


def install(extra_env: dict[str, str] | None = None, *, emf_metrics: bool = True) -> None:
    """Patch moto's Lambda backends; `extra_env` is added to every handler's environment.

    With `emf_metrics`, the EMF lines a run prints become CloudWatch metrics (`metrics.forward_emf`).
    """
    from permheal_local.metrics import forward_emf

    _serialize_workflow_clients()
    if forward_emf in log_observers:
        log_observers.remove(forward_emf)
    if emf_metrics:
        log_observers.append(forward_emf)
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
    from permheal_local.metrics import forward_emf

    if forward_emf in log_observers:
        log_observers.remove(forward_emf)
    if builtins.print is _print:
        setattr(builtins, "print", _PRINT)  # noqa: B010
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
        printed = io.StringIO()
        try:
            module = importlib.import_module(module_name)
            with _powertools_settings(module, env), capture_prints(printed):
                result: Any = getattr(module, attribute)(event, context)
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
        for log_observer in list(log_observers):
            log_observer(context, printed.getvalue())
        for observer in list(observers):
            observer(context.function_name, event, outcome)
        return result


_CAPTURE = threading.local()
"""Per thread: where the innermost `capture_prints` keeps what that thread prints (None: nowhere)."""
_PRINT = builtins.print


def _print(
    *values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """`print`, which also keeps a handler run's own stdout lines: output goes where it always went."""
    kept: io.StringIO | None = getattr(_CAPTURE, "kept", None)
    if kept is not None and (file is None or file is sys.stdout):
        kept.write((" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end))
    _PRINT(*values, sep=sep, end=end, file=file, flush=flush)


@contextmanager
def capture_prints(kept: io.StringIO) -> Iterator[None]:
    """Keep in `kept` what this thread print()s to stdout meanwhile: one invocation's share of stdout.

    Lambda gives each invocation its own stdout; here handlers share the process's. sys.stdout is never
    swapped (pytest swaps it between tests while workflows still run, and a swap cannot be undone
    safely from another thread): `print` itself keeps the running thread's lines, other threads'
    output is untouched, and a nested run keeps its own. Powertools prints its EMF with print().
    """
    if builtins.print is not _print:
        setattr(builtins, "print", _print)  # noqa: B010  (mypy refuses assigning to an overloaded builtin)
    outer = getattr(_CAPTURE, "kept", None)
    _CAPTURE.kept = kept
    try:
        yield
    finally:
        _CAPTURE.kept = outer


@contextmanager
def _powertools_settings(module: ModuleType, env: dict[str, str]) -> Iterator[None]:
    """The handler module's Powertools `Metrics` take this function's namespace and service for the run.

    Powertools reads POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME when `Metrics()` is created:
    on AWS in each function's own cold start, in its environment; here once per process, under whichever
    environment imported the module first (a test's, another function's). Unset names keep the current one.
    """
    from aws_lambda_powertools import Metrics

    singletons = {id(value): value for value in vars(module).values() if isinstance(value, Metrics)}
    saved = [(one, one.namespace, one.service) for one in singletons.values()]
    for one in singletons.values():
        one.namespace = env.get("POWERTOOLS_METRICS_NAMESPACE", one.namespace)
        one.service = env.get("POWERTOOLS_SERVICE_NAME", one.service)
    try:
        yield
    finally:
        for one, namespace, service in saved:
            one.namespace, one.service = namespace, service


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
