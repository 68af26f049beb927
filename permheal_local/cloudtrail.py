"""CloudTrail for the local AWS: management calls made through a World become EventBridge events.

`CloudTrail.attach(world)` hooks the World's API Gateway and Lambda clients: after each successful
call the proactive rule watches (a deployment, a stage or integration change, an alias move, a
removed permission...), it builds the event CloudTrail would send to EventBridge (`detail-type`
"AWS API Call via CloudTrail", Lambda's versioned event names, requestParameters in CloudTrail's
shape) and delivers it to the deployed rules (`eventbridge.deliver`). Only the World's calls are
recorded: permheal's own calls (its adapters' clients) are not, so its repairs never echo.

Delivery is immediate, where AWS takes about 90 s (p99): locally the run can finish before the
next request, which `settle=True` makes certain by waiting for the runs the events started.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from permheal.proactive import APIGATEWAY_EVENTS
from permheal_local.builder import ACCOUNT
from permheal_local.eventbridge import Delivery, deliver

LAMBDA_EVENT_NAMES = {
    "CreateAlias": "CreateAlias20150331",
    "UpdateAlias": "UpdateAlias20150331",
    "PublishVersion": "PublishVersion20150331",
    "RemovePermission": "RemovePermission20150331v2",
    "DeleteFunction": "DeleteFunction20150331",
}
"""The names Lambda's CloudTrail events carry: the operation plus its API version (aws-facts §8)."""
_SERVICES = {
    "apigateway": ("aws.apigateway", "apigateway.amazonaws.com", frozenset(APIGATEWAY_EVENTS)),
    "apigatewayv2": ("aws.apigateway", "apigatewayv2.amazonaws.com", frozenset(APIGATEWAY_EVENTS)),
    "lambda": ("aws.lambda", "lambda.amazonaws.com", frozenset(LAMBDA_EVENT_NAMES)),
}
"""service → (EventBridge source, CloudTrail eventSource, the calls recorded: those the rule lists)."""


def cloudtrail_event(
    source: str,
    event_source: str,
    event_name: str,
    request: dict[str, Any],
    response: dict[str, Any] | None = None,
    *,
    account: str = ACCOUNT,
    region: str = "us-east-1",
    at: datetime | None = None,
    event_id: str | None = None,
    user_arn: str | None = None,
) -> dict[str, Any]:
    """An EventBridge event for one CloudTrail-recorded management call (the fields permheal reads)."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    identity_arn = user_arn or f"arn:aws:sts::{account}:assumed-role/deployer/cdk-deploy"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": source,
        "account": account,
        "time": stamp,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": "AROAEXAMPLE:cdk-deploy",
                "arn": identity_arn,
                "accountId": account,
            },
            "eventTime": stamp,
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": region,
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "permheal-local",
            "requestParameters": request,
            "responseElements": response,
            "requestID": str(uuid.uuid4()),
            "eventID": event_id or str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        },
    }


def request_parameters(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """boto3 parameters in CloudTrail's shape: lowerCamelCase keys; a REST deployment's input nested."""
    camel = {_lower_camel(k): v for k, v in params.items() if not isinstance(v, bytes | bytearray)}
    if service == "apigateway" and operation == "CreateDeployment":
        api = camel.pop("restApiId", None)
        return {"restApiId": api, "createDeploymentInput": camel}
    if service == "apigateway" and operation == "ImportRestApi":
        camel.pop("body", None)
    return camel


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@dataclass(eq=False)
class CloudTrail:
    """Records the World's management calls and delivers them to the deployed EventBridge rules."""

    world: Any
    account: str = ACCOUNT
    settle: bool = True
    """Wait for the runs the delivered events started (a later request then sees their repairs)."""
    deliveries: list[Delivery] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True
    _hooks: list[tuple[Any, str, Callable[..., Any]]] = field(default_factory=list)

    @classmethod
    def attach(cls, world: Any, *, settle: bool = True) -> CloudTrail:
        trail = cls(world, settle=settle)
        for service in _SERVICES:
            client = world.client(service)
            for event, hook in (
                (f"before-parameter-build.{service}", trail._remember),
                (f"after-call.{service}", trail._record),
            ):
                client.meta.events.register(event, hook, unique_id=f"permheal-cloudtrail-{id(trail)}-{event}")
                trail._hooks.append((client, event, hook))
        return trail

    def detach(self) -> None:
        for client, event, _ in self._hooks:
            client.meta.events.unregister(event, unique_id=f"permheal-cloudtrail-{id(self)}-{event}")
        self._hooks.clear()

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["permheal_params"] = dict(params)

    def _record(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if not self.enabled or not 200 <= int(getattr(http_response, "status_code", 500)) < 300:
            return
        service = str(model.service_model.service_name)
        source, event_source, calls = _SERVICES[service]
        if model.name not in calls:
            return
        name = LAMBDA_EVENT_NAMES.get(model.name, model.name) if service == "lambda" else model.name
        request = request_parameters(service, model.name, context.get("permheal_params") or {})
        response = {
            _lower_camel(k): v
            for k, v in (parsed or {}).items()
            if k != "ResponseMetadata" and isinstance(v, str | int | bool)
        }
        event = cloudtrail_event(
            source,
            event_source,
            name,
            request,
            response or None,
            account=self.account,
            region=self.world.region,
        )
        self.put(event)

    def put(self, event: dict[str, Any]) -> list[Delivery]:
        """Deliver one event (recorded or hand-made) to the rules; wait for its runs when settling."""
        return self.put_many([event])

    def put_many(self, events: list[dict[str, Any]]) -> list[Delivery]:
        """Deliver events in order (a burst), then wait for the runs they started when settling."""
        self.events.extend(events)
        delivered = deliver(self.world, events)
        self.deliveries.extend(delivered)
        if self.settle:
            self.wait([arn for d in delivered for arn in started_by(d)])
        return delivered

    def wait(self, execution_arns: list[str], timeout: float = 60.0) -> None:
        sfn = self.world.client("stepfunctions")
        deadline = time.monotonic() + timeout
        for arn in execution_arns:
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"execution {arn} still running after {timeout:.0f}s")
                time.sleep(0.02)


def started_by(delivery: Delivery) -> list[str]:
    """The executions a trigger's answer says it started."""
    result = delivery.result if isinstance(delivery.result, dict) else {}
    return [str(arn) for arn in result.get("started") or []]
