"""The handlers' EMF output becomes CloudWatch metrics in the local AWS, and fills the dashboard.

A real incident runs through the deployed workflow (detector via Lambda Invoke, Step Functions,
real handlers); the local Lambda runtime hands each run's output to `metrics.forward_emf`, so moto's
CloudWatch must then hold the handlers' metrics under the template's namespace and `service`
dimension, whatever environment the test process imported the handlers under.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import permheal.handlers.detect  # imported under the tests' environment, before any run
from permheal_local import lambda_runtime, metrics
from permheal_local.stack import TEMPLATE
from tests.integration.support import Petstore
from tests.integration.test_workflow import detect_through_lambda

SERVICE = [{"Name": "service", "Value": "permheal"}]
UNDECODABLE = json.dumps({"awslogs": {"data": "bm90Z3o="}})


def run_incident(world: Any, stack: Any, petstore: Petstore) -> list[dict[str, Any]]:
    """One healing incident plus one undecodable payload (the errors widget); the EMF they printed."""
    with metrics.recorded() as documents:
        detect_through_lambda(world, stack, petstore)
        world.client("lambda").invoke(FunctionName=stack.functions["DetectorFunction"], Payload=UNDECODABLE)
    return documents


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


def test_the_namespace_is_the_functions_not_the_importing_processs(world: Any, stack: Any) -> None:
    # Given the handlers were imported under the tests' POWERTOOLS_METRICS_NAMESPACE ("permheal")
    assert permheal.handlers.detect.metrics.namespace == "permheal"
    # When the deployed detector runs (its environment says "Permheal", as template.yaml does)
    with metrics.recorded() as documents:
        world.client("lambda").invoke(FunctionName=stack.functions["DetectorFunction"], Payload=UNDECODABLE)
    # Then its EMF carries the function's namespace, as a cold start in that environment would
    namespaces = {d["Namespace"] for doc in documents for d in doc["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"Permheal"}
    # and the module keeps the process's for direct calls (unit tests)
    assert permheal.handlers.detect.metrics.namespace == "permheal"


def test_without_emf_metrics_nothing_reaches_cloudwatch(world: Any, stack: Any, petstore: Petstore) -> None:
    lambda_runtime.install(emf_metrics=False)
    start = datetime.now(UTC) - timedelta(hours=1)
    documents = run_incident(world, stack, petstore)
    assert any("IncidentsDetected" in d for d in documents)  # printed, as ever
    assert total(world, "IncidentsDetected", start) == ([], None)


def test_a_run_keeps_only_what_its_own_thread_prints(capsys: pytest.CaptureFixture[str]) -> None:
    kept = io.StringIO()
    other = threading.Thread(target=print, args=("another thread",))
    stdout = sys.stdout
    with lambda_runtime.capture_prints(kept):
        assert sys.stdout is stdout  # never swapped: pytest swaps it too, from other threads' view
        print("the handler", 1, sep=" #")
        other.start()
        other.join()
        inner = io.StringIO()
        with lambda_runtime.capture_prints(inner):
            print("a nested run", end="!\n")
        print("to stderr", file=sys.stderr)
    print("after the run")
    # Everything still reaches stdout; each capture keeps only its own run's stdout lines
    assert capsys.readouterr().out == "the handler #1\nanother thread\na nested run!\nafter the run\n"
    assert (kept.getvalue(), inner.getvalue()) == ("the handler #1\n", "a nested run!\n")


def test_a_run_leaves_the_processs_stdout_alone(world: Any, stack: Any) -> None:
    # pytest (and redirect_stdout) swap sys.stdout while workflows run in other threads: a run must not
    stdout = sys.stdout
    world.client("lambda").invoke(FunctionName=stack.functions["DetectorFunction"], Payload=UNDECODABLE)
    assert sys.stdout is stdout


@pytest.mark.parametrize("seeded", [True, False])
def test_a_seeded_week_fills_every_widget_of_the_dashboard(
    world: Any, stack: Any, petstore: Petstore, seeded: bool
) -> None:
    lambda_runtime.install(emf_metrics=seeded)  # unseeded: no run's metrics either, an empty week
    documents = run_incident(world, stack, petstore)
    now = datetime.now(UTC)
    cloudwatch = world.client("cloudwatch")
    metrics.seed_week(cloudwatch, documents if seeded else [], now)
    body = metrics.dashboard_body(TEMPLATE, {"AWS::Region": world.region})
    data = metrics.dashboard_data(cloudwatch, body, now + timedelta(minutes=5))
    titles = [w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"]
    assert [title for title, _ in data] == titles and len(titles) >= 6
    filled = {title: any(per_day for _, per_day in rows) for title, rows in data}
    assert filled == dict.fromkeys(titles, seeded)
    if seeded:
        incidents = dict((s.metric, d) for s, d in data[0][1])["IncidentsDetected"]
        assert incidents == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 2.0], incidents  # seeded days; today also the run
        table = metrics.dashboard_table(data)
        assert "Incidents detected" in table and "incidents (Sum)" in table


def test_glance_prints_the_dashboard_with_a_week_of_data() -> None:
    out = io.StringIO()
    assert metrics.glance(out) == 0
    text = out.getvalue()
    row = next(line for line in text.splitlines() if "incidents (Sum)" in line)
    days = [float(cell) for cell in row.split("(Sum)")[1].split()]
    assert len(days) == 7 and all(day > 0 for day in days), row
    # Every metric widget of the template is printed with at least one series holding a week of data
    body = metrics.dashboard_body(TEMPLATE, {})
    titles = [w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"]
    widgets: dict[str, list[str]] = {}
    for line in text.splitlines()[2:]:
        if line.startswith("  "):
            widgets[list(widgets)[-1]].append(line)
        else:
            widgets[line] = []
    assert list(widgets) == titles
    weeks = {
        title: [r for r in rows if len(r.rsplit(")", 1)[1].split()) == 7] for title, rows in widgets.items()
    }
    assert all(weeks.values()), weeks
    assert "not allowlisted (Sum)" in "".join(weeks["Refusals and flapping"])
    assert "undecodable payloads (Sum)" in "".join(weeks["Detector errors and dead letters"])


def test_the_png_renders_the_templates_dashboard(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the docs extra: `make dashboard-png`, not CI
    from permheal_local import dashboard_png

    body = metrics.dashboard_body(TEMPLATE, {})
    data = [
        (title, [(one, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 2.0]) for one in series])
        for title, series in metrics.widget_series(body)
    ]
    path = tmp_path / "dashboard.png"
    dashboard_png.render(metrics.Week(body, data, 8, datetime.now(UTC), 7), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 50_000
