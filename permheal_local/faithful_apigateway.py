"""Make moto's REST API stages serve deployments, keep canaries and export per stage, like AWS.

moto 5.2.5 keeps no deployment snapshots (a stage "serves" whatever the working copy holds),
drops ``canarySettings`` and exports the working copy as Swagger whatever the stage (aws-facts.md
§8). :func:`install` patches moto in-process, class-level (so ``mock_aws`` and a
``ThreadedMotoServer`` in this process both see it):

- CreateDeployment snapshots the API's resources, methods, integrations and authorizers onto the
  deployment; with ``canarySettings`` it deploys the new deployment as the stage's canary and leaves
  the stage's own deployment alone (AWS's canary release); without, an existing stage keeps its
  settings and only moves to the new deployment.
- Stages keep ``canarySettings`` (CreateStage, CreateDeployment, UpdateStage ``/canarySettings/...``
  patch operations incl. removal, and the promotion copies) and GetStage/GetStages return them.
- GetExport of a stage renders that stage's deployment snapshot as OAS 3.0 (or Swagger 2.0) JSON with
  the ``integrations`` and ``authorizers`` extensions when asked for.

:func:`served` gives the data plane (the local simulator) what a stage, or its canary, serves.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from moto.apigateway.exceptions import BadRequestException, StageNotFoundException
from moto.apigateway.models import APIGatewayBackend, Deployment, RestAPI, Stage, apigateway_backends
from moto.apigateway.responses import APIGatewayResponse

from permheal_local import patching

__all__ = ["Served", "Snapshot", "install", "is_installed", "served", "uninstall"]

_SNAPSHOT_ATTR = "_faithful_snapshot"
_CANARY_ATTR = "_faithful_canary"
_LOCK = threading.RLock()
_ORIGINALS: dict[tuple[type[Any], str], Any] = {}
_PARAM = re.compile(r"\{([^}+]+)\+?\}")
_CANARY = "/canarySettings"


@dataclass(frozen=True)
class Snapshot:
    """What a deployment froze: GetResources(embed=methods) items and GetAuthorizers items."""

    resources: tuple[dict[str, Any], ...]
    authorizers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Served:
    """What one request to a stage (or to its canary) runs: a snapshot and the stage variables."""

    deployment_id: str
    snapshot: Snapshot
    variables: dict[str, str]


# --- state on moto's objects ----------------------------------------------------------------------


def _snapshot_of(api: RestAPI) -> Snapshot:
    return Snapshot(
        tuple(copy.deepcopy(resource.to_dict()) for resource in api.resources.values()),
        tuple(copy.deepcopy(authorizer.to_json()) for authorizer in api.authorizers.values()),
    )


def _canary(stage: Stage) -> dict[str, Any] | None:
    value: dict[str, Any] | None = stage.__dict__.get(_CANARY_ATTR)
    return value


def _set_canary(stage: Stage, settings: Mapping[str, Any] | None) -> None:
    stage.__dict__[_CANARY_ATTR] = None if settings is None else _canary_settings(settings, stage)


def _canary_settings(settings: Mapping[str, Any], stage: Stage) -> dict[str, Any]:
    """CanarySettings as GetStage returns them (AWS fills the defaults)."""
    return {
        "percentTraffic": float(settings.get("percentTraffic") or 0.0),
        "deploymentId": str(settings.get("deploymentId") or stage.deployment_id),
        "stageVariableOverrides": dict(settings.get("stageVariableOverrides") or {}),
        "useStageCache": bool(settings.get("useStageCache") or False),
    }


# --- replacements: backend ------------------------------------------------------------------------


def _create_deployment(
    self: APIGatewayBackend,
    function_id: str,
    name: str,
    description: str = "",
    stage_variables: Any = None,
    canary_settings: Mapping[str, Any] | None = None,
) -> Deployment:
    """Snapshot the API; a canary deployment goes to the stage's canary, not to the stage."""
    with _LOCK:
        api = self.get_rest_api(function_id)
        existing = api.stages.get(name) if name else None
        if canary_settings is not None and existing is None:
            raise StageNotFoundException()
        original = _ORIGINALS[(APIGatewayBackend, "create_deployment")]
        deployment: Deployment = original(self, function_id, name, description, stage_variables)
        if existing is not None:
            # moto replaced the stage with a new one: put back the stage and its settings.
            api.stages[name] = existing
            if canary_settings is None:
                existing.deployment_id = deployment.id
                existing.variables.update(stage_variables or {})
            else:
                _set_canary(existing, {**canary_settings, "deploymentId": deployment.id})
        deployment.__dict__[_SNAPSHOT_ATTR] = _snapshot_of(api)
        return deployment


