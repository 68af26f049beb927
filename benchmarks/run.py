"""`make bench`: run every benchmark, print one table and write the same figures as JSON.

    python -m benchmarks.run [--quick] [--json PATH]

Each benchmark runs in its own interpreter (a fresh moto, fresh imports, no state shared with the
others); the cost section is computed from the time-to-heal and storm counts. Figures are reported,
never asserted: a benchmark that fails is shown as an error and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTIONS: dict[str, str] = {
    "detector_throughput": "benchmarks.detector",
    "storm_suppression": "benchmarks.storm",
    "control_plane": "benchmarks.controlplane",
    "planner_scaling": "benchmarks.planner",
    "coldstart": "benchmarks.coldstart",
    "time_to_heal": "benchmarks.heal",
    "check_time": "benchmarks.check",
    "proactive_healing": "benchmarks.proactive",
    "aws_model": "benchmarks.aws_model",
    "org_scan": "benchmarks.org",
    "package": "benchmarks.package",
    "aws_model_scan": "benchmarks.scale",
}
SECTION_TIMEOUT_SECONDS = 240
TIMEOUT_SECONDS = {"aws_model_scan": 480}  # builds 1,000 functions, then scans for over 133 s


def run_section(name: str, quick: bool) -> dict[str, Any]:
    """One benchmark in a child interpreter; its stdout (handler logs, EMF metrics) is discarded."""
    with tempfile.TemporaryDirectory(prefix="permheal-bench-") as tmp:
        out = Path(tmp) / "section.json"
        command = [sys.executable, "-m", "benchmarks.run", "--section", name, "--section-out", str(out)]
        started = time.perf_counter()
        done = subprocess.run(
            command + (["--quick"] if quick else []),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS.get(name, SECTION_TIMEOUT_SECONDS),
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            check=False,
        )
        seconds = round(time.perf_counter() - started, 1)
        if done.returncode != 0 or not out.exists():
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            return {"error": f"exit {done.returncode}: {tail}", "seconds": seconds}
        result: dict[str, Any] = json.loads(out.read_text())
        result.setdefault("seconds", seconds)  # a section's own figure named `seconds` wins (org_scan)
        result["section_seconds"] = seconds
        return result


def _section_main(name: str, quick: bool, out: Path) -> None:
    module = importlib.import_module(SECTIONS[name])
    result = module.run(quick=quick)
    out.write_text(json.dumps(result, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


# --- the table -----------------------------------------------------------------------------------------


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, figure, value) lines for the printed table and the README."""
    table: list[tuple[str, str, str]] = []

    def section(title: str, key: str, build: Callable[[dict[str, Any]], list[tuple[str, str]]]) -> None:
        data = results.get(key)
        if not data:  # not run (`--only`)
            return
        if "error" in data:
            table.append((title, "ERROR", data["error"].splitlines()[-1][:80] if data["error"] else "?"))
            return
        for index, (figure, value) in enumerate(build(data)):
            table.append((title if index == 0 else "", figure, value))

    section("1. Detector throughput", "detector_throughput", _detector_rows)
    section("2. Storm suppression", "storm_suppression", _storm_rows)
    section("3. Control-plane cost", "control_plane", _control_rows)
    section("4. Planner scaling", "planner_scaling", _planner_rows)
    section("5. Cold start", "coldstart", _cold_rows)
    section("6. Time to heal", "time_to_heal", _heal_rows)
    section("7. Cost per incident", "cost_per_incident", _cost_rows)
    section("8. permheal check", "check_time", _check_rows)
    section("9. Proactive healing", "proactive_healing", _proactive_rows)
    # aws_model.scan (benchmarks/scale.py) is its own section, nested in aws_model's JSON by main()
    model = results.get("aws_model") or {}
    scan_only = {k: v for k, v in model.items() if k != "scan"} if isinstance(model, dict) else model
    results = {**results, "aws_model": scan_only, "aws_model.scan": model.get("scan")}
    section("10. Time to heal, AWS model", "aws_model", _aws_model_rows)
    section("11. Account scale, AWS model", "aws_model.scan", _scale_rows)
    section("12. Organization scan", "org_scan", _org_rows)
    section("13. Package size", "package", _package_rows)
    return table


def _org_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    from benchmarks import org

    return org.rows(d)


def _aws_model_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    from benchmarks import aws_model

    return aws_model.rows(d)


def _scale_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"scan {d['apis']} APIs, {d['policies']:,} policies (GetPolicy quota 15/s)",
            f"{d['seconds']:.0f} s, {d['get_policy_per_second']:.1f} GetPolicy/s "
            f"({d['quota_utilisation']:.0%} of the quota)",
        ),
        (
            "throttling: calls answered 429 / scans failed",
            f"{d['throttled_calls']} / {d['throttle_failures']}",
        ),
        ("peak memory held by the scan", f"{d['peak_memory_mb']:.1f} MB"),
    ]


