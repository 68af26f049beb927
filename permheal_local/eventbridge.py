"""EventBridge rules of the local AWS: pattern matching and delivery to Lambda targets, in process.

moto stores rules and targets but cannot deliver to a Lambda target without Docker (its delivery
raises NotImplementedError for them). `deliver()` reads the rules deployed on the default bus,
matches each event with `EventPattern` (the one place pattern semantics live) and invokes every
matching Lambda target asynchronously, as EventBridge does; the local runtime runs it before the
call returns, so callers see its result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MISSING = object()
_OPERATORS = frozenset({"prefix", "exists", "anything-but"})


@dataclass(frozen=True)
class EventPattern:
    """An EventBridge event pattern: the subset the template uses, matched as EventBridge does.

    Every field of the pattern must match (AND); a field's list of values matches if any value does
    (OR). A value is a literal (string, number, boolean, null: exact match) or an object
    `{"prefix": str}`, `{"exists": bool}` or `{"anything-but": literal | [literals]}`. When the
    event's field is an array, the field matches if any element does. Other operators (numeric,
    suffix, wildcard, `$or`...) raise ValueError: a guessed meaning would deliver the wrong events.
    """

    pattern: Mapping[str, Any]

    @classmethod
    def parse(cls, pattern: Any) -> EventPattern:
        document = json.loads(pattern) if isinstance(pattern, str) else pattern
        _validate(document, "")
        return cls(document)

    def matches(self, event: Mapping[str, Any]) -> bool:
        return _matches(self.pattern, event)


def _validate(node: Any, where: str) -> None:
    if not isinstance(node, dict) or not node:
        raise ValueError(f"pattern {where or '(root)'} must be a non-empty object")
    for key, value in node.items():
        path = f"{where}.{key}" if where else key
        if key.startswith("$"):
            raise ValueError(f"unsupported pattern key {path!r}")
        if isinstance(value, dict):
            _validate(value, path)
            continue
        if not isinstance(value, list) or not value:
            raise ValueError(f"pattern field {path!r} must be a non-empty list or an object")
        for item in value:
            if isinstance(item, dict):
                if len(item) != 1 or next(iter(item)) not in _OPERATORS:
                    raise ValueError(f"unsupported matcher {item!r} at {path!r}")
                ((operator, operand),) = item.items()
                if operator == "prefix" and not isinstance(operand, str):
                    raise ValueError(f"prefix at {path!r} must be a string")
                if operator == "exists" and not isinstance(operand, bool):
                    raise ValueError(f"exists at {path!r} must be true or false")
            elif isinstance(item, list):
                raise ValueError(f"nested list at {path!r}")


def _matches(pattern: Mapping[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, dict):
            if not isinstance(value, Mapping) or not _matches(expected, value):
                return False
        elif not any(_value_matches(item, value) for item in expected):
            return False
    return True


def _value_matches(matcher: Any, value: Any) -> bool:
    if isinstance(matcher, dict) and "exists" in matcher:
        return (value is not _MISSING) is bool(matcher["exists"])
    if value is _MISSING:
        return False
    if isinstance(value, list):
        return any(_value_matches(matcher, element) for element in value)
    if isinstance(value, dict):
        return False  # a leaf matcher never matches an object
    if isinstance(matcher, dict) and "prefix" in matcher:
        return isinstance(value, str) and value.startswith(matcher["prefix"])
    if isinstance(matcher, dict) and "anything-but" in matcher:
        excluded = matcher["anything-but"]
        return not any(_same(e, value) for e in (excluded if isinstance(excluded, list) else [excluded]))
    return _same(matcher, value)


def _same(literal: Any, value: Any) -> bool:
    """Exact match; numbers compare by value, but a boolean is never the number 1."""
    if isinstance(literal, bool) or isinstance(value, bool):
        return isinstance(literal, bool) and isinstance(value, bool) and literal == value
    return bool(literal == value)


# --- deployment and delivery ------------------------------------------------------------------------


def put_rule(world: Any, name: str, properties: Mapping[str, Any]) -> str:
    """Create a rule and its targets from an `AWS::Events::Rule`'s resolved properties; its ARN."""
    EventPattern.parse(properties["EventPattern"])  # refuse what `deliver` could not match faithfully
    events = world.client("events")
    arn = str(
        events.put_rule(
            Name=name,
            EventPattern=json.dumps(properties["EventPattern"]),
            State=properties.get("State", "ENABLED"),
            Description=str(properties.get("Description", "")),
        )["RuleArn"]
    )
    targets = [{"Id": t["Id"], "Arn": t["Arn"]} for t in properties.get("Targets") or []]
    if targets:
        events.put_targets(Rule=name, Targets=targets)
    return arn


@dataclass(frozen=True)
class Delivery:
    """One event handed to one Lambda target, and what the target returned (or raised)."""

    rule: str
    target: str
    event: dict[str, Any]
    result: Any = None
    error: str | None = None


def deliver(world: Any, events: Sequence[dict[str, Any]]) -> list[Delivery]:
    """Deliver each event to the Lambda targets of every enabled default-bus rule it matches."""
    from permheal_local import lambda_runtime

    client = world.client("events")
    rules = [
        (rule["Name"], EventPattern.parse(rule["EventPattern"]))
        for page in client.get_paginator("list_rules").paginate()
        for rule in page.get("Rules", [])
        if rule.get("State") == "ENABLED" and rule.get("EventPattern")
    ]
    deliveries: list[Delivery] = []
    for event in events:
        for name, pattern in rules:
            if not pattern.matches(event):
                continue
            for target in client.list_targets_by_rule(Rule=name).get("Targets", []):
                arn = str(target["Arn"])
                if ":lambda:" not in arn:
                    raise NotImplementedError(f"local delivery to {arn} (only Lambda targets)")
                runs: list[Any] = []

                def observe(
                    function: str,
                    seen: Any,
                    outcome: Any,
                    arn: str = arn,
                    runs: list[Any] = runs,
                    sent: Any = event,
                ) -> None:
                    if arn.endswith(f":function:{function}") and seen == sent:
                        runs.append(outcome)

                lambda_runtime.observers.append(observe)
                try:
                    world.client("lambda").invoke(
                        FunctionName=arn, InvocationType="Event", Payload=json.dumps(event).encode()
                    )
                finally:
                    lambda_runtime.observers.remove(observe)
                if not runs:
                    deliveries.append(Delivery(name, arn, event, error="the target did not run"))
                elif isinstance(runs[-1], BaseException):
                    error = f"{type(runs[-1]).__name__}: {runs[-1]}"
                    deliveries.append(Delivery(name, arn, event, error=error))
                else:
                    deliveries.append(Delivery(name, arn, event, result=runs[-1]))
    return deliveries
