"""The chat alert: AWS Chatbot's custom-notification schema, how it reads, and its size."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from markdown_it import MarkdownIt

from permheal import limits
from permheal.chat import TITLE_LIMIT, escaped_size, payload
from permheal.models import (
    AddedStatement,
    Change,
    Finding,
    FindingKind,
    Outcome,
    RemediationResult,
    RemovedStatement,
)
from permheal.notify import message, notification

# AWS Chatbot (Amazon Q Developer in chat applications) custom notifications, "Event schema" and
# "Parameter details": version "1.0" and source "custom" are required, content.description is
# required, textType only "client-markdown"; everything else optional, strings or lists of strings.
CHATBOT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "source", "content"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0"},
        "source": {"const": "custom"},
        "id": {"type": "string", "minLength": 1},
        "content": {
            "type": "object",
            "required": ["description"],
            "additionalProperties": False,
            "properties": {
                "textType": {"const": "client-markdown"},
                "title": {"type": "string", "minLength": 1},
                "description": {"type": "string", "minLength": 1},
                "nextSteps": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "keywords": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threadId": {"type": "string", "minLength": 1},
                "summary": {"type": "string", "minLength": 1},
                "eventType": {"type": "string", "minLength": 1},
                "relatedResources": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "additionalContext": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

API = "abc123"
FN = "arn:aws:lambda:us-east-1:123456789012:function:pets"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:permheal-remediation:detect-abc123-prod-1"
CONSOLE = "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/x"


def missing(method: str = "GET", path: str = "/pets/{petId}", **extra: Any) -> Finding:
    return Finding(
        FindingKind.MISSING_PERMISSION,
        API,
        "petstore",
        "prod",
        method,
        path,
        function_arn=FN,
        qualifier="live",
        **extra,
    )


def repaired(**overrides: Any) -> RemediationResult:
    change = Change(
        FN,
        "live",
        added=(
            AddedStatement(
                "permheal-0123456789abcdef", f"arn:aws:execute-api:us-east-1:123456789012:{API}/*/GET/pets/*"
            ),
        ),
        removed=(
            RemovedStatement(
                "console-dup",
                "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/pets/1",
                "duplicate",
            ),
        ),
        policy_bytes_before=812,
        policy_bytes_after=640,
    )
    fields: dict[str, Any] = {
        "outcome": Outcome.REPAIRED,
        "api_id": API,
        "stage": "prod",
        "api_name": "petstore",
        "changes": (change,),
        "findings": (
            missing(),
            Finding(
                FindingKind.MISSING_PERMISSION,
                API,
                "petstore",
                "prod",
                authorizer_id="auth01",
                function_arn=FN,
            ),
        ),
    }
    fields.update(overrides)
    return RemediationResult(**fields)


def as_text(markdown: str) -> str:
    """The description as a reader sees it: markdown rendered, tags dropped."""
    html = MarkdownIt().render(markdown)
    return re.sub(r"<[^>]+>", "", html).replace("&quot;", '"').replace("&gt;", ">").replace("&amp;", "&")


@pytest.mark.parametrize(
    "result",
    [
        repaired(),
        repaired(outcome=Outcome.DRY_RUN),
        repaired(outcome=Outcome.NO_CHANGE, changes=()),
        RemediationResult(Outcome.REFUSED, API, "prod", "petstore", error="API is not in the allowlist"),
        RemediationResult(Outcome.FAILED, None, None, None, error="boom"),
        repaired(outcome=Outcome.FLAPPING, error="re-added 3 times in 24 h"),
        repaired(
            findings=(
                Finding(
                    FindingKind.INTEGRATION_ROLE, API, "petstore", "prod", "POST", "/orders", function_arn=FN
                ),
            )
        ),
    ],
    ids=["repaired", "dry_run", "no_change", "refused", "failed", "flapping", "role"],
)
def test_every_outcome_is_a_valid_chatbot_custom_notification(result: RemediationResult) -> None:
    document = payload(result, EXECUTION, CONSOLE)
    jsonschema.validate(document, CHATBOT_SCHEMA)
    assert len(document["content"]["title"]) <= TITLE_LIMIT
    assert result.outcome.value in document["content"]["keywords"]


def test_the_schema_rejects_what_chatbot_rejects() -> None:
    # The encoded schema can fail: a wrong version, a missing description, a non-string keyword.
    good = payload(repaired(), EXECUTION, CONSOLE)
    for broken in (
        {**good, "version": "2.0"},
        {**good, "content": {k: v for k, v in good["content"].items() if k != "description"}},
        {**good, "content": {**good["content"], "keywords": [1]}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, CHATBOT_SCHEMA)


def test_the_chat_alert_reads_from_the_cause_to_the_revert() -> None:
    # Given a repair
    document = payload(repaired(), EXECUTION, CONSOLE)
    content = document["content"]
    # When chat renders it
    text = as_text(content["description"])
    print(content["title"], text, *content["nextSteps"], sep="\n")
    # Then the title is short, says what happened where, and the body names cause, change and undo
    assert content["title"] == ":white_check_mark: permheal repaired: petstore/prod (2 changes)"
    assert "Repaired API Gateway's permission to invoke Lambda for petstore (abc123) stage prod." in text
    assert "GET /pets/{petId} → pets:live" in text
    assert "pets:live: +1 −1, policy 812 → 640 bytes" in text
    assert (
        f"undo: aws lambda remove-permission --function-name {FN} --qualifier live"
        " --statement-id permheal-0123456789abcdef" in text
    )
    # And the next steps start with the explain command of each failing call, then the revert
    assert content["nextSteps"][:3] == [
        'Why: `permheal explain --api abc123 --stage prod --route "GET /pets/{petId}"`',
        "Why: `permheal explain --api abc123 --stage prod --authorizer auth01`",
        "Revert: `permheal history --api abc123`, then `permheal revert CHANGE_ID`",
    ]
    assert document["metadata"]["threadId"] == "permheal-abc123-prod"
    assert document["metadata"]["relatedResources"] == [EXECUTION, f"{FN}:live"]


def test_the_email_summary_links_each_failing_call_to_explain() -> None:
    text = message(repaired(), EXECUTION, "us-east-1")
    assert (
        '    run `permheal explain --api abc123 --stage prod --route "GET /pets/{petId}"` to see why' in text
    )
    assert "    run `permheal explain --api abc123 --stage prod --authorizer auth01` to see why" in text


def test_a_huge_result_keeps_the_chat_payload_and_the_whole_sns_message_within_budget() -> None:
    # Given 120 changed functions with 60 removed statements each and 500 failing calls
    changes = tuple(
        Change(
            f"{FN}{i}",
            "live",
            removed=tuple(RemovedStatement(f"s{j}", f"arn:x{j}", "duplicate") for j in range(60)),
        )
        for i in range(120)
    )
    findings = tuple(missing(path=f"/p{i}") for i in range(500))
    result = RemediationResult(Outcome.FAILED, API, "prod", "big", changes, findings, error="boom; " * 2_000)
    # When the notification is built
    notice = notification(result, EXECUTION, "us-east-1")
    chat = json.loads(notice.chat)
    # Then the chat payload is valid, within its budget, the description within Slack's block
    jsonschema.validate(chat, CHATBOT_SCHEMA)
    assert escaped_size(chat) <= limits.CHAT_BUDGET
    assert len(chat["content"]["description"]) <= limits.CHAT_DESCRIPTION_LIMIT
    assert "more" in chat["content"]["description"]
    # And the structured SNS message (as Step Functions would serialize it) fits MESSAGE_BUDGET
    structured = json.dumps({"default": notice.message, "https": notice.chat})
    assert len(structured.encode()) <= limits.MESSAGE_BUDGET
    assert limits.MESSAGE_BUDGET + limits.REPORT_OVERHEAD <= limits.SNS_MESSAGE_LIMIT


def test_http_and_websocket_failures_link_to_explain_by_route_key() -> None:
    # Given failing calls of a WebSocket $connect route and an HTTP $default route
    connect = Finding(
        FindingKind.MISSING_PERMISSION, "ws1", "chat", "prod", function_arn=FN, route_key="$connect"
    )
    default = Finding(
        FindingKind.MISSING_PERMISSION,
        "h1",
        "shop",
        "$default",
        "ANY",
        "$default",
        function_arn=FN,
        route_key="$default",
    )
    result = RemediationResult(Outcome.REPAIRED, "ws1", "prod", "chat", findings=(connect, default))
    # When the summary is written
    text = message(result, EXECUTION, "us-east-1")
    # Then each names its route and the explain command that takes it
    assert "  - route $connect -> pets" in text
    assert 'run `permheal explain --api ws1 --stage prod --route "$connect"` to see why' in text
    assert 'run `permheal explain --api h1 --stage $default --route "$default"` to see why' in text
