"""HTTP and WebSocket stages with auto-deploy off serve their deployment, not the current API: end to
end through `permheal scan` / `remediate --local`, the v2 simulator and the independent oracle.

A route moved to another function without a new deployment still invokes the deployed function on
such a stage: permheal grants that one, reports the move as `undeployed_change` and never grants the
new function (no request reaches it until the stage is redeployed).
"""

from __future__ import annotations

from typing import Any

from permheal_local.builder import World, function_arn
from tests.integration.support_v2 import (
    JSON_FORMAT,
    execute_api,
    http_api,
    integration,
    request_authorizer,
    route,
    simulator,
    stage,
    v2,
    websocket_api,
)


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def of_kind(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["kind"] == kind]


def deployed_stage(world: World, api_id: str, name: str = "prod", *, logging_level: str | None = None) -> str:
    """A stage with auto-deploy off (access-logged), deployed once now; returns its deployment id."""
    group = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/{api_id}/{name}"
    options: dict[str, Any] = {"AccessLogSettings": {"DestinationArn": group, "Format": JSON_FORMAT}}
    if logging_level:
        options["DefaultRouteSettings"] = {"LoggingLevel": logging_level}
    v2(world).create_stage(ApiId=api_id, StageName=name, AutoDeploy=False, **options)
    return str(v2(world).create_deployment(ApiId=api_id, StageName=name)["DeploymentId"])


def moved_route_api(world: World) -> tuple[str, str, str]:
    """`GET /pets/{id}` -> pets-v1, and an integration -> pets-v2 (both functions exist, none granted)."""
    for name in ("pets-v1", "pets-v2"):
        world.function(name)
    api_id = http_api(world, "shop")
    old = integration(world, api_id, function_arn("pets-v1"))
    new = integration(world, api_id, function_arn("pets-v2"))
    route_id = route(world, api_id, "GET /pets/{id}", old)
    world.allow("*")
    return api_id, route_id, new


def test_a_route_moved_without_redeploying_keeps_its_deployed_function(world: World, cli: Any) -> None:
    # Given `prod` (auto-deploy off) deployed with GET /pets/{id} -> pets-v1, then the route moved to
    # pets-v2 without a new deployment
    api_id, route_id, new = moved_route_api(world)
    deployment = deployed_stage(world, api_id)
    v2(world).update_route(ApiId=api_id, RouteId=route_id, Target=f"integrations/{new}")
    sim = simulator(world)
    assert sim.request(api_id, "prod", "GET", "/pets/1").status == 500
    # When scanned
    scanned = cli("scan", "--api", api_id, "--format", "json")
    # Then the deployed function is missing its grant and the move is an undeployed change naming pets-v2
    assert scanned.code == 1
    missing = of_kind(scanned.json, "missing_permission")
    assert [(f["functionArn"], f["routeKey"], f["stage"]) for f in missing] == [
        (function_arn("pets-v1"), "GET /pets/{id}", "prod")
    ]
    undeployed = of_kind(scanned.json, "undeployed_change")
    assert [(f["functionArn"], f["routeKey"], f["stage"], f["apiType"]) for f in undeployed] == [
        (function_arn("pets-v2"), "GET /pets/{id}", "prod", "HTTP")
    ]
    assert deployment in undeployed[0]["detail"] and "not granted" in undeployed[0]["detail"]
    # When remediated
    result = remediate(cli, "shop").json
    # Then only pets-v1 is granted; the request the stage serves now succeeds (judged by the oracle)
    assert result["outcome"] == "repaired"
    assert [(c["functionArn"], [a["sourceArn"] for a in c["added"]]) for c in result["changes"]] == [
        (function_arn("pets-v1"), [execute_api(api_id, "*/GET/pets/*")])
    ]
    assert world.statements("pets-v2") == []
    assert sim.request(api_id, "prod", "GET", "/pets/1").status == 200
    # And once the stage is redeployed, pets-v2 is what it serves: a second run grants it
    v2(world).create_deployment(ApiId=api_id, StageName="prod")
    assert sim.request(api_id, "prod", "GET", "/pets/1").status == 500
    again = remediate(cli, "shop").json
    assert again["outcome"] == "repaired" and of_kind(again, "undeployed_change") == []
    assert [c["functionArn"] for c in again["changes"]] == [function_arn("pets-v2")]
    assert sim.request(api_id, "prod", "GET", "/pets/1").status == 200


