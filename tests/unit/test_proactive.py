"""The proactive trigger's pure core: which CloudTrail events name which API or function, and the debounce."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from permheal.proactive import (
    APIGATEWAY_EVENTS,
    LAMBDA_EVENTS,
    Change,
    FunctionChange,
    Rejected,
    Trigger,
    Window,
    execution_input,
    parse_event,
)
from permheal_local.cloudtrail import cloudtrail_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
AT = datetime(2026, 12, 5, 8, 0, 17, tzinfo=UTC)


def api_event(name: str, request: dict[str, Any], response: dict[str, Any] | None = None, **kw: Any) -> Any:
    source = kw.pop("event_source", "apigateway.amazonaws.com")
    return cloudtrail_event("aws.apigateway", source, name, request, response, at=AT, event_id="e-1", **kw)


def lambda_event(name: str, request: dict[str, Any], **kw: Any) -> Any:
    return cloudtrail_event("aws.lambda", "lambda.amazonaws.com", name, request, at=AT, event_id="e-2", **kw)


def parse(event: Any) -> Change:
    return parse_event(event, account=ACCOUNT, region=REGION)


# ------------------------------------------------------------------------------ API Gateway events


def test_create_deployment_names_the_api_and_the_stage() -> None:
    # Given a REST CreateDeployment as CloudTrail records it (stage inside createDeploymentInput)
    event = api_event(
        "CreateDeployment", {"restApiId": "a1b2c3", "createDeploymentInput": {"stageName": "prod"}}
    )
    # When it is parsed
    change = parse(event)
    # Then it names the API and the stage, and keeps the contract's trigger fields
    assert (change.api_id, change.stage, change.function) == ("a1b2c3", "prod", None)
    assert change.trigger.to_dict() == {
        "eventSource": "apigateway.amazonaws.com",
        "eventName": "CreateDeployment",
        "eventTime": "2026-12-05T08:00:17Z",
        "eventID": "e-1",
    }


@pytest.mark.parametrize("name", APIGATEWAY_EVENTS)
def test_every_listed_rest_event_names_its_api(name: str) -> None:
    # Given any listed API Gateway event naming restApiId
    # When it is parsed
    # Then the API id is what it names
    assert parse(api_event(name, {"restApiId": "abc123", "resourceId": "r1"})).api_id == "abc123"


@pytest.mark.parametrize("source", ["apigateway.amazonaws.com", "apigatewayv2.amazonaws.com"])
@pytest.mark.parametrize(
    ("name", "request_parameters", "response", "stage"),
    [
        ("CreateRoute", {"apiId": "v2api", "routeKey": "GET /pets"}, None, None),
        ("UpdateRoute", {"apiId": "v2api", "routeId": "r1"}, None, None),
        ("CreateIntegration", {"apiId": "v2api", "integrationUri": "arn:aws:lambda:..."}, None, None),
        ("ReimportApi", {"apiId": "v2api"}, None, None),
        ("ImportApi", {"body": "..."}, {"apiId": "v2api", "name": "x"}, None),
        ("UpdateStage", {"apiId": "v2api", "stageName": "$default"}, None, None),
        ("CreateStage", {"apiId": "v2api", "stageName": "beta"}, None, "beta"),
    ],
)
def test_v2_events_name_the_api_whichever_event_source_reports_them(
    source: str, name: str, request_parameters: dict[str, Any], response: Any, stage: str | None
) -> None:
    # Given an HTTP/WebSocket API event, reported as apigateway or apigatewayv2
    event = api_event(name, request_parameters, response, event_source=source)
    # When it is parsed
    change = parse(event)
    # Then the v2 API id is found (in the request, or for an import in the response)
    assert (change.api_id, change.stage) == ("v2api", stage)


def test_import_rest_api_takes_the_new_id_from_the_response() -> None:
    # Given an ImportRestApi (the id exists only once the call answered)
    event = api_event("ImportRestApi", {"failOnWarnings": False}, {"id": "new123", "name": "pets"})
    # Then the new API is the one to check
    assert parse(event).api_id == "new123"


# ------------------------------------------------------------------------------ Lambda events


@pytest.mark.parametrize(
    ("name", "request_parameters", "expected"),
    [
        ("UpdateAlias20150331", {"functionName": "pets", "name": "live"}, FunctionChange("pets", "live")),
        ("CreateAlias20150331", {"functionName": "pets", "name": "beta"}, FunctionChange("pets", "beta")),
        ("PublishVersion20150331", {"functionName": "pets"}, FunctionChange("pets")),
        (
            "RemovePermission20150331v2",
            {"functionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pets:live", "statementId": "s"},
            FunctionChange("pets", "live"),
        ),
        ("RemovePermission20150331v2", {"functionName": f"{ACCOUNT}:function:pets"}, FunctionChange("pets")),
        ("DeleteFunction20150331", {"functionName": "pets", "qualifier": "7"}, FunctionChange("pets", "7")),
        ("DeleteFunction", {"functionName": "pets:$LATEST"}, FunctionChange("pets")),
    ],
)
def test_lambda_events_name_the_function_whatever_its_version_suffix(
    name: str, request_parameters: dict[str, Any], expected: FunctionChange
) -> None:
    # Given a Lambda event with (or without) its API version suffix
    # When it is parsed
    change = parse(lambda_event(name, request_parameters))
    # Then the function (and the qualifier the call named) is what it changed
    assert (change.api_id, change.function) == (None, expected)
    assert change.function is not None
    assert change.function.key("aws", REGION, ACCOUNT) == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pets"


def test_lambda_event_names_are_the_five_that_can_break_an_invoke() -> None:
    assert set(LAMBDA_EVENTS) == {
        "CreateAlias",
        "UpdateAlias",
        "PublishVersion",
        "RemovePermission",
        "DeleteFunction",
    }


# ------------------------------------------------------------------------------ rejected events


def _mutate(event: Any, path: tuple[str, ...], value: Any) -> Any:
    changed = copy.deepcopy(event)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


_DELETE = object()
GOOD = api_event("CreateDeployment", {"restApiId": "a1b2c3", "createDeploymentInput": {"stageName": "prod"}})


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("account",), "999999999999", "foreign-account"),
        (("detail", "recipientAccountId"), "999999999999", "foreign-account"),
        (("region",), "eu-west-1", "foreign-region"),
        (("detail", "awsRegion"), "eu-west-1", "foreign-region"),
        (("source",), "my.app", "forged"),
        (("detail", "eventSource"), "lambda.amazonaws.com", "forged"),
        (("detail-type",), "Something Else", "unsupported"),
        (("detail", "eventName"), "GetRestApi", "unsupported"),
        (("detail", "eventName"), 42, "malformed"),
        (("detail", "userIdentity"), _DELETE, "malformed"),
        (("detail", "userIdentity"), "root", "malformed"),
        (("detail", "eventTime"), "yesterday", "malformed"),
        (("detail", "eventTime"), "2026-13-45T99:00:00Z", "malformed"),
        (("detail", "eventID"), _DELETE, "malformed"),
        (("detail", "eventID"), "x" * 500, "malformed"),
        (("detail", "errorCode"), "AccessDenied", "failed-call"),
        (("detail", "eventType"), "AwsServiceEvent", "unsupported"),
        (("detail", "requestParameters"), ["not", "an", "object"], "malformed"),
        (("detail", "requestParameters", "restApiId"), "../../etc", "malformed"),
        (("detail", "requestParameters", "restApiId"), _DELETE, "malformed"),
        (("detail",), _DELETE, "malformed"),
        (("detail",), "text", "malformed"),
    ],
)
def test_malformed_forged_and_foreign_events_are_rejected_with_a_reason(
    path: tuple[str, ...], value: Any, reason: str
) -> None:
    # Given a good event with one field changed
    event = _mutate(GOOD, path, value)
    # When it is parsed
    # Then it is rejected with the reason the metric counts
    with pytest.raises(Rejected) as raised:
        parse(event)
    assert raised.value.reason == reason


@pytest.mark.parametrize("event", [None, [], "text", 42, {}])
def test_events_that_are_not_objects_are_rejected(event: Any) -> None:
    with pytest.raises(Rejected) as raised:
        parse(event)
    assert raised.value.reason == "malformed"


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        (f"arn:aws:lambda:{REGION}:999999999999:function:pets", "foreign-account"),
        ("999999999999:function:pets", "foreign-account"),
        (f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:pets", "foreign-region"),
        ("pets/../../x", "malformed"),
        ("", "malformed"),
    ],
)
def test_lambda_events_about_other_accounts_functions_are_rejected(function: str, reason: str) -> None:
    with pytest.raises(Rejected) as raised:
        parse(lambda_event("RemovePermission20150331v2", {"functionName": function}))
    assert raised.value.reason == reason


def test_a_lambda_event_named_like_a_listed_one_but_another_operation_is_rejected() -> None:
    # Given DeleteFunctionConcurrency, which the rule's prefix DeleteFunction lets through
    event = lambda_event("DeleteFunctionConcurrency20171031", {"functionName": "pets"})
    # Then the trigger still refuses it: concurrency never changes who may invoke
    with pytest.raises(Rejected) as raised:
        parse(event)
    assert raised.value.reason == "unsupported"


# ------------------------------------------------------------------------------ debounce


def test_events_of_one_window_share_one_execution_name_and_the_next_window_does_not() -> None:
    # Given three events 0 s, 12 s and 30 s after a window boundary (window 30 s)
    def trigger(second: int) -> Trigger:
        return Trigger("apigateway.amazonaws.com", "CreateDeployment", f"2026-12-05T08:00:{second:02d}Z", "e")

    names = [Window.of(trigger(s), 30).execution_name("abc123") for s in (0, 12, 29, 30)]
    # Then the first three share a name, the fourth starts the next window
    assert names[0] == names[1] == names[2] != names[3]
    assert names[0] == f"proactive-abc123-{int(datetime(2026, 12, 5, 8, 0, tzinfo=UTC).timestamp())}"


def test_a_run_waits_until_its_window_has_closed() -> None:
    # Given an event at 08:00:17 in a 30 s window with 1 s grace
    trigger = Trigger("apigateway.amazonaws.com", "CreateDeployment", "2026-12-05T08:00:17Z", "e")
    window = Window.of(trigger, 30, 1)
    # When the execution input is built
    document = execution_input("abc123", trigger, window)
    # Then it is the contract's input, and the run reads the API after 08:00:30 (+1 s)
    assert document == {
        "source": "cloudtrail",
        "apiId": "abc123",
        "trigger": trigger.to_dict(),
        "notBefore": "2026-12-05T08:00:31Z",
    }
    assert len(window.execution_name("a" * 64)) <= 80


def test_permheal_s_own_calls_start_nothing() -> None:
    # Given a RemovePermission the repair step made (its role issued the session)
    role = f"arn:aws:iam::{ACCOUNT}:role/permheal-RepairPolicyFunctionRole"
    event = lambda_event("RemovePermission20150331v2", {"functionName": "pets", "statementId": "dup"})
    event["detail"]["userIdentity"]["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": role}}
    # When it is parsed knowing permheal's roles
    with pytest.raises(Rejected) as raised:
        parse_event(event, account=ACCOUNT, region=REGION, own_roles=frozenset({role}))
    # Then it is permheal's own change; anyone else's identical call still counts
    assert raised.value.reason == "own-change"
    other = f"arn:aws:iam::{ACCOUNT}:role/cdk-deploy"
    event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = other
    assert parse_event(event, account=ACCOUNT, region=REGION, own_roles=frozenset({role})).function == (
        FunctionChange("pets")
    )
