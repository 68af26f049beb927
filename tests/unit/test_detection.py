"""Detection: subscription payloads → incidents with deterministic execution names and hints."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.detection import LogBatch, decode, detect
from permheal.errors import ParseError
from permheal.targets import Hint
from permheal_local.aws import awslogs_payload
from tests.conftest import load_event

GROUP = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
WINDOW_START_MS = 1_763_715_600_000  # a multiple of 900 s


def failure(request_id: str) -> str:
    return (
        f"({request_id}) Execution failed due to configuration error: Invalid permissions on Lambda function"
    )


def batch(*messages: str, group: str = GROUP, start_ms: int = WINDOW_START_MS) -> LogBatch:
    return LogBatch(group, "DATA_MESSAGE", tuple((start_ms + i, m) for i, m in enumerate(messages)))


def test_info_level_sample_yields_one_incident_with_method_path_and_function_hints() -> None:
    # Given the INFO-level sample from events/
    event = load_event("logs-integration-failure-info.json")
    # When it is decoded and detected
    detection = detect(decode(event))
    # Then one incident for the log group's API and stage carries the request's hints
    (incident,) = detection.incidents
    assert (incident.api_id, incident.stage, incident.failures) == ("a1b2c3d4e5", "prod", 1)
    assert incident.hints == (
        Hint("GET", "/pets/{petId}", None, "arn:aws:lambda:us-east-1:123456789012:function:pets:live"),
    )


def test_error_level_sample_yields_an_incident_without_hints() -> None:
    # Given only the failure line (ERROR level)
    detection = detect(decode(load_event("logs-integration-failure-error-level.json")))
    # Then the incident has no hints: the control plane decides everything
    (incident,) = detection.incidents
    assert incident.hints == ()


def test_authorizer_failure_hint_names_the_authorizer_not_a_method() -> None:
    detection = detect(decode(load_event("logs-authorizer-failure.json")))
    (incident,) = detection.incidents
    assert [h.authorizer_id for h in incident.hints] == ["x7y8z9"]
    assert incident.hints[0].method is None


def test_control_message_yields_nothing() -> None:
    assert detect(decode(load_event("logs-control-message.json"))).incidents == ()


def test_a_thousand_failures_in_one_window_are_one_incident_with_one_name() -> None:
    # Given 1,000 failing requests in two batches of the same window
    first = detect(batch(*(failure(f"r{i}") for i in range(500))))
    second = detect(batch(*(failure(f"s{i}") for i in range(500)), start_ms=WINDOW_START_MS + 60_000))
    # Then each batch has one incident and both ask for the same execution name
    assert len(first.incidents) == len(second.incidents) == 1
    assert first.incidents[0].execution_name == second.incidents[0].execution_name
    assert first.failure_lines == 500


def test_canary_log_group_failures_are_the_stage_incident() -> None:
    # Given the same failure written to the stage's group and to its canary group
    stage = detect(batch(failure("r1")))
    canary = detect(batch(failure("r1"), group=GROUP + "/Canary"))
    # Then the canary batch is one incident for the same API and stage, with the same execution
    (incident,) = canary.incidents
    assert (incident.api_id, incident.stage) == ("a1b2c3d4e5", "prod")
    assert incident.execution_name == stage.incidents[0].execution_name
    assert incident.log_group == GROUP + "/Canary"


def test_failures_in_the_next_window_get_a_new_execution_name() -> None:
    now = detect(batch(failure("a"))).incidents[0]
    later = detect(batch(failure("b"), start_ms=WINDOW_START_MS + 900_000)).incidents[0]
    assert now.execution_name != later.execution_name


def test_a_failure_without_hints_disables_narrowing_for_the_incident() -> None:
    # Given one request with a method line and one with only the failure line
    messages = ["(r1) HTTP Method: GET, Resource Path: /pets", failure("r1"), failure("r2")]
    # Then no hints are passed on: narrowing could miss the unexplained failure
    assert detect(batch(*messages)).incidents[0].hints == ()


def test_execution_names_are_valid_for_step_functions_even_for_long_stages() -> None:
    stage = "s" * 128
    incident = detect(batch(failure("r"), group=f"API-Gateway-Execution-Logs_abc/{stage}")).incidents[0]
    name = incident.execution_name
    assert len(name) <= 80
    assert all(c.isalnum() or c in "-_" for c in name)


def test_assume_role_failures_are_reported_not_turned_into_incidents() -> None:
    line = (
        "(r) Execution failed due to configuration error: API Gateway does not have permission to assume "
        "the provided role arn:aws:iam::123456789012:role/apigw"
    )
    detection = detect(batch(line))
    assert detection.incidents == ()
    assert detection.role_failures == ("arn:aws:iam::123456789012:role/apigw",)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"awslogs": "x"},
        {"awslogs": {"data": "!!! not base64"}},
        {"awslogs": {"data": base64.b64encode(b"not gzip").decode()}},
        awslogs_payload(b"not json"),
        awslogs_payload(b"\xff\xfe\xfa"),
        awslogs_payload({"messageType": "DATA_MESSAGE"}),
        awslogs_payload([1, 2, 3]),
    ],
    ids=[
        "empty",
        "awslogs-not-object",
        "bad-base64",
        "bad-gzip",
        "not-json",
        "not-utf8",
        "missing-fields",
        "json-array",
    ],
)
def test_malformed_payloads_raise_parse_error(event: Any) -> None:
    with pytest.raises(ParseError):
        detect(decode(event))


def test_a_log_group_that_is_not_an_execution_log_group_is_rejected() -> None:
    with pytest.raises(ParseError):
        detect(batch(failure("r"), group="/aws/lambda/pets"))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=20))
def test_detect_never_fails_on_arbitrary_messages(messages: list[str]) -> None:
    detection = detect(batch(*messages))
    assert all(i.api_id == "a1b2c3d4e5" for i in detection.incidents)
