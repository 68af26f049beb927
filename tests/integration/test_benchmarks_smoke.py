"""`make bench` end to end at tiny sizes: every section runs and reports figures of the right shape.

Timings are reported, never asserted (no thresholds). What is asserted are the properties each
figure exists to show and that hold on any machine: the detector finds what the baseline finds,
one execution and one notification per incident, constant control-plane calls, figures that agree
with each other (a ratio is the ratio of its two throughputs, a total the sum of its lines).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "detector_throughput",
    "storm_suppression",
    "control_plane",
    "planner_scaling",
    "coldstart",
    "time_to_heal",
    "cost_per_incident",
    "check_time",
    "proactive_healing",
    "aws_model",
    "org_scan",
    "package",
)


def number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def all_numbers(values: Any) -> bool:
    return bool(values) and all(number(v) for v in values)


@pytest.mark.slow
def test_quick_bench_writes_every_section_with_figures_that_hold_their_properties(tmp_path: Path) -> None:
    # Given a checkout with the package installed
    out = tmp_path / "bench.json"

    # When the benchmarks run in quick mode
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # Then it succeeds, prints the table and writes every section without an error
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Benchmark" in done.stdout and "7. Cost per incident" in done.stdout
    results = json.loads(out.read_text())
    assert results["meta"]["mode"] == "quick"
    for section in SECTIONS:
        assert isinstance(results.get(section), dict), section
        assert "error" not in results[section], results[section]

    # And each section's figures have the properties they exist to show (no timing thresholds)
    check_detector(results["detector_throughput"])
    check_storm(results["storm_suppression"])
    check_control_plane(results["control_plane"])
    check_planner(results["planner_scaling"])
    check_cold_start(results["coldstart"])
    check_time_to_heal(results["time_to_heal"])
    check_cost(results["cost_per_incident"])
    check_check_time(results["check_time"])
    check_proactive(results["proactive_healing"])
    check_aws_model(results["aws_model"])
    check_org_scan(results["org_scan"])
    check_package(results["package"])
    assert "9. Proactive healing" in done.stdout
    check_scale(results["aws_model"]["scan"])
    assert results["table"] and all(
        isinstance(row, dict) and all(isinstance(row[k], str) for k in ("benchmark", "figure", "value"))
        for row in results["table"]
    )


def close(a: float, b: float, rel: float = 0.05, absolute: float = 0.01) -> bool:
    """Equal up to the rounding the benchmarks apply to what they report."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=absolute)


def check_detector(detector: dict[str, Any]) -> None:
    payload, ours, baseline = detector["payload"], detector["permheal"], detector["baseline"]
    # permheal's detector finds exactly what the naive parser finds, on a payload with failures
    assert detector["same_hints_as_baseline"] is True
    assert payload["events"] > payload["requests"] >= payload["failing_requests"] >= 1
    assert payload["failure_lines"] >= payload["failing_requests"]
    assert 1 <= ours["incidents"] <= payload["failing_requests"]
    assert 0 < payload["compressed_bytes"] < payload["message_bytes"]
    # a storm of failure lines from one stage is one incident
    assert detector["storm_batch"]["incidents"] == 1
    # the ratio is the one the two throughputs give (the figures agree with each other)
    assert all_numbers([ours["events_per_second"], baseline["events_per_second"], detector["ratio"]])
    assert ours["events_per_second"] > 0 and baseline["events_per_second"] > 0
    assert close(detector["ratio"], ours["events_per_second"] / baseline["events_per_second"])


def check_storm(storm: dict[str, Any]) -> None:
    # one execution and one notification per incident, each API one incident, every API healed
    assert storm["incidents"] == storm["apis"] >= 1
    assert storm["executions_started"] == storm["incidents"]
    assert (storm["executions_per_incident"], storm["notifications_per_incident"]) == (1.0, 1.0)
    assert storm["executions_suppressed"] >= 1  # the storm really repeated itself
    assert storm["detector_errors"] == 0
    assert storm["all_succeeded"] is True and storm["all_healed"] is True


