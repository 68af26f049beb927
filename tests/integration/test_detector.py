"""The detector handler against the deployed stack: what it starts, what it keeps, what it refuses.

The handler module is called directly (with the stack's environment); the executions it starts run
in moto's Step Functions interpreter with the real step handlers.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from permheal.handlers import detect
from permheal_local.aws import awslogs_payload
from permheal_local.builder import ACCOUNT, REGION
from tests.conftest import load_event
from tests.integration.support import (
    FAILURE,
    Petstore,
    allows,
    build_petstore,
    dead_letters,
    decode_payload,
    executions,
    log_payload,
    retarget,
    wait_for_executions,
)

FORGED = (
    "Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
    f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:evil/invocations"
)


@pytest.fixture
def petstore(world: Any) -> Petstore:
    return build_petstore(world)


@pytest.fixture
def env(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The detector's environment as the template sets it."""
    monkeypatch.setenv("PERMHEAL_STATE_MACHINE_ARN", stack.state_machine_arn)
    monkeypatch.setenv("PERMHEAL_DEAD_LETTER_QUEUE_URL", stack.dead_letter_queue_url)
    monkeypatch.setenv("PERMHEAL_INCIDENT_WINDOW_SECONDS", "900")
    return stack


def started(world: Any, stack: Any) -> list[dict[str, Any]]:
    return executions(world.client("stepfunctions"), stack.state_machine_arn)


# ------------------------------------------------------------------------------ nothing to do


def test_control_message_starts_nothing_and_keeps_nothing(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given the health check CloudWatch Logs sends when a subscription is created
    event = load_event("logs-control-message.json")
    # When the detector handles it
    response = detect.lambda_handler(event, lambda_context)
    # Then nothing is started and nothing goes to the dead-letter queue
    assert response["started"] == []
    assert started(world, env) == []
    assert dead_letters(world, env.dead_letter_queue_url) == []


# ------------------------------------------------------------------------------ undecodable payloads

LOG_GROUP = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
DOCUMENT = decode_payload(load_event("logs-integration-failure-info.json"))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param({"awslogs": {"data": "not base64 at all!"}}, "undecodable", id="bad-base64"),
        pytest.param(
            {"awslogs": {"data": base64.b64encode(b"plain text, not gzip").decode()}},
            "undecodable",
            id="bad-gzip",
        ),
        pytest.param(awslogs_payload(b"{not json"), "undecodable", id="not-json"),
        pytest.param({"awslogs": {}}, "undecodable", id="no-data"),
        pytest.param({"records": []}, "awslogs", id="not-a-subscription-event"),
        pytest.param(
            awslogs_payload({k: v for k, v in DOCUMENT.items() if k != "logEvents"}),
            "undecodable",
            id="no-log-events",
        ),
        pytest.param(
            awslogs_payload({k: v for k, v in DOCUMENT.items() if k != "logGroup"}),
            "undecodable",
            id="no-log-group",
        ),
        pytest.param(
            awslogs_payload({**DOCUMENT, "messageType": "SURPRISE"}), "messageType", id="unknown-message-type"
        ),
        pytest.param(
            awslogs_payload({**DOCUMENT, "logGroup": "/aws/lambda/pets"}),
            "execution log group",
            id="not-an-execution-log-group",
        ),
        pytest.param(
            awslogs_payload({**DOCUMENT, "logGroup": "API-Gateway-Execution-Logs_a1b2c3d4e5"}),
            "stage",
            id="log-group-without-stage",
        ),
    ],
)
def test_undecodable_payload_goes_to_the_dead_letter_queue_with_the_reason(
    world: Any, env: Any, lambda_context: Any, event: dict[str, Any], reason: str
) -> None:
    # Given a payload the detector cannot understand
    # When the detector handles it
    response = detect.lambda_handler(event, lambda_context)
    # Then the invocation succeeds (no retry loop), the payload is kept with the reason, nothing starts
    assert response["started"] == []
    (letter,) = dead_letters(world, env.dead_letter_queue_url)
    assert reason in letter["reason"]
    assert letter["reason"] == response["rejected"]
    assert letter["event"] == event
    assert started(world, env) == []


# ------------------------------------------------------------------------------ log text is only a hint


def test_forged_function_in_log_lines_gets_no_grant_while_the_real_integration_does(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given a function `evil` the petstore does not integrate
    world.function("evil")
    # And failure lines that claim the petstore invoked `evil`
    forged = retarget(
        load_event("logs-integration-failure-info.json"),
        petstore.api_id,
        "prod",
        replace={"function:pets:live/invocations": "function:evil/invocations"},
    )
    assert FORGED in json.dumps(decode_payload(forged))
    # When the detector handles them and the workflow runs
    detect.lambda_handler(forged, lambda_context)
    (execution,) = wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)
    # Then `evil` has no policy at all, and the integration the control plane names was repaired
    assert execution["status"] == "SUCCEEDED"
    assert world.statements("evil") == []
    assert allows(world, "pets", "live", petstore.method_arn())


