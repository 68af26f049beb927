"""Make moto's API Gateway v2 list authorizers, page lists, keep deployments and export, like AWS.

moto 5.2.5's apigatewayv2 has no GetAuthorizers (a list: NotImplementedError), ignores
``MaxResults``/``NextToken`` on GetApis, GetRoutes, GetIntegrations and GetStages, and has neither
deployments, UpdateStage nor ExportApi (aws-facts.md §8): on plain moto every stage "serves" the
current routes. AWS pages every list, and a stage with auto-deploy off serves the snapshot its
deployment took. :func:`install` patches moto in-process, class-level (``mock_aws`` and a
``ThreadedMotoServer`` in this process both see it), as `faithful_apigateway` does for REST:

- GetAuthorizers returns the API's authorizers (the same items GetAuthorizer returns);
- the five lists (and GetDeployments) honour ``maxResults`` (AWS's default page is 25 items here
  too, at most 500) and ``nextToken``, answering ``nextToken`` while items remain;
- CreateDeployment snapshots the API's routes, integrations and authorizers (``StageName`` points
  that stage at it); GetDeployment(s) list them; CreateStage/UpdateStage take ``DeploymentId``,
  ``AutoDeploy``, variables and settings, and stages report ``DeploymentId``;
- an auto-deploy stage always serves the current API: AWS redeploys it on every change, which the
  double does lazily (a new ``AutoDeployed`` deployment whenever the API differs from the stage's
  deployment at the moment anything reads the stage, its deployments or its export);
- ExportApi (OAS30, JSON or YAML) renders an HTTP API stage's deployment (or, without
  ``stageName``, the current API) with ``x-amazon-apigateway-integration`` per route (``$default``
  as ``/$default`` ``x-amazon-apigateway-any-method`` with ``isDefaultRoute``) and authorizers as
  security schemes carrying ``x-amazon-apigateway-authorizer``; WebSocket APIs cannot be exported.

:func:`served` gives the data plane (the local simulator) what a stage serves.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from moto.apigateway import urls as rest_urls
from moto.apigatewayv2 import urls as v2_urls
from moto.apigatewayv2.exceptions import APIGatewayV2Error, BadRequestException
from moto.apigatewayv2.models import Api, ApiGatewayV2Backend, Stage, apigatewayv2_backends
from moto.apigatewayv2.responses import ApiGatewayV2Response

from permheal_local import patching

__all__ = ["DEFAULT_PAGE", "Served", "Snapshot", "install", "is_installed", "served", "uninstall"]

DEFAULT_PAGE = 25
MAX_PAGE = 500
_LOCK = threading.RLock()
_ORIGINALS: dict[tuple[type[Any], str], Any] = {}
_DEPLOYMENTS_ATTR = "_faithful_deployments"
_STAGE_DEPLOYMENT_ATTR = "_faithful_deployment_id"
_AUTO_DEPLOY_DESCRIPTION = "Automatic deployment triggered by changes to the Api configuration"
_URL_PATHS = {
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$": ApiGatewayV2Response.dispatch,
    "{0}/v2/apis/(?P<api_id>[^/]+)/deployments/(?P<deployment_id>[^/]+)$": ApiGatewayV2Response.dispatch,
    "{0}/v2/apis/(?P<api_id>[^/]+)/exports/(?P<specification>[^/]+)$": ApiGatewayV2Response.dispatch,
}

Response = tuple[int, dict[str, Any], str]


def _page(self: ApiGatewayV2Response, items: Sequence[dict[str, Any]]) -> Response:
    """One page of `items` as AWS answers it: `items` and, while more remain, `nextToken`."""
    try:
        size = int(self._get_param("maxResults") or DEFAULT_PAGE)
        start = int(self._get_param("nextToken") or 0)
    except ValueError as exc:
        raise BadRequestException(f"Invalid pagination parameter: {exc}") from exc
    if not 1 <= size <= MAX_PAGE or start < 0:
        raise BadRequestException("maxResults must be between 1 and 500")
    body: dict[str, Any] = {"items": list(items[start : start + size])}
    if start + size < len(items):
        body["nextToken"] = str(start + size)
    return 200, {}, json.dumps(body)


def _api_id(self: ApiGatewayV2Response) -> str:
    """The `{apiId}` of any `/v2/apis/{apiId}/...` path."""
    parts = self.path.split("?", 1)[0].split("/")
    return str(parts[parts.index("apis") + 1])


def _stage_name(self: ApiGatewayV2Response) -> str:
    return unquote(self.path.split("?", 1)[0].rstrip("/").split("/")[-1])


def _get_apis(self: ApiGatewayV2Response) -> Response:
    return _page(self, [api.to_json() for api in self.apigatewayv2_backend.get_apis()])


def _get_routes(self: ApiGatewayV2Response) -> Response:
    return _page(self, [route.to_json() for route in self.apigatewayv2_backend.get_routes(_api_id(self))])


def _get_integrations(self: ApiGatewayV2Response) -> Response:
    items = self.apigatewayv2_backend.get_integrations(_api_id(self))
    return _page(self, [integration.to_json() for integration in items])


def _get_stages(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    _sync_auto_deploy(api)
    return _page(self, [stage.to_json() for stage in api.stages.values()])


def _get_authorizers(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))  # NotFoundException for an unknown API
    return _page(self, [authorizer.to_json() for authorizer in api.authorizers.values()])


# --- deployments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a deployment froze: GetRoutes, GetIntegrations and GetAuthorizers items (camelCase)."""

    routes: tuple[dict[str, Any], ...]
    integrations: tuple[dict[str, Any], ...]
    authorizers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Served:
    """What a request to a stage runs: its deployment's snapshot and the stage variables."""

    deployment_id: str | None
    snapshot: Snapshot
    variables: dict[str, str]