# --- replacements: Stage --------------------------------------------------------------------------


def _stage_to_json(self: Stage) -> dict[str, Any]:
    data: dict[str, Any] = _ORIGINALS[(Stage, "to_json")](self)
    canary = _canary(self)
    if canary is not None:
        data["canarySettings"] = copy.deepcopy(canary)
    return data


def _stage_apply_operations(self: Stage, patch_operations: list[dict[str, Any]]) -> Stage:
    """Canary operations here (moto would read `/canarySettings/deploymentId` as the stage's)."""
    rest: list[dict[str, Any]] = []
    with _LOCK:
        for op in patch_operations:
            path, source = str(op.get("path", "")), str(op.get("from", ""))
            if op.get("op") == "copy" and source.startswith(_CANARY):
                _copy_from_canary(self, source, path)
            elif path == _CANARY or path.startswith(_CANARY + "/"):
                _apply_canary(self, op)
            else:
                rest.append(op)
        if rest:
            _ORIGINALS[(Stage, "apply_operations")](self, rest)
        return self


def _apply_canary(stage: Stage, op: Mapping[str, Any]) -> None:
    action, path, value = op.get("op"), str(op["path"]), op.get("value")
    if path == _CANARY:
        if action != "remove":
            raise BadRequestException(f"Invalid patch operation {action} on {path}")
        _set_canary(stage, None)
        return
    canary = _canary(stage)
    if canary is None:
        _set_canary(stage, {})
        canary = _canary(stage)
    assert canary is not None
    key = path[len(_CANARY) + 1 :]
    if key.startswith("stageVariableOverrides/"):
        name = key.split("/", 1)[1]
        if action == "remove":
            canary["stageVariableOverrides"].pop(name, None)
        elif action in ("add", "replace"):
            canary["stageVariableOverrides"][name] = str(value)
        else:
            raise BadRequestException(f"Invalid patch operation {action} on {path}")
        return
    if action != "replace":
        raise BadRequestException(f"Invalid patch operation {action} on {path}")
    if key == "percentTraffic":
        canary["percentTraffic"] = float(str(value))
    elif key == "deploymentId":
        canary["deploymentId"] = str(value)
    elif key == "useStageCache":
        canary["useStageCache"] = str(value).lower() == "true"
    else:
        raise BadRequestException(f"Invalid patch path {path}")


def _copy_from_canary(stage: Stage, source: str, path: str) -> None:
    """The promotion AWS documents: copy the canary's deployment and overrides onto the stage."""
    canary = _canary(stage)
    if canary is None:
        raise BadRequestException("The stage has no canary settings")
    if source == f"{_CANARY}/deploymentId" and path == "/deploymentId":
        stage.deployment_id = canary["deploymentId"]
    elif source == f"{_CANARY}/stageVariableOverrides" and path == "/variables":
        stage.variables.update(canary["stageVariableOverrides"])
    else:
        raise BadRequestException(f"Invalid copy from {source} to {path}")


# --- replacements: responses ----------------------------------------------------------------------


def _response_create_deployment(self: APIGatewayResponse) -> tuple[int, dict[str, Any], str]:
    function_id = self.path.replace("/restapis/", "", 1).split("/")[0]
    deployment = _create_deployment(
        self.backend,
        function_id,
        self._get_param("stageName"),
        self._get_param("description") or "",
        self._get_param("variables", if_none={}),
        canary_settings=self._get_param("canarySettings"),
    )
    return 201, {"status": 201}, json.dumps(deployment.to_json())


def _response_create_stage(self: APIGatewayResponse) -> tuple[int, dict[str, Any], str]:
    status, headers, body = _ORIGINALS[(APIGatewayResponse, "create_stage")](self)
    canary = self._get_param("canarySettings")
    if canary is not None:
        stage = self.backend.get_stage(self.path.split("/")[2], self._get_param("stageName"))
        _set_canary(stage, canary)
        body = json.dumps(stage.to_json())
    return status, headers, body


