"""Build HTTP and WebSocket APIs (API Gateway v2) with real boto3 calls, and judge them by the oracle."""

from __future__ import annotations

from typing import Any

from permheal_local.builder import ACCOUNT, REGION, World, function_arn, integration_uri
from permheal_local.simulator_v2 import ApiGatewayV2Simulator

JSON_FORMAT = (
    '{"requestId":"$context.requestId","apiId":"$context.apiId","stage":"$context.stage",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"integrationErrorMessage":"$context.integrationErrorMessage","authorizerError":"$context.authorizer.error"}'
)
CLF_FORMAT = (
    '$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod $context.routeKey '
    '$context.protocol" $context.status $context.responseLength $context.requestId '
    "$context.integrationErrorMessage"
)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/apigw-invokes-lambda"


def execute_api(api_id: str, rest: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{rest}"


def v2(world: World) -> Any:
    return world.client("apigatewayv2")


def http_api(world: World, name: str = "shop", protocol: str = "HTTP") -> str:
    options = {"RouteSelectionExpression": "$request.body.action"} if protocol == "WEBSOCKET" else {}
    return str(v2(world).create_api(Name=name, ProtocolType=protocol, **options)["ApiId"])


def websocket_api(world: World, name: str = "chat") -> str:
    return http_api(world, name, "WEBSOCKET")


def integration(
    world: World, api_id: str, function_text: str, *, path_form: bool = False, credentials: str | None = None
) -> str:
    """A Lambda proxy integration; `path_form` stores the `arn:aws:apigateway:…:lambda:path/…` URI."""
    uri = integration_uri(function_text) if path_form else function_text
    options = {"CredentialsArn": credentials} if credentials else {}
    created = v2(world).create_integration(
        ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri, PayloadFormatVersion="2.0", **options
    )
    return str(created["IntegrationId"])


def route(
    world: World,
    api_id: str,
    key: str,
    integration_id: str | None,
    *,
    authorizer_id: str | None = None,
    authorization: str = "CUSTOM",
) -> str:
    options: dict[str, Any] = {}
    if integration_id:
        options["Target"] = f"integrations/{integration_id}"
    if authorizer_id:
        options.update(AuthorizationType=authorization, AuthorizerId=authorizer_id)
    return str(v2(world).create_route(ApiId=api_id, RouteKey=key, **options)["RouteId"])


def request_authorizer(
    world: World, api_id: str, function_text: str, *, credentials: str | None = None
) -> str:
    options = {"AuthorizerCredentialsArn": credentials} if credentials else {}
    created = v2(world).create_authorizer(
        ApiId=api_id,
        AuthorizerType="REQUEST",
        Name="lambda-auth",
        IdentitySource=["$request.header.Authorization"],
        AuthorizerUri=integration_uri(function_text),
        AuthorizerPayloadFormatVersion="2.0",
        **options,
    )
    return str(created["AuthorizerId"])


def jwt_authorizer(world: World, api_id: str) -> str:
    created = v2(world).create_authorizer(
        ApiId=api_id,
        AuthorizerType="JWT",
        Name="cognito",
        IdentitySource=["$request.header.Authorization"],
        JwtConfiguration={"Audience": ["app"], "Issuer": "https://issuer.example.com"},
    )
    return str(created["AuthorizerId"])


def stage(
    world: World,
    api_id: str,
    name: str = "$default",
    variables: dict[str, str] | None = None,
    *,
    log_format: str | None = JSON_FORMAT,
    logging_level: str | None = None,
) -> str:
    options: dict[str, Any] = {"AutoDeploy": True, "StageVariables": variables or {}}
    if log_format:
        group = f"/aws/vendedlogs/{api_id}/{name}"
        options["AccessLogSettings"] = {
            "DestinationArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}",
            "Format": log_format,
        }
    if logging_level:
        options["DefaultRouteSettings"] = {"LoggingLevel": logging_level}
    v2(world).create_stage(ApiId=api_id, StageName=name, **options)
    return name


def simulator(world: World) -> ApiGatewayV2Simulator:
    return ApiGatewayV2Simulator(world, account=ACCOUNT)


def pets_http_api(world: World, name: str = "shop") -> str:
    """`GET /pets/{id}` -> `pets`, `ANY /{proxy+}` -> `catchall`, on the `$default` stage; all allowlisted."""
    world.function("pets")
    world.function("catchall")
    api_id = http_api(world, name)
    route(world, api_id, "GET /pets/{id}", integration(world, api_id, function_arn("pets")))
    route(world, api_id, "ANY /{proxy+}", integration(world, api_id, function_arn("catchall")))
    stage(world, api_id)
    world.allow("*")
    return api_id