def _snapshot_of(api: Api) -> Snapshot:
    return Snapshot(
        tuple(copy.deepcopy(route.to_json()) for route in api.routes.values()),
        tuple(copy.deepcopy(integration.to_json()) for integration in api.integrations.values()),
        tuple(copy.deepcopy(authorizer.to_json()) for authorizer in api.authorizers.values()),
    )


def _deployments(api: Api) -> dict[str, dict[str, Any]]:
    """The API's deployments by id, oldest first: the GetDeployment item plus `snapshot`."""
    found: dict[str, dict[str, Any]] = api.__dict__.setdefault(_DEPLOYMENTS_ATTR, {})
    return found


def _deploy(api: Api, description: str | None, *, auto: bool) -> dict[str, Any]:
    deployment_id = uuid.uuid4().hex[:6]
    record: dict[str, Any] = {
        "autoDeployed": auto,
        "createdDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deploymentId": deployment_id,
        "deploymentStatus": "DEPLOYED",
        "snapshot": _snapshot_of(api),
    }
    if description:
        record["description"] = description
    _deployments(api)[deployment_id] = record
    return record


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != "snapshot"}


def _stage_deployment(stage: Stage) -> str | None:
    value: str | None = stage.__dict__.get(_STAGE_DEPLOYMENT_ATTR)
    return value


def _sync_auto_deploy(api: Api) -> None:
    """AWS redeploys an auto-deploy stage on every change; here, whenever the API differs from it."""
    if not api.stages:
        return
    current = _snapshot_of(api)
    fresh: dict[str, Any] | None = None
    for stage in api.stages.values():
        if not stage.auto_deploy:
            continue
        deployed = _deployments(api).get(_stage_deployment(stage) or "")
        if deployed is not None and deployed["snapshot"] == current:
            continue
        if fresh is None:
            fresh = _deploy(api, _AUTO_DEPLOY_DESCRIPTION, auto=True)
        stage.__dict__[_STAGE_DEPLOYMENT_ATTR] = fresh["deploymentId"]


def _stage_to_json(self: Stage) -> dict[str, Any]:
    data: dict[str, Any] = _ORIGINALS[(Stage, "to_json")](self)
    deployment_id = _stage_deployment(self)
    if deployment_id:
        data["deploymentId"] = deployment_id
    data["autoDeploy"] = bool(self.auto_deploy)
    return data


def _checked_deployment(api: Api, deployment_id: Any) -> str:
    if deployment_id not in _deployments(api):
        raise APIGatewayV2Error(
            "NotFoundException", f"Invalid deployment identifier specified {deployment_id}"
        )
    return str(deployment_id)


