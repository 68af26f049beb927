"""Detection for API Gateway v2: HTTP API access-log incidents and WebSocket execution-log hints."""

from __future__ import annotations

import json

import pytest

from permheal.detection import LogBatch, detect
from permheal.errors import ParseError
from permheal.targets import Hint

INTEGRATION = (
    "The IAM role configured on the integration or API Gateway doesn’t have permissions to call the "
    "integration. Check the permissions and try again."
)
AUTHORIZER = INTEGRATION.replace("integration", "authorizer")
ASSUME = "API Gateway does not have permission to assume the provided role arn:aws:iam::123456789012:role/r"
ACCESS_GROUP = "/aws/vendedlogs/http-api/access"
WINDOW_START_MS = 1_763_715_600_000  # a multiple of 900 s


def line(
    api: str | None = "a1b2c3d4e5", stage: str | None = "prod", route: str = "GET /pets/{id}", **extra: str
) -> str:
    fields = {"requestId": f"r{len(extra)}", "routeKey": route, "status": "500", **extra}
    if api is not None:
        fields["apiId"] = api
    if stage is not None:
        fields["stage"] = stage
    fields.setdefault("integrationErrorMessage", INTEGRATION)
    return json.dumps(fields, ensure_ascii=False)


def batch(*messages: str, group: str = ACCESS_GROUP, start_ms: int = WINDOW_START_MS) -> LogBatch:
    return LogBatch(group, "DATA_MESSAGE", tuple((start_ms + i, m) for i, m in enumerate(messages)))


def test_access_log_storm_is_one_incident_with_one_name() -> None:
    # Given 1000 failing requests of one HTTP API stage in one window
    detection = detect(batch(*[line() for _ in range(1000)]))
    # Then they make one incident that names the API, the stage and the log group
    (incident,) = detection.incidents
    assert (incident.api_id, incident.stage, incident.failures) == ("a1b2c3d4e5", "prod", 1000)
    assert incident.access_log and incident.log_group == ACCESS_GROUP
    assert detection.failure_lines == 1000
    # And a later batch of the same incident asks for the same execution
    later = detect(batch(line(), start_ms=WINDOW_START_MS + 600_000)).incidents[0]
    assert later.execution_name == incident.execution_name
    assert incident.execution_name.startswith("access-a1b2c3d4e5-")
    assert len(incident.execution_name) <= 80


def test_access_incident_input_says_access_log_and_carries_the_route_hint() -> None:
    (incident,) = detect(batch(line())).incidents
    data = incident.execution_input()
    assert data["logType"] == "access"
    assert (data["apiId"], data["stage"], data["logGroup"]) == ("a1b2c3d4e5", "prod", ACCESS_GROUP)
    assert data["hints"] == [
        {
            "method": "GET",
            "resourcePath": "/pets/{id}",
            "authorizerId": None,
            "function": None,
            "routeKey": "GET /pets/{id}",
        }
    ]


def test_line_without_api_id_or_stage_names_only_the_log_group() -> None:
    # Given a format without $context.apiId and $context.stage
    (incident,) = detect(batch(line(api=None, stage=None))).incidents
    data = incident.execution_input()
    # Then the incident leaves the stage to the control plane (log group -> stage)
    assert "apiId" not in data and "stage" not in data
    assert data["logGroup"] == ACCESS_GROUP
    assert incident.execution_name.startswith("access-any-")


def test_clf_line_is_an_incident_of_its_log_group() -> None:
    clf = (
        '203.0.113.7 - - [05/Dec/2026:08:00:00 +0000] "GET $default HTTP/1.1" 500 35 AqCiOhxcLPEEMIA= '
        + INTEGRATION
    )
    (incident,) = detect(batch(clf)).incidents
    assert (incident.api_id, incident.stage) == (None, None)
    assert incident.hints == (Hint("ANY", "$default", route_key="$default"),)


def test_two_stages_sharing_one_access_log_group_are_two_incidents() -> None:
    detection = detect(batch(line(stage="prod"), line(stage="$default"), line(stage="prod")))
    assert sorted((i.stage, i.failures) for i in detection.incidents if i.stage) == [
        ("$default", 1),
        ("prod", 2),
    ]
    assert len({i.execution_name for i in detection.incidents}) == 2


def test_a_line_naming_an_api_from_another_log_group_gets_another_execution_name() -> None:
    # Given the same API and stage named in lines of two log groups (one of them forged)
    real = detect(batch(line())).incidents[0]
    forged = detect(batch(line(), group="/aws/lambda/someone-elses")).incidents[0]
    # Then neither can suppress the other's execution
    assert real.execution_name != forged.execution_name


def test_authorizer_failure_does_not_narrow() -> None:
    (incident,) = detect(batch(line(integrationErrorMessage="-", authorizerError=AUTHORIZER))).incidents
    assert incident.hints == ()


def test_one_unexplained_failure_drops_every_hint() -> None:
    (incident,) = detect(batch(line(), line(route="-"))).incidents
    assert incident.hints == ()


def test_assume_role_failure_is_reported_and_starts_nothing() -> None:
    detection = detect(batch(line(integrationErrorMessage=ASSUME)))
    assert detection.incidents == ()
    assert detection.role_failures == ("arn:aws:iam::123456789012:role/r",)
    assert detection.failure_lines == 0