def _response_get_export(self: APIGatewayResponse) -> tuple[int, dict[str, Any], bytes]:
    parts = self.path.split("/")  # /restapis/{id}/stages/{stage}/exports/{type}
    api_id, stage_name, export_type = parts[2], parts[4], parts[6]
    query = parse_qs(self.parsed_url.query)
    extensions = {e.strip() for e in ",".join(query.get("extensions", [])).split(",") if e.strip()}
    document = export_stage(self.backend, api_id, stage_name, export_type, extensions)
    headers = {
        "Content-Type": "application/json",
        "Content-Disposition": f'attachment; filename="{export_type}_{stage_name}.json"',
    }
    return 200, headers, json.dumps(document).encode("utf-8")


# --- the export -----------------------------------------------------------------------------------


def export_stage(
    backend: APIGatewayBackend, api_id: str, stage_name: str, export_type: str, extensions: set[str]
) -> dict[str, Any]:
    """What GetExport returns for a stage: its deployment's snapshot, never the working copy."""
    if export_type not in ("oas30", "swagger"):
        raise BadRequestException(f"No API exporter for type '{export_type}'")
    with _LOCK:
        api = backend.get_rest_api(api_id)
        stage = backend.get_stage(api_id, stage_name)
        snapshot = _deployment_snapshot(api, str(stage.deployment_id))
    return _render(api, backend.region_name, stage_name, snapshot, export_type, extensions)


def _deployment_snapshot(api: RestAPI, deployment_id: str) -> Snapshot:
    deployment = api.deployments.get(deployment_id)
    if deployment is None:
        raise BadRequestException(f"Invalid deployment identifier specified: {deployment_id}")
    snapshot: Snapshot | None = deployment.__dict__.get(_SNAPSHOT_ATTR)
    if snapshot is None:
        raise BadRequestException(
            f"deployment {deployment_id} was created before faithful_apigateway.install(): no snapshot"
        )
    return snapshot


