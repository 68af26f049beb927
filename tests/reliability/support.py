"""Helpers of the reliability suite: policy snapshots, the "statements lost" measure, fault injection.

"Statements lost" counts grants that allowed a call before and no longer allow it: each API Gateway
statement present before is exercised with a call its source pattern matches, against the policy
before and after, judged by the independent oracle (permheal_local.oracle, not permheal.policy:
the measure must not share a mistake with the code it measures); a dedupe that drops a statement
still covered by another one loses nothing. A statement that is not an API Gateway grant cannot be
exercised that way: it must still be there, unchanged.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import BotocoreStubber

from permheal.policy import APIGATEWAY_PRINCIPAL
from permheal_local import faithful_lambda
from permheal_local.builder import ACCOUNT, World, execute_api, function_arn
from permheal_local.oracle import allows

FunctionId = tuple[str, str | None]
Snapshot = dict[FunctionId, list[dict[str, Any]]]


# ----------------------------------------------------------------------------------- policies


def snapshot(*functions: FunctionId) -> Snapshot:
    """Every statement of each function+qualifier, read from the local Lambda's store (no AWS call)."""
    return {fn: faithful_lambda.policy_statements(fn[0], fn[1]) for fn in functions}


def _sample_call(statement: Mapping[str, Any]) -> str | None:
    """A source ARN the statement's AWS:SourceArn pattern matches, if it is an API Gateway grant."""
    principal = statement.get("Principal")
    if not isinstance(principal, dict) or principal.get("Service") not in (
        APIGATEWAY_PRINCIPAL,
        [APIGATEWAY_PRINCIPAL],
    ):
        return None
    condition = statement.get("Condition")
    if condition is None:
        return execute_api("anyapi", "prod/GET/any")
    if not isinstance(condition, dict):
        return None
    for operator, clauses in condition.items():
        if operator in ("ArnLike", "ArnEquals") and isinstance(clauses, dict):
            for key, pattern in clauses.items():
                if isinstance(pattern, list) and len(pattern) == 1:
                    pattern = pattern[0]
                if str(key).lower() == "aws:sourcearn" and isinstance(pattern, str):
                    return re.sub(r"[*?]", "x", pattern)
    return None


def lost_grants(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    resource_arn: str,
    calls: Iterable[str] = (),
) -> int:
    """Grants that allowed a call before and do not after; `calls` adds the API's own source ARNs."""

    def lost_call(source: str) -> bool:
        return allows(before, resource_arn, source, ACCOUNT) and not allows(
            after, resource_arn, source, ACCOUNT
        )

    lost = 0
    for statement in before:
        sample = _sample_call(statement)
        if sample is None:
            lost += statement not in after
            continue
        lost += lost_call(sample)
    for source in calls:
        lost += lost_call(source)
    return lost


def lost_in(
    before: Snapshot, after: Snapshot, calls: Mapping[FunctionId, Iterable[str]] | None = None
) -> int:
    """`lost_grants` summed over every function+qualifier of two snapshots."""
    return sum(
        lost_grants(before[fn], after.get(fn, []), function_arn(*fn), (calls or {}).get(fn, ()))
        for fn in before
    )


def by_sid(statements: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(s.get("Sid")): s for s in statements}


# ----------------------------------------------------------------------------------- the ledger


@cache
def _ledger_spec() -> dict[str, Any]:
    from permheal_local.stack import TEMPLATE
    from permheal_local.template import load_template, resources

    properties: dict[str, Any] = resources(load_template(TEMPLATE))["LedgerTable"]["Properties"]
    return properties


def create_ledger_table(world: World, name: str = "permheal-ledger") -> str:
    """The ledger table exactly as template.yaml declares it (keys, indexes, billing)."""
    spec = _ledger_spec()
    keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
    world.client("dynamodb").create_table(TableName=name, **{k: spec[k] for k in keys})
    return name


def stack_ledger_table(world: World) -> str:
    """The table `permheal_local.stack.deploy` created for the LedgerTable logical id."""
    names = world.client("dynamodb").list_tables()["TableNames"]
    (name,) = [n for n in names if n.endswith("-LedgerTable")]
    return str(name)


# ----------------------------------------------------------------------------------- faults