def test_failures_in_two_windows_are_two_incidents() -> None:
    detection = detect(
        LogBatch(
            ACCESS_GROUP, "DATA_MESSAGE", ((WINDOW_START_MS, line()), (WINDOW_START_MS + 900_000, line()))
        )
    )
    assert [i.window_start for i in detection.incidents] == [
        WINDOW_START_MS // 1000,
        WINDOW_START_MS // 1000 + 900,
    ]


@pytest.mark.parametrize(
    ("group", "message", "reason"),
    [
        (
            "/aws/lambda/pets",
            "(r) Execution failed due to configuration error: Invalid permissions on Lambda function",
            "execution log group",
        ),
        ("/aws/lambda/pets", json.dumps({"status": "500"}), "execution log group"),
        ("bad group name!", line(), "log group name"),
    ],
)
def test_other_log_groups_without_an_access_failure_are_rejected(
    group: str, message: str, reason: str
) -> None:
    with pytest.raises(ParseError, match=reason):
        detect(batch(message, group=group))


# --- WebSocket execution logs (prefix: the extended request id) -------------------------------------

WS_GROUP = "API-Gateway-Execution-Logs_w1s2o3c4k5/production"
XID = "N7RjdGhNIAMF_Xg="
FN = "arn:aws:lambda:us-east-1:123456789012:function:chat-connect"
URI = f"https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/{FN}/invocations"
WEBSOCKET_REQUEST = [
    f"({XID}) Extended Request Id: {XID}",
    f"({XID}) Verifying Usage Plan for request: {XID}. API Key:  API Stage: w1s2o3c4k5/production",
    f"({XID}) API Key  authorized because route '$connect' does not require API Key. "
    "Request will not contribute to throttle or quota limits",
    f"({XID}) Usage Plan check succeeded for API Key  and API Stage w1s2o3c4k5/production",
    f"({XID}) Starting execution for request: {XID}",
    f"({XID}) WebSocket Request Route: [$connect]",
    f"({XID}) Client [UserAgent: null, SourceIp: 203.0.113.7] is connecting to WebSocket API [w1s2o3c4k5].",
    f"({XID}) Endpoint request URI: {URI}",
    f"({XID}) Sending request to {URI}",
    f"({XID}) Execution failed due to configuration error: Invalid permissions on Lambda function",
]


def test_websocket_request_is_an_incident_of_its_api_and_stage_with_the_route_hint() -> None:
    # Given an INFO-level WebSocket $connect that fails on the permission
    (incident,) = detect(batch(*WEBSOCKET_REQUEST, group=WS_GROUP)).incidents
    # Then the group names API and stage, and the hint names the route and (untrusted) function
    assert (incident.api_id, incident.stage, incident.access_log) == ("w1s2o3c4k5", "production", False)
    assert incident.hints == (Hint(function=FN, route_key="$connect"),)
    assert incident.execution_name == f"w1s2o3c4k5-production-{WINDOW_START_MS // 1000}"
    assert "logType" not in incident.execution_input()


def test_websocket_error_level_failure_alone_has_no_hints() -> None:
    (incident,) = detect(batch(WEBSOCKET_REQUEST[-1], group=WS_GROUP)).incidents
    assert incident.hints == ()


def test_websocket_execution_log_group_may_also_be_named_under_aws_apigateway() -> None:
    # Given the same WebSocket request logged to `/aws/apigateway/{api}/{stage}`
    (incident,) = detect(batch(*WEBSOCKET_REQUEST, group="/aws/apigateway/w1s2o3c4k5/production")).incidents
    # Then it is the same API and stage, and the same execution as under the REST-style name
    (same,) = detect(batch(*WEBSOCKET_REQUEST, group=WS_GROUP)).incidents
    assert (incident.api_id, incident.stage, incident.access_log) == ("w1s2o3c4k5", "production", False)
    assert incident.execution_name == same.execution_name


def test_access_log_group_named_like_a_websocket_group_is_read_as_an_access_log() -> None:
    # Given a user's access-log group that happens to be named /aws/apigateway/{name}/{stage}
    (incident,) = detect(batch(line(), group="/aws/apigateway/myapi/prod")).incidents
    # Then its lines decide: an access-log incident of that group
    assert incident.access_log and incident.log_group == "/aws/apigateway/myapi/prod"


def test_websocket_authorizer_failure_as_logged_in_a_real_report_does_not_narrow() -> None:
    # Given the three lines a WebSocket REQUEST authorizer without permission logged (a public report
    # from 2020: crosscut.io's "Troubleshooting Pesky API ApiGatewayV2 Authorizer permissions")
    lines = [
        "(PDS1PEC4oAMFpyA=) Execution failed due to configuration error: "
        "Invalid permissions on Lambda function",
        "(PDS1PEC4oAMFpyA=) Execution failed due to configuration error: Authorizer error",
        "(PDS1PEC4oAMFpyA=) Gateway response type: AUTHORIZER_CONFIGURATION_ERROR with status code: 500",
    ]
    # When detected
    (incident,) = detect(batch(*lines, group=WS_GROUP)).incidents
    # Then it is one failing request of the stage, and no hint narrows the targets (authorizer failure)
    assert (incident.api_id, incident.stage, incident.failures, incident.hints) == (
        "w1s2o3c4k5",
        "production",
        1,
        (),
    )
