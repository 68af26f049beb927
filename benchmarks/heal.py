"""6. Time to heal (and the raw counts 7 prices): from the failing request's log line to the verified grant.

The loop is the production one on the local AWS: the API Gateway simulator serves a request that
fails (neither the authorizer nor the integration may invoke its function), writes the execution
log lines, the template's subscription delivers the matching line to the deployed detector, which
starts the real state machine; the workflow resolves, repairs and verifies both grants, then
notifies. Each incident is a different API with its own two functions (same shape): one API's
failures within the incident window are one incident by design, and the flap breaker stops a
function repaired three times within 24 hours. The first incident imports the handler modules into
the process and is reported apart; the next `incidents` make the percentiles.

Everything runs in one process against moto: no network, no Lambda cold starts, no CloudWatch
Logs delivery delay (delivery here is a synchronous call). What this measures is permheal's own
work and the workflow's shape, not AWS's latencies.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from benchmarks.common import (
    CallCounter,
    LambdaUsage,
    drain,
    function_memory,
    history,
    local_stack,
    percentile,
    sns_publishes,
    state_transitions,
    subscribe_queue,
    wait_until_stopped,
)

PHRASE = "Invalid permissions on Lambda function"
HEADERS = {"Authorization": "Bearer bench"}


def build_api(world: Any, name: str) -> str:
    """GET /pets/{petId} → {name}-pets:${stageVariables.alias} behind a TOKEN authorizer, plus GET /pets."""
    from permheal_local.builder import function_arn

    pets, authorizer_function = f"{name}-pets", f"{name}-auth"
    world.function(pets, alias="live")
    world.function(authorizer_function)
    api = world.rest_api(name)
    authorizer = world.authorizer(api, "token", function_arn(authorizer_function))
    world.method(
        api, "/pets/{petId}", "GET", function_arn(pets) + ":${stageVariables.alias}", authorizer_id=authorizer
    )
    world.method(api, "/pets", "GET", function_arn(pets, "live"))
    world.deploy(api, "prod", {"alias": "live"})
    return str(api)


def _log_time_ms(deliveries: Sequence[Any]) -> int:
    """The timestamp CloudWatch Logs gave the failing request's first failure line."""
    stamps: list[int] = []
    for delivery in deliveries:
        document = json.loads(gzip.decompress(base64.b64decode(delivery.payload["awslogs"]["data"])))
        stamps += [e["timestamp"] for e in document["logEvents"] if PHRASE in e["message"]]
    return min(stamps)


def walk_states(
    events: Sequence[dict[str, Any]], origin_ms: float, until_notified: bool = False
) -> tuple[dict[str, float], dict[str, float], float | None, float | None]:
    """Time in each top-level state (ms), when each was entered, and the Map's and the SNS task's exits.

    Exits are in ms after `origin_ms`; `until_notified` stops at the notification's exit.
    """
    states: dict[str, float] = defaultdict(float)
    entered: dict[str, float] = {}
    depth = 0
    healed = notified = None
    sns_state = None
    for event in events:
        kind, at = event["type"], event["timestamp"].timestamp() * 1000
        if kind == "MapStateStarted":
            depth += 1
        elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted"):
            depth -= 1
        if depth:
            continue
        if kind.endswith("StateEntered"):
            entered[event["stateEnteredEventDetails"]["name"]] = at
        elif kind == "TaskScheduled" and event["taskScheduledEventDetails"].get("resourceType") == "sns":
            sns_state = list(entered)[-1]
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            states[name] += at - entered.get(name, at)
            if kind == "MapStateExited" and healed is None:
                healed = at - origin_ms
            if name == sns_state and notified is None:
                notified = at - origin_ms
                if until_notified:
                    break
    return dict(states), entered, healed, notified