def check_control_plane(control: dict[str, Any]) -> None:
    resolves = control["resolve"]
    assert len(resolves) >= 2
    # resolving costs the same few calls at any size (below a page), so calls per method fall
    assert control["calls_constant_in_size"] is True and control["calls_per_method_falls"] is True
    assert len({r["aws_calls"] for r in resolves}) == 1 and resolves[0]["aws_calls"] >= 1
    for r in resolves:
        assert all_numbers([r["calls_per_method"], r["wall_ms"]])
        assert close(r["calls_per_method"], r["aws_calls"] / r["methods"], absolute=0.001)
    scanned = control["scan"]
    assert scanned["calls"] >= scanned["apis"] >= 1 and scanned["findings"] >= 1
    assert close(scanned["calls_per_api"], scanned["calls"] / scanned["apis"])


def check_planner(planner: dict[str, Any]) -> None:
    by_size, by_targets = planner["by_policy_size"], planner["by_targets"]
    assert all(all_numbers([r["evaluate_ms"], r["plan_ms"]]) for r in by_size)
    assert not any(r["refused"] for r in by_size + by_targets)
    # bigger policies are bigger; every target gets its one grant, and the policy grows with them
    sizes = [(r["statements"], r["policy_bytes"]) for r in by_size]
    assert sizes == sorted(sizes) and len({b for _, b in sizes}) == len(sizes)
    assert all(r["plan_adds"] == r["targets"] for r in by_targets)
    after = [r["bytes_after"] for r in by_targets]
    assert after == sorted(after) and after[-1] > after[0] and after[-1] <= planner["limit_bytes"]


def check_cold_start(cold: dict[str, Any]) -> None:
    boto3 = cold["boto3"]
    assert all_numbers([boto3["wall_ms"], boto3["peak_rss_mb"]]) and boto3["wall_ms"] > 0
    assert cold["handlers"] and set(cold["whole_process_ratio"]) == set(cold["handlers"])
    assert set(cold["trace_aws_calls"]) == set(cold["handlers"])
    assert all(
        all_numbers([t["whole_process_ratio"], t["import_ms"]]) for t in cold["trace_aws_calls"].values()
    )
    for name, handler in cold["handlers"].items():
        assert all_numbers([handler["whole_process_ratio"], handler["wall_ms"], handler["peak_rss_mb"]])
        # the sam build artifact was measured, and a handler loads boto3's modules and more
        assert handler["from_artifact"] is True
        assert handler["modules_loaded"] > boto3["modules_loaded"]
        assert "permheal" in handler["by_group_ms"]
        assert cold["whole_process_ratio"][name] == handler["whole_process_ratio"]
        assert close(
            handler["import_ms"], max(0.0, handler["wall_ms"] - cold["interpreter_ms"]), absolute=0.2
        )
    # an incident's imports are the sum of its sequential cold starts'
    incident = cold["per_incident"]
    heal = [h for h in ("detect", "resolve", "repair") if h in cold["handlers"]]
    assert incident["sequential_cold_starts_to_heal"] == len(heal)
    assert close(
        incident["import_ms_to_heal"], sum(cold["handlers"][h]["import_ms"] for h in heal), absolute=0.5
    )


def check_package(package: dict[str, Any]) -> None:
    # one artifact for every function of the template, and every figure a size
    assert set(package["zip_bytes"]) >= {"DetectorFunction", "RepairPolicyFunction"}
    assert all_numbers(package["zip_bytes"].values()) and len(set(package["zip_bytes"].values())) == 1
    assert 0 < max(package["zip_bytes"].values()) < package["unzipped_bytes"]
    assert sum(package["unzipped_bytes_by_entry"].values()) == package["unzipped_bytes"]


def check_time_to_heal(heal: dict[str, Any]) -> None:
    assert heal["all_healed"] is True and heal["all_succeeded"] is True and heal["incidents"] >= 1
    assert 0 < heal["heal_ms"]["p50"] <= heal["heal_ms"]["p95"] <= heal["heal_ms"]["max"]
    assert 0 < heal["notified_ms"]["p50"] <= heal["notified_ms"]["p95"]
    shares = heal["share_by_state"]
    assert all_numbers(shares.values()) and close(sum(shares.values()), 1.0, absolute=0.01)


