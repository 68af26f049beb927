"""CloudWatch metrics in the local AWS: the handlers' EMF lines become moto CloudWatch datapoints.

On AWS, Lambda ships stdout to CloudWatch Logs and CloudWatch turns Embedded Metric Format lines
into metrics. Here handlers run in process (`lambda_runtime`), which hands each run's output to
`forward_emf`: PutMetricData with the EMF namespace, dimensions, units and timestamp. `seed_week`
replays captured EMF documents at shifted timestamps; `dashboard_table` answers the deployed
dashboard's widgets with GetMetricData, so the dashboard can be read at a glance locally.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from permheal_local.template import load_template
from permheal_local.template import resources as template_resources

DAY = timedelta(days=1)
_SUB = re.compile(r"\$\{([^}]+)\}")
_PERCENTILE = re.compile(r"^p\d")


def emf_documents(text: str) -> list[dict[str, Any]]:
    """The EMF documents among printed lines (Powertools prints one JSON line per flush)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "CloudWatchMetrics" in document.get("_aws", {}):
            found.append(document)
    return found


def metric_data(document: dict[str, Any], at: datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, MetricDatum) pairs of one EMF document, timestamped `at` or by the document."""
    aws = document["_aws"]
    when = at or datetime.fromtimestamp(aws["Timestamp"] / 1000, tz=UTC)
    pairs = []
    for directive in aws["CloudWatchMetrics"]:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set]
            for metric in directive["Metrics"]:
                values = document[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    datum = {
                        "MetricName": metric["Name"],
                        "Dimensions": dimensions,
                        "Timestamp": when,
                        "Value": float(value),
                        "Unit": metric.get("Unit", "None"),
                    }
                    pairs.append((directive["Namespace"], datum))
    return pairs


def put(cloudwatch: Any, document: dict[str, Any], at: datetime | None = None) -> None:
    """PutMetricData one EMF document, one call per namespace."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for namespace, datum in metric_data(document, at):
        by_namespace.setdefault(namespace, []).append(datum)
    for namespace, data in by_namespace.items():
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)


def forward_emf(context: Any, printed: str) -> None:
    """A `lambda_runtime` log observer: PutMetricData each EMF document one invocation printed.

    On AWS, CloudWatch extracts these metrics from the function's log stream inside AWS: no API call
    of the function's, no credentials, no throttling. So here they go straight to moto's CloudWatch
    of the function's account and region (the in-process backend, also behind `local-aws`); through
    boto3 each run would pay a full request, about a fifth of a detector run.
    """
    documents = emf_documents(printed)
    if not documents:
        return
    from moto.cloudwatch.models import cloudwatch_backends

    _, _, _, region, account, *_ = context.invoked_function_arn.split(":")
    backend = cloudwatch_backends[account][region]
    for document in documents:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in metric_data(document):
            # moto keeps naive UTC datetimes, as its PutMetricData handler stores them
            stamp = datum["Timestamp"].astimezone(UTC).replace(tzinfo=None)
            by_namespace.setdefault(namespace, []).append({**datum, "Timestamp": stamp})
        for namespace, data in by_namespace.items():
            backend.put_metric_data(namespace, data)


@contextmanager
def recorded() -> Iterator[list[dict[str, Any]]]:
    """The EMF documents printed by handler runs meanwhile (whatever thread runs them), in order."""
    from permheal_local import lambda_runtime

    documents: list[dict[str, Any]] = []

    def observe(_context: Any, printed: str) -> None:
        documents.extend(emf_documents(printed))

    lambda_runtime.log_observers.append(observe)
    try:
        yield documents
    finally:
        lambda_runtime.log_observers.remove(observe)


def seed_week(cloudwatch: Any, documents: list[dict[str, Any]], now: datetime, days: int = 7) -> int:
    """Replay real captured EMF documents once per day over `days`, returning datapoints sent.

    Day d (0 = oldest) gets the documents d % 3 + 1 times, so the week is not flat. Only the
    timestamp is shifted: names, dimensions, units and values are what the handlers printed.
    """
    sent = 0
    for day in range(days):
        start = now - (days - day) * DAY + timedelta(hours=1)
        for repeat in range(day % 3 + 1):
            for index, document in enumerate(documents):
                at = start + timedelta(minutes=10 * repeat + index)
                put(cloudwatch, document, at)
                sent += len(metric_data(document, at))
    return sent


