"""7. Cost per incident: what one healed incident uses, priced at public list prices.

Counts come from the time-to-heal incidents (a typical incident: one failing request) and from the
storm (10,000 failing requests on 3 APIs: the detector runs once per delivered batch). Lambda
durations are the handlers' in-process times on the local AWS, billed per started millisecond;
on AWS every call also waits on the network, so a second price assumes each invocation bills a
full second (cold-start INIT included), which bounds what the same counts cost there.
"""

from __future__ import annotations

from typing import Any

PRICES_AS_OF = "2026-11-21"
PRICES = {
    "stepfunctions_standard_per_transition": 0.025 / 1000,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_request": 0.20 / 1_000_000,
    "sns_per_publish": 0.50 / 1_000_000,
    "dynamodb_on_demand_per_write_request": 0.625 / 1_000_000,
    "dynamodb_on_demand_per_read_request": 0.125 / 1_000_000,
}
PRICE_NOTES = (
    "us-east-1 list prices, assumed as of "
    + PRICES_AS_OF
    + ", not fetched at run time; free tiers ignored. Step Functions Standard $0.025 per 1,000 state "
    "transitions; Lambda arm64 $0.0000133334 per GB-second and $0.20 per 1M requests; SNS $0.50 per 1M "
    "publishes; DynamoDB on-demand $0.625 per 1M write and $0.125 per 1M read request units (one unit "
    "per ledger item, which stays under 1 KB / 4 KB). Not included: CloudWatch Logs ingestion of the "
    "functions' own logs, X-Ray traces, CloudWatch metrics and alarms."
)
_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
_READS = ("dynamodb:Query", "dynamodb:GetItem", "dynamodb:Scan")


def price(counts: dict[str, float]) -> dict[str, float]:
    """Dollars per item for the counts of one incident."""
    lines = {
        "step_functions": counts["state_transitions"] * PRICES["stepfunctions_standard_per_transition"],
        "lambda_requests": counts["lambda_invocations"] * PRICES["lambda_per_request"],
        "lambda_duration": counts["lambda_gb_seconds"] * PRICES["lambda_arm64_per_gb_second"],
        "sns": counts["sns_publishes"] * PRICES["sns_per_publish"],
        "dynamodb": counts["dynamodb_writes"] * PRICES["dynamodb_on_demand_per_write_request"]
        + counts["dynamodb_reads"] * PRICES["dynamodb_on_demand_per_read_request"],
    }
    lines["total"] = sum(lines.values())
    return lines


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def run(heal: dict[str, Any], storm: dict[str, Any], memory_mb: int = 256) -> dict[str, Any]:
    warm = [i for i in heal["per_incident"] if not i["cold"]] or heal["per_incident"]
    typical = {
        "state_transitions": _mean([i["state_transitions"] for i in warm]),
        "lambda_invocations": _mean([i["lambda_invocations"] for i in warm]),
        "lambda_billed_ms": _mean([i["lambda_billed_ms"] for i in warm]),
        "lambda_gb_seconds": _mean([i["lambda_gb_seconds"] for i in warm]),
        "sns_publishes": _mean([i["sns_publishes"] for i in warm]),
        "dynamodb_writes": _mean([sum(i["aws_calls"].get(op, 0) for op in _WRITES) for i in warm]),
        "dynamodb_reads": _mean([sum(i["aws_calls"].get(op, 0) for op in _READS) for i in warm]),
        "aws_api_calls": _mean([sum(i["aws_calls"].values()) for i in warm]),
    }
    one_second = {**typical, "lambda_gb_seconds": typical["lambda_invocations"] * memory_mb / 1024}
    incidents = storm["incidents"]
    usage = storm["lambda_usage"]
    storm_counts = {
        "state_transitions": storm["state_transitions"] / incidents,
        "lambda_invocations": usage["invocations"] / incidents,
        "lambda_billed_ms": usage["billed_ms"] / incidents,
        "lambda_gb_seconds": usage["gb_seconds"] / incidents,
        "sns_publishes": storm["sns_publishes"] / incidents,
        "dynamodb_writes": sum(storm["aws_calls"].get(op, 0) for op in _WRITES) / incidents,
        "dynamodb_reads": sum(storm["aws_calls"].get(op, 0) for op in _READS) / incidents,
        "aws_api_calls": sum(storm["aws_calls"].values()) / incidents,
        "detector_invocations": storm["detector_invocations"] / incidents,
    }

    def rounded(values: dict[str, float], digits: int = 6) -> dict[str, float]:
        return {k: round(v, digits) for k, v in values.items()}

    return {
        "prices": PRICES,
        "prices_as_of": PRICES_AS_OF,
        "notes": PRICE_NOTES,
        "memory_mb": memory_mb,
        "typical_incident": {"counts": rounded(typical), "usd": rounded(price(typical), 9)},
        "typical_incident_1s_per_invocation": {"usd": rounded(price(one_second), 9)},
        "storm_incident": {"counts": rounded(storm_counts), "usd": rounded(price(storm_counts), 9)},
        "incidents_per_dollar": round(1 / price(one_second)["total"]),
    }