def check_aws_model(model: dict[str, Any]) -> None:
    heal = model["time_to_heal_ms"]
    # every incident healed without a throttled call; cold incidents start each function cold
    assert model["all_healed"] is True and model["throttles"] == 0
    assert model["incidents"]["warm"] >= 1 and model["incidents"]["cold"] >= 1
    assert model["cold_starts_per_warm_incident"] == 0
    assert model["cold_starts_per_cold_incident"] >= 2  # the detector and at least one workflow function
    assert 0 < heal["p50"] <= heal["p95"] and 0 < heal["cold_p50"] <= heal["cold_p95"]
    assert 0 < heal["verified"]["p50"] <= heal["p50"]
    for states in (heal["by_state"], heal["cold_by_state"]):
        shares = [v["share"] for v in states.values()]
        assert close(sum(shares), 1.0, absolute=0.01)
        assert {"Resolve targets", "Repair each function", "Notify on-call"} <= set(states)


def check_cost(cost: dict[str, Any]) -> None:
    typical = cost["typical_incident"]
    usd, counts = typical["usd"], typical["counts"]
    assert all_numbers(usd.values()) and all_numbers(counts.values()) and all_numbers(cost["prices"].values())
    # the total is the sum of its lines; an incident is one notification and a handful of Lambdas
    assert close(usd["total"], sum(v for k, v in usd.items() if k != "total"), rel=1e-3, absolute=1e-9)
    assert usd["total"] > 0 and counts["state_transitions"] > 0 and counts["lambda_invocations"] >= 1
    assert counts["sns_publishes"] == 1.0
    assert cost["incidents_per_dollar"] >= 1


def check_check_time(check: dict[str, Any]) -> None:
    templates = check["templates"]
    # the largest SAM template, the largest other one and a wide API, each checked at least once
    assert len(templates) >= 3 and len({t["template"] for t in templates}) == len(templates)
    assert all(all_numbers([t["bytes"], t["first_ms"], t["median_ms"]]) for t in templates)
    assert all(isinstance(t["findings"], int) and t["findings"] >= 0 for t in templates)


def check_proactive(proactive: dict[str, Any]) -> None:
    latency, deploy = proactive["latency"], proactive["deploy"]
    # every deploy was healed from its events, the percentiles are ordered and the parts add up
    assert latency["all_healed"] is True and latency["deploys"] >= 1
    for figure in ("event_to_verified_ms", "wait_ms", "work_ms"):
        values = latency[figure]
        assert all_numbers(values.values()) and values["p50"] <= values["p95"] <= values["max"]
    assert 0 < latency["work_ms"]["p50"] <= latency["event_to_verified_ms"]["max"]
    # a deploy is two events (PutIntegration, CreateDeployment), debounced to one or two runs
    assert latency["events_per_deploy"] == 2 and 1.0 <= latency["executions_per_deploy"] <= 2.0
    on, off = deploy["on"], deploy["off"]
    assert on["requests"] == off["requests"] >= 1
    # off: no rule, no event, and the logs path can only heal after a request has failed
    assert (off["events_delivered"], off["proactive_executions"]) == (0, 0)
    assert off["failed"] >= 1 and off["executions"] >= 1
    # on: the deploy's events reached the trigger and started a run; both end healed
    assert on["events_delivered"] == 2 and on["proactive_executions"] >= 1
    assert 0 <= on["failed"] <= on["requests"]
    assert on["healed_at_end"] is True and off["healed_at_end"] is True


def check_org_scan(org: dict[str, Any]) -> None:
    # every member plus the management account scanned, none failed, each member's ungranted APIs found
    members, apis = org["member_accounts"], org["apis_per_member"]
    assert org["accounts"] == members + 1 and org["failures"] == 0 and org["exit_code"] == 1
    assert org["findings"] == members * ((apis + 1) // 2)
    assert all_numbers([org["seconds"], org["moto_seconds"]])
    model = org["aws_model"]
    assert model["failures"] == model["sequential_failures"] == 0
    assert all_numbers([model["seconds"], model["sequential_seconds"], model["speedup"], model["calls"]])
    assert org["seconds"] == model["seconds"] and org["world"] == "aws_model"


def check_scale(scan: dict[str, Any]) -> None:
    # the scan under the AWS model finished without a throttling failure and read every policy once
    assert scan["throttle_failures"] == 0
    assert scan["get_policy_calls"] == scan["policies"] >= 1 and scan["apis"] >= 1 and scan["findings"] >= 1
    # utilisation is GetPolicy calls per second over the quota, and pacing keeps it under the quota
    assert all_numbers([scan["seconds"], scan["quota_utilisation"], scan["peak_memory_mb"]])
    assert close(scan["quota_utilisation"], scan["get_policy_per_second"] / 15)
    assert scan["quota_utilisation"] <= 1.0