def test_an_auto_deploy_stage_serves_the_move_at_once_beside_a_lagging_stage(world: World, cli: Any) -> None:
    # Given `prod` (auto-deploy off) deployed with GET /pets/{id} -> pets-v1, and an auto-deploy
    # `$default` stage; then the route moved to pets-v2 without deploying prod
    api_id, route_id, new = moved_route_api(world)
    deployed_stage(world, api_id)
    stage(world, api_id)
    v2(world).update_route(ApiId=api_id, RouteId=route_id, Target=f"integrations/{new}")
    sim = simulator(world)
    # When remediated
    result = remediate(cli, api_id).json
    # Then each stage's function is granted: pets-v1 (prod's deployment) and pets-v2 ($default, redeployed
    # by AWS on the change); the current API is served by $default, so nothing is undeployed
    assert sorted(c["functionArn"] for c in result["changes"]) == [
        function_arn("pets-v1"),
        function_arn("pets-v2"),
    ]
    missing = {(f["stage"], f["functionArn"]) for f in of_kind(result, "missing_permission")}
    assert missing == {("prod", function_arn("pets-v1")), ("$default", function_arn("pets-v2"))}
    assert of_kind(result, "undeployed_change") == []
    assert sim.request(api_id, "$default", "GET", "/pets/1").status == 200
    assert sim.request(api_id, "prod", "GET", "/pets/1").status == 200


def test_an_authorizer_changed_without_redeploying_is_reported_not_granted(world: World, cli: Any) -> None:
    # Given prod deployed with GET /me behind authorizer -> auth-v1, then the authorizer pointed at auth-v2
    for name in ("me", "auth-v1", "auth-v2"):
        world.function(name)
    api_id = http_api(world, "accounts")
    authorizer = request_authorizer(world, api_id, function_arn("auth-v1"))
    route(world, api_id, "GET /me", integration(world, api_id, function_arn("me")), authorizer_id=authorizer)
    world.allow("*")
    deployed_stage(world, api_id)
    v2(world).update_authorizer(
        ApiId=api_id,
        AuthorizerId=authorizer,
        AuthorizerUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn('auth-v2')}"
        "/invocations",
    )
    sim = simulator(world)
    # When remediated
    result = remediate(cli, api_id).json
    # Then the deployed authorizer (auth-v1) and the route are granted, auth-v2 is reported only
    granted = {c["functionArn"]: [a["sourceArn"] for a in c["added"]] for c in result["changes"]}
    assert granted == {
        function_arn("auth-v1"): [execute_api(api_id, f"authorizers/{authorizer}")],
        function_arn("me"): [execute_api(api_id, "*/GET/me")],
    }
    undeployed = of_kind(result, "undeployed_change")
    assert [(f["functionArn"], f["authorizerId"]) for f in undeployed] == [
        (function_arn("auth-v2"), authorizer)
    ]
    assert world.statements("auth-v2") == []
    assert sim.request(api_id, "prod", "GET", "/me", {"Authorization": "t"}).status == 200


def test_a_stage_never_deployed_serves_nothing_and_is_not_granted(world: World, cli: Any) -> None:
    # Given an HTTP API whose only stage has auto-deploy off and no deployment
    api_id, _, _ = moved_route_api(world)
    v2(world).create_stage(ApiId=api_id, StageName="prod", AutoDeploy=False)
    # When remediated
    result = remediate(cli, api_id).json
    # Then nothing is granted: no request reaches any function yet
    assert result["changes"] == [] and of_kind(result, "missing_permission") == []
    assert simulator(world).request(api_id, "prod", "GET", "/pets/1").status == 404


def test_a_websocket_stage_without_auto_deploy_is_granted_its_current_routes(world: World, cli: Any) -> None:
    # Given a WebSocket API deployed to prod (auto-deploy off): AWS exports no WebSocket deployment
    world.function("ws")
    api_id = websocket_api(world)
    route(world, api_id, "$default", integration(world, api_id, function_arn("ws")))
    world.allow("*")
    deployment = deployed_stage(world, api_id, logging_level="INFO")
    sim = simulator(world)
    assert sim.send(api_id, "prod", {"action": "x"}).status == 500
    # When remediated
    result = remediate(cli, "chat").json
    # Then the current routes are granted (all permheal can read), with no noise about the deployment
    assert [c["functionArn"] for c in result["changes"]] == [function_arn("ws")]
    assert deployment and of_kind(result, "undeployed_change") == []
    assert sim.send(api_id, "prod", {"action": "x"}).status == 200
