"""The Local AWS: moto with permheal's stack from template.yaml, plus the log delivery moto lacks.

One module shared by `permheal demo`, `permheal local-aws` and the tests. moto stores execution
logs but neither applies subscription filter patterns nor delivers to a Lambda without Docker
(aws-facts.md §7), so `LocalAws.flush_logs()` does what CloudWatch Logs does: it reads the
subscription the template declares (account policy or per-group filters), keeps the events its
pattern matches, and invokes the deployed detector with a real awslogs payload. Delivery is an
explicit call, never a background race, so tests and the demo see it happen when they ask.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from unittest import mock

from permheal_local.builder import ACCOUNT, REGION, World
from permheal_local.stack import TEMPLATE, LocalStack, deploy

if TYPE_CHECKING:
    from moto.core.config import DefaultConfig

    from permheal_local.simulator import ApiGatewaySimulator

MOTO_CONFIG: DefaultConfig = {
    "lambda": {"use_docker": False},
    "stepfunctions": {"execute_state_machine": True},
}
BATCH_LIMIT = 500
"""Events per delivered payload (CloudWatch Logs batches up to 10,000 / 1 MB; smaller is fine)."""

_SUB = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# Environment that would send boto3 somewhere other than the local AWS, or fail without an account.
_FOREIGN_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL")


# --- filter patterns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterPattern:
    """A CloudWatch Logs filter pattern for unstructured events: terms, quoted phrases, `?` alternatives.

    Terms match case-sensitively anywhere in the message. Without `?` every term must occur (AND);
    when every term is written `?term` / `?"a phrase"`, any one of them suffices (OR), as the
    CloudWatch Logs docs define `?ERROR ?WARN`. An empty pattern matches everything. A mix of `?`
    and plain terms, and other syntaxes (JSON `{...}`, space-delimited `[...]`, `-term`,
    `%regex%`), raise ValueError: their meaning is not documented precisely enough to emulate, and
    a guess would deliver the wrong events.
    """

    text: str
    terms: tuple[str, ...] = ()
    any_term: bool = False

    @classmethod
    def parse(cls, text: str) -> FilterPattern:
        terms: list[str] = []
        optional: list[bool] = []
        position = 0
        while position < len(text):
            char = text[position]
            if char.isspace():
                position += 1
                continue
            alternative = char == "?"
            if alternative:
                position += 1
                if position >= len(text) or text[position].isspace():
                    raise ValueError(f"'?' without a term in filter pattern {text!r}")
            if text[position] == '"':
                match = _QUOTED.match(text, position)
                if match is None:
                    raise ValueError(f"unterminated quoted phrase in filter pattern {text!r}")
                term = re.sub(r"\\(.)", r"\1", match[1])
                position = match.end()
            else:
                end = position
                while end < len(text) and not text[end].isspace():
                    end += 1
                term = text[position:end]
                if term[0] in "{[?-%" or '"' in term:
                    raise ValueError(f"unsupported filter pattern syntax {term!r} in {text!r}")
                position = end
            if term:
                terms.append(term)
                optional.append(alternative)
        if any(optional) and not all(optional):
            raise ValueError(f"filter pattern mixes '?' alternatives with required terms: {text!r}")
        return cls(text, tuple(terms), bool(optional) and all(optional))

    def matches(self, message: str) -> bool:
        if self.any_term:
            return any(term in message for term in self.terms)
        return all(term in message for term in self.terms)


# --- the subscription the template declares ---------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """Which log groups feed the detector, through which pattern.

    `log_groups` None means every log group except `excluded` (an account-level policy).
    """

    name: str
    pattern: FilterPattern
    destination: str
    log_groups: frozenset[str] | None = None
    excluded: frozenset[str] = frozenset()

    def covers(self, log_group: str) -> bool:
        if log_group in self.excluded:
            return False
        return self.log_groups is None or log_group in self.log_groups


def subscription_from_template(
    template: Mapping[str, Any], stack: LocalStack, parameters: Mapping[str, str] | None = None
) -> Subscription:
    """The detector's subscription as template.yaml declares it for these parameters."""
    from permheal_local.template import resolve_mappings, resources

    values = {n: str(spec.get("Default", "")) for n, spec in (template.get("Parameters") or {}).items()}
    values.update(parameters or {})
    found = resources(template)
    refs: dict[str, str] = {
        "AWS::StackName": stack.name,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        **{k: v for k, v in values.items()},
    }
    for logical, spec in found.items():
        if spec.get("Type") == "AWS::Logs::LogGroup":
            refs[logical] = _sub((spec.get("Properties") or {}).get("LogGroupName"), refs)

    def destination(value: Any) -> str:
        logical = _get_att_logical(value)
        if logical not in stack.functions:
            raise ValueError(f"subscription destination {value!r} is not a deployed function")
        return stack.functions[logical]

    if values.get("SubscriptionMode", "account-policy") == "account-policy":
        for spec in found.values():
            props = spec.get("Properties") or {}
            if spec.get("Type") != "AWS::Logs::AccountPolicy" or props.get("PolicyType") != (
                "SUBSCRIPTION_FILTER_POLICY"
            ):
                continue
            document = resolve_mappings(template, props.get("PolicyDocument"))
            if isinstance(document, dict) and "Fn::ToJsonString" in document:
                document = document["Fn::ToJsonString"]
            if isinstance(document, str):
                document = json.loads(document)
            excluded = frozenset(_QUOTED.findall(_sub(props.get("SelectionCriteria", ""), refs)))
            return Subscription(
                _sub(props.get("PolicyName"), refs),
                FilterPattern.parse(str(document["FilterPattern"])),
                destination(document["DestinationArn"]),
                None,
                excluded,
            )
        raise ValueError("template declares no SUBSCRIPTION_FILTER_POLICY account policy")
    for key, spec in (template.get("Resources") or {}).items():
        # Fn::ForEach::Name: [identifier, collection, {logical-id template: resource}]
        if not key.startswith("Fn::ForEach::") or not isinstance(spec, list) or len(spec) != 3:
            continue
        for resource in spec[2].values():
            if resource.get("Type") != "AWS::Logs::SubscriptionFilter":
                continue
            props = resolve_mappings(template, resource.get("Properties") or {})
            groups = frozenset(
                g.strip() for g in values.get("ExecutionLogGroups", "").split(",") if g.strip()
            )
            return Subscription(
                _sub(props.get("FilterName"), refs),
                FilterPattern.parse(str(props["FilterPattern"])),
                destination(props["DestinationArn"]),
                groups,
            )
    raise ValueError("template declares no per-log-group subscription filter")