def _create_stage(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    params = json.loads(self.body or "{}")
    deployment_id = params.get("deploymentId")
    if deployment_id is not None:
        _checked_deployment(api, deployment_id)
    stage = api.create_stage(params)
    if deployment_id is not None:
        stage.__dict__[_STAGE_DEPLOYMENT_ATTR] = deployment_id
    _sync_auto_deploy(api)
    return 201, {}, json.dumps(stage.to_json())


def _get_stage(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    stage = api.get_stage(_stage_name(self))
    _sync_auto_deploy(api)
    return 200, {}, json.dumps(stage.to_json())


_STAGE_SETTINGS = {
    "accessLogSettings": "access_log_settings",
    "autoDeploy": "auto_deploy",
    "clientCertificateId": "client_certificate_id",
    "defaultRouteSettings": "default_route_settings",
    "description": "description",
    "routeSettings": "route_settings",
    "stageVariables": "stage_variables",
}


def _update_stage(self: ApiGatewayV2Response) -> Response:
    """UpdateStage: the fields given replace the stage's; `deploymentId` must name a deployment."""
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    stage = api.get_stage(_stage_name(self))
    params = json.loads(self.body or "{}")
    if "deploymentId" in params:
        stage.__dict__[_STAGE_DEPLOYMENT_ATTR] = _checked_deployment(api, params["deploymentId"])
    for key, attribute in _STAGE_SETTINGS.items():
        if key in params:
            setattr(stage, attribute, params[key])
    stage.updated = datetime.now()
    _sync_auto_deploy(api)
    return 200, {}, json.dumps(stage.to_json())


def _create_deployment(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    params = json.loads(self.body or "{}")
    stage = api.get_stage(params["stageName"]) if params.get("stageName") else None
    record = _deploy(api, params.get("description"), auto=False)
    if stage is not None:
        stage.__dict__[_STAGE_DEPLOYMENT_ATTR] = record["deploymentId"]
    return 201, {}, json.dumps(_public(record))


def _get_deployments(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    _sync_auto_deploy(api)
    return _page(self, [_public(record) for record in _deployments(api).values()])


def _get_deployment(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    _sync_auto_deploy(api)
    deployment_id = _checked_deployment(api, self.path.split("?", 1)[0].rstrip("/").split("/")[-1])
    return 200, {}, json.dumps(_public(_deployments(api)[deployment_id]))


# --- ExportApi -------------------------------------------------------------------------------------


def _export_api(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))
    specification = self.path.split("?", 1)[0].rstrip("/").split("/")[-1]
    if specification != "OAS30":
        raise BadRequestException(f"Invalid specification {specification}: OAS30 is the only one supported")
    if self._get_param("outputType") not in ("JSON", "YAML"):
        raise BadRequestException("outputType must be JSON or YAML")
    if api.protocol_type != "HTTP":
        raise BadRequestException("Exporting WebSocket APIs is not supported")
    _sync_auto_deploy(api)
    stage_name = self._get_param("stageName")
    if stage_name:
        stage = api.get_stage(stage_name)
        deployment = _deployments(api).get(_stage_deployment(stage) or "")
        if deployment is None:
            raise BadRequestException(f"Stage {stage_name} has no deployment to export")
        snapshot: Snapshot = deployment["snapshot"]
    else:
        snapshot = _snapshot_of(api)
    extensions = str(self._get_param("includeExtensions") or "true").lower() != "false"
    document = export_document(api.name, api.api_id, self.region, stage_name, snapshot, extensions)
    # JSON is YAML too: a YAML reader parses the JSON text
    return 200, {"Content-Type": "application/json"}, json.dumps(document, indent=2)


def export_document(
    title: str, api_id: str, region: str, stage: str | None, snapshot: Snapshot, extensions: bool = True
) -> dict[str, Any]:
    """An HTTP API's OAS 3.0 definition as ExportApi renders it."""
    integrations = {item["integrationId"]: item for item in snapshot.integrations}
    authorizers = {item["authorizerId"]: item for item in snapshot.authorizers}
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for route in snapshot.routes:
        key = str(route["routeKey"])
        if key == "$default":
            path, operation_key = "/$default", "x-amazon-apigateway-any-method"
            operation: dict[str, Any] = {"isDefaultRoute": True}
        else:
            method, _, path = key.partition(" ")
            operation_key = "x-amazon-apigateway-any-method" if method == "ANY" else method.lower()
            operation = {}
        operation["responses"] = {"default": {"description": f"Default response for {key}"}}
        authorizer = authorizers.get(route.get("authorizerId") or "")
        if route.get("authorizationType") in ("CUSTOM", "JWT") and authorizer is not None:
            operation["security"] = [{authorizer["name"]: list(route.get("authorizationScopes") or [])}]
            schemes[authorizer["name"]] = _security_scheme(authorizer, extensions)
        elif route.get("authorizationType") == "AWS_IAM":
            operation["security"] = [{"sigv4": []}]
            schemes["sigv4"] = {"type": "apiKey", "name": "Authorization", "in": "header"}
        integration = integrations.get(str(route.get("target") or "").removeprefix("integrations/"))
        if extensions and integration is not None:
            operation["x-amazon-apigateway-integration"] = _integration_extension(integration)
        paths.setdefault(path, {})[operation_key] = operation
    document: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": title, "version": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")},
        "servers": [
            {
                "url": f"https://{api_id}.execute-api.{region}.amazonaws.com/{{basePath}}",
                "variables": {"basePath": {"default": "" if stage in (None, "$default") else stage}},
            }
        ],
        "paths": paths,
    }
    if schemes:
        document["components"] = {"securitySchemes": schemes}
    if extensions:
        document["x-amazon-apigateway-importexport-version"] = "1.0"
    return document


def _integration_extension(integration: Mapping[str, Any]) -> dict[str, Any]:
    extension: dict[str, Any] = {
        "type": str(integration.get("integrationType") or "").lower(),
        "httpMethod": integration.get("integrationMethod") or "POST",
        "uri": integration.get("integrationUri"),
        "connectionType": integration.get("connectionType") or "INTERNET",
    }
    if integration.get("payloadFormatVersion"):
        extension["payloadFormatVersion"] = integration["payloadFormatVersion"]
    if integration.get("credentialsArn"):
        extension["credentials"] = integration["credentialsArn"]
    if integration.get("timeoutInMillis"):
        extension["timeoutInMillis"] = integration["timeoutInMillis"]
    return extension


def _security_scheme(authorizer: Mapping[str, Any], extensions: bool) -> dict[str, Any]:
    kind = str(authorizer.get("authorizerType") or "")
    sources = list(authorizer.get("identitySource") or [])
    if kind == "JWT":
        scheme: dict[str, Any] = {"type": "oauth2", "flows": {}}
        extension: dict[str, Any] = {
            "identitySource": ",".join(sources),
            "jwtConfiguration": authorizer.get("jwtConfiguration") or {},
            "type": "jwt",
        }
    else:
        header = next((s.split("header.", 1)[1] for s in sources if "header." in s), "Unused")
        scheme = {"type": "apiKey", "name": header, "in": "header"}
        extension = {
            "identitySource": ",".join(sources),
            "authorizerUri": authorizer.get("authorizerUri"),
            "authorizerPayloadFormatVersion": authorizer.get("authorizerPayloadFormatVersion"),
            "authorizerResultTtlInSeconds": authorizer.get("authorizerResultTtlInSeconds") or 0,
            "type": "request",
            "enableSimpleResponses": bool(authorizer.get("enableSimpleResponses")),
        }
        if authorizer.get("authorizerCredentialsArn"):
            extension["authorizerCredentials"] = authorizer["authorizerCredentialsArn"]
    if extensions:
        scheme["x-amazon-apigateway-authorizer"] = extension
    return scheme


# --- the data plane's view -------------------------------------------------------------------------


def served(
    api_id: str, stage_name: str, *, account_id: str = "123456789012", region: str = "us-east-1"
) -> Served:
    """What a request to the stage runs: an auto-deploy stage the current API, any other its
    deployment's snapshot (a stage never deployed serves nothing: no routes)."""
    if not is_installed():
        raise RuntimeError("faithful_apigatewayv2 is not installed: moto keeps no deployments")
    backend: ApiGatewayV2Backend = apigatewayv2_backends[account_id][region]
    with _LOCK:
        api = backend.get_api(api_id)
        stage = api.get_stage(stage_name)
        variables = {str(k): str(v) for k, v in (stage.stage_variables or {}).items()}
        _sync_auto_deploy(api)
        deployment = _deployments(api).get(_stage_deployment(stage) or "")
        if deployment is None:
            return Served(None, Snapshot((), (), ()), variables)
        return Served(str(deployment["deploymentId"]), deployment["snapshot"], variables)


_PATCHES: tuple[patching.Patch, ...] = (
    (ApiGatewayV2Response, "get_apis", _get_apis),
    (ApiGatewayV2Response, "get_routes", _get_routes),
    (ApiGatewayV2Response, "get_integrations", _get_integrations),
    (ApiGatewayV2Response, "get_stages", _get_stages),
    (ApiGatewayV2Response, "get_authorizers", _get_authorizers),
    (ApiGatewayV2Response, "create_stage", _create_stage),
    (ApiGatewayV2Response, "get_stage", _get_stage),
    (ApiGatewayV2Response, "update_stage", _update_stage),
    (ApiGatewayV2Response, "create_deployment", _create_deployment),
    (ApiGatewayV2Response, "get_deployments", _get_deployments),
    (ApiGatewayV2Response, "get_deployment", _get_deployment),
    (ApiGatewayV2Response, "export_api", _export_api),
    (Stage, "to_json", _stage_to_json),
)


def install() -> None:
    """Patch moto's API Gateway v2; calling it again does nothing."""
    with _LOCK:
        if not patching.apply(_PATCHES, _ORIGINALS, _LOCK):
            return
        # moto's REST module serves the v2 paths too, from a copy it made on import: route both
        for table in (v2_urls.url_paths, rest_urls.url_paths):
            for path, handler in _URL_PATHS.items():
                table.setdefault(path, handler)


def uninstall() -> None:
    """Restore moto's own methods (and remove the ones moto does not have)."""
    with _LOCK:
        patching.restore(_ORIGINALS, _LOCK)
        for table in (v2_urls.url_paths, rest_urls.url_paths):
            for path in _URL_PATHS:
                table.pop(path, None)


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_ORIGINALS)
