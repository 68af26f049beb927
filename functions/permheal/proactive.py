"""From a CloudTrail management event (via EventBridge) to the APIs whose permissions it may break.

Pure. The rule (template.yaml `ProactiveRule`) already narrows what arrives; this module trusts
none of it: an event that is malformed, from another account or region, shaped unlike CloudTrail,
or a call that failed (it changed nothing) is rejected with a reason the trigger counts. An API
Gateway event names its API (and often its stage); a Lambda event names a function, which the
trigger maps to the APIs invoking it.

Debounce: executions are named `proactive-{api}-{window}` where the window is the event's
`eventTime` cut into fixed windows, and each run waits (`notBefore`) until its window has closed.
Every event a name suppresses happened inside that window, hence before the run reads anything:
the one run sees the state after the whole burst, however late CloudTrail delivers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from permheal.errors import ParseError
from permheal.models import Trigger

DETAIL_TYPE = "AWS API Call via CloudTrail"
APIGATEWAY_SOURCES = ("apigateway.amazonaws.com", "apigatewayv2.amazonaws.com")
LAMBDA_SOURCE = "lambda.amazonaws.com"
EVENT_SOURCES = {"aws.apigateway": APIGATEWAY_SOURCES, "aws.lambda": (LAMBDA_SOURCE,)}
APIGATEWAY_EVENTS = (
    "CreateDeployment",
    "UpdateDeployment",
    "CreateStage",
    "UpdateStage",
    "PutIntegration",
    "UpdateIntegration",
    "DeleteIntegration",
    "PutMethod",
    "UpdateMethod",
    "CreateAuthorizer",
    "UpdateAuthorizer",
    "PutRestApi",
    "ImportRestApi",
    "CreateRoute",
    "UpdateRoute",
    "CreateIntegration",
    "ImportApi",
    "ReimportApi",
)
LAMBDA_EVENTS = ("CreateAlias", "UpdateAlias", "PublishVersion", "RemovePermission", "DeleteFunction")
"""Lambda records these with an API version suffix (`UpdateAlias20150331`, `RemovePermission20150331v2`)."""
_LAMBDA_VERSIONED = re.compile(rf"^({'|'.join(LAMBDA_EVENTS)})(?:\d{{8}}(?:v\d+)?)?$")
_API_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_STAGE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_FUNCTION_NAME = r"[A-Za-z0-9_-]{1,64}"
_QUALIFIER = r"(?:\$LATEST|[A-Za-z0-9_-]{1,128})"
_FUNCTION = re.compile(
    rf"^(?:arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):function:"
    rf"|(?P<partial>\d{{12}}):function:)?(?P<name>{_FUNCTION_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$")
DEFAULT_WINDOW_SECONDS = 30
DEFAULT_GRACE_SECONDS = 1
"""A run starts this long after its window closes: CloudTrail's eventTime has one-second resolution."""


class Rejected(ParseError):
    """An event the trigger must not act on; `reason` is the metric's label."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class FunctionChange:
    """A Lambda-side change: the function (and qualifier, if the call named one)."""

    name: str
    qualifier: str | None = None

    def key(self, partition: str, region: str, account: str) -> str:
        """The unqualified function ARN: the routes index's key (every qualifier of it)."""
        return f"arn:{partition}:lambda:{region}:{account}:function:{self.name}"


@dataclass(frozen=True)
class Change:
    """One accepted event: either an API (`api_id`, maybe `stage`) or a function."""

    trigger: Trigger
    api_id: str | None = None
    stage: str | None = None
    function: FunctionChange | None = None