def _detector_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    p, storm = d["payload"], d["storm_batch"]
    failing = f"{p['failing_requests']}/{p['requests']} requests failing"
    size = f"{p['message_bytes'] / 1e6:.1f} MB, {p['events']:,} lines, {failing}"
    return [
        (f"events/s, mixed payload ({size})", _n(d["permheal"]["events_per_second"])),
        ("naive baseline (stdlib decode + one regex per line)", _n(d["baseline"]["events_per_second"])),
        (
            "ratio permheal / baseline (parsing only, after the shared decode)",
            f"{d['ratio']:.2f}x ({d['ratio_after_decode']:.2f}x); same hints: {d['same_hints_as_baseline']}",
        ),
        (
            f"events/s, storm batch ({storm['events']:,} failure lines only)",
            f"{_n(storm['events_per_second'])} (baseline {_n(storm['baseline_events_per_second'])}, "
            f"{storm['ratio']:.2f}x)",
        ),
    ] + [
        (
            f"events/s, {name.replace('_', ' ')} ({shape['events']:,} events)",
            f"{_n(shape['events_per_second'])} (baseline {_n(shape['baseline_events_per_second'])}, "
            f"{shape['ratio']:.2f}x); same: {shape['same_as_baseline']}",
        )
        for name, shape in d.get("shapes", {}).items()
        if name not in ("mixed", "storm_batch")
    ]


def _storm_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"{d['failing_requests']:,} failing requests, {d['apis']} APIs → incidents",
            f"{d['incidents']} ({d['detector_invocations']} detector runs, "
            f"{d['executions_suppressed']} starts suppressed)",
        ),
        ("executions started per incident (target 1.0)", f"{d['executions_per_incident']:.2f}"),
        ("notifications sent per incident (target 1.0)", f"{d['notifications_per_incident']:.2f}"),
        ("every API healed afterwards", str(d["all_healed"])),
    ]


def _control_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for r in d["resolve"]:
        out.append(
            (
                f"resolve {r['methods']:,} methods, {_plural(r['authorizers'], 'authorizer')}",
                f"{r['aws_calls']} calls ({r['calls_per_method']:.3f}/method), {_n(r['wall_ms'], 1)} ms",
            )
        )
    s = d["scan"]
    out.append(
        (
            f"scan {s['apis']} APIs ({s['methods']} methods)",
            f"{s['calls']} calls ({s['calls_per_api']:.2f}/API), {_n(s['wall_ms'])} ms",
        )
    )
    out.append(("calls per method fall as the API grows", str(d["calls_per_method_falls"])))
    for r in d.get("resolve_http", []):
        out.append(
            (
                f"resolve HTTP API, {r['routes']:,} routes",
                f"{r['aws_calls']} calls ({r['calls_per_route']:.3f}/route), {_n(r['wall_ms'], 1)} ms",
            )
        )
    if "http_calls_constant_in_size" in d:
        out.append(("HTTP API calls constant in size", str(d["http_calls_constant_in_size"])))
    return out


def _planner_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for r in d["by_policy_size"]:
        out.append(
            (
                f"policy of {_plural(r['statements'], 'statement')} ({r['policy_bytes']:,} B)",
                f"evaluate {r['evaluate_ms']:.3f} ms, plan {r['plan_ms']:.2f} ms",
            )
        )
    for r in d["by_targets"]:
        refused = " (refused: over 20 KB)" if r["refused"] else ""
        out.append(
            (f"plan {_plural(r['targets'], 'target')} on one function", f"{r['plan_ms']:.2f} ms{refused}")
        )
    return out


def _cold_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    boto3 = d["boto3"]
    out = [
        (
            f"python -c 'import boto3' (Python {d['python']}, whole process, median of {d['pairs']})",
            f"{boto3['wall_ms']:.0f} ms, peak RSS {boto3['peak_rss_mb']:.0f} MB",
        )
    ]
    for name, h in d["handlers"].items():
        out.append(
            (
                f"handler {name} + its first call's imports",
                f"{h['whole_process_ratio']:.2f}x boto3 ({h['wall_ms']:.0f} ms, {h['import_ms']:.0f} ms "
                f"after the interpreter's start), peak RSS {h['peak_rss_mb']:.0f} MB",
            )
        )
    for name, h in d.get("trace_aws_calls", {}).items():
        out.append(
            (
                f"handler {name} with TraceAwsCalls=true (X-Ray SDK at the first call)",
                f"{h['whole_process_ratio']:.2f}x boto3 ({h['import_ms']:.0f} ms of imports)",
            )
        )
    incident = d["per_incident"]
    out.append(
        (
            "an incident with every function cold: imports to heal / to notify",
            f"{incident['import_ms_to_heal']:.0f} ms over {incident['sequential_cold_starts_to_heal']} "
            f"sequential cold starts / {incident['import_ms_to_notify']:.0f} ms over "
            f"{incident['sequential_cold_starts_to_notify']}",
        )
    )
    return out


def _package_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    sizes = set(d["zip_bytes"].values())
    return [
        (
            f"Lambda artifact (functions/Makefile), zipped, each of {len(d['zip_bytes'])} functions",
            f"{max(sizes) / 1e6:.2f} MB ({d['unzipped_bytes'] / 1e6:.1f} MB unzipped, "
            f"{d['bytecode_files']} .pyc of {d['files']} files)",
        )
    ]


