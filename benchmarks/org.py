"""11. Organization scan: `permheal scan --org` over member accounts with a few APIs each.

A local AWS Organization (permheal_local.organization): each member is its own moto account with
`apis` REST APIs (every other one missing its grant) and org/scan-role.yaml deployed by
CloudFormation; the scan runs through the CLI entry point in process, assuming the role in each
account (faithful_sts: the role must exist and trust the caller).

Measured twice: on plain moto (permheal's own CPU time; threads share one interpreter, so
parallelism cannot show) and with permheal_local.aws_model on (every call pays a round trip, each
account and region has its own API Gateway and Lambda quotas), where accounts scanned in parallel
wait on AWS side by side; `sequential_seconds` scans the same organization one account at a time.
The organization is built before the model is switched on (CreateRestApi alone is one call per 3 s).
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

from benchmarks.common import moto_aws


def build(accounts: int, apis: int) -> Any:
    from permheal_local.organization import create_organization, pets_api

    org = create_organization([f"member-{i:02d}" for i in range(accounts)])
    for account in org.members:
        world = org.world(account)
        for index in range(apis):
            pets_api(world, account, f"api-{index}", granted=index % 2 == 1)
        org.deploy_scan_role(account)
    return org


def scan_cli() -> tuple[float, dict[str, Any], int]:
    """`permheal scan --org --format json` in process: (seconds, report, exit code)."""
    from permheal.adapters.aws import forget_clients
    from permheal.cli import main

    forget_clients()
    out = io.StringIO()
    started = time.perf_counter()
    code = main(["scan", "--org", "--format", "json"], out)
    seconds = time.perf_counter() - started
    return seconds, json.loads(out.getvalue()), code


def scan_sequential() -> tuple[float, int]:
    """The same scan, one account at a time: (seconds, failures)."""
    from permheal.adapters.aws import forget_clients
    from permheal.adapters.organization import MemberAccounts, active_accounts
    from permheal.config import Settings
    from permheal.org_scan import DEFAULT_ROLE_NAME, scan_organization
    from permheal.planner import PlanOptions
    from permheal.workflow.scan import scan

    forget_clients()
    started = time.perf_counter()
    report = scan_organization(
        active_accounts(),
        MemberAccounts(DEFAULT_ROLE_NAME, Settings().quota_share),
        ["us-east-1"],
        lambda ports: scan(ports, [], None, PlanOptions()),
        max_parallel=1,
    )
    return time.perf_counter() - started, len(report.failures)


def run(quick: bool = False) -> dict[str, Any]:
    from permheal.org_scan import MAX_PARALLEL
    from permheal_local import faithful_sts

    accounts, apis = (4, 2) if quick else (10, 3)
    with moto_aws():
        faithful_sts.install()
        try:
            build(accounts, apis)
            moto_seconds, moto_report, moto_code = scan_cli()
            modelled = _with_model()
        finally:
            faithful_sts.uninstall()
    summary = moto_report["summary"]
    result: dict[str, Any] = {
        "accounts": summary["accounts"],
        "member_accounts": accounts,
        "apis_per_member": apis,
        "regions": summary["regions"],
        "findings": summary["findings"],
        "failures": summary["failed"],
        "exit_code": moto_code,
        "max_parallel": MAX_PARALLEL,
        "moto_seconds": round(moto_seconds, 2),
        "seconds": round(moto_seconds, 2),
        "world": "moto",
    }
    if modelled is not None:
        result.update(modelled)
        result["seconds"], result["world"] = modelled["aws_model"]["seconds"], "aws_model"
        result["failures"] = modelled["aws_model"]["failures"]
    return result


def _with_model() -> dict[str, Any] | None:
    """The scan under the AWS model, parallel then sequential; None without the model (older tree)."""
    try:
        from permheal_local.aws_model import aws_model
    except ImportError:
        return None
    with aws_model(seed=0, cold_starts=False) as model:
        parallel, report, _ = scan_cli()
        stats = model.stats()
        model.reset_counters()
        time.sleep(2)  # let every account's buckets refill: the sequential scan starts as fresh
        sequential, sequential_failures = scan_sequential()
    return {
        "aws_model": {
            "seconds": round(parallel, 2),
            "failures": report["summary"]["failed"],
            "sequential_seconds": round(sequential, 2),
            "sequential_failures": sequential_failures,
            "speedup": round(sequential / parallel, 1) if parallel else None,
            "calls": sum(stats["calls"].values()),
            "throttled_calls": sum(stats["throttles"].values()),
        }
    }


def rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """The table's lines (benchmarks/run.py)."""
    head = f"{d['accounts']} accounts ({d['member_accounts']} members × {d['apis_per_member']} REST APIs)"
    table = [
        (
            f"{head}, plain moto",
            f"{d['moto_seconds']:.2f} s, {d['failures']} failed, {d['findings']} findings",
        ),
    ]
    model = d.get("aws_model")
    if model:
        table.append(
            (
                f"with the AWS model, {d['max_parallel']} accounts at a time / one at a time",
                f"{model['seconds']:.2f} s / {model['sequential_seconds']:.2f} s ({model['speedup']}x); "
                f"{model['failures']} failed, {model['throttled_calls']} of {model['calls']} calls throttled",
            )
        )
    return table
