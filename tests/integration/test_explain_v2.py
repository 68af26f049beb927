"""`permheal explain` on HTTP and WebSocket APIs, its verdict judged by the v2 simulator."""

from __future__ import annotations

from typing import Any

from permheal_local.builder import World, function_arn
from tests.integration.support_v2 import (
    ROLE,
    execute_api,
    http_api,
    integration,
    jwt_authorizer,
    pets_http_api,
    request_authorizer,
    route,
    simulator,
    stage,
    websocket_api,
)


def explain(cli: Any, api: str, stage_name: str, *flags: str) -> Any:
    return cli("explain", "--api", api, "--stage", stage_name, "--format", "json", *flags)


def test_an_http_route_is_denied_then_allowed_by_the_fix_as_the_simulator_sees_it(
    world: World, cli: Any
) -> None:
    # Given an HTTP API whose GET /pets/{id} has no grant (API Gateway answers 500)
    api_id = pets_http_api(world)
    sim = simulator(world)
    assert sim.request(api_id, "$default", "GET", "/pets/7").status == 500
    # When explained
    run = explain(cli, "shop", "$default", "--route", "GET /pets/{id}")
    # Then denied, with the route's source ARN and a method-scope fix
    assert run.code == 1 and run.json["apiType"] == "HTTP"
    path = run.json["paths"][0]
    assert path["sourceArn"] == execute_api(api_id, "$default/GET/pets/{id}")
    fix = path["fix"]
    assert fix["sourceArn"] == execute_api(api_id, "*/GET/pets/*")
    # And applying exactly that fix makes the simulator's request succeed and explain say allowed
    world.grant("pets", fix["sourceArn"], sid=fix["sid"])
    assert sim.request(api_id, "$default", "GET", "/pets/7").status == 200
    assert explain(cli, "shop", "$default", "--route", "GET /pets/{id}").code == 0


def test_an_http_request_without_its_own_route_is_explained_through_the_route_that_serves_it(
    world: World, cli: Any
) -> None:
    # Given an HTTP API with only a $default route
    world.function("fallback")
    api_id = http_api(world, "fb")
    route(world, api_id, "$default", integration(world, api_id, function_arn("fallback")))
    stage(world, api_id)
    # When a route it does not have is explained
    run = explain(cli, "fb", "$default", "--route", "POST /orders")
    # Then $default serves it; its source ARN ends in the route key, as API Gateway sends it
    path = run.json["paths"][0]
    assert path["sourceArn"] == execute_api(api_id, "$default/$default")
    assert any("served by $default" in s["detail"] for s in path["steps"])
    assert path["fix"]["sourceArn"] == execute_api(api_id, "*/$default")


def test_a_websocket_connect_route_and_its_request_authorizer(world: World, cli: Any) -> None:
    # Given a WebSocket API: $connect behind a REQUEST authorizer, both functions without grants
    world.function("ws")
    world.function("ws-auth")
    api_id = websocket_api(world)
    target = integration(world, api_id, function_arn("ws"), path_form=True)
    authorizer = request_authorizer(world, api_id, function_arn("ws-auth"))
    route(world, api_id, "$connect", target, authorizer_id=authorizer)
    stage(world, api_id, "prod", log_format=None, logging_level="INFO")
    # When the route and the authorizer are explained
    connect = explain(cli, "chat", "prod", "--route", "$connect")
    auth = explain(cli, "chat", "prod", "--authorizer", authorizer)
    # Then both are denied with their own source ARNs, the authorizer's fix is its exact ARN
    assert (connect.code, auth.code) == (1, 1)
    assert connect.json["apiType"] == "WEBSOCKET"
    assert connect.json["paths"][0]["sourceArn"] == execute_api(api_id, "prod/$connect")
    assert auth.json["paths"][0]["fix"]["sourceArn"] == execute_api(api_id, f"authorizers/{authorizer}")
    # And once both fixes are applied, the simulator connects and explain agrees
    world.grant("ws-auth", auth.json["paths"][0]["fix"]["sourceArn"], sid="auth")
    world.grant("ws", connect.json["paths"][0]["fix"]["sourceArn"], sid="connect")
    assert simulator(world).connect(api_id, "prod", {"Authorization": "t"}).status == 200
    assert explain(cli, "chat", "prod", "--route", "$connect").json["verdict"] == "allowed"


def test_a_jwt_authorizer_invokes_no_lambda(world: World, cli: Any) -> None:
    world.function("pets")
    api_id = http_api(world, "jwt")
    authorizer = jwt_authorizer(world, api_id)
    route(
        world,
        api_id,
        "GET /me",
        integration(world, api_id, function_arn("pets")),
        authorizer_id=authorizer,
        authorization="JWT",
    )
    stage(world, api_id)
    run = explain(cli, "jwt", "$default", "--authorizer", authorizer)
    assert (run.code, run.json["verdict"]) == (0, "not_lambda")


def test_an_http_integration_role_is_not_checked(world: World, cli: Any) -> None:
    world.function("pets")
    api_id = http_api(world, "role")
    route(world, api_id, "GET /pets", integration(world, api_id, function_arn("pets"), credentials=ROLE))
    stage(world, api_id)
    run = explain(cli, "role", "$default", "--route", "GET /pets")
    assert (run.code, run.json["verdict"]) == (1, "not_checked")


def test_a_whole_uri_stage_variable_is_resolved_per_stage(world: World, cli: Any) -> None:
    # Given an integration whose URI is `${stageVariables.fn}` and a stage that sets it
    world.function("pets", alias="live")
    api_id = http_api(world, "vars")
    route(world, api_id, "GET /pets", integration(world, api_id, "${stageVariables.fn}"))
    stage(world, api_id, "prod", {"fn": function_arn("pets", "live")})
    # When explained
    run = explain(cli, "vars", "prod", "--route", "GET /pets")
    # Then the function is the alias the variable names
    path = run.json["paths"][0]
    assert (path["functionArn"], path["qualifier"]) == (function_arn("pets"), "live")
