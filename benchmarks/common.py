"""What several benchmarks share: a hermetic local AWS, an AWS call counter, percentiles, list prices."""

from __future__ import annotations

import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
    "POWERTOOLS_SERVICE_NAME": "permheal",
    "POWERTOOLS_METRICS_NAMESPACE": "Permheal",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
_FOREIGN = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "PERMHEAL_")


@contextmanager
def hermetic_env(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Fake credentials, one region, nothing that could reach a real account or change permheal's mode."""
    with mock.patch.dict(os.environ):
        for name in list(os.environ):
            if name.startswith(_FOREIGN) or name.startswith("AWS_ENDPOINT_URL_"):
                del os.environ[name]
        os.environ.update(FAKE_ENV)
        os.environ.update(extra or {})
        yield


@contextmanager
def moto_aws() -> Iterator[None]:
    """moto in process with Lambda policies made faithful to AWS (no permheal stack)."""
    from moto import mock_aws

    from permheal_local import faithful_apigateway, faithful_apigatewayv2, faithful_lambda
    from permheal_local.aws import MOTO_CONFIG

    with hermetic_env(), mock_aws(config=MOTO_CONFIG):
        installed = faithful_lambda.is_installed()
        faithful_lambda.install()
        faithful_apigateway.install()
        faithful_apigatewayv2.install()
        forget_clients()
        try:
            yield
        finally:
            forget_clients()
            if not installed:
                faithful_lambda.uninstall()
                faithful_apigateway.uninstall()
                faithful_apigatewayv2.uninstall()


ADAPTER_MODULES = (
    "permheal.adapters.account",
    "permheal.adapters.apigateway",
    "permheal.adapters.apigatewayv2",
    "permheal.adapters.lambda_policy",
    "permheal.adapters.ledger",
    "permheal.adapters.workflow",
    "permheal.adapters.deadletter",
)


@dataclass
class CallCounter:
    """Every AWS call permheal's adapters make, counted with botocore's before-call/after-call hooks.

    Adapters may reuse clients for the life of the process, so each client gets the hooks once and
    loses them when the counter is uninstalled.
    """

    calls: Counter[str] = field(default_factory=Counter)
    seconds_in_calls: float = 0.0
    seconds_by_call: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _started: dict[int, tuple[str, float]] = field(default_factory=dict)
    _hooked: dict[int, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.seconds_by_call.clear()
        self.seconds_in_calls = 0.0

    def _before(self, model: Any, context: Any = None, **_: Any) -> None:
        name = f"{model.service_model.service_name}:{model.name}"
        self.calls[name] += 1
        self._started[id(context)] = (name, time.perf_counter())

    def _after(self, context: Any = None, **_: Any) -> None:
        started = self._started.pop(id(context), None)
        if started is not None:
            seconds = time.perf_counter() - started[1]
            self.seconds_in_calls += seconds
            self.seconds_by_call[started[0]] += seconds

    def wrap(self, create: Callable[..., Any]) -> Callable[..., Any]:
        def counting_client(service: str, region: str | None = None) -> Any:
            client = create(service, region)
            if id(client) not in self._hooked:
                client.meta.events.register("before-call", self._before)
                client.meta.events.register("after-call", self._after)
                self._hooked[id(client)] = client
            return client

        return counting_client

    @contextmanager
    def installed(self) -> Iterator[CallCounter]:
        """Patch `client` in every adapter module, as `permheal.adapters.aws.client` is imported by name."""
        import importlib

        from permheal.adapters import aws

        patches = [
            mock.patch.object(importlib.import_module(name), "client", self.wrap(aws.client))
            for name in ADAPTER_MODULES
        ]
        for patch in patches:
            patch.start()
        try:
            yield self
        finally:
            for patch in reversed(patches):
                patch.stop()
            for client in self._hooked.values():
                client.meta.events.unregister("before-call", self._before)
                client.meta.events.unregister("after-call", self._after)
            self._hooked.clear()


def forget_clients() -> None:
    """Drop clients permheal cached for the process, so a new local AWS starts from fresh ones."""
    from permheal.adapters import aws

    forget = getattr(aws, "forget_clients", None)
    if forget is not None:
        forget()


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p50 of 20 values is the 10th smallest, p95 the 19th)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


# --- the deployed stack in the local AWS ---------------------------------------------------------------

HANDLER_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING"}
"""Handler logs are Lambda's CloudWatch Logs, not benchmark output."""


@contextmanager
def local_stack() -> Iterator[Any]:
    """template.yaml deployed into in-process moto with the real handlers (allowlist `*`)."""
    import warnings

    from permheal_local.aws import local_aws

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Powertools: "No application metrics to publish"
        with hermetic_env(), local_aws({"AllowedApis": "*"}, handler_env=HANDLER_ENV) as aws:
            yield aws


def subscribe_queue(aws: Any, name: str = "on-call") -> str:
    """An SQS queue subscribed to the stack's topic: every notification on-call would get."""
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=aws.stack.topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def drain(aws: Any, queue_url: str) -> int:
    """How many messages were waiting (and remove them)."""
    sqs = aws.client("sqs")
    count = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return count
        count += len(messages)
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def wait_until_stopped(aws: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    from permheal_local.aws import wait_until_stopped

    return wait_until_stopped(aws.client("stepfunctions"), execution_arn, timeout, poll=0.005)


def all_executions(aws: Any, wait: bool = True, timeout: float = 120) -> list[dict[str, Any]]:
    """Every execution of the stack's state machine, once none is running."""
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=aws.stack.state_machine_arn)
        listed = [e for page in pages for e in page["executions"]]
        if not wait or all(e["status"] != "RUNNING" for e in listed):
            return listed
        if time.monotonic() > deadline:
            raise TimeoutError(f"executions still running after {timeout}s")
        time.sleep(0.02)


def history(aws: Any, execution_arn: str) -> list[dict[str, Any]]:
    sfn = aws.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def state_transitions(events: Sequence[dict[str, Any]]) -> int:
    """What Step Functions Standard bills: one transition per state entered (Map iterations included)."""
    return sum(1 for event in events if event["type"].endswith("StateEntered"))


def sns_publishes(events: Sequence[dict[str, Any]]) -> int:
    return sum(
        1
        for event in events
        if event["type"] == "TaskScheduled"
        and event.get("taskScheduledEventDetails", {}).get("resourceType") == "sns"
    )


def function_memory(aws: Any) -> dict[str, int]:
    """Deployed function name → MemorySize (MB), as template.yaml sets it."""
    lam = aws.client("lambda")
    return {
        name: int(lam.get_function_configuration(FunctionName=name)["MemorySize"])
        for name in aws.stack.functions.values()
    }


@dataclass
class LambdaUsage:
    """Handler runs of the local runtime since `start()`: invocations and GB-seconds (1 ms billing)."""

    memory_mb: dict[str, int]
    mark: int = 0

    def start(self) -> None:
        from permheal_local import lambda_runtime

        self.mark = len(lambda_runtime.invocations)

    def since_start(self) -> dict[str, Any]:
        from permheal_local import lambda_runtime

        runs = lambda_runtime.invocations[self.mark :]
        by_function: Counter[str] = Counter(name for name, _ in runs)
        billed_ms = [math.ceil(seconds * 1000) for _, seconds in runs]
        gb_seconds = sum(
            ms / 1000 * self.memory_mb.get(name, 128) / 1024
            for (name, _), ms in zip(runs, billed_ms, strict=True)
        )
        ms_by_function: defaultdict[str, float] = defaultdict(float)
        for name, seconds in runs:
            ms_by_function[name] += seconds * 1000
        return {
            "invocations": len(runs),
            "by_function": dict(sorted(by_function.items())),
            "ms_by_function": {name: round(ms, 1) for name, ms in sorted(ms_by_function.items())},
            "billed_ms": sum(billed_ms),
            "gb_seconds": gb_seconds,
        }