def _heal_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    shares = ", ".join(
        f"{name.split(' (')[0]} {share:.0%}" for name, share in d["share_by_state"].items() if share >= 0.01
    )
    return [
        (
            f"log line → verified permission, {d['incidents']} incidents",
            f"p50 {d['heal_ms']['p50']:.0f} ms, p95 {d['heal_ms']['p95']:.0f} ms",
        ),
        (
            "log line → notification sent",
            f"p50 {d['notified_ms']['p50']:.0f} ms, p95 {d['notified_ms']['p95']:.0f} ms",
        ),
        ("share of time to heal", shares),
        ("first incident (handlers imported in process)", f"{d['first_incident_ms']:.0f} ms"),
    ]


def _check_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            f"{Path(t['template']).name} ({t['bytes'] / 1000:.1f} KB, {_plural(t['findings'], 'finding')})",
            f"first {t['first_ms']:.0f} ms, median {t['median_ms']:.1f} ms",
        )
        for t in d["templates"]
    ]


def _proactive_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    lat, deploy = d["latency"], d["deploy"]
    on, off = deploy["on"], deploy["off"]
    traffic = (
        f"first request {deploy['gap_seconds']:.0f} s after, then every "
        f"{deploy['interval_seconds'] * 1000:.0f} ms for {deploy['duration_seconds']:.0f} s"
    )
    total = lat["event_to_verified_ms"]
    return [
        (
            f"deploy event → verified permission, {lat['deploys']} deploys "
            f"({lat['window_seconds']} s window)",
            f"p50 {total['p50']:.0f} ms, p95 {total['p95']:.0f} ms",
        ),
        (
            "of which: debounce wait / permheal's work after it",
            f"p50 {lat['wait_ms']['p50']:.0f} ms / p50 {lat['work_ms']['p50']:.0f} ms, "
            f"p95 {lat['work_ms']['p95']:.0f} ms",
        ),
        (
            f"requests failed during a deploy ({traffic})",
            f"proactive on {on['failed']}/{on['requests']}, off {off['failed']}/{off['requests']}",
        ),
        (
            "executions per deploy (2 events each)",
            f"{lat['executions_per_deploy']:.2f}",
        ),
    ]


def _cost_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    typical, storm = d["typical_incident"], d["storm_incident"]
    c = typical["counts"]
    return [
        (
            "per typical incident: transitions / invocations / GB-s",
            f"{c['state_transitions']:.0f} / {c['lambda_invocations']:.0f} / {c['lambda_gb_seconds']:.4f}",
        ),
        (
            "price, measured durations",
            f"{_usd(typical['usd']['total'])} (Step Functions "
            f"{typical['usd']['step_functions'] / typical['usd']['total']:.0%})",
        ),
        (
            "price if every invocation billed 1 s",
            _usd(d["typical_incident_1s_per_invocation"]["usd"]["total"]),
        ),
        (
            "per storm incident (detector runs per incident)",
            f"{_usd(storm['usd']['total'])} ({storm['counts']['detector_invocations']:.0f})",
        ),
    ]


def render(table: Sequence[tuple[str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    header = ("Benchmark", "Figure", "Value")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines)


def markdown(table: Sequence[tuple[str, str, str]]) -> str:
    lines = ["| Benchmark | Figure | Value |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in table]
    return "\n".join(lines)


# --- entry point ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not figures")
    parser.add_argument("--json", default="bench-results.json", metavar="PATH", help="default: %(default)s")
    parser.add_argument(
        "--only", action="append", choices=sorted(SECTIONS), help="run only these (repeatable)"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--section", choices=sorted(SECTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--section-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.section:
        _section_main(args.section, args.quick, args.section_out)
        return 0

    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": "quick" if args.quick else "full",
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }
    }
    for name in args.only or SECTIONS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name, args.quick)
        spent = results[name].get("section_seconds", results[name].get("seconds"))
        print(f"  {name}: {spent} s", file=sys.stderr, flush=True)
    if "aws_model_scan" in results:  # reported as aws_model.scan (issue 15)
        scanned = results.pop("aws_model_scan")
        results.setdefault("aws_model", {})["scan"] = scanned.get("scan", scanned)
    heal, storm = results.get("time_to_heal", {}), results.get("storm_suppression", {})
    if heal and storm and "error" not in heal and "error" not in storm:
        from benchmarks import cost

        results["cost_per_incident"] = cost.run(heal, storm, heal.get("memory_mb", 256))
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    table = rows(results)
    results["table"] = [{"benchmark": a, "figure": b, "value": c} for a, b, c in table]
    Path(args.json).write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
    print(render(table))
    if args.markdown:
        print()
        print(markdown(table))
    print(
        f"\n{results['meta']['mode']} run, {results['meta']['seconds']} s, "
        f"{results['meta']['cpus']} CPUs, load {results['meta']['load_average_at_start']}; "
        f"JSON: {args.json}"
    )
    return 1 if any(isinstance(v, dict) and "error" in v for v in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
