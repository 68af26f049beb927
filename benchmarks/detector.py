"""1. Detector throughput: log events per second through decode + detect, next to a naive baseline.

The payload is one subscription delivery of ~1 MB of INFO-level execution-log text (CloudWatch Logs
delivers up to 1 MB per batch) in which 1% of the requests fail with the permission error. The
baseline does what a first attempt would: decode with the standard library, run one general regex
over every line, group by request id and keep the failing requests' hints. Both must find the same
incident and hints, or the comparison means nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.logs import FAILURE, mixed_traffic, payload

LOG_GROUP = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"

_GENERAL = re.compile(
    r"^\s*\((?P<rid>[^)]*)\)\s*(?:"
    r"HTTP Method: (?P<method>[A-Z]+), Resource Path: (?P<path>\S+)"
    r"|(?:Endpoint request URI: |Sending request to )\S*?/functions/(?P<fn>[^/\s]+)/invocations"
    r"|Starting authorizer: (?P<auth>\w+)"
    r"|Execution failed due to configuration error: (?P<error>.*)"
    r"|(?P<other>.*)"
    r")$"
)


def naive_decode(event: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return document


def naive_parse(document: dict[str, Any]) -> set[tuple[str | None, str | None, str | None]]:
    """Regex-parse every line, group by request: the (method, path, function) hints of the failures."""
    requests: dict[str, dict[str, Any]] = {}
    for log_event in document["logEvents"]:
        match = _GENERAL.match(log_event["message"])
        if match is None:
            continue
        request = requests.setdefault(match["rid"], {})
        for key in ("method", "path", "fn", "auth"):
            if match[key] is not None:
                request[key] = match[key]
        if match["error"] is not None and "Invalid permissions on Lambda function" in match["error"]:
            request["failed"] = True
    return {(r.get("method"), r.get("path"), r.get("fn")) for r in requests.values() if r.get("failed")}


def naive_detect(event: dict[str, Any]) -> set[tuple[str | None, str | None, str | None]]:
    return naive_parse(naive_decode(event))


def interleaved(runs: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds of each run, the runs taking turns so background load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}, results


def run(quick: bool = False) -> dict[str, Any]:
    from permheal.detection import decode, detect

    target = 200_000 if quick else 1_000_000
    repeats = 3 if quick else 21
    traffic = mixed_traffic(target, failure_rate=0.01)
    event = payload(LOG_GROUP, traffic.events)
    events = len(traffic.events)
    batch, document = decode(event), naive_decode(event)
    median, results = interleaved(
        {
            "permheal": lambda: detect(decode(event)),
            "baseline": lambda: naive_detect(event),
            "permheal_decode": lambda: decode(event),
            "permheal_detect": lambda: detect(batch),
            "baseline_decode": lambda: naive_decode(event),
            "baseline_parse": lambda: naive_parse(document),
        },
        repeats,
    )
    detection = results["permheal"]
    found = {(h.method, h.resource_path, h.function) for i in detection.incidents for h in i.hints}

    # What the subscription filter hands over during a storm: failure lines only, each its own request.
    storm_lines = 500 if quick else 10_000
    storm = payload(
        LOG_GROUP,
        [(traffic.events[0][0] + i, f"({uuid.UUID(int=i + 1)}) {FAILURE}") for i in range(storm_lines)],
    )
    storm_median, storm_results = interleaved(
        {"permheal": lambda: detect(decode(storm)), "baseline": lambda: naive_detect(storm)},
        max(3, repeats // 3),
    )

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 2)

    return {
        "payload": {
            "message_bytes": traffic.message_bytes,
            "compressed_bytes": len(event["awslogs"]["data"]),
            "events": events,
            "requests": traffic.requests,
            "failing_requests": traffic.failing_requests,
            "failure_lines": traffic.failure_lines,
        },
        "permheal": {
            "events_per_second": round(events / median["permheal"]),
            "mb_per_second": round(traffic.message_bytes / median["permheal"] / 1e6, 2),
            "ms_per_payload": ms(median["permheal"]),
            "decode_ms": ms(median["permheal_decode"]),
            "detect_ms": ms(median["permheal_detect"]),
            "incidents": len(detection.incidents),
        },
        "baseline": {
            "events_per_second": round(events / median["baseline"]),
            "ms_per_payload": ms(median["baseline"]),
            "decode_ms": ms(median["baseline_decode"]),
            "parse_ms": ms(median["baseline_parse"]),
            "what": "stdlib decode + one general regex per line + group by request id",
        },
        "ratio": round(median["baseline"] / median["permheal"], 2),
        "ratio_after_decode": round(median["baseline_parse"] / median["permheal_detect"], 2),
        "storm_batch": {
            "events": storm_lines,
            "what": "failure lines only (what the subscription filter delivers in a storm)",
            "events_per_second": round(storm_lines / storm_median["permheal"]),
            "baseline_events_per_second": round(storm_lines / storm_median["baseline"]),
            "ratio": round(storm_median["baseline"] / storm_median["permheal"], 2),
            "incidents": len(storm_results["permheal"].incidents),
        },
        "same_hints_as_baseline": found == results["baseline"],
        "repeats": repeats,
        "statistic": "median of interleaved runs",
    }
