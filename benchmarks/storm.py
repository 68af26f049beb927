"""2. Storm suppression: 10,000 failing requests on 3 APIs → executions and notifications per incident.

Each API (a TOKEN authorizer and a Lambda proxy integration, neither allowed to invoke its function)
serves one failing request per route through the API Gateway simulator, which gives the exact
execution-log lines; the storm repeats them with fresh request ids until 10,000 requests have
failed, in rounds, as if CloudWatch Logs delivered the backlog in batches while the workflow ran.
Every line goes through the template's subscription filter pattern and reaches the deployed
detector as an awslogs payload of at most 500 events. All timestamps fall in one incident window,
so the target is exactly one execution and one notification per API: 1.0 per incident.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from benchmarks.common import (
    CallCounter,
    LambdaUsage,
    all_executions,
    drain,
    function_memory,
    history,
    local_stack,
    sns_publishes,
    state_transitions,
    subscribe_queue,
)
from benchmarks.heal import HEADERS, build_api

BATCH = 500
ROUTES: tuple[tuple[str, str, dict[str, str]], ...] = (("GET", "/pets/7", HEADERS), ("GET", "/pets", {}))


def run(quick: bool = False) -> dict[str, Any]:
    from permheal_local import lambda_runtime
    from permheal_local.aws import awslogs_event
    from permheal_local.builder import ACCOUNT
    from permheal_local.simulator import log_group_name

    requests = 300 if quick else 10_000
    rounds = 2 if quick else 10
    with local_stack() as aws:
        apis = [build_api(aws.world, f"storm-{name}") for name in ("a", "b", "c")]
        inbox = subscribe_queue(aws)
        usage = LambdaUsage(function_memory(aws))
        simulator = aws.simulator()
        templates = {
            api: [simulator.request(api, "prod", method, path, headers) for method, path, headers in ROUTES]
            for api in apis
        }
        pattern = aws.subscription.pattern
        window = 900_000
        start_ms = int(time.time() * 1000) // window * window + 1_000
        results: list[Any] = []

        def observe(name: str, event: Any, outcome: Any) -> None:
            if name == aws.detector:
                results.append(outcome)

        lambda_runtime.observers.append(observe)
        counter = CallCounter()
        usage.start()
        started = time.perf_counter()
        delivered_lines = 0
        with counter.installed():
            for round_index in range(rounds):
                per_round = requests // rounds + (1 if round_index < requests % rounds else 0)
                lines: dict[str, list[dict[str, Any]]] = {api: [] for api in apis}
                for index in range(per_round):
                    api = apis[index % len(apis)]
                    response = templates[api][(index // len(apis)) % len(ROUTES)]
                    rid = str(uuid.uuid4())
                    stamp = start_ms + round_index * 1_000 + index // 10
                    lines[api] += [
                        {"id": str(uuid.uuid4().int)[:20], "timestamp": stamp, "message": line}
                        for line in (text.replace(response.request_id, rid) for text in response.log_lines)
                        if pattern.matches(line)
                    ]
                for api, matched in lines.items():
                    for offset in range(0, len(matched), BATCH):
                        batch = matched[offset : offset + BATCH]
                        delivered_lines += len(batch)
                        payload = awslogs_event(
                            ACCOUNT, log_group_name(api, "prod"), "storm", ["permheal"], batch
                        )
                        aws.client("lambda").invoke(
                            FunctionName=aws.detector, InvocationType="Event", Payload=json.dumps(payload)
                        )
            executions = all_executions(aws)
        wall = time.perf_counter() - started
        lambda_runtime.observers.remove(observe)
        notifications = drain(aws, inbox)
        healed = [
            simulator.request(api, "prod", method, path, headers).status == 200
            for api in apis
            for method, path, headers in ROUTES
        ]
        events = [history(aws, e["executionArn"]) for e in executions]
        lambda_usage = usage.since_start()
    incidents = len({e["name"] for e in executions}) or 1
    detector = aws.detector
    return {
        "failing_requests": requests,
        "apis": len(apis),
        "rounds": rounds,
        "lines_delivered": delivered_lines,
        "detector_invocations": lambda_usage["by_function"].get(detector, 0),
        "detector_errors": sum(1 for r in results if isinstance(r, BaseException)),
        "incidents": incidents,
        "executions_started": len(executions),
        "executions_suppressed": sum(r.get("suppressed", 0) for r in results if isinstance(r, dict)),
        "notifications": notifications,
        "executions_per_incident": round(len(executions) / incidents, 3),
        "notifications_per_incident": round(notifications / incidents, 3),
        "all_succeeded": all(e["status"] == "SUCCEEDED" for e in executions),
        "all_healed": all(healed),
        "wall_s": round(wall, 2),
        "state_transitions": sum(state_transitions(e) for e in events),
        "sns_publishes": sum(sns_publishes(e) for e in events),
        "lambda_usage": {
            "invocations": lambda_usage["invocations"],
            "by_function": lambda_usage["by_function"],
            "billed_ms": lambda_usage["billed_ms"],
            "gb_seconds": round(lambda_usage["gb_seconds"], 6),
            "detector_ms": lambda_usage["ms_by_function"].get(detector, 0.0),
        },
        "aws_calls": dict(sorted(counter.calls.items())),
    }
