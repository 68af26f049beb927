"""The local EventBridge's pattern matching, and the template's proactive rule through it."""

from __future__ import annotations

from typing import Any

import pytest

from permheal.proactive import APIGATEWAY_EVENTS, parse_event
from permheal_local.cloudtrail import LAMBDA_EVENT_NAMES, cloudtrail_event
from permheal_local.eventbridge import EventPattern
from permheal_local.stack import TEMPLATE
from permheal_local.template import load_template, resources


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        ({"source": ["a"]}, {"source": "a"}, True),
        ({"source": ["a"]}, {"source": "b"}, False),
        ({"source": ["a", "b"]}, {"source": "b"}, True),
        ({"source": ["a"]}, {}, False),
        ({"d": {"n": [{"prefix": "Update"}]}}, {"d": {"n": "UpdateAlias20150331"}}, True),
        ({"d": {"n": [{"prefix": "Update"}]}}, {"d": {"n": "update"}}, False),
        ({"d": {"n": [{"prefix": "Update"}]}}, {"d": {"n": 5}}, False),
        ({"d": {"e": [{"exists": False}]}}, {"d": {}}, True),
        ({"d": {"e": [{"exists": False}]}}, {"d": {"e": None}}, False),
        ({"d": {"e": [{"exists": True}]}}, {"d": {"e": "x"}}, True),
        ({"d": {"e": [{"exists": True}]}}, {"d": {}}, False),
        ({"d": {"n": ["x"]}}, {"d": "flat"}, False),
        ({"d": {"n": ["x"]}}, {"d": {"n": {"x": 1}}}, False),
        ({"tags": ["b"]}, {"tags": ["a", "b"]}, True),
        ({"tags": ["c"]}, {"tags": ["a", "b"]}, False),
        ({"n": [1]}, {"n": 1.0}, True),
        ({"n": [1]}, {"n": True}, False),
        ({"n": [None]}, {"n": None}, True),
        ({"n": [{"anything-but": ["a", "b"]}]}, {"n": "c"}, True),
        ({"n": [{"anything-but": "a"}]}, {"n": "a"}, False),
        ({"a": ["1"], "b": ["2"]}, {"a": "1", "b": "3"}, False),
    ],
)
def test_pattern_semantics(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert EventPattern.parse(pattern).matches(event) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"n": [{"numeric": [">", 1]}]},
        {"n": [{"suffix": "x"}]},
        {"$or": [{"a": ["1"]}]},
        {"n": "not-a-list"},
        {"n": []},
        {},
        {"n": [{"prefix": 1}]},
        {"n": [{"exists": "yes"}]},
        {"n": [["nested"]]},
    ],
)
def test_patterns_the_matcher_cannot_honour_are_refused(pattern: Any) -> None:
    with pytest.raises(ValueError):
        EventPattern.parse(pattern)


@pytest.fixture(scope="module")
def rule() -> EventPattern:
    spec = resources(load_template(TEMPLATE))["ProactiveRule"]
    return EventPattern.parse(spec["Properties"]["EventPattern"])


@pytest.mark.parametrize("name", APIGATEWAY_EVENTS)
@pytest.mark.parametrize("source", ["apigateway.amazonaws.com", "apigatewayv2.amazonaws.com"])
def test_the_rule_matches_every_api_gateway_event_of_the_issue(
    rule: EventPattern, name: str, source: str
) -> None:
    assert rule.matches(cloudtrail_event("aws.apigateway", source, name, {"restApiId": "a"}))


@pytest.mark.parametrize("name", [*LAMBDA_EVENT_NAMES.values(), "UpdateAlias20150331v9", "PublishVersion"])
def test_the_rule_matches_lambda_events_by_prefix(rule: EventPattern, name: str) -> None:
    assert rule.matches(cloudtrail_event("aws.lambda", "lambda.amazonaws.com", name, {"functionName": "f"}))


@pytest.mark.parametrize(
    ("source", "event_source", "name"),
    [
        ("aws.apigateway", "apigateway.amazonaws.com", "GetRestApi"),
        ("aws.apigateway", "apigateway.amazonaws.com", "DeleteRestApi"),
        ("aws.lambda", "lambda.amazonaws.com", "Invoke"),
        ("aws.lambda", "lambda.amazonaws.com", "AddPermission20150331v2"),
        ("aws.s3", "s3.amazonaws.com", "PutObject"),
    ],
)
def test_the_rule_ignores_events_that_cannot_break_a_permission(
    rule: EventPattern, source: str, event_source: str, name: str
) -> None:
    assert not rule.matches(cloudtrail_event(source, event_source, name, {}))


def test_the_rule_ignores_failed_calls(rule: EventPattern) -> None:
    event = cloudtrail_event(
        "aws.apigateway", "apigateway.amazonaws.com", "CreateDeployment", {"restApiId": "a"}
    )
    event["detail"]["errorCode"] = "BadRequestException"
    assert not rule.matches(event)


def test_every_event_the_rule_lets_through_and_the_trigger_accepts_is_one_it_lists(
    rule: EventPattern,
) -> None:
    # Given every event name the rule matches among those listed plus their near neighbours
    names = [*APIGATEWAY_EVENTS, *LAMBDA_EVENT_NAMES.values()]
    # When each is built as CloudTrail would and parsed by the trigger
    for name in names:
        is_lambda = name in LAMBDA_EVENT_NAMES.values()
        event = cloudtrail_event(
            "aws.lambda" if is_lambda else "aws.apigateway",
            "lambda.amazonaws.com" if is_lambda else "apigateway.amazonaws.com",
            name,
            {"functionName": "f"} if is_lambda else {"restApiId": "a"},
        )
        # Then the rule and the trigger agree
        assert rule.matches(event)
        parse_event(event, account=event["account"], region=event["region"])
