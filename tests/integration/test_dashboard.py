"""The CloudWatch dashboard in template.yaml shows only what permheal emits, and every alarm.

Structural: the metric names come from the handlers' `add_metric` calls (read from their source),
the namespace and the `service` dimension from the template's Powertools settings, the alarms from
the template's resources. A dashboard widget that shows a metric nobody emits draws an empty line
forever: this test fails instead.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from permheal.heal_time import time_to_heal
from permheal.models import Outcome
from permheal_local.template import load_template, resources

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "functions" / "permheal" / "handlers"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body with every `${...}` checked to name a resource (or pseudo parameter)."""
    body = resources(template)["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    known = set(resources(template))
    for name in PLACEHOLDER.findall(body):
        assert name.startswith("AWS::") or name.split(".")[0] in known, name
    document: dict[str, Any] = json.loads(PLACEHOLDER.sub(lambda m: f"SUB:{m[1]}", body))
    return document


def emitted_patterns() -> list[re.Pattern[str]]:
    """Every metric name a handler emits; an f-string part matches any text (checked below)."""
    patterns: list[re.Pattern[str]] = []
    for source in HANDLERS.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric"):
                continue
            patterns.extend(_names(next(k.value for k in node.keywords if k.arg == "name")))
    return patterns


def _names(node: ast.expr) -> list[re.Pattern[str]]:
    """A literal, an f-string (each placeholder matches any text) or `A if c else B`."""
    if isinstance(node, ast.Constant):
        return [re.compile(re.escape(node.value))]
    if isinstance(node, ast.IfExp):
        return _names(node.body) + _names(node.orelse)
    assert isinstance(node, ast.JoinedStr), ast.dump(node)
    parts = [re.escape(p.value) if isinstance(p, ast.Constant) else "(.+)" for p in node.values]
    return [re.compile("".join(parts))]


def unemitted(names: set[str], patterns: list[re.Pattern[str]]) -> set[str]:
    outcomes = {o.value for o in Outcome}
    missing = set()
    for name in names:
        if name.startswith("Outcome_") and name.removeprefix("Outcome_") not in outcomes:
            missing.add(name)  # `Outcome_{outcome}` only ever takes an Outcome's value
        elif not any(p.fullmatch(name) for p in patterns):
            missing.add(name)
    return missing


def metric_rows(dashboard: dict[str, Any]) -> list[list[Any]]:
    return [row for w in dashboard["widgets"] if w["type"] == "metric" for row in w["properties"]["metrics"]]


def test_every_permheal_metric_on_the_dashboard_is_emitted_by_a_handler(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    namespace, service = env["POWERTOOLS_METRICS_NAMESPACE"], env["POWERTOOLS_SERVICE_NAME"]
    ours = [row for row in metric_rows(dashboard) if row[0] == namespace]
    assert len(ours) >= 15
    # Powertools adds the `service` dimension: a metric without it (or another value) is another metric
    assert all(row[2:4] == ["service", service] for row in ours), ours
    assert unemitted({row[1] for row in ours}, emitted_patterns()) == set()


def test_the_structural_check_fails_for_a_metric_nobody_emits() -> None:
    patterns = emitted_patterns()
    assert unemitted({"StatementsAdded", "Outcome_repaired", "TimeToHeal"}, patterns) == set()
    assert unemitted({"StatementsAddedd", "Outcome_exploded"}, patterns) == {
        "StatementsAddedd",
        "Outcome_exploded",
    }


def test_aws_metrics_on_the_dashboard_point_at_this_stacks_resources(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    types = {name: r["Type"] for name, r in resources(template).items()}
    expected = {
        ("AWS/Lambda", "FunctionName"): "AWS::Serverless::Function",
        ("AWS/SQS", "QueueName"): "AWS::SQS::Queue",
        ("AWS/States", "StateMachineArn"): "AWS::Serverless::StateMachine",
    }
    aws = [row for row in metric_rows(dashboard) if row[0].startswith("AWS/")]
    assert {row[0] for row in aws} == {"AWS/Lambda", "AWS/SQS", "AWS/States"}
    for row in aws:
        resource = row[3].removeprefix("SUB:").split(".")[0]
        assert types[resource] == expected[(row[0], row[2])], row


def test_every_alarm_of_the_stack_is_on_the_dashboard_and_nothing_else(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    alarms = {name for name, r in resources(template).items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    shown = [a for w in dashboard["widgets"] if w["type"] == "alarm" for a in w["properties"]["alarms"]]
    assert sorted(shown) == sorted(f"SUB:{name}.Arn" for name in alarms)
    assert len(alarms) >= 4


def test_alarms_on_permheal_metrics_watch_emitted_metrics(template: dict[str, Any]) -> None:
    ours = [
        r["Properties"]["MetricName"]
        for r in resources(template).values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "Permheal"
    ]
    assert ours and unemitted(set(ours), emitted_patterns()) == set()


def test_the_dashboard_covers_what_on_call_asks(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(w["properties"].get("title", "") for w in dashboard["widgets"]).lower()
    for topic in (
        "incidents detected",
        "executions by outcome",
        "statements added / removed",
        "refusals and flapping",
        "detector errors and dead letters",
        "time to heal",
        "alarms",
    ):
        assert topic in titles


# --- time to heal -------------------------------------------------------------------------------------


NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("request_", "outcome", "expected"),
    [
        ({"source": "logs", "detectedAt": (NOW - timedelta(seconds=95)).isoformat()}, Outcome.REPAIRED, 95.0),
        ({"source": "cloudtrail", "trigger": {"eventTime": "2026-12-05T08:59:00Z"}}, Outcome.REPAIRED, 60.0),
        (
            {"source": "logs", "detectedAt": (NOW - timedelta(seconds=95)).isoformat()},
            Outcome.NO_CHANGE,
            None,
        ),
        ({"source": "manual"}, Outcome.REPAIRED, None),
        ({"detectedAt": "yesterday"}, Outcome.REPAIRED, None),
        ({"detectedAt": "2026-12-05T08:00:00"}, Outcome.REPAIRED, None),  # no zone: not guessed
        ({"detectedAt": (NOW + timedelta(seconds=5)).isoformat()}, Outcome.REPAIRED, 0.0),  # clock skew
        (None, Outcome.REPAIRED, None),
    ],
)
def test_time_to_heal_counts_only_repairs_with_a_known_start(
    request_: Any, outcome: Outcome, expected: float | None
) -> None:
    assert time_to_heal(request_, outcome, NOW) == expected


def test_a_detected_repair_emits_time_to_heal_and_incidents(
    world: Any, stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a petstore failure the detector sees (the workflow's handlers run in this process)
    from tests.integration.support import build_petstore
    from tests.integration.test_workflow import detect_through_lambda

    petstore = build_petstore(world)
    # When it is detected and repaired
    detect_through_lambda(world, stack, petstore)
    # Then the handlers' EMF output holds IncidentsDetected and TimeToHeal (seconds)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {
        m["Name"]: m.get("Unit")
        for doc in emf
        for d in doc["_aws"]["CloudWatchMetrics"]
        for m in d["Metrics"]
    }
    assert names.get("IncidentsDetected") == "Count"
    assert names.get("TimeToHeal") == "Seconds"
