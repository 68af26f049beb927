"""Helpers shared by the workflow, detector and storm tests: payloads, executions, notifications."""

from __future__ import annotations

import base64
import gzip
import json
import time
from dataclasses import dataclass
from typing import Any

from permheal.policy import InvokeRequest, Policy, evaluate
from permheal_local.aws import awslogs_payload, wait_until_stopped
from permheal_local.builder import ACCOUNT, REGION, World, function_arn

FAILURE = "Execution failed due to configuration error: Invalid permissions on Lambda function"


# --------------------------------------------------------------------------------- log payloads


def decode_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON document inside a `{"awslogs": {"data": ...}}` event."""
    document: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return document


def retarget(
    event: dict[str, Any], api_id: str, stage: str, replace: dict[str, str] | None = None
) -> dict[str, Any]:
    """The same payload as if written by API `api_id`, stage `stage`; `replace` rewrites message text."""
    document = decode_payload(event)
    document["logGroup"] = f"API-Gateway-Execution-Logs_{api_id}/{stage}"
    for log_event in document["logEvents"]:
        for old, new in (replace or {}).items():
            log_event["message"] = log_event["message"].replace(old, new)
    return awslogs_payload(document)


def log_payload(log_group: str, events: list[tuple[int, str]]) -> dict[str, Any]:
    """A DATA_MESSAGE with `(timestamp ms, message)` events."""
    return awslogs_payload(
        {
            "messageType": "DATA_MESSAGE",
            "owner": ACCOUNT,
            "logGroup": log_group,
            "logStream": "0f0e0d0c0b0a09080706050403020100",
            "subscriptionFilters": ["permheal-permission-failures"],
            "logEvents": [
                {"id": str(index), "timestamp": timestamp, "message": message}
                for index, (timestamp, message) in enumerate(events)
            ],
        }
    )


# --------------------------------------------------------------------------------- the petstore


@dataclass(frozen=True)
class Petstore:
    api_id: str
    authorizer_id: str
    function: str = "pets"
    alias: str = "live"
    authorizer_function: str = "pets-authorizer"

    def method_arn(self, stage: str = "prod") -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/{stage}/GET/pets/{{petId}}"

    def authorizer_arn(self) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_id}/authorizers/{self.authorizer_id}"


def build_petstore(world: World, name: str = "petstore", stages: dict[str, str] | None = None) -> Petstore:
    """GET /pets/{petId} → `pets:${stageVariables.alias}` behind a TOKEN authorizer; stage → alias."""
    stages = stages or {"prod": "live"}
    world.function("pets", alias="live")
    for alias in set(stages.values()) - {"live"}:
        version = world.client("lambda").publish_version(FunctionName="pets")["Version"]
        world.client("lambda").create_alias(FunctionName="pets", Name=alias, FunctionVersion=version)
    world.function("pets-authorizer")
    api_id = world.rest_api(name)
    authorizer_id = world.authorizer(api_id, "token", function_arn("pets-authorizer"))
    world.method(
        api_id,
        "/pets/{petId}",
        "GET",
        function_arn("pets") + ":${stageVariables.alias}",
        authorizer_id=authorizer_id,
    )
    for stage, alias in stages.items():
        world.deploy(api_id, stage, {"alias": alias})
    return Petstore(api_id, authorizer_id)


def allows(world: World, function: str, qualifier: str | None, source_arn: str) -> bool:
    """Whether the qualifier's policy, as Lambda holds it now, lets API Gateway call from `source_arn`."""
    policy = Policy(tuple(world.statements(function, qualifier)))
    request = InvokeRequest(function_arn(function, qualifier), source_arn, ACCOUNT)
    return evaluate(policy, request).allowed


def all_statements(world: World, *functions: tuple[str, str | None]) -> dict[str, list[dict[str, Any]]]:
    """A snapshot of several policies, to show that nothing changed."""
    return {f"{name}:{qualifier}": world.statements(name, qualifier) for name, qualifier in functions}


# --------------------------------------------------------------------------------- executions


def executions(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn)
    return [e for page in pages for e in page["executions"]]


def wait_for_executions(
    sfn: Any, state_machine_arn: str, count: int | None = None, timeout: float = 30
) -> list[dict[str, Any]]:
    """Every execution of the state machine once none is running (and at least `count` exist)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = executions(sfn, state_machine_arn)
        done = all(e["status"] != "RUNNING" for e in listed)
        if done and (count is None or len(listed) >= count):
            return [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
        if time.monotonic() > deadline:
            running = [e["executionArn"] for e in listed if e["status"] == "RUNNING"]
            raise AssertionError(f"{len(listed)} executions after {timeout}s, still running: {running}")
        time.sleep(0.02)


def run(
    sfn: Any,
    state_machine_arn: str,
    execution_input: dict[str, Any],
    name: str | None = None,
    timeout: float = 60,
) -> Any:
    """Start an execution with `execution_input` and return its description once it has stopped."""
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name or f"test-{time.monotonic_ns()}",
        input=json.dumps(execution_input),
    )
    return wait_until_stopped(sfn, started["executionArn"], timeout)


# --------------------------------------------------------------------------------- notifications


@dataclass(frozen=True)
class Notice:
    """One SNS notification as an SQS subscriber receives it."""

    subject: str
    message: str
    attributes: dict[str, str]

    @property
    def result(self) -> dict[str, Any]:
        """The JSON result that follows the human summary."""
        marker = "Result (JSON):\n"
        assert marker in self.message, self.message
        document: dict[str, Any] = json.loads(self.message.split(marker, 1)[1])
        return document


def subscribe_queue(world: World, topic_arn: str, name: str = "on-call") -> str:
    """An SQS queue subscribed to the topic (SNS envelopes, not raw delivery); returns its URL."""
    sqs = world.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    world.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(world: World, queue_url: str) -> list[Notice]:
    """Every notification waiting in the queue (drained)."""
    sqs = world.client("sqs")
    notices: list[Notice] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return notices
        for message in messages:
            envelope = json.loads(message["Body"])
            attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            notices.append(Notice(envelope.get("Subject", ""), envelope["Message"], attributes))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def dead_letters(world: World, queue_url: str) -> list[dict[str, Any]]:
    """Every message waiting in the detector's dead-letter queue (drained), parsed."""
    sqs = world.client("sqs")
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