THROTTLE_CODES = {
    "lambda": (429, "TooManyRequestsException"),
    "api-gateway": (429, "TooManyRequestsException"),
    "apigatewayv2": (429, "TooManyRequestsException"),
    "sts": (400, "Throttling"),
}
SERVER_ERROR_CODES = {
    "lambda": (500, "ServiceException"),
    "api-gateway": (503, "ServiceUnavailableException"),
}


MIXED = "throttling, then 5xx"
"""A fault kind: odd attempts are throttled, even ones get a 5xx."""
LANDED = "5xx after the write landed"
"""A fault kind: AWS applied the request but the answer was lost (500); the SDK retries it."""
_REJECTED = "_permheal_fault_rejected"


@dataclass
class Rule:
    operation: str
    kind: str  # "throttling" | "5xx" | MIXED | LANDED | any other AWS error code, answered as a 400
    attempts: int | None  # fail the first N attempts of every call; None = every attempt


@dataclass
class Faults:
    """Answers chosen AWS operations with throttling, 5xx or another error, before they reach AWS.

    Installed on every client permheal's adapters create (`install_faults` puts `Faults.client` in
    place of their `client` factory) as the first `before-send` handler, so botocore's own retry
    logic sees the faults exactly as it would see AWS's answers, and absorbs them or gives up. A
    rejected request never reaches the local AWS; a LANDED one does (the change is made) and only
    its answer is replaced.
    """

    rules: list[Rule] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict)

    def inject(self, operation: str, kind: str, attempts: int | None) -> None:
        self.rules.append(Rule(operation, kind, attempts))

    def clear(self) -> None:
        self.rules.clear()

    def client(self, service: str, region: str | None = None) -> Any:
        """What permheal's `client` factory returns, made for this test only.

        Not the factory's process-wide clients: each botocore client has its own retry quota, which
        persistent faults drain, and the fault handler must not outlive the test.
        """
        import boto3

        from permheal.adapters import aws

        if (service, region) not in self._clients:
            created = boto3.client(service, region_name=region, config=aws._config())  # type: ignore[call-overload]
            created.meta.events.register_first("before-send", self._before_send)
            self._clients[(service, region)] = created
        return self._clients[(service, region)]

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        attempt = int((request.context.get("retries") or {}).get("attempt", 1))
        if attempt == 1:
            self.calls[operation] += 1
        for rule in self.rules:
            if rule.operation in (operation, "*") and (rule.attempts is None or attempt <= rule.attempts):
                self.injected[operation] += 1
                if rule.kind != LANDED:
                    setattr(request, _REJECTED, True)
                kind = ("throttling" if attempt % 2 else "5xx") if rule.kind == MIXED else rule.kind
                return _error_response(request, service, kind)
        return None


def _error_response(request: Any, service: str, kind: str) -> AWSResponse:
    if kind == "throttling":
        status, code = THROTTLE_CODES.get(service, (400, "ThrottlingException"))
    elif kind in ("5xx", LANDED):
        status, code = SERVER_ERROR_CODES.get(service, (500, "InternalFailure"))
    else:
        status, code = 400, kind
    message = f"injected {kind} fault"
    if service == "sts":  # query protocol: XML errors
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    else:  # json and rest-json: both read the code from x-amzn-ErrorType or __type
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    headers["x-amzn-RequestId"] = "00000000-0000-0000-0000-000000000000"
    return AWSResponse(request.url, status, headers, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._body


def install_faults(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Replace the client factory in every permheal module that imported it; make botocore's backoff 0 s."""
    import sys

    from botocore.retries import standard

    from permheal.adapters import (
        access_logs,
        account,
        apigateway,
        aws,
        deadletter,
        lambda_policy,
        ledger,
        workflow,
    )

    # imported (Adapters imports its ports lazily), so patched
    assert all((access_logs, account, apigateway, deadletter, lambda_policy, ledger, workflow))

    faults = Faults()
    original = aws.client
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name.startswith("permheal.") and getattr(module, "client", None) is original:
            monkeypatch.setattr(module, "client", faults.client)
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    # botocore calls every before-send handler and uses the first answer: moto's must skip rejected ones.
    original_call = BotocoreStubber.__call__

    def stub(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        return (
            None if getattr(request, _REJECTED, False) else original_call(self, event_name, request, **kwargs)
        )

    monkeypatch.setattr(BotocoreStubber, "__call__", stub)
    return faults
