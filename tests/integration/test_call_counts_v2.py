"""AWS calls for an HTTP API: constant in its number of routes (a 300-route API costs what a 3-route one
does), plus one ExportApi per HTTP stage with auto-deploy off (what it serves), counted on the clients
permheal's adapters create, through the faithful v2 double (which pages as AWS does: a reader of the
first page only would miss routes here)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from permheal.adapters import account, apigateway, apigatewayv2, lambda_policy
from permheal_local.builder import World, function_arn
from tests.integration.support_v2 import http_api, integration, request_authorizer, route, stage
from tests.integration.test_call_counts import CallLog

V2_CONTROL_PLANE = (
    "GetApi",
    "GetApis",
    "GetRoutes",
    "GetIntegrations",
    "GetAuthorizers",
    "GetStages",
    "GetStage",
    "ExportApi",
)
FUNCTIONS = ("svc-a", "svc-b", "svc-c")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    log = CallLog()
    for module in (apigateway, apigatewayv2, lambda_policy, account):
        monkeypatch.setattr(module, "client", log.wrap(module.client))
    monkeypatch.setenv("PERMHEAL_SCOPE", "api")  # one grant per function: 300 routes stay under 20 KB
    return log


def build_http_api(world: World, name: str, routes: int) -> str:
    """`routes` routes over three functions (one integration each); every third behind the authorizer."""
    api_id = http_api(world, name)
    targets = [integration(world, api_id, function_arn(fn)) for fn in FUNCTIONS]
    authorizer = request_authorizer(world, api_id, function_arn("auth"))
    for index in range(routes):
        route(
            world,
            api_id,
            f"{('GET', 'POST', 'DELETE')[index % 3]} /items-{index:03d}/{{id}}",
            targets[index % 3],
            authorizer_id=authorizer if index % 3 == 0 else None,
        )
    stage(world, api_id)
    world.allow("*")
    return api_id


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def test_a_300_route_http_api_costs_the_same_calls_as_a_3_route_one(
    world: World, cli: Any, calls: CallLog
) -> None:
    # Given a 3-route and a 300-route HTTP API over the same functions and authorizer
    for name in (*FUNCTIONS, "auth"):
        world.function(name)
    build_http_api(world, "small", routes=3)
    build_http_api(world, "large", routes=300)
    # When each is remediated by name
    small = remediate(cli, "small")
    small_calls = calls.count("apigatewayv2")
    small_policies = calls.policy_reads()
    calls.clear()
    large = remediate(cli, "large", "--dry-run")
    large_calls = calls.count("apigatewayv2")
    # Then both resolve with exactly the same v2 calls, each read at most once, one policy read per function
    assert small.json["outcome"] == "repaired" and large.json["outcome"] == "dry_run"
    assert small_calls == large_calls
    assert set(large_calls) <= set(V2_CONTROL_PLANE), large_calls
    assert all(count == 1 for count in large_calls.values()), large_calls
    assert calls.policy_reads() == Counter(dict.fromkeys(((fn, None) for fn in (*FUNCTIONS, "auth")), 1))
    assert set(small_policies.values()) == {2}  # read, write, re-read per function
    # And the dry run saw every one of the 300 routes
    missing = [f for f in large.json["findings"] if f["kind"] == "missing_permission" and f["routeKey"]]
    assert len(missing) == 300


def test_each_http_stage_without_auto_deploy_costs_one_export_and_nothing_else(
    world: World, cli: Any, calls: CallLog
) -> None:
    # Given a 30-route HTTP API on an auto-deploy stage, and the same API with two more stages
    # whose auto-deploy is off (each deployed): what they serve is only in their export
    for name in (*FUNCTIONS, "auth"):
        world.function(name)
    build_http_api(world, "auto", routes=30)
    manual = build_http_api(world, "manual", routes=30)
    client = world.client("apigatewayv2")
    for name in ("prod", "beta"):
        client.create_stage(ApiId=manual, StageName=name, AutoDeploy=False)
        client.create_deployment(ApiId=manual, StageName=name)
    # When each is remediated (dry run)
    remediate(cli, "auto", "--dry-run")
    auto_calls = calls.count("apigatewayv2")
    calls.clear()
    remediate(cli, "manual", "--dry-run")
    manual_calls = calls.count("apigatewayv2")
    # Then the auto-deploy-only API reads no export; the other exactly one per non-auto-deploy stage
    assert "ExportApi" not in auto_calls
    assert manual_calls == auto_calls + Counter({"ExportApi": 2}), manual_calls
