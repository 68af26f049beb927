"""The faithful API Gateway v2 double: GetAuthorizers and pagination as AWS does them, where plain moto
does neither; and the v2 adapter reading every page through it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from permheal.adapters import apigatewayv2
from permheal.adapters.apigatewayv2 import ApiGatewayV2, V2Api
from permheal_local import faithful_apigatewayv2
from permheal_local.builder import World, function_arn
from tests.integration.support_v2 import http_api, integration, request_authorizer, route, stage


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
    api_id = http_api(world, "paged")
    target = integration(world, api_id, function_arn("fn"))
    for index in range(routes):
        route(world, api_id, f"GET /r{index}", target)
    request_authorizer(world, api_id, function_arn("auth"))
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
