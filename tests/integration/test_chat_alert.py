"""The workflow's alert reaches email and chat from one topic (MessageStructure json), against moto."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from tests.integration.support import Petstore, received, run
from tests.integration.test_workflow import explode
from tests.unit.test_chat import CHATBOT_SCHEMA


def published(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The parameters of every sns:publish the execution scheduled, as Step Functions recorded them."""
    events = sfn.get_execution_history(executionArn=execution_arn, includeExecutionData=True)["events"]
    return [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in events
        if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "sns"
    ]


def structured(parameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The protocol parts of a MessageStructure=json publish, and its chat part validated."""
    raw = parameters["Message"]
    message: dict[str, Any] = raw if isinstance(raw, dict) else json.loads(raw)
    chat: dict[str, Any] = json.loads(message["https"])
    jsonschema.validate(chat, CHATBOT_SCHEMA)
    return message, chat


def test_a_repair_publishes_the_summary_for_email_and_a_chatbot_notification_for_chat(
    world: Any, stack: Any, petstore: Petstore, inbox: str
) -> None:
    # Given the petstore missing its grants
    sfn = world.client("stepfunctions")
    # When the workflow repairs it
    execution = run(
        sfn, stack.state_machine_arn, {"source": "manual", "apiName": "petstore", "stage": "prod"}
    )
    # Then one publish carried a structured message: `https` is a valid Chatbot custom notification
    (parameters,) = published(sfn, execution["executionArn"])
    assert parameters["MessageStructure"] == "json"
    message, chat = structured(parameters)
    assert chat["content"]["title"].startswith(":white_check_mark: permheal repaired: petstore/prod")
    assert chat["metadata"]["threadId"] == f"permheal-{petstore.api_id}-prod"
    # And subscribers without a protocol part (SQS here, email alike) get the human summary
    (notice,) = received(world, inbox)
    assert notice.message == message["default"]
    assert notice.message.startswith("permheal repaired API Gateway's permission")


def test_the_crash_alert_also_reaches_chat(
    world: Any, stack: Any, petstore: Petstore, inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a summary step that crashes
    sfn = world.client("stepfunctions")
    explode(monkeypatch, "permheal.handlers.summarize.result_from_state", message="summary exploded")
    # When the workflow runs
    execution = run(
        sfn, stack.state_machine_arn, {"source": "manual", "apiName": "petstore", "stage": "prod"}
    )
    # Then the crash notification is structured too, its chat part a valid custom notification
    (parameters,) = published(sfn, execution["executionArn"])
    message, chat = structured(parameters)
    assert "workflow crashed" in chat["content"]["title"]
    assert execution["executionArn"] in chat["content"]["description"]
    (notice,) = received(world, inbox)
    assert notice.message == message["default"]
    assert "summary exploded" in notice.message
