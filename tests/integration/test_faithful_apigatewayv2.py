"""The faithful API Gateway v2 double: GetAuthorizers, pagination, deployments and ExportApi as AWS
does them, where plain moto does none of them; and the v2 adapter reading every page through it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from permheal.adapters import apigatewayv2
from permheal.adapters.apigatewayv2 import ApiGatewayV2, V2Api
from permheal_local import faithful_apigatewayv2
from permheal_local.builder import World, function_arn
from tests.integration.support_v2 import (
    http_api,
    integration,
    request_authorizer,
    route,
    stage,
    websocket_api,
)


@pytest.fixture
def plain_moto() -> Iterator[World]:
    """moto without the double, to show what it gets wrong."""
    from moto import mock_aws

    faithful_apigatewayv2.uninstall()
    try:
        with mock_aws():
            yield World()
    finally:
        faithful_apigatewayv2.install()


def build(world: World, routes: int) -> str:
    """`routes` routes to one integration, the first behind a REQUEST authorizer (so it is read)."""
    api_id = http_api(world, "paged")
    target = integration(world, api_id, function_arn("fn"))
    authorizer = request_authorizer(world, api_id, function_arn("auth"))
    for index in range(routes):
        route(
            world, api_id, f"GET /r{index}", target, **({"authorizer_id": authorizer} if index == 0 else {})
        )
    stage(world, api_id)
    return api_id


def test_plain_moto_cannot_list_authorizers_nor_page(plain_moto: World) -> None:
    # Given an HTTP API with 3 routes and an authorizer on plain moto
    api_id = build(plain_moto, 3)
    client = plain_moto.client("apigatewayv2")
    # When authorizers are listed and routes read two at a time
    # Then moto has no GetAuthorizers, and ignores MaxResults (no NextToken: a reader sees one page)
    with pytest.raises(NotImplementedError):
        client.get_authorizers(ApiId=api_id)
    page = client.get_routes(ApiId=api_id, MaxResults="2")
    assert len(page["Items"]) == 3 and "NextToken" not in page


def test_double_lists_authorizers_and_pages_like_aws(world: World) -> None:
    # Given the same API with the double installed
    api_id = build(world, 3)
    client = world.client("apigatewayv2")
    # When authorizers are listed and routes read two at a time
    authorizers = client.get_authorizers(ApiId=api_id)["Items"]
    first = client.get_routes(ApiId=api_id, MaxResults="2")
    second = client.get_routes(ApiId=api_id, MaxResults="2", NextToken=first["NextToken"])
    # Then the authorizer is listed, and the two pages hold the three routes once each
    assert [a["AuthorizerType"] for a in authorizers] == ["REQUEST"]
    assert len(first["Items"]) == 2 and "NextToken" not in second
    keys = [r["RouteKey"] for r in first["Items"] + second["Items"]]
    assert sorted(keys) == ["GET /r0", "GET /r1", "GET /r2"]
    with pytest.raises(ClientError):
        client.get_authorizers(ApiId="missing")


def test_adapter_reads_every_page(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a 7-route HTTP API, and the adapter reading two items per page
    api_id = build(world, 7)
    monkeypatch.setattr(apigatewayv2, "PAGE_SIZE", "2")
    # When its definition is read
    definition = ApiGatewayV2(world.client("apigatewayv2")).definition(V2Api(api_id, "paged", "HTTP"))
    # Then every route, the integration, the authorizer and the stage are there
    assert len(definition.spec.routes) == 7
    assert len(definition.spec.integrations) == 1 and len(definition.spec.authorizers) == 1
    assert [s.name for s in definition.stages] == ["$default"]


# ------------------------------------------------------------------- deployments and ExportApi


def two_function_api(world: World) -> tuple[str, str, str]:
    """`GET /pets` -> `one` behind a REQUEST authorizer; a second integration -> `two`, unused yet."""
    api_id = http_api(world, "deployed")
    first = integration(world, api_id, function_arn("one"))
    second = integration(world, api_id, function_arn("two"))
    authorizer = request_authorizer(world, api_id, function_arn("auth"))
    route_id = route(world, api_id, "GET /pets", first, authorizer_id=authorizer)
    route(world, api_id, "$default", first)
    assert second
    return api_id, route_id, second


def exported(client: Any, api_id: str, stage_name: str | None = None) -> dict[str, Any]:
    options = {"StageName": stage_name} if stage_name else {}
    body = client.export_api(ApiId=api_id, Specification="OAS30", OutputType="JSON", **options)["body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


def test_plain_moto_has_no_deployments_nor_export(plain_moto: World) -> None:
    # Given an HTTP API with a stage on plain moto
    api_id = http_api(plain_moto, "plain")
    client = plain_moto.client("apigatewayv2")
    created = client.create_stage(ApiId=api_id, StageName="prod")
    # Then the stage has no deployment, and deploying, exporting or moving the stage fails
    assert "DeploymentId" not in created
    with pytest.raises(ClientError, match="Not yet implemented"):
        client.create_deployment(ApiId=api_id, StageName="prod")
    with pytest.raises(ClientError, match="Not yet implemented"):
        client.export_api(ApiId=api_id, Specification="OAS30", OutputType="JSON", StageName="prod")
    with pytest.raises(NotImplementedError):
        client.update_stage(ApiId=api_id, StageName="prod", DeploymentId="abc123")


def test_a_stage_without_auto_deploy_serves_its_deployment_until_redeployed(world: World) -> None:
    # Given `GET /pets` -> one, deployed to `prod` (auto-deploy off) and served by `$default` (auto-deploy)
    api_id, route_id, second = two_function_api(world)
    client = world.client("apigatewayv2")
    client.create_stage(ApiId=api_id, StageName="prod", AutoDeploy=False)
    deployment = client.create_deployment(ApiId=api_id, StageName="prod", Description="v1")
    client.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    # When the route moves to `two` without a new deployment
    client.update_route(ApiId=api_id, RouteId=route_id, Target=f"integrations/{second}")
    # Then prod still serves its deployment (one); $default was redeployed (two); so does the working copy
    stages = {s["StageName"]: s for s in client.get_stages(ApiId=api_id)["Items"]}
    assert stages["prod"]["DeploymentId"] == deployment["DeploymentId"] and not stages["prod"]["AutoDeploy"]
    assert (
        stages["$default"]["DeploymentId"] != deployment["DeploymentId"] and stages["$default"]["AutoDeploy"]
    )

    def uri(document: dict[str, Any]) -> str:
        return str(document["paths"]["/pets"]["get"]["x-amazon-apigateway-integration"]["uri"])

    assert uri(exported(client, api_id, "prod")) == function_arn("one")
    assert uri(exported(client, api_id, "$default")) == function_arn("two")
    assert uri(exported(client, api_id)) == function_arn("two")
    deployments = client.get_deployments(ApiId=api_id)["Items"]
    assert deployments[0]["DeploymentId"] == deployment["DeploymentId"] and not deployments[0]["AutoDeployed"]
    assert all(d["AutoDeployed"] for d in deployments[1:]) and len(deployments) >= 2
    got = client.get_deployment(ApiId=api_id, DeploymentId=deployment["DeploymentId"])
    assert (got["Description"], got["DeploymentStatus"]) == ("v1", "DEPLOYED")
    # And moving prod to $default's deployment makes it serve `two`
    moved = client.update_stage(
        ApiId=api_id, StageName="prod", DeploymentId=stages["$default"]["DeploymentId"]
    )
    assert moved["DeploymentId"] == stages["$default"]["DeploymentId"]
    assert uri(exported(client, api_id, "prod")) == function_arn("two")
    with pytest.raises(ClientError, match="NotFoundException"):
        client.update_stage(ApiId=api_id, StageName="prod", DeploymentId="nope")


def test_export_renders_routes_integrations_and_authorizers_like_aws(world: World) -> None:
    # Given the API deployed to prod
    api_id, _, _ = two_function_api(world)
    client = world.client("apigatewayv2")
    client.create_stage(ApiId=api_id, StageName="prod")
    client.create_deployment(ApiId=api_id, StageName="prod")
    # When prod is exported
    document = exported(client, api_id, "prod")
    # Then OAS 3.0 with the integration extension, `$default` as `/$default` ANY, the authorizer as scheme
    assert document["openapi"].startswith("3.0")
    pets = document["paths"]["/pets"]["get"]
    assert pets["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    assert pets["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    assert pets["security"] == [{"lambda-auth": []}]
    default = document["paths"]["/$default"]["x-amazon-apigateway-any-method"]
    assert default["isDefaultRoute"] is True
    scheme = document["components"]["securitySchemes"]["lambda-auth"]
    assert scheme["x-amazon-apigateway-authorizer"]["type"] == "request"
    assert scheme["x-amazon-apigateway-authorizer"]["authorizerUri"].endswith(
        f"{function_arn('auth')}/invocations"
    )


def test_export_refuses_websocket_apis_and_undeployed_stages(world: World) -> None:
    client = world.client("apigatewayv2")
    chat = websocket_api(world)
    with pytest.raises(ClientError, match="BadRequestException"):
        exported(client, chat)
    api_id, _, _ = two_function_api(world)
    client.create_stage(ApiId=api_id, StageName="never")
    with pytest.raises(ClientError, match="BadRequestException"):
        exported(client, api_id, "never")
