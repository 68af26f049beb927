"""The handlers' EMF output becomes CloudWatch metrics in the local AWS, and fills the dashboard.

A real incident runs through the deployed workflow (detector via Lambda Invoke, Step Functions,
real handlers) while `EmfForwarder` is active; moto's CloudWatch must then hold the handlers'
metrics under the template's namespace and `service` dimension.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from permheal_local import metrics
from permheal_local.stack import TEMPLATE
from tests.integration.support import Petstore
from tests.integration.test_workflow import detect_through_lambda

SERVICE = [{"Name": "service", "Value": "permheal"}]


def run_incident(world: Any, stack: Any, petstore: Petstore, *, forward: bool = True) -> list[dict[str, Any]]:
    """One healing incident plus one undecodable payload (the errors widget), EMF captured."""
    with metrics.EmfForwarder(world.client("cloudwatch")) as forwarder:
        detect_through_lambda(world, stack, petstore)
        world.client("lambda").invoke(
            FunctionName=stack.functions["DetectorFunction"],
            Payload=json.dumps({"awslogs": {"data": "bm90Z3o="}}),
        )
        if not forward:
            forwarder.lines.clear()
    return forwarder.documents


def total(world: Any, name: str, start: datetime) -> tuple[list[float], str | None]:
    stats = world.client("cloudwatch").get_metric_statistics(
        Namespace="Permheal",
        MetricName=name,
        Dimensions=SERVICE,
        StartTime=start,
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    points = stats["Datapoints"]
    return [p["Sum"] for p in points], (points[0].get("Unit") if points else None)


def test_emf_of_a_real_workflow_run_reaches_cloudwatch(world: Any, stack: Any, petstore: Petstore) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    documents = run_incident(world, stack, petstore)
    # The detector, repair and summarize steps all flushed EMF, and each became datapoints
    assert any("IncidentsDetected" in d for d in documents)
    assert any("StatementsAdded" in d for d in documents)
    assert total(world, "IncidentsDetected", start) == ([1.0], "Count")
    assert total(world, "UndecodablePayloads", start) == ([1.0], "Count")
    assert total(world, "Outcome_repaired", start)[0] == [1.0]
    assert total(world, "StatementsAdded", start)[0][0] >= 1
    # Namespace and dimensions are the EMF ones, nothing else
    listed = world.client("cloudwatch").list_metrics(MetricName="IncidentsDetected")["Metrics"]
    assert [(m["Namespace"], m["Dimensions"]) for m in listed] == [("Permheal", SERVICE)]


@pytest.mark.parametrize("forward", [True, False])
def test_a_seeded_week_fills_every_permheal_widget(
    world: Any, stack: Any, petstore: Petstore, forward: bool
) -> None:
    documents = run_incident(world, stack, petstore, forward=forward)
    now = datetime.now(UTC)
    cloudwatch = world.client("cloudwatch")
    metrics.seed_week(cloudwatch, documents, now)
    body = metrics.dashboard_body(TEMPLATE, {"AWS::Region": world.region})
    data = metrics.dashboard_data(cloudwatch, body, now + timedelta(minutes=5))
    permheal = {
        title: [per_day for series, per_day in rows if series.namespace == "Permheal" and per_day is not None]
        for title, rows in data
    }
    assert len(permheal) >= 5
    filled = {title: any(per_day for per_day in rows) for title, rows in permheal.items() if rows}
    assert all(filled.values()) is forward, filled
    if forward:
        incidents = dict((s.metric, d) for s, d in data[0][1])["IncidentsDetected"]
        assert incidents == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 2.0], (
            incidents
        )  # seeded days; today also the real run
        table = metrics.dashboard_table(data)
        assert "Incidents detected" in table and "incidents (Sum)" in table


def test_glance_prints_the_dashboard_with_a_week_of_data() -> None:
    out = io.StringIO()
    assert metrics.glance(out) == 0
    text = out.getvalue()
    row = next(line for line in text.splitlines() if "incidents (Sum)" in line)
    days = [float(cell) for cell in row.split("(Sum)")[1].split()]
    assert len(days) == 7 and all(day > 0 for day in days), row
    assert "Statements added / removed" in text and "Time to heal" in text
