"""Account scale: `permheal scan` of 300 APIs and 2,000 function+qualifier policies under the AWS model.

The account is built in moto first (nothing modelled), then scanned with the AWS model on
(permheal_local.aws_model: per-operation latency, per-account token buckets answering
TooManyRequestsException), real sleeps, through the adapters the CLI builds (paced at
`PERMHEAL_QUOTA_SHARE` of each quota). GetPolicy's quota (15/s per account and region) bounds the
scan: 2,000 policies cannot take less than 133 s. `quota_utilisation` is GetPolicy calls answered
per second of the whole scan over 15; `throttle_failures` is 1 when the scan failed on throttling, and
`throttled_calls` counts the 429s AWS (the model) answered, which botocore or the pacer retried.
`peak_memory_mb` is the most memory allocated at once during the scan (tracemalloc: the scan's
own data and the local AWS's answers in flight; the account's store and botocore's service models,
loaded before, excluded).
"""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

from benchmarks.common import moto_aws

GET_POLICY_QUOTA = 15.0
FULL = (300, 2000)
QUICK = (30, 200)


def build_account(world: Any, apis: int, policies: int) -> dict[str, int]:
    """`apis` APIs (two REST for each HTTP API) over `policies` function+qualifier pairs.

    Each function has its unqualified policy and a `live` alias; API k calls pairs k, k+apis, ...
    (one method or route each) and also the next API's first pair, so most pairs have one caller
    and some two. A third of the pairs is granted, a third granted twice (a duplicate), a third not
    at all (a missing grant): findings of every usual kind, in a deterministic account.
    """
    from permheal_local.builder import execute_api

    lam = world.client("lambda")
    pairs: list[tuple[str, str | None]] = []
    for index in range((policies + 1) // 2):
        name = f"fn-{index:04d}"
        world.create_function(name)
        version = lam.publish_version(FunctionName=name)["Version"]
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        pairs += [(name, None), (name, "live")]
    pairs = pairs[:policies]
    calls: list[list[tuple[str, str | None]]] = [pairs[k::apis] for k in range(apis)]
    for k in range(apis):
        shared = calls[(k + 1) % apis][:1]
        calls[k] = calls[k] + [p for p in shared if p not in calls[k]]
    ids = []
    for k in range(apis):
        ids.append(
            _http_api(world, f"http-{k:03d}", calls[k]) if k % 3 == 2 else _rest_api(world, k, calls[k])
        )
    for k, api_id in enumerate(ids):
        for index, (name, qualifier) in enumerate(calls[k][:-1]):  # the shared pair is the other's
            rest = f"*/GET/r{index}" if k % 3 != 2 else "*/*"
            pick = (k + index) % 3
            for copy in range(pick):  # 0: missing, 1: granted, 2: granted twice
                world.grant(name, execute_api(api_id, rest), sid=f"g{k}-{index}-{copy}", qualifier=qualifier)
    world.allow("*")
    return {"apis": apis, "policies": len(pairs), "rest_apis": sum(1 for k in range(apis) if k % 3 != 2)}


def _rest_api(world: Any, k: int, calls: list[tuple[str, str | None]]) -> str:
    from permheal_local.builder import function_arn, integration_uri

    paths = {
        f"/r{index}": {
            "get": {
                "responses": {},
                "x-amazon-apigateway-integration": {
                    "type": "AWS_PROXY",
                    "httpMethod": "POST",
                    "uri": integration_uri(function_arn(name, qualifier)),
                },
            }
        }
        for index, (name, qualifier) in enumerate(calls)
    }
    apigw = world.client("apigateway")
    api_id = world.rest_api(f"rest-{k:03d}")
    document = {"openapi": "3.0.1", "info": {"title": f"rest-{k:03d}", "version": "1"}, "paths": paths}
    apigw.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(document).encode())
    world.deploy(api_id, "prod")
    return str(api_id)


def _http_api(world: Any, name: str, calls: list[tuple[str, str | None]]) -> str:
    from permheal_local.builder import function_arn

    v2 = world.client("apigatewayv2")
    api_id = v2.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
    for index, (function, qualifier) in enumerate(calls):
        integration = v2.create_integration(
            ApiId=api_id,
            IntegrationType="AWS_PROXY",
            IntegrationUri=function_arn(function, qualifier),
            PayloadFormatVersion="2.0",
        )["IntegrationId"]
        v2.create_route(ApiId=api_id, RouteKey=f"GET /r{index}", Target=f"integrations/{integration}")
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return str(api_id)


def scan_under_model(share: float | None = None) -> dict[str, Any]:
    """Scan the account as `permheal scan` does, with the AWS model on and real sleeps."""
    from permheal.adapters.aws import client
    from permheal.adapters.ports import Adapters
    from permheal.config import Settings
    from permheal.errors import AwsCallError, ThrottledError
    from permheal.pacing import Pacer
    from permheal.planner import PlanOptions
    from permheal.workflow.scan import scan
    from permheal_local.aws_model import aws_model

    settings = Settings()
    pacer = Pacer(share or settings.quota_share)
    failures, findings = 0, []
    with aws_model(seed=0, cold_starts=False) as model:
        for service in ("lambda", "apigateway", "apigatewayv2", "sts"):
            client(service)  # botocore's service models are loaded once per process, not per scan
        model.reset_counters()
        tracemalloc.start()
        started = time.perf_counter()
        try:
            findings = scan(Adapters.default(pacer=pacer), [], None, PlanOptions(settings.scope))
        except AwsCallError as exc:
            failures = int(isinstance(exc, ThrottledError))
            if not failures:
                raise
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        stats = model.stats()
    calls, throttles = stats["calls"], stats["throttles"]
    get_policy = calls.get("lambda:GetPolicy", 0) - throttles.get("lambda:GetPolicy", 0)  # answered
    apigw_calls = sum(n for op, n in calls.items() if op.startswith("apigateway"))
    return {
        "seconds": round(seconds, 1),
        "throttle_failures": failures,
        "throttled_calls": sum(throttles.values()),
        "get_policy_calls": get_policy,
        "get_policy_per_second": round(get_policy / seconds, 2),
        "quota_utilisation": round(get_policy / seconds / GET_POLICY_QUOTA, 3),
        "apigateway_calls": apigw_calls,
        "apigateway_per_second": round(apigw_calls / seconds, 2),
        "peak_memory_mb": round(peak / 1e6, 1),
        "peak_memory_kb_per_policy": round(peak / 1e3 / max(1, get_policy), 2),
        "findings": len(findings),
        "quota_share": pacer.share,
        "calls": dict(sorted(calls.items())),
        "throttles": dict(sorted(throttles.items())),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from permheal_local.builder import World

    apis, policies = QUICK if quick else FULL
    with moto_aws():
        world = World()
        account = build_account(world, apis, policies)
        scanned = scan_under_model()
    return {"scan": {**account, **scanned}}
