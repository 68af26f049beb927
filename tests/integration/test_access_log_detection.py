"""HTTP API access logs and WebSocket execution logs through the template's subscription and the detector.

The subscription's one filter pattern must deliver exactly the lines detection uses; an access-log
storm must start one execution per incident; and the resolve step must find the stage an access-log
group belongs to through the v2 control plane, the line's API id and stage only narrowing.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from permheal.accesslog import StageLog
from permheal.adapters.access_logs import AccessLogStages
from permheal.detection import SUBSCRIPTION_FILTER_PATTERN, decode, detect
from permheal.errors import AmbiguousApiError, NotFoundError, ParseError
from permheal.workflow.state import ExecutionInput
from permheal_local.aws import FilterPattern, local_aws
from permheal_local.builder import ACCOUNT, REGION
from tests.integration.support import executions, log_payload, wait_for_executions

INTEGRATION = (
    "The IAM role configured on the integration or API Gateway doesn't have permissions to call the "
    "integration. Check the permissions and try again."
)
CURLY = INTEGRATION.replace("'", "’")
AUTHORIZER = INTEGRATION.replace("integration", "authorizer")
ASSUME = f"API Gateway does not have permission to assume the provided role arn:aws:iam::{ACCOUNT}:role/r"
REST_FAILURE = "(4f3e3b0f-39db-11e9-9c2e-5bd7c2de5998) Execution failed due to configuration error: " + (
    "Invalid permissions on Lambda function"
)
CLF = '203.0.113.7 - - [05/Dec/2026:08:00:00 +0000] "GET $default HTTP/1.1" 500 35 AqCiOhxcLPEEMIA= '
WINDOW_SECONDS = 900


def access(
    api: str | None, stage: str | None, message: str, status: str = "500", route: str = "$default"
) -> str:
    fields: dict[str, str] = {"requestId": "AqCiOhxcLPEEMIA=", "routeKey": route, "status": status}
    if api is not None:
        fields["apiId"] = api
    if stage is not None:
        fields["stage"] = stage
    fields["integrationErrorMessage"] = message
    return json.dumps(fields, ensure_ascii=False)


# --- the filter pattern ---------------------------------------------------------------------------------

DELIVERED = {
    "REST execution-log failure": REST_FAILURE,
    "WebSocket execution-log failure": "(N7RjdGhNIAMF_Xg=) Execution failed due to configuration error: "
    "Invalid permissions on Lambda function",
    "REST assume-role failure": f"(r1) Execution failed due to configuration error: {ASSUME}",
    "JSON access line, straight apostrophe": access("a1b2c3d4e5", "prod", INTEGRATION),
    "JSON access line, curly apostrophe": access("a1b2c3d4e5", "prod", CURLY),
    "JSON access line, escaped curly apostrophe": json.dumps({"error": CURLY}),
    "JSON access line, authorizer": access("a1b2c3d4e5", "prod", AUTHORIZER),
    "JSON access line, assume role": access("a1b2c3d4e5", "prod", ASSUME),
    "CLF access line": CLF + INTEGRATION,
    "CLF access line, curly authorizer": CLF + AUTHORIZER.replace("'", "’"),
}
NOT_DELIVERED = {
    "healthy JSON access line": access("a1b2c3d4e5", "prod", "-", status="200"),
    "healthy CLF access line": CLF.replace(" 500 ", " 200 ") + "-",
    "REST INFO line of the failing request": "(r1) Sending request to https://lambda.us-east-1.amazonaws.com/",
    "Lambda's own log line": "START RequestId: 8f5e Version: $LATEST",
    "a different permission error": "(r1) Execution failed due to configuration error: Invalid permissions",
    "phrase in upper case": INTEGRATION.upper(),  # CloudWatch Logs terms are case-sensitive
}


@pytest.mark.parametrize("message", list(DELIVERED.values()), ids=list(DELIVERED))
def test_the_template_filter_delivers_every_line_detection_uses(message: str) -> None:
    # Given the template's one filter pattern, as CloudWatch Logs applies it
    pattern = FilterPattern.parse(SUBSCRIPTION_FILTER_PATTERN)
    # Then the line is delivered, and detection sees a failure (repairable or reported) in it
    assert pattern.matches(message)
    group = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod" if message.startswith("(") else "/access/http"
    detection = detect(decode(log_payload(group, [(1_763_715_600_000, message)])))
    assert detection.incidents or detection.role_failures


@pytest.mark.parametrize("message", list(NOT_DELIVERED.values()), ids=list(NOT_DELIVERED))
def test_the_template_filter_delivers_nothing_else(message: str) -> None:
    assert not FilterPattern.parse(SUBSCRIPTION_FILTER_PATTERN).matches(message)


# --- through the local AWS's subscription to the deployed detector -----------------------------------


def _put(logs: Any, group: str, messages: list[str], timestamp: int) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": timestamp + i, "message": m} for i, m in enumerate(messages)],
    )


@pytest.mark.usefixtures("world")  # empties the module's moto first; local_aws nests inside it
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_access_log_lines_reach_the_detector_through_the_subscription_one_execution_per_incident() -> None:
    with local_aws(handler_env={"POWERTOOLS_LOG_LEVEL": "WARNING"}) as local:
        logs = local.client("logs")
        window = int(time.time()) // WINDOW_SECONDS * WINDOW_SECONDS
        # Given a JSON access log with 300 failures of one stage, healthy requests and an assume-role line
        json_lines = [access("a1b2c3d4e5", "$default", CURLY) for _ in range(300)]
        healthy = [access("a1b2c3d4e5", "$default", "-", status="200") for _ in range(50)]
        _put(
            logs,
            "/access/json",
            [*json_lines, *healthy, access("a1b2c3d4e5", "$default", ASSUME)],
            window * 1000,
        )
        # And a CLF access log with 20 failures
        _put(logs, "/access/clf", [CLF + INTEGRATION] * 20, window * 1000)

        # When CloudWatch Logs delivers what the subscription matches
        deliveries = local.flush_logs()

        # Then only the failure and assume-role lines were delivered, and each group is one incident
        assert all(d.error is None for d in deliveries)
        delivered = {
            d.log_group: [m for d2 in deliveries if d2.log_group == d.log_group for m in d2.messages]
            for d in deliveries
        }
        assert sorted(delivered) == ["/access/clf", "/access/json"]
        assert len(delivered["/access/json"]) == 301 and len(delivered["/access/clf"]) == 20
        assert all('status": "200' not in m for m in delivered["/access/json"])
        assert {r for d in deliveries for r in d.result["roleFailures"]} == {f"arn:aws:iam::{ACCOUNT}:role/r"}
        started = [a for d in deliveries for a in d.result["started"]]
        listed = executions(local.client("stepfunctions"), local.stack.state_machine_arn)
        assert sorted(e["executionArn"] for e in listed) == sorted(started)
        assert len(listed) == 2
        assert all(e["name"].startswith("access-") and e["name"].endswith(f"-{window}") for e in listed)
        inputs = {
            json.loads(
                local.client("stepfunctions").describe_execution(executionArn=e["executionArn"])["input"]
            )["logGroup"]: e
            for e in listed
        }
        assert sorted(inputs) == ["/access/clf", "/access/json"]
        assert local.flush_logs() == []  # nothing twice


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_access_log_storm_in_shuffled_batches_starts_one_execution_per_incident(
    world: Any, stack: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from permheal.handlers import detect as detect_handler

    monkeypatch.setenv("PERMHEAL_STATE_MACHINE_ARN", stack.state_machine_arn)
    monkeypatch.setenv("PERMHEAL_DEAD_LETTER_QUEUE_URL", stack.dead_letter_queue_url)
    # Given 2,000 failures in one window: two stages sharing one access-log group, plus lines of a
    # format without API id and stage in another group, in 20 shuffled batches of 100
    rng = random.Random(11)
    start = 1_763_715_600 // WINDOW_SECONDS * WINDOW_SECONDS
    per_group = {
        "/access/shared": [
            access("a1b2c3d4e5", s, INTEGRATION) for s in ("prod", "$default") for _ in range(700)
        ],
        "/access/bare": [access(None, None, CURLY)] * 600,
    }
    payloads = []
    for group, messages in per_group.items():
        rng.shuffle(messages)
        events = [(start * 1000 + rng.randrange(WINDOW_SECONDS * 1000), m) for m in messages]
        payloads += [log_payload(group, events[i : i + 100]) for i in range(0, len(events), 100)]
    rng.shuffle(payloads)
    # When the detector handles every batch
    responses = [detect_handler.lambda_handler(p, lambda_context) for p in payloads]
    # Then there is exactly one execution per incident (stage as the line says, or log group)
    assert sum(len(r["started"]) for r in responses) == 3
    assert sum(r["suppressed"] for r in responses) == sum(r["incidents"] for r in responses) - 3
    listed = wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn, count=3)
    keys = sorted(
        (json.loads(e["input"]).get("stage") or "", json.loads(e["input"])["logGroup"]) for e in listed
    )
    assert keys == [("", "/access/bare"), ("$default", "/access/shared"), ("prod", "/access/shared")]


# --- the resolve step: log group -> stage through the v2 control plane ----------------------------------


def _http_api(world: Any, name: str, stages: dict[str, str | None]) -> str:
    v2 = world.client("apigatewayv2")
    api_id = str(v2.create_api(Name=name, ProtocolType="HTTP")["ApiId"])
    for stage, group in stages.items():
        settings = (
            {
                "AccessLogSettings": {
                    "DestinationArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}",
                    "Format": "{}",
                }
            }
            if group
            else {}
        )
        v2.create_stage(ApiId=api_id, StageName=stage, **settings)
    return api_id


def test_the_stage_writing_to_the_group_is_found_narrowed_by_the_line(world: Any) -> None:
    # Given two HTTP APIs: one writes both stages to a shared group, one writes to its own group
    shared = _http_api(world, "shop", {"prod": "/access/shared", "$default": "/access/shared", "dev": None})
    own = _http_api(world, "pets", {"$default": "/access/pets"})
    stages = AccessLogStages(world.client("apigatewayv2"))
    # Then the own group's one stage is found without any hint from the line
    assert stages.locate("/access/pets") == StageLog(
        own, "$default", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/access/pets"
    )
    # And the shared group needs the line's stage, which then picks one
    assert stages.locate("/access/shared", shared, "prod").stage == "prod"
    with pytest.raises(AmbiguousApiError, match=r"\$context.apiId and \$context.stage"):
        stages.locate("/access/shared")
    # And a line naming an API or stage that does not write to the group matches nothing
    with pytest.raises(NotFoundError, match="/access/pets"):
        stages.locate("/access/pets", shared, "prod")
    with pytest.raises(NotFoundError):
        stages.locate("/access/pets", "nosuchapi1")
    with pytest.raises(NotFoundError):
        stages.locate("/access/nobody")


def test_locating_costs_one_get_apis_and_one_get_stages_per_api(world: Any) -> None:
    for index in range(5):
        _http_api(world, f"api{index}", {"prod": f"/access/{index}"})
    v2 = world.client("apigatewayv2")
    calls: list[str] = []
    v2.meta.events.register("before-call.apigatewayv2.*", lambda model, **_: calls.append(model.name))
    # When a group is located without a hint, then with the line's API id
    found = AccessLogStages(v2).locate("/access/3")
    AccessLogStages(v2).locate("/access/3", found.api_id)
    # Then the first read every API's stages once, the second only that API's
    assert calls == ["GetApis"] + ["GetStages"] * 5 + ["GetStages"]


def test_access_log_input_needs_no_api_id_but_a_log_group() -> None:
    request = ExecutionInput.from_event({"source": "logs", "logType": "access", "logGroup": "/access/x"})
    assert (request.api, request.stage, request.access_log_group) == ("", None, "/access/x")
    with pytest.raises(ParseError, match="logGroup"):
        ExecutionInput.from_event({"source": "logs", "logType": "access"})
    with pytest.raises(ParseError, match="apiId"):
        ExecutionInput.from_event({"source": "logs", "logGroup": "/access/x"})