def _render(
    api: RestAPI,
    region: str,
    stage: str,
    snapshot: Snapshot,
    export_type: str,
    extensions: set[str],
) -> dict[str, Any]:
    names = {str(a["id"]): str(a["name"]) for a in snapshot.authorizers}
    paths: dict[str, Any] = {}
    used: set[str] = set()
    for resource in sorted(snapshot.resources, key=lambda r: str(r["path"])):
        methods = resource.get("resourceMethods") or {}
        if not methods:
            continue
        item: dict[str, Any] = {}
        for http_method, method in sorted(methods.items()):
            operation = _operation(str(resource["path"]), method, names, export_type, extensions, used)
            key = "x-amazon-apigateway-any-method" if http_method == "ANY" else http_method.lower()
            item[key] = operation
        paths[str(resource["path"])] = item
    schemes = {
        names[a["id"]]: _security_scheme(a, extensions) for a in snapshot.authorizers if str(a["id"]) in used
    }
    if "AWS_IAM" in used:
        schemes["sigv4"] = {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    version = datetime.fromtimestamp(api.create_date, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if export_type == "swagger":
        document: dict[str, Any] = {
            "swagger": "2.0",
            "info": {"version": version, "title": api.name},
            "host": f"{api.id}.execute-api.{region}.amazonaws.com",
            "basePath": f"/{stage}",
            "schemes": ["https"],
            "paths": paths,
        }
        if schemes:
            document["securityDefinitions"] = schemes
        return document
    document = {
        "openapi": "3.0.1",
        "info": {"title": api.name, "version": version},
        "servers": [
            {
                "url": f"https://{api.id}.execute-api.{region}.amazonaws.com/{{basePath}}",
                "variables": {"basePath": {"default": stage}},
            }
        ],
        "paths": paths,
    }
    if schemes:
        document["components"] = {"securitySchemes": schemes}
    return document


def _operation(
    path: str,
    method: Mapping[str, Any],
    names: Mapping[str, str],
    export_type: str,
    extensions: set[str],
    used: set[str],
) -> dict[str, Any]:
    operation: dict[str, Any] = {}
    parameters = [
        {"name": name, "in": "path", "required": True}
        | ({"type": "string"} if export_type == "swagger" else {"schema": {"type": "string"}})
        for name in _PARAM.findall(path)
    ]
    if parameters:
        operation["parameters"] = parameters
    codes = sorted((method.get("methodResponses") or {}).keys()) or ["200"]
    operation["responses"] = {code: {"description": f"{code} response"} for code in codes}
    authorization = method.get("authorizationType")
    authorizer_id = str(method.get("authorizerId") or "")
    if authorization in ("CUSTOM", "COGNITO_USER_POOLS") and authorizer_id in names:
        used.add(authorizer_id)
        operation["security"] = [{names[authorizer_id]: list(method.get("authorizationScopes") or [])}]
    elif authorization == "AWS_IAM":
        used.add("AWS_IAM")
        operation["security"] = [{"sigv4": []}]
    integration = method.get("methodIntegration")
    if "integrations" in extensions and integration:
        operation["x-amazon-apigateway-integration"] = _integration(integration)
    return operation


def _integration(integration: Mapping[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {"type": str(integration.get("type", "")).lower()}
    for key in ("httpMethod", "uri", "credentials", "timeoutInMillis", "requestParameters"):
        if integration.get(key):
            rendered[key] = integration[key]
    if integration.get("requestTemplates"):
        rendered["requestTemplates"] = integration["requestTemplates"]
    if integration.get("passthroughBehavior"):
        rendered["passthroughBehavior"] = str(integration["passthroughBehavior"]).lower()
    if integration.get("contentHandling"):
        rendered["contentHandling"] = str(integration["contentHandling"]).lower()
    responses = integration.get("integrationResponses") or {}
    rendered["responses"] = {
        str(r.get("selectionPattern") or "default"): {"statusCode": str(code)}
        for code, r in responses.items()
    }
    return rendered


def _security_scheme(authorizer: Mapping[str, Any], extensions: set[str]) -> dict[str, Any]:
    kind = str(authorizer.get("type", "")).lower()
    source = str(authorizer.get("identitySource") or "")
    header = source.rsplit(".", 1)[-1] if source.startswith("method.request.header.") else "Unused"
    scheme: dict[str, Any] = {
        "type": "apiKey",
        "name": header,
        "in": "header",
        "x-amazon-apigateway-authtype": "cognito_user_pools" if kind == "cognito_user_pools" else "custom",
    }
    if "authorizers" in extensions:
        details: dict[str, Any] = {"type": kind}
        for key in (
            "authorizerUri",
            "authorizerCredentials",
            "authorizerResultTtlInSeconds",
            "identityValidationExpression",
            "providerARNs",
        ):
            if authorizer.get(key) is not None:
                details[key] = authorizer[key]
        if kind == "request" and source:
            details["identitySource"] = source
        scheme["x-amazon-apigateway-authorizer"] = details
    return scheme


# --- the data plane's view ------------------------------------------------------------------------


def served(
    api_id: str,
    stage_name: str,
    *,
    canary: bool = False,
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> Served:
    """What a request to the stage runs: its deployment, or (canary) the canary's, with overrides.

    A stage without a canary serves canary requests from its own deployment, as AWS does.
    """
    if not is_installed():
        raise RuntimeError("faithful_apigateway is not installed: moto keeps no deployment snapshots")
    backend: APIGatewayBackend = apigateway_backends[account_id][region]
    with _LOCK:
        api = backend.get_rest_api(api_id)
        stage = backend.get_stage(api_id, stage_name)
        variables = {str(k): str(v) for k, v in (stage.variables or {}).items()}
        deployment_id = str(stage.deployment_id)
        settings = _canary(stage)
        if canary and settings is not None:
            deployment_id = str(settings["deploymentId"])
            variables.update(settings["stageVariableOverrides"])
        return Served(deployment_id, _deployment_snapshot(api, deployment_id), variables)


# --- install --------------------------------------------------------------------------------------


_PATCHES: tuple[patching.Patch, ...] = (
    (APIGatewayBackend, "create_deployment", _create_deployment),
    (Stage, "to_json", _stage_to_json),
    (Stage, "apply_operations", _stage_apply_operations),
    (APIGatewayResponse, "create_deployment", _response_create_deployment),
    (APIGatewayResponse, "create_stage", _response_create_stage),
    (APIGatewayResponse, "get_export", _response_get_export),
)


def install() -> None:
    """Patch moto's API Gateway; calling it again does nothing."""
    patching.apply(_PATCHES, _ORIGINALS, _LOCK)


def uninstall() -> None:
    """Restore moto's own methods (snapshots already taken stay on their deployments, unused)."""
    patching.restore(_ORIGINALS, _LOCK)


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_ORIGINALS)
