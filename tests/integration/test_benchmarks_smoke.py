"""`make bench` end to end at tiny sizes: every section runs and reports figures of the right shape.

The benchmarks report figures; they are never asserted here. This only checks that the harness
works on a fresh checkout and that the JSON keeps its shape (what docs/performance.md is built from).
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
    "cold_start",
    "time_to_heal",
    "cost_per_incident",
)


def number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def all_numbers(values: Any) -> bool:
    return bool(values) and all(number(v) for v in values)


@pytest.mark.slow
def test_quick_bench_writes_every_section_with_figures_of_the_right_type(tmp_path: Path) -> None:
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

    detector = results["detector_throughput"]
    assert all_numbers(
        [
            detector["permheal"]["events_per_second"],
            detector["baseline"]["events_per_second"],
            detector["ratio"],
            detector["storm_batch"]["events_per_second"],
        ]
    )
    assert isinstance(detector["same_hints_as_baseline"], bool)

    storm = results["storm_suppression"]
    assert isinstance(storm["incidents"], int) and storm["incidents"] >= 1
    assert all_numbers([storm["executions_per_incident"], storm["notifications_per_incident"]])
    assert isinstance(storm["all_healed"], bool)

    control = results["control_plane"]
    assert control["resolve"] and all(
        isinstance(r["aws_calls"], int) and all_numbers([r["calls_per_method"], r["wall_ms"]])
        for r in control["resolve"]
    )
    assert isinstance(control["scan"]["calls"], int)
    assert isinstance(control["calls_per_method_falls"], bool)

    planner = results["planner_scaling"]
    assert all(all_numbers([r["evaluate_ms"], r["plan_ms"]]) for r in planner["by_policy_size"])
    assert all(all_numbers([r["plan_ms"], r["targets"]]) for r in planner["by_targets"])

    cold = results["cold_start"]
    assert all_numbers([cold["boto3"]["import_ms"], cold["boto3"]["peak_rss_mb"]])
    assert cold["handlers"] and all(
        all_numbers([h["import_ms"], h["ratio_to_boto3"], h["peak_rss_mb"], h["extra_ms_after_boto3"]])
        for h in cold["handlers"].values()
    )

    heal = results["time_to_heal"]
    assert all_numbers([heal["heal_ms"]["p50"], heal["heal_ms"]["p95"], heal["notified_ms"]["p50"]])
    assert all_numbers(heal["share_by_state"].values())
    assert isinstance(heal["all_healed"], bool)

    cost = results["cost_per_incident"]
    assert all_numbers(cost["typical_incident"]["usd"].values())
    assert all_numbers(cost["typical_incident"]["counts"].values())
    assert all_numbers(cost["prices"].values())

    assert all(
        isinstance(row, dict) and all(isinstance(row[k], str) for k in ("benchmark", "figure", "value"))
        for row in results["table"]
    )