def _sub(value: Any, refs: Mapping[str, str]) -> str:
    """A literal or a `Fn::Sub` string with `${Ref}` names filled in (unknown names left as they are)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        return "" if value is None else str(value)
    return _SUB.sub(lambda m: refs.get(m[1], m[0]), value)


def _get_att_logical(value: Any) -> str:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target.split(".", 1)[0] if isinstance(target, str) else target[0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return str(value)


# --- delivery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One awslogs payload handed to the detector, and what the detector did with it."""

    log_group: str
    log_stream: str
    messages: tuple[str, ...]
    payload: dict[str, Any]
    result: Any = None
    error: str | None = None


def awslogs_event(
    owner: str, log_group: str, log_stream: str, filters: Sequence[str], events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """`{"awslogs": {"data": base64(gzip(json))}}` exactly as a subscription delivers it (aws-facts §2)."""
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": list(filters),
        "logEvents": [
            {"id": str(e["id"]), "timestamp": int(e["timestamp"]), "message": str(e["message"])}
            for e in events
        ],
    }
    return awslogs_payload(document)


def wait_until_stopped(
    sfn: Any, execution_arn: str, timeout: float = 60, poll: float = 0.02
) -> dict[str, Any]:
    """DescribeExecution once the execution is no longer RUNNING (TimeoutError after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still running after {timeout}s")
        time.sleep(poll)


def awslogs_payload(document: Any) -> dict[str, Any]:
    """`document` (JSON-encoded unless it is bytes already) gzipped and base64-encoded in an awslogs event."""
    body = document if isinstance(document, bytes) else json.dumps(document, separators=(",", ":")).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(body)).decode()}}


@dataclass(eq=False)
class LocalAws:
    """The deployed stack in a local AWS (in-process moto or a moto server) and its log delivery."""

    world: World
    stack: LocalStack
    subscription: Subscription
    account: str = ACCOUNT
    _seen: set[tuple[str, str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _runs: list[tuple[str, Any, Any]] = field(default_factory=list)

    @classmethod
    def deploy(
        cls, world: World, parameters: Mapping[str, str] | None = None, stack_name: str = "permheal"
    ) -> LocalAws:
        """Deploy template.yaml's runtime into whatever `world` talks to and wire its subscription."""
        from permheal_local import lambda_runtime
        from permheal_local.template import load_template

        stack = deploy(world, parameters, stack_name)
        subscription = subscription_from_template(load_template(TEMPLATE), stack, parameters)
        local = cls(world, stack, subscription)
        lambda_runtime.observers.append(local._observe)
        return local

    def close(self) -> None:
        from permheal_local import lambda_runtime

        if self._observe in lambda_runtime.observers:
            lambda_runtime.observers.remove(self._observe)

    @property
    def region(self) -> str:
        return self.world.region

    @property
    def detector(self) -> str:
        return self.subscription.destination

    def client(self, service: str) -> Any:
        return self.world.client(service)

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until no execution runs: an execution thread outliving moto would call real endpoints."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            running = sfn.list_executions(
                stateMachineArn=self.stack.state_machine_arn, statusFilter="RUNNING"
            )["executions"]
            if not running:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def simulator(self) -> ApiGatewaySimulator:
        from permheal_local.simulator import ApiGatewaySimulator

        return ApiGatewaySimulator(self.world, account=self.account)

    def flush_logs(self) -> list[Delivery]:
        """Deliver every event written since the last flush that the subscription matches.

        Synchronous: the detector has run (and started its executions) when this returns.
        """
        with self._lock:
            deliveries: list[Delivery] = []
            logs = self.client("logs")
            for page in logs.get_paginator("describe_log_groups").paginate():
                for group in page.get("logGroups", []):
                    name = group["logGroupName"]
                    if self.subscription.covers(name):
                        deliveries.extend(self._deliver_group(logs, name))
            return deliveries

    def _deliver_group(self, logs: Any, log_group: str) -> list[Delivery]:
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group):
            for event in page.get("events", []):
                key = (log_group, event["logStreamName"], str(event["eventId"]))
                if key in self._seen:
                    continue
                self._seen.add(key)
                if self.subscription.pattern.matches(event["message"]):
                    by_stream.setdefault(event["logStreamName"], []).append(
                        {"id": event["eventId"], "timestamp": event["timestamp"], "message": event["message"]}
                    )
        deliveries: list[Delivery] = []
        for stream, events in by_stream.items():
            for start in range(0, len(events), BATCH_LIMIT):
                batch = events[start : start + BATCH_LIMIT]
                payload = awslogs_event(self.account, log_group, stream, [self.subscription.name], batch)
                deliveries.append(self._invoke_detector(log_group, stream, batch, payload))
        return deliveries

    def _invoke_detector(
        self, log_group: str, stream: str, batch: list[dict[str, Any]], payload: dict[str, Any]
    ) -> Delivery:
        """Invoke asynchronously as CloudWatch Logs does; the local runtime still runs it before returning."""
        mark = len(self._runs)
        self.client("lambda").invoke(
            FunctionName=self.detector, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
        runs = [r for r in self._runs[mark:] if r[1] == payload]
        del self._runs[:mark]  # earlier runs were someone else's invocations: keep the list short
        messages = tuple(str(e["message"]) for e in batch)
        if not runs:
            return Delivery(log_group, stream, messages, payload, error="the detector did not run")
        outcome = runs[-1][2]
        if isinstance(outcome, BaseException):
            return Delivery(
                log_group, stream, messages, payload, error=f"{type(outcome).__name__}: {outcome}"
            )
        return Delivery(log_group, stream, messages, payload, result=outcome)

    def _observe(self, function_name: str, event: Any, outcome: Any) -> None:
        if function_name == self.detector:
            self._runs.append((function_name, event, outcome))


@contextmanager
def local_aws(
    parameters: Mapping[str, str] | None = None,
    *,
    stack_name: str = "permheal",
    handler_env: Mapping[str, str] | None = None,
) -> Iterator[LocalAws]:
    """moto in process with faithful Lambda policies, the real handlers, and the stack deployed.

    The environment is made hermetic for the duration: no profile, config file or endpoint of the
    caller's can send a call to a real account.
    """
    from moto import mock_aws

    from permheal.adapters.aws import forget_clients
    from permheal_local import faithful_apigateway, faithful_apigatewayv2, faithful_lambda, lambda_runtime

    with _hermetic_environment(REGION), mock_aws(config=MOTO_CONFIG):
        forget_clients()  # a client made before the mock would not be intercepted
        patched_policies = not faithful_lambda.is_installed()
        faithful_lambda.install()
        faithful_apigateway.install()
        faithful_apigatewayv2.install()
        lambda_runtime.install(dict(handler_env or {}))
        local: LocalAws | None = None
        try:
            local = LocalAws.deploy(World(REGION), parameters, stack_name)
            yield local
        finally:
            if local is not None:
                with contextlib.suppress(Exception):
                    local.settle()
                local.close()
            lambda_runtime.uninstall()
            if patched_policies:
                faithful_lambda.uninstall()
                faithful_apigateway.uninstall()
                faithful_apigatewayv2.uninstall()


@contextmanager
def _hermetic_environment(region: str) -> Iterator[None]:
    with mock.patch.dict(os.environ):
        for name in list(os.environ):
            if name in _FOREIGN_ENV or name.startswith("AWS_ENDPOINT_URL_"):
                del os.environ[name]
        os.environ.update(
            AWS_REGION=region,
            AWS_DEFAULT_REGION=region,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true",
        )
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        yield