def dashboard_body(template_path: Path, substitutions: dict[str, str]) -> dict[str, Any]:
    """The template's DashboardBody with `${...}` substituted (unknown names become themselves)."""
    body = template_resources(load_template(template_path))["Dashboard"]["Properties"]["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    document: dict[str, Any] = json.loads(_SUB.sub(lambda m: substitutions.get(m[1], m[1]), text))
    return document


@dataclass(frozen=True)
class Series:
    """One line of a metric widget: what GetMetricData is asked for it."""

    label: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str


def widget_series(body: dict[str, Any]) -> list[tuple[str, list[Series]]]:
    """(title, series) of each metric widget, with the widget's default stat and "..." shorthand."""
    widgets = []
    for widget in body.get("widgets", []):
        props = widget.get("properties", {})
        if widget.get("type") != "metric" or "metrics" not in props:
            continue
        series = []
        previous: list[Any] = []
        for row in props["metrics"]:
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            parts = [p for p in row if not isinstance(p, dict)]
            if parts and parts[0] == "...":
                parts = previous[: len(previous) - len(parts) + 1] + parts[1:]
            previous = parts
            namespace, metric, *pairs = parts
            stat = options.get("stat", props.get("stat", "Sum"))
            label = f"{options.get('label', metric)} ({stat})"
            dimensions = tuple(zip(pairs[::2], pairs[1::2], strict=True))
            series.append(Series(label, namespace, metric, dimensions, stat))
        widgets.append((props.get("title", ""), series))
    return widgets


def dashboard_data(
    cloudwatch: Any, body: dict[str, Any], now: datetime, days: int = 7
) -> list[tuple[str, list[tuple[Series, list[float] | None]]]]:
    """Each widget's series as one value per day (oldest first); [] for no data.

    Asked per hour (the widgets' period) and combined per day here, so day boundaries are the table's.
    GetMetricStatistics, not the console's GetMetricData: moto 5.2's GetMetricData ignores the
    Namespace when Dimensions are given, AWS does not. moto computes no percentiles (pNN): those
    series are None, not a guess.
    """
    start = (now - days * DAY).replace(microsecond=0)  # CloudWatch periods start at whole seconds
    answer = []
    for title, widget in widget_series(body):
        rows: list[tuple[Series, list[float] | None]] = []
        for one in widget:
            if _PERCENTILE.match(one.stat):
                rows.append((one, None))
                continue
            points = cloudwatch.get_metric_statistics(
                Namespace=one.namespace,
                MetricName=one.metric,
                Dimensions=[{"Name": k, "Value": v} for k, v in one.dimensions],
                StartTime=start,
                EndTime=now,
                Period=3600,
                Statistics=[one.stat],
            )["Datapoints"]
            hourly: list[list[float]] = [[] for _ in range(days)]
            for point in points:
                day = min(days - 1, max(0, int((point["Timestamp"] - start) // DAY)))
                hourly[day].append(point[one.stat])
            per_day = [_combine(one.stat, values) for values in hourly]
            rows.append((one, per_day if points else []))
        answer.append((title, rows))
    return answer


def _combine(stat: str, hours: list[float]) -> float:
    """A day's value from its hours' values (hours are the widgets' period; days are the table's)."""
    if not hours:
        return 0.0
    if stat == "Maximum":
        return max(hours)
    if stat == "Minimum":
        return min(hours)
    if stat == "Average":
        return sum(hours) / len(hours)  # of the hours with data: close, not exact, for a glance
    return sum(hours)  # Sum, SampleCount


def dashboard_table(data: list[tuple[str, list[tuple[Series, list[float] | None]]]]) -> str:
    """The dashboard at a glance: widget → series → one value per day, oldest first ('-' = no data)."""
    lines = []
    for title, rows in data:
        lines.append(title)
        for series, per_day in rows:
            if per_day is None:
                cells = "  (a percentile: moto's CloudWatch does not compute them)"
            else:
                cells = " ".join(f"{v:>7g}" for v in per_day) if per_day else "      -"
            lines.append(f"  {series.label:<48} {cells}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Week:
    """A seeded week in the local AWS, read back the way the deployed dashboard reads it."""

    body: dict[str, Any]
    data: list[tuple[str, list[tuple[Series, list[float] | None]]]]
    documents: int
    """EMF documents one day's traffic printed (replayed once to three times a day)."""
    now: datetime
    days: int


def seeded_week(days: int = 7) -> Week:
    """One day's traffic in the local AWS, replayed over `days` days from its EMF; every widget read back.

    The day: the demo's petstore failing and healed, a manual run for an API outside the allowlist
    (refused) and a subscription payload that is not gzip (the detector's errors).
    """
    import contextlib

    from permheal_local.aws import local_aws, wait_until_stopped
    from permheal_local.demo import API_NAME, HANDLER_ENV, REQUESTS, STAGE, build_petstore
    from permheal_local.stack import TEMPLATE

    with local_aws(handler_env=HANDLER_ENV) as local:
        world = local.world
        petstore = build_petstore(world)
        world.allow(API_NAME)
        cloudwatch = world.client("cloudwatch")
        # Handler output is Lambda's CloudWatch Logs, not the dashboard: kept off the terminal.
        with contextlib.redirect_stdout(io.StringIO()), recorded() as documents:
            simulator = local.simulator()
            for request in REQUESTS:
                simulator.request(petstore.api_id, STAGE, request.method, request.path, request.headers)
            sfn = world.client("stepfunctions")
            for delivery in local.flush_logs():
                result = delivery.result if isinstance(delivery.result, dict) else {}
                for execution_arn in result.get("started", []):
                    wait_until_stopped(sfn, execution_arn)
            world.rest_api("inventory")
            refused = sfn.start_execution(
                stateMachineArn=local.stack.state_machine_arn,
                input=json.dumps({"source": "manual", "apiName": "inventory", "stage": "prod"}),
            )
            wait_until_stopped(sfn, refused["executionArn"])
            world.client("lambda").invoke(
                FunctionName=local.stack.functions["DetectorFunction"],
                Payload=json.dumps({"awslogs": {"data": "bm90Z3o="}}),
            )
        now = datetime.now(UTC)
        seed_week(cloudwatch, documents, now, days)
        body = dashboard_body(TEMPLATE, {"AWS::Region": world.region, "AWS::StackName": local.stack.name})
        data = dashboard_data(cloudwatch, body, now + timedelta(minutes=5), days)
    return Week(body, data, len(documents), now, days)


def glance(out: TextIO) -> int:
    """`make dashboard`: the seeded week's dashboard as a table (1 if no EMF reached CloudWatch)."""
    week = seeded_week()
    out.write(
        f"{week.documents} EMF documents of one day (a healed incident, a refused run, an undecodable "
        f"payload), replayed over {week.days} days\n"
    )
    out.write("(one column per day, oldest first; '-' = no data)\n")
    out.write(dashboard_table(week.data))
    return 0 if week.documents else 1


if __name__ == "__main__":
    sys.exit(glance(sys.stdout))