def test_error_level_failure_without_hints_still_repairs_every_target(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given an ERROR-level log: only the failure line, naming no method, path or function
    event = retarget(load_event("logs-integration-failure-error-level.json"), petstore.api_id, "prod")
    # When the detector handles it and the workflow runs
    detect.lambda_handler(event, lambda_context)
    (execution,) = wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)
    # Then the execution had no hints, and every target of the stage can now be invoked
    assert json.loads(execution["input"])["hints"] == []
    assert execution["status"] == "SUCCEEDED"
    assert allows(world, "pets", "live", petstore.method_arn())
    assert allows(world, "pets-authorizer", None, petstore.authorizer_arn())


def test_authorizer_failure_gets_the_authorizer_grant(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given the petstore's authorizer failing on permissions
    event = retarget(
        load_event("logs-authorizer-failure.json"),
        petstore.api_id,
        "prod",
        replace={"x7y8z9": petstore.authorizer_id},
    )
    # When the detector handles it and the workflow runs
    detect.lambda_handler(event, lambda_context)
    (execution,) = wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)
    # Then the hint named the authorizer, and the authorizer function may now be invoked for it
    assert json.loads(execution["input"])["hints"][0]["authorizerId"] == petstore.authorizer_id
    assert execution["status"] == "SUCCEEDED"
    assert allows(world, "pets-authorizer", None, petstore.authorizer_arn())


# ------------------------------------------------------------------------------ starting executions


def test_throttled_start_fails_the_invocation_so_lambda_keeps_the_event(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Step Functions throttles StartExecution (after botocore's own retries)
    calls: list[dict[str, Any]] = []

    def throttled(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
        )

    def sfn_client(service: str, region: str | None = None) -> Any:
        sfn = boto3.client(service, region_name=region or REGION)
        monkeypatch.setattr(sfn, "start_execution", throttled)
        return sfn

    monkeypatch.setattr("permheal.adapters.workflow.client", sfn_client)
    event = retarget(load_event("logs-integration-failure-info.json"), petstore.api_id, "prod")
    # When the detector handles a failure
    # Then the invocation fails (Lambda's async retries and on-failure destination keep the event)
    with pytest.raises(Exception, match="ThrottlingException"):
        detect.lambda_handler(event, lambda_context)
    # And it did try, started nothing, and did not claim the event was dead-lettered
    assert len(calls) == 1
    assert started(world, env) == []
    assert dead_letters(world, env.dead_letter_queue_url) == []


def test_second_batch_of_the_same_incident_is_suppressed(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given a first batch of failures started the incident's execution
    window = 1_763_715_600_000 // 900_000 * 900_000
    group = f"API-Gateway-Execution-Logs_{petstore.api_id}/prod"
    first = detect.lambda_handler(log_payload(group, [(window + 1_000, f"(r-1) {FAILURE}")]), lambda_context)
    assert len(first["started"]) == 1
    # When a later batch of other requests in the same window arrives
    later = log_payload(group, [(window + 5_000, f"(r-2) {FAILURE}"), (window + 6_000, f"(r-3) {FAILURE}")])
    second = detect.lambda_handler(later, lambda_context)
    # Then StartExecution's ExecutionAlreadyExists counts it as suppressed, and one execution exists
    assert second["started"] == []
    assert second["suppressed"] == 1
    assert len(started(world, env)) == 1
    wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)


def test_redelivered_batch_after_the_execution_finished_is_suppressed(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given a batch whose execution already finished
    event = retarget(load_event("logs-integration-failure-info.json"), petstore.api_id, "prod")
    detect.lambda_handler(event, lambda_context)
    wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)
    # When the same batch is delivered again (an async retry)
    again = detect.lambda_handler(event, lambda_context)
    # Then it is suppressed, not run twice
    assert again["started"] == []
    assert again["suppressed"] == 1
    assert len(started(world, env)) == 1


def test_failures_in_two_windows_start_two_executions(
    world: Any, env: Any, petstore: Petstore, lambda_context: Any
) -> None:
    # Given failures of one stage 900 s apart, in one batch
    window = 1_763_715_600_000 // 900_000 * 900_000
    group = f"API-Gateway-Execution-Logs_{petstore.api_id}/prod"
    event = log_payload(group, [(window + 1_000, f"(r-1) {FAILURE}"), (window + 901_000, f"(r-2) {FAILURE}")])
    # When the detector handles the batch
    response = detect.lambda_handler(event, lambda_context)
    # Then each window is its own incident and execution
    assert len(response["started"]) == 2
    assert len(wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=2)) == 2


def test_missing_configuration_fails_the_invocation(
    world: Any, env: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a detector deployed without its state machine ARN
    monkeypatch.delenv("PERMHEAL_STATE_MACHINE_ARN")
    # When it is invoked
    # Then it fails loudly instead of dropping the event
    with pytest.raises(Exception, match="PERMHEAL_STATE_MACHINE_ARN"):
        detect.lambda_handler(load_event("logs-control-message.json"), lambda_context)