@dataclass(frozen=True)
class Window:
    """The debounce window an event falls in."""

    start: int
    seconds: int
    grace: int = DEFAULT_GRACE_SECONDS

    @classmethod
    def of(
        cls, trigger: Trigger, seconds: int = DEFAULT_WINDOW_SECONDS, grace: int = DEFAULT_GRACE_SECONDS
    ) -> Window:
        seconds = max(1, seconds)
        return cls(trigger.epoch // seconds * seconds, seconds, max(0, grace))

    @property
    def not_before(self) -> str:
        """When the run may read the API: after every event of the window happened."""
        at = datetime.fromtimestamp(self.start + self.seconds + self.grace, UTC)
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def execution_name(self, api_id: str) -> str:
        """Deterministic per API and window: Step Functions starts it once (80 chars at most)."""
        name = f"proactive-{api_id}-{self.start}"
        if len(name) <= 80:
            return name
        return f"proactive-{hashlib.sha256(api_id.encode()).hexdigest()[:32]}-{self.start}"


def execution_input(api_id: str, trigger: Trigger, window: Window) -> dict[str, Any]:
    """The contract's input, plus `notBefore` (the workflow's Wait reads it).

    No `stage`: a burst may touch several stages and only the first event's input is kept, so a
    run repairs every stage of the API rather than miss the ones later events named.
    """
    from permheal.workflow.state import ExecutionInput

    run = ExecutionInput(
        api_id, source="cloudtrail", by_id=True, trigger=trigger, not_before=window.not_before
    )
    return run.to_event()


def parse_event(event: Any, *, account: str, region: str, own_roles: frozenset[str] = frozenset()) -> Change:
    """Validate an EventBridge CloudTrail event and say what it changed; Rejected otherwise.

    `own_roles`: IAM role ARNs whose calls are permheal's own (the repair step removing a redundant
    grant records a RemovePermission too): reacting to them would only start a run with nothing to do.
    """
    if not isinstance(event, dict):
        raise Rejected("malformed", "the event is not a JSON object")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise Rejected("malformed", 'no "detail" object')
    if event.get("detail-type") != DETAIL_TYPE:
        raise Rejected("unsupported", f"detail-type {str(event.get('detail-type'))[:64]!r}")
    sources = EVENT_SOURCES.get(str(event.get("source")))
    if sources is None:
        raise Rejected("forged", f"source {str(event.get('source'))[:64]!r} is not an AWS service")
    if event.get("account") != account or detail.get("recipientAccountId") != account:
        raise Rejected("foreign-account", "the event is not about this account")
    if event.get("region") != region or detail.get("awsRegion") != region:
        raise Rejected("foreign-region", "the event is not about this region")
    event_source = detail.get("eventSource")
    if event_source not in sources:
        raise Rejected("forged", f"eventSource {str(event_source)[:64]!r} does not match source")
    identity = detail.get("userIdentity")
    if not isinstance(identity, dict) or not isinstance(identity.get("type"), str):
        raise Rejected("malformed", "no userIdentity")
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    if own_roles and isinstance(issuer, str) and issuer in own_roles:
        raise Rejected("own-change", "permheal's own call")
    if detail.get("eventType", "AwsApiCall") != "AwsApiCall":
        raise Rejected("unsupported", f"eventType {str(detail.get('eventType'))[:64]!r}")
    if detail.get("errorCode") is not None:
        raise Rejected(
            "failed-call", f"the call failed ({str(detail.get('errorCode'))[:64]}): nothing changed"
        )
    trigger = _trigger(detail, str(event_source))
    request = detail.get("requestParameters") or {}
    response = detail.get("responseElements") or {}
    if not isinstance(request, dict) or not isinstance(response, dict):
        raise Rejected("malformed", "requestParameters/responseElements must be objects")
    if event_source == LAMBDA_SOURCE:
        return Change(trigger, function=_function(request, account, region))
    api_id = _api_id(request, response)
    return Change(trigger, api_id=api_id, stage=_stage(request))


def _trigger(detail: dict[str, Any], event_source: str) -> Trigger:
    name = detail.get("eventName")
    if not isinstance(name, str):
        raise Rejected("malformed", "no eventName")
    if event_source == LAMBDA_SOURCE:
        if not _LAMBDA_VERSIONED.fullmatch(name):
            raise Rejected("unsupported", f"Lambda event {name[:64]!r} cannot break an invoke permission")
    elif name not in APIGATEWAY_EVENTS:
        raise Rejected("unsupported", f"API Gateway event {name[:64]!r} cannot break an invoke permission")
    time = detail.get("eventTime")
    if not isinstance(time, str) or not _TIME.fullmatch(time):
        raise Rejected("malformed", f"eventTime {str(time)[:40]!r} is not an ISO 8601 UTC time")
    try:
        datetime.fromisoformat(time.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Rejected("malformed", f"eventTime {time!r}: {exc}") from exc
    event_id = detail.get("eventID")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise Rejected("malformed", "eventID must be a UUID-like string")
    return Trigger(event_source, name, time, event_id)


def _api_id(request: dict[str, Any], response: dict[str, Any]) -> str:
    """REST calls name `restApiId`, v2 calls `apiId`; imports only answer with the new id."""
    for source, key in (
        (request, "restApiId"),
        (request, "apiId"),
        (response, "restApiId"),
        (response, "apiId"),
        (response, "id"),
    ):
        value = source.get(key)
        if value is not None:
            if not isinstance(value, str) or not _API_ID.fullmatch(value):
                raise Rejected("malformed", f"{key} {str(value)[:64]!r} is not an API id")
            return value
    raise Rejected("malformed", "the event names no API id")


def _stage(request: dict[str, Any]) -> str | None:
    nested = [request.get(k) for k in ("createDeploymentInput", "createStageInput")]
    for candidate in [*(n.get("stageName") for n in nested if isinstance(n, dict)), request.get("stageName")]:
        if isinstance(candidate, str) and _STAGE.fullmatch(candidate):
            return candidate
    return None


def _function(request: dict[str, Any], account: str, region: str) -> FunctionChange:
    text = request.get("functionName")
    if not isinstance(text, str):
        raise Rejected("malformed", "the event names no functionName")
    match = _FUNCTION.fullmatch(text)
    if match is None:
        raise Rejected("malformed", f"functionName {text[:140]!r} is not a function name or ARN")
    owner = match["account"] or match["partial"]
    if owner is not None and owner != account:
        raise Rejected("foreign-account", "the function belongs to another account")
    if match["region"] is not None and match["region"] != region:
        raise Rejected("foreign-region", "the function is in another region")
    qualifier = match["qualifier"] or request.get("qualifier") or request.get("name")
    if qualifier is not None and (not isinstance(qualifier, str) or not re.fullmatch(_QUALIFIER, qualifier)):
        qualifier = None
    return FunctionChange(match["name"], None if qualifier == "$LATEST" else qualifier)
