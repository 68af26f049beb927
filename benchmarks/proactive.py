"""9. Proactive healing: deploy event → verified permission, and requests failed during a deploy, on vs off.

Each deploy is two real calls through the local AWS (PutIntegration moves GET /pets to a function
with no permission, CreateDeployment serves it); the local CloudTrail turns each into the event AWS
sends and EventBridge delivers it to the deployed rule's target at once, where AWS takes about 90 s
(p99). The stack runs with a 1 s debounce window (template default 30 s): the run waits for its
window to close, then resolves, repairs and verifies. On AWS the event usually arrives after the
window has closed, so that wait is then zero and what remains is permheal's work measured here.

The simulated deploy sends traffic after the deploy (the first request `gap` later, then one every
`interval`) with the logs path live in both modes and its delivery made immediate (flushed after
each failed request): proactive off can only heal after a request has failed; on, the deploy event
heals it before the first request whenever the run finishes within the gap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import HANDLER_ENV, hermetic_env, history, percentile, wait_until_stopped

WINDOW_SECONDS = 1
GAP_SECONDS = 3.0
INTERVAL_SECONDS = 0.1


@contextmanager
def stack(mode: str) -> Iterator[Any]:
    import warnings

    from permheal_local.aws import local_aws

    parameters = {"AllowedApis": "*", "ProactiveMode": mode, "ProactiveWindowSeconds": str(WINDOW_SECONDS)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with hermetic_env(), local_aws(parameters, handler_env=HANDLER_ENV) as aws:
            yield aws


def healthy_api(world: Any, name: str) -> str:
    """GET /pets → {name}-pets, deployed and granted: it answers 200 before the deploy."""
    from permheal_local.builder import function_arn

    world.function(f"{name}-pets")
    world.function(f"{name}-v2")
    api = str(world.rest_api(name))
    world.method(api, "/pets", "GET", function_arn(f"{name}-pets"))
    world.deploy(api, "prod", logging_level="ERROR")
    source = f"arn:aws:execute-api:{world.region}:123456789012:{api}/*/GET/pets"
    world.grant(f"{name}-pets", source, sid="pets-get")
    return api


def breaking_deploy(world: Any, api: str, name: str) -> float:
    """Move GET /pets to {name}-v2 (no permission) and deploy; the epoch ms the deploy began."""
    from permheal_local.demo_proactive import move_integration

    began = time.time() * 1000
    move_integration(world, api, "/pets", "GET", f"{name}-v2")
    world.client("apigateway").create_deployment(restApiId=api, stageName="prod")
    return began


def milestones(events: list[dict[str, Any]]) -> dict[str, float]:
    """Epoch ms of the run's milestones: the Wait's end and the repairs' end (verified)."""
    out: dict[str, float] = {}
    for event in events:
        at = event["timestamp"].timestamp() * 1000
        details = event.get("stateExitedEventDetails") or {}
        if event["type"] == "ExecutionStarted":
            out["started"] = at
        elif details.get("name") == "Wait for the deploy to settle":
            out["waited"] = at
        elif event["type"] == "MapStateExited" and "verified" not in out:
            out["verified"] = at
    return out


def latency(count: int) -> dict[str, Any]:
    from permheal_local.cloudtrail import CloudTrail, started_by

    records: list[dict[str, Any]] = []
    with stack("on") as aws:
        world = aws.world
        simulator = aws.simulator()
        for index in range(count + 1):
            name = f"shop-{index:02d}"
            api = healthy_api(world, name)
            trail = CloudTrail.attach(world, settle=False)
            try:
                began = breaking_deploy(world, api, name)
            finally:
                trail.detach()
            started = [arn for d in trail.deliveries for arn in started_by(d)]
            suppressed = sum((d.result or {}).get("suppressed", 0) for d in trail.deliveries)
            for arn in started:
                wait_until_stopped(aws, arn)
            marks = milestones(history(aws, started[-1]))
            after = simulator.request(api, "prod", "GET", "/pets")
            records.append(
                {
                    "cold": index == 0,
                    "events": len(trail.deliveries),
                    "executions": len(started),
                    "suppressed": suppressed,
                    "event_to_verified_ms": marks["verified"] - began,
                    "wait_ms": marks.get("waited", marks["started"]) - marks["started"],
                    "work_ms": marks["verified"] - marks.get("waited", marks["started"]),
                    "status_after": after.status,
                }
            )
    warm = records[1:]
    total = [r["event_to_verified_ms"] for r in warm]
    work = [r["work_ms"] for r in warm]
    return {
        "deploys": len(warm),
        "window_seconds": WINDOW_SECONDS,
        "event_to_verified_ms": _p(total),
        "wait_ms": _p([r["wait_ms"] for r in warm]),
        "work_ms": _p(work),
        "first_deploy_ms": round(records[0]["event_to_verified_ms"], 1),
        "events_per_deploy": max(r["events"] for r in records),
        "executions_per_deploy": sum(r["executions"] for r in records) / len(records),
        "all_healed": all(r["status_after"] == 200 for r in records),
    }


def simulated_deploy(mode: str, duration: float) -> dict[str, Any]:
    """Traffic after a breaking deploy; how many requests failed, and how long the API was broken."""
    from permheal_local.cloudtrail import CloudTrail, started_by

    with stack(mode) as aws:
        world = aws.world
        simulator = aws.simulator()
        api = healthy_api(world, "traffic")
        trail = CloudTrail.attach(world, settle=False)
        try:
            began = breaking_deploy(world, api, "traffic")
        finally:
            trail.detach()
        statuses: list[int] = []
        first_ok_after_failure: float | None = None
        at = began / 1000 + GAP_SECONDS
        while at <= began / 1000 + GAP_SECONDS + duration:
            time.sleep(max(0.0, at - time.time()))
            response = simulator.request(api, "prod", "GET", "/pets")
            statuses.append(response.status)
            if response.status != 200:
                aws.flush_logs()  # the logs path, its delivery made immediate
            elif first_ok_after_failure is None and len(statuses) > 1 and statuses[-2] != 200:
                first_ok_after_failure = time.time() * 1000
            at += INTERVAL_SECONDS
        aws.settle()
        proactive_runs = [arn for d in trail.deliveries for arn in started_by(d)]
        sfn = aws.client("stepfunctions")
        runs = sfn.list_executions(stateMachineArn=aws.stack.state_machine_arn)["executions"]
    failed = sum(s != 200 for s in statuses)
    return {
        "mode": mode,
        "requests": len(statuses),
        "failed": failed,
        "events_delivered": len(trail.deliveries),
        "proactive_executions": len(proactive_runs),
        "executions": len(runs),
        "healed_at_end": statuses[-1] == 200,
        "broken_for_ms": round((first_ok_after_failure or began) - began, 1) if failed else 0.0,
    }


def _p(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1),
    }


def run(quick: bool = False) -> dict[str, Any]:
    duration = 1.0 if quick else 3.0
    return {
        "latency": latency(3 if quick else 20),
        "deploy": {
            "gap_seconds": GAP_SECONDS,
            "interval_seconds": INTERVAL_SECONDS,
            "duration_seconds": duration,
            "on": simulated_deploy("on", duration),
            "off": simulated_deploy("off", duration),
        },
    }