def timeline(events: Sequence[dict[str, Any]], log_ms: int, detector: tuple[float, float]) -> dict[str, Any]:
    """Milliseconds from the log line to each milestone, and the time spent in each top-level state."""
    started = next(e for e in events if e["type"] == "ExecutionStarted")["timestamp"].timestamp() * 1000
    states, entered, healed, notified = walk_states(events, log_ms)
    heal_ms = healed if healed is not None else float("nan")
    before_heal = {name: ms for name, ms in states.items() if entered.get(name, 0) - log_ms < heal_ms}
    detector_start, detector_end = detector
    segments = {
        "log delivery (local stand-in for the subscription)": detector_start - log_ms,
        "detector Lambda (decode, detect, StartExecution)": detector_end - detector_start,
        "execution start (local Step Functions engine)": started - detector_end,
        **before_heal,
    }
    segments["between states (Step Functions transitions)"] = heal_ms - sum(segments.values())
    return {
        "heal_ms": heal_ms,
        "notified_ms": notified if notified is not None else float("nan"),
        "segments_ms": segments,
        "all_states_ms": dict(states),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from permheal_local import lambda_runtime

    count = 3 if quick else 20
    incidents: list[dict[str, Any]] = []
    with local_stack() as aws:
        world = aws.world
        apis = [build_api(world, f"petstore-{index:02d}") for index in range(count + 1)]
        inbox = subscribe_queue(aws)
        memory = function_memory(aws)
        usage = LambdaUsage(memory)
        simulator = aws.simulator()
        counter = CallCounter()
        detector_runs: list[tuple[float, float]] = []

        def observe(name: str, event: Any, outcome: Any) -> None:
            if name == aws.detector:  # called as the handler returns: (start, end) in epoch ms
                end = time.time() * 1000
                detector_runs.append((end - lambda_runtime.invocations[-1][1] * 1000, end))

        lambda_runtime.observers.append(observe)
        with counter.installed():
            for index, api in enumerate(apis):
                counter.reset()
                usage.start()
                failed = simulator.request(api, "prod", "GET", "/pets/7", HEADERS)
                deliveries = aws.flush_logs()
                log_ms = _log_time_ms(deliveries)
                started = [arn for d in deliveries for arn in (d.result or {}).get("started", [])]
                execution = wait_until_stopped(aws, started[0])
                events = history(aws, started[0])
                after = simulator.request(api, "prod", "GET", "/pets/7", HEADERS)
                record = timeline(events, log_ms, detector_runs[-1])
                record.update(
                    cold=index == 0,
                    status=execution["status"],
                    failed_before=failed.status,
                    status_after=after.status,
                    detector_deliveries=len(deliveries),
                    executions=len(started),
                    state_transitions=state_transitions(events),
                    sns_publishes=sns_publishes(events),
                    notifications=drain(aws, inbox),
                    lambda_usage=usage.since_start(),
                    aws_calls=dict(sorted(counter.calls.items())),
                    aws_call_ms=counter.seconds_in_calls * 1000,
                    start_execution_ms=counter.seconds_by_call["stepfunctions:StartExecution"] * 1000,
                )
                incidents.append(record)
        lambda_runtime.observers.remove(observe)
    return {**summarize(incidents), "memory_mb": max(memory.values())}


def summarize(incidents: list[dict[str, Any]]) -> dict[str, Any]:
    cold, warm = incidents[0], incidents[1:]
    heal = [i["heal_ms"] for i in warm]
    notified = [i["notified_ms"] for i in warm]
    totals: dict[str, float] = defaultdict(float)
    for incident in warm:
        for name, ms in incident["segments_ms"].items():
            totals[name] += ms
    whole = sum(heal)
    return {
        "incidents": len(warm),
        "heal_ms": {
            "p50": round(percentile(heal, 50), 1),
            "p95": round(percentile(heal, 95), 1),
            "max": round(max(heal), 1),
        },
        "notified_ms": {"p50": round(percentile(notified, 50), 1), "p95": round(percentile(notified, 95), 1)},
        "share_by_state": {name: round(ms / whole, 3) for name, ms in totals.items()},
        "mean_ms_by_state": {name: round(ms / len(warm), 1) for name, ms in totals.items()},
        "handler_ms_mean": {
            name: round(sum(i["lambda_usage"]["ms_by_function"].get(name, 0) for i in warm) / len(warm), 1)
            for name in cold["lambda_usage"]["ms_by_function"]
        },
        "aws_call_ms_mean": round(sum(i["aws_call_ms"] for i in warm) / len(warm), 1),
        "start_execution_call_ms_mean": round(sum(i["start_execution_ms"] for i in warm) / len(warm), 1),
        "first_incident_ms": round(cold["heal_ms"], 1),
        "all_healed": all(i["status_after"] == 200 and i["failed_before"] >= 500 for i in incidents),
        "all_succeeded": all(i["status"] == "SUCCEEDED" for i in incidents),
        "per_incident": [
            {
                "heal_ms": round(i["heal_ms"], 1),
                "notified_ms": round(i["notified_ms"], 1),
                "cold": i["cold"],
                "state_transitions": i["state_transitions"],
                "lambda_invocations": i["lambda_usage"]["invocations"],
                "lambda_billed_ms": i["lambda_usage"]["billed_ms"],
                "lambda_gb_seconds": round(i["lambda_usage"]["gb_seconds"], 6),
                "lambda_by_function": i["lambda_usage"]["by_function"],
                "sns_publishes": i["sns_publishes"],
                "notifications": i["notifications"],
                "aws_calls": i["aws_calls"],
            }
            for i in incidents
        ],
    }
