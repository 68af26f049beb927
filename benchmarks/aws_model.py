"""10. Time to heal under the AWS model: permheal's own share, warm and cold, and where it goes.

The loop is time_to_heal's (benchmarks/heal.py: a failing request on the API Gateway simulator,
its log line delivered to the deployed detector, the real state machine resolving, repairing,
verifying and notifying), run with permheal_local.aws_model on: every AWS call pays a round trip,
Lambda and API Gateway quotas apply per account, every Step Functions state pays a transition,
a handler's own CPU runs at its memory's share of a vCPU, and a function without a warm
execution environment pays a cold start (the platform constant plus its handler's import time
measured in a fresh Lambda-like process by benchmarks/coldstart).

permheal's share runs from the moment Lambda gets the detector's invocation (its cold start
included) to the notification published; CloudWatch Logs' delivery delay before it is AWS's,
not permheal's. Cold incidents recycle every execution environment first, so each function of
the incident starts cold, as after a quiet day. The simulated request itself (AWS's data plane)
runs outside the model. The local runtime runs one handler at a time (handlers share
os.environ), so a Map over two functions is serialised here where AWS runs it in parallel: the
Map's figures are an upper bound, and `if_map_parallel` subtracts the time invocations waited for
each other (their cold starts already overlap, as on AWS).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from benchmarks.common import history, local_stack, percentile, wait_until_stopped
from benchmarks.heal import HEADERS, build_api, walk_states

DETECTOR = "detector (cold start + run + StartExecution)"
EXECUTION_START = "execution start (Step Functions)"
TRANSITIONS = "between states (transitions)"


def handler_modules(aws: Any) -> list[str]:
    """The handler module of every deployed function (whatever the template's split into functions)."""
    lam = aws.client("lambda")
    return sorted(
        {
            str(lam.get_function_configuration(FunctionName=name)["Handler"]).rpartition(".")[0]
            for name in aws.stack.functions.values()
        }
    )


def import_times(modules: Sequence[str], repeats: int) -> dict[str, float]:
    """Handler module -> ms a cold start spends importing it, as benchmarks.coldstart measures it."""
    from benchmarks import coldstart

    return coldstart.import_times(tuple(m.rsplit(".", 1)[-1] for m in modules), repeats)


def timeline(events: Sequence[dict[str, Any]], detector: tuple[float, float]) -> dict[str, Any]:
    """Milliseconds from the detector's invocation to verified and notified, and per top-level state."""
    start, detector_end = detector
    started = next(e for e in events if e["type"] == "ExecutionStarted")["timestamp"].timestamp() * 1000
    states, _, verified, notified = walk_states(events, start, until_notified=True)
    total = notified if notified is not None else float("nan")
    segments = {DETECTOR: detector_end - start, EXECUTION_START: started - detector_end, **states}
    segments[TRANSITIONS] = total - sum(segments.values())
    return {
        "verified_ms": verified if verified is not None else float("nan"),
        "notified_ms": total,
        "segments_ms": segments,
    }


def run(quick: bool = False) -> dict[str, Any]:
    import time

    from permheal_local import lambda_runtime
    from permheal_local.aws_model import COLD_START, aws_model

    warm_count, cold_count = (2, 2) if quick else (12, 8)
    incidents: list[dict[str, Any]] = []
    with local_stack() as aws:
        imports = import_times(handler_modules(aws), 1 if quick else 3)
        # Set up with the model off: CreateRestApi alone is 1 request per 3 s per account.
        apis = [build_api(aws.world, f"modelled-{i:02d}") for i in range(warm_count + cold_count + 1)]
        simulator = aws.simulator()
        ends: list[float] = []

        def observe(name: str, event: Any, outcome: Any) -> None:
            if name == aws.detector:
                ends.append(time.time() * 1000)

        lambda_runtime.observers.append(observe)

        def incident(api: str, cold: bool, model: Any) -> dict[str, Any]:
            if cold:
                model.make_cold()
            model.reset_counters()
            with model.unmodelled():  # the failing request is API Gateway's data plane
                failed = simulator.request(api, "prod", "GET", "/pets/7", HEADERS)
            deliveries = aws.flush_logs()
            started = [arn for d in deliveries for arn in (d.result or {}).get("started", [])]
            with model.unmodelled():  # the benchmark's own polling, and API Gateway's data plane again
                execution = wait_until_stopped(aws, started[0])
                events = history(aws, started[0])
                after = simulator.request(api, "prod", "GET", "/pets/7", HEADERS)
            detector_start = next(i for i in model.invocations if i.function == aws.detector).started_at
            record = timeline(events, (detector_start * 1000, ends[-1]))
            queued = sum(i.queued_ms for i in model.invocations)
            record["notified_if_parallel_ms"] = record["notified_ms"] - queued
            record["invocations"] = [
                {
                    "function": i.function,
                    "at_ms": round((i.started_at - detector_start) * 1000, 1),
                    "init_ms": round(i.init_ms, 1),
                    "queued_ms": round(i.queued_ms, 1),
                    "cpu_ms": round(i.cpu_ms, 1),
                    "cpu_wait_ms": round(i.cpu_wait_ms, 1),
                }
                for i in model.invocations
            ]
            stats = model.stats()
            record.update(
                cold=cold,
                healed=failed.status >= 500 and after.status == 200,
                succeeded=execution["status"] == "SUCCEEDED",
                cold_starts=sum(stats["cold_starts"].values()),
                init_ms=round(sum(stats["init_ms"].values()), 1),
                throttles=sum(stats["throttles"].values()),
                calls=sum(stats["calls"].values()),
                calls_by_operation=stats["calls"],
                cpu_ms=sum(i.cpu_ms for i in model.invocations),
                cpu_wait_ms=sum(i.cpu_wait_ms for i in model.invocations),
            )
            return record

        # One incident with the model off imports the handlers into this process, so the modelled
        # cold starts are the only import cost the figures contain.
        with aws_model(seed=0, latency=False, quotas=False, cold_starts=False) as model:
            incident(apis[0], False, model)
        with aws_model(seed=1, import_ms=dict(imports)) as model:
            for api in apis[1 : 1 + cold_count]:
                incidents.append(incident(api, True, model))
            for api in apis[1 + cold_count :]:
                incidents.append(incident(api, False, model))
        lambda_runtime.observers.remove(observe)
    return summarize(incidents, imports, COLD_START.init_ms)


def summarize(incidents: list[dict[str, Any]], imports: dict[str, float], init_ms: float) -> dict[str, Any]:
    warm = [i for i in incidents if not i["cold"]]
    cold = [i for i in incidents if i["cold"]]

    def pcts(group: list[dict[str, Any]], key: str) -> dict[str, float]:
        values = [i[key] for i in group]
        return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1)}

    def by_state(group: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        totals: dict[str, list[float]] = defaultdict(list)
        for record in group:
            for name, ms in record["segments_ms"].items():
                totals[name].append(ms)
        whole = sum(i["notified_ms"] for i in group)
        return {
            name: {"mean_ms": round(statistics.fmean(ms), 1), "share": round(sum(ms) / whole, 3)}
            for name, ms in totals.items()
        }

    warm_total, cold_total = pcts(warm, "notified_ms"), pcts(cold, "notified_ms")
    return {
        "time_to_heal_ms": {
            "p50": warm_total["p50"],
            "p95": warm_total["p95"],
            "cold_p50": cold_total["p50"],
            "cold_p95": cold_total["p95"],
            "verified": pcts(warm, "verified_ms"),
            "cold_verified": pcts(cold, "verified_ms"),
            "if_map_parallel": {
                "p95": pcts(warm, "notified_if_parallel_ms")["p95"],
                "cold_p95": pcts(cold, "notified_if_parallel_ms")["p95"],
            },
            "by_state": by_state(warm),
            "cold_by_state": by_state(cold),
        },
        "incidents": {"warm": len(warm), "cold": len(cold)},
        "cold_starts_per_cold_incident": round(statistics.fmean(i["cold_starts"] for i in cold), 2),
        "cold_start_ms_per_cold_incident": round(statistics.fmean(i["init_ms"] for i in cold), 1),
        "cold_starts_per_warm_incident": round(statistics.fmean(i["cold_starts"] for i in warm), 2),
        "handler_cpu_ms_per_warm_incident": round(statistics.fmean(i["cpu_ms"] for i in warm), 1),
        "cpu_share_wait_ms_per_warm_incident": round(statistics.fmean(i["cpu_wait_ms"] for i in warm), 1),
        "handler_import_ms": {name.rsplit(".", 1)[-1]: round(ms, 1) for name, ms in imports.items()},
        "platform_init_ms": init_ms,
        "throttles": sum(i["throttles"] for i in incidents),
        "aws_calls_per_incident": round(statistics.fmean(i["calls"] for i in incidents), 1),
        "aws_calls_by_operation_per_warm_incident": {
            name: round(sum(i["calls_by_operation"].get(name, 0) for i in warm) / len(warm), 2)
            for name in sorted({n for i in warm for n in i["calls_by_operation"]})
        },
        "all_healed": all(i["healed"] and i["succeeded"] for i in incidents),
        "per_incident": [
            {
                "cold": i["cold"],
                "notified_ms": round(i["notified_ms"], 1),
                "verified_ms": round(i["verified_ms"], 1),
                "cold_starts": i["cold_starts"],
                "throttles": i["throttles"],
                "invocations": i["invocations"],
            }
            for i in incidents
        ],
    }


def rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The table's lines (benchmarks/run.py)."""
    heal, count = d["time_to_heal_ms"], d["incidents"]
    parallel = heal["if_map_parallel"]
    shares, cold_shares = _shares(heal["by_state"]), _shares(heal["cold_by_state"])
    imports = ", ".join(f"{name} {ms:.0f}" for name, ms in d["handler_import_ms"].items())
    return [
        (
            f"detector start → notification, warm ({count['warm']} incidents)",
            f"p50 {heal['p50']:.0f} ms, p95 {heal['p95']:.0f} ms "
            f"(verified p95 {heal['verified']['p95']:.0f} ms)",
        ),
        (
            f"same, every function cold ({count['cold']} incidents)",
            f"p50 {heal['cold_p50']:.0f} ms, p95 {heal['cold_p95']:.0f} ms "
            f"({d['cold_starts_per_cold_incident']:.0f} cold starts, "
            f"{d['cold_start_ms_per_cold_incident']:.0f} ms of init)",
        ),
        (
            "p95 if the Map's iterations ran in parallel, as on AWS",
            f"warm {parallel['p95']:.0f} ms, cold {parallel['cold_p95']:.0f} ms",
        ),
        ("share of permheal's time, warm", shares),
        ("share of permheal's time, cold", cold_shares),
        (
            "handlers' own CPU per warm incident, and what their memory's CPU share adds",
            f"{d['handler_cpu_ms_per_warm_incident']:.0f} ms here, "
            f"+{d['cpu_share_wait_ms_per_warm_incident']:.0f} ms",
        ),
        (
            f"cold start = {d['platform_init_ms']:.0f} ms platform + import (ms)",
            f"{imports}; throttled calls {d['throttles']}",
        ),
    ]


def _shares(states: dict[str, dict[str, float]]) -> str:
    return ", ".join(
        f"{name.split(' (')[0]} {v['share']:.0%}" for name, v in states.items() if v["share"] >= 0.02
    )
