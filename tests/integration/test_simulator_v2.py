"""The v2 simulator itself: route selection, stage variables, the access-log hook, AWS's answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from permheal_local.builder import World, function_arn
from permheal_local.simulator_v2 import access_log_line, select_http_route
from tests.integration.support_v2 import http_api, integration, route, simulator, stage


def routes(*keys: str) -> list[dict[str, Any]]:
    return [{"RouteKey": key} for key in keys]


@pytest.mark.parametrize(
    ("method", "path", "selected"),
    [
        ("GET", "/pets/7", "GET /pets/{id}"),
        ("POST", "/pets/7", "ANY /pets/{id}"),
        ("GET", "/pets", "GET /pets"),
        ("GET", "/a/b/c", "ANY /{proxy+}"),
        ("DELETE", "/pets/7/toys", "ANY /{proxy+}"),
    ],
)
def test_http_route_selection_prefers_the_most_specific_path_then_the_exact_method(
    method: str, path: str, selected: str
) -> None:
    table = routes("GET /pets/{id}", "ANY /pets/{id}", "GET /pets", "ANY /{proxy+}", "$default")
    assert select_http_route(table, method, path) == {"RouteKey": selected}


def test_unmatched_request_takes_the_default_route_or_none() -> None:
    assert select_http_route(routes("GET /pets", "$default"), "POST", "/pets") == {"RouteKey": "$default"}
    assert select_http_route(routes("GET /pets"), "POST", "/pets") is None


def test_access_log_line_fills_every_variable_and_escapes_json() -> None:
    context = {"requestId": "r1", "status": 500, "integrationErrorMessage": 'say "no"'}
    assert (
        access_log_line("$context.requestId $context.status $context.authorizer.error", context) == "r1 500 -"
    )
    assert access_log_line('{"e":"$context.integrationErrorMessage"}', context) == '{"e":"say \\"no\\""}'


def test_whole_stage_variable_uri_and_the_write_hook(world: World) -> None:
    # Given an integration whose URI is `${stageVariables.fn}`, a stage defining it and one that does not
    world.function("pets")
    world.grant("pets", "arn:aws:execute-api:us-east-1:123456789012:*", sid="open")
    api_id = http_api(world, "varied")
    route(world, api_id, "GET /pets", integration(world, api_id, "${stageVariables.fn}"))
    stage(world, api_id, "prod", {"fn": function_arn("pets")})
    stage(world, api_id, "dev")
    sim = simulator(world)
    # When each stage is called, and a line is written through the hook
    prod, dev = sim.request(api_id, "prod", "GET", "/pets"), sim.request(api_id, "dev", "GET", "/pets")
    line = sim.write_access_log(api_id, "prod", {"requestId": "x", "status": 500, "routeKey": "GET /pets"})
    # Then the defined variable routes to the function; the undefined one is API Gateway's 500
    assert (prod.status, dev.status) == (200, 500)
    assert dev.body == {"message": "Internal Server Error"}
    assert line is not None
    assert json.loads(line) == {
        "requestId": "x",
        "apiId": api_id,
        "stage": "prod",
        "routeKey": "GET /pets",
        "status": "500",
        "integrationErrorMessage": "-",
        "authorizerError": "-",
    }
    events = world.client("logs").filter_log_events(logGroupName=f"/aws/vendedlogs/{api_id}/prod")["events"]
    assert events[-1]["message"] == line


def test_unknown_stage_is_not_found(world: World) -> None:
    api_id = http_api(world, "nostage")
    assert simulator(world).request(api_id, "prod", "GET", "/").status == 404
