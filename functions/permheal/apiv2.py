"""HTTP and WebSocket APIs (API Gateway v2): their routes as the Lambda calls API Gateway makes.

Pure: the adapter (`permheal.adapters.apigatewayv2`) reads routes, integrations, authorizers and
stages into these frozen types; `v2_stage_targets` maps one stage onto `Target`s exactly as
`permheal.targets` does for REST stages, so the planner, dedupe and size budget stay kind-agnostic.

What a v2 stage serves: an auto-deploy stage (every HTTP `$default` stage SAM and CDK create) serves
the API's current routes, AWS redeploying it on every change. An HTTP stage with auto-deploy off
serves its deployment's snapshot, read from the stage's OpenAPI export (`served_from_export`), and a
working copy that differs from it is reported as `undeployed_change`, never granted. AWS exports no
WebSocket API and GetDeployment shows no routes: a WebSocket stage with auto-deploy off gets the
current routes' targets (a known limit, in the README: flagging every such stage would make `scan`
fail on every healthy hand-deployed WebSocket API); a stage never deployed serves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from permheal.arns import ApiRef, parse_integration_uri, substitute_stage_variables
from permheal.errors import ParseError
from permheal.models import Finding, FindingKind, Target, TargetKind
from permheal.openapi import Authorizer, from_export
from permheal.targets import (
    LAMBDA_INTEGRATION_TYPES,
    StageTargets,
    _function,
    _lambda_uri,
    _undeployed,
    _unique,
)

HTTP = "HTTP"
WEBSOCKET = "WEBSOCKET"
LAMBDA_AUTHORIZER_TYPE = "REQUEST"
"""JWT authorizers are validated by API Gateway itself: no Lambda, no permission."""

INTEGRATION_ERROR_VARIABLES = ("$context.integrationErrorMessage", "$context.integration.error")
AUTHORIZER_ERROR_VARIABLE = "$context.authorizer.error"
RECOMMENDED_JSON_FORMAT = (
    '{"requestId":"$context.requestId","apiId":"$context.apiId","stage":"$context.stage",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"integrationErrorMessage":"$context.integrationErrorMessage",'
    '"authorizerError":"$context.authorizer.error"}'
)
_JSON_KEYS = {
    "$context.integrationErrorMessage": "integrationErrorMessage",
    AUTHORIZER_ERROR_VARIABLE: "authorizerError",
}
_PLAIN_LAMBDA_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):")


@dataclass(frozen=True)
class V2Integration:
    """An HTTP/WebSocket API integration, as GetIntegrations returns it."""

    integration_id: str
    type: str
    uri: str | None = None
    credentials: str | None = None


@dataclass(frozen=True)
class V2Authorizer:
    """An HTTP/WebSocket API authorizer, as GetAuthorizers returns it."""

    authorizer_id: str
    name: str
    type: str
    uri: str | None = None
    credentials: str | None = None


@dataclass(frozen=True)
class V2Route:
    """An HTTP/WebSocket API route, as GetRoutes returns it."""

    route_key: str
    target: str | None = None
    """`integrations/{id}` or None (a route without integration invokes nothing)."""
    authorization_type: str = "NONE"
    authorizer_id: str | None = None

    @property
    def integration_id(self) -> str | None:
        if self.target and self.target.startswith("integrations/"):
            return self.target.split("/", 1)[1]
        return None

    def method_and_path(self, protocol: str) -> tuple[str | None, str | None]:
        """HTTP `GET /pets/{id}` -> (GET, /pets/{id}); `$default` -> (ANY, $default); WebSocket -> None."""
        if protocol != HTTP:
            return None, None
        if self.route_key == "$default":
            return "ANY", "$default"
        method, _, path = self.route_key.partition(" ")
        return method.upper(), path or "/"


@dataclass(frozen=True)
class V2Stage:
    """An HTTP/WebSocket API stage: its variables, access log and deployment."""

    name: str
    variables: dict[str, str] = field(default_factory=dict)
    access_log_format: str | None = None
    access_log_destination: str | None = None
    auto_deploy: bool = False
    deployment_id: str | None = None
    logging_level: str | None = None
    """WebSocket execution logging (`DefaultRouteSettings.LoggingLevel`); HTTP APIs have none."""
    served: V2Spec | None = None
    """What an HTTP stage with auto-deploy off serves (its deployment's export); None: the current API."""


@dataclass(frozen=True)
class V2Spec:
    """One HTTP or WebSocket API's routes, integrations and authorizers (the current configuration)."""

    protocol: str
    routes: tuple[V2Route, ...] = ()
    integrations: Mapping[str, V2Integration] = field(default_factory=dict)
    authorizers: Mapping[str, V2Authorizer] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    """What could not be read from a stage's export (an authorizer whose id is unknown)."""


DEFAULT_ROUTE_PATH = "/$default"
"""How ExportApi writes the `$default` route: `/$default` with `x-amazon-apigateway-any-method`."""


def served_from_export(document: Any, current: V2Spec) -> V2Spec:
    """What an HTTP stage serves, from its ExportApi (OAS 3.0) document with extensions.

    The export names no ids: routes get their integration as read (under synthetic ids), and
    authorizers are matched by name to the current ones (`current`), whose ids their grants name;
    a served authorizer no current one matches is a problem, never a guess.

    Raises ParseError when the document is no OpenAPI document.
    """
    known = [
        Authorizer(a.authorizer_id, a.name, a.type, a.uri, a.credentials)
        for a in current.authorizers.values()
    ]
    exported = from_export(document, known)
    routes: list[V2Route] = []
    integrations: dict[str, V2Integration] = {}
    authorizers: dict[str, V2Authorizer] = {}
    for index, method in enumerate(exported.methods):
        is_default = method.path == DEFAULT_ROUTE_PATH and method.method == "ANY"
        route_key = "$default" if is_default else f"{method.method} {method.path}"
        target = None
        if method.integration is not None:
            integration_id = f"served-{index}"
            integration = method.integration
            integrations[integration_id] = V2Integration(
                integration_id, integration.type, lambda_uri(integration.uri), integration.credentials
            )
            target = f"integrations/{integration_id}"
        authorizer = method.authorizer
        if authorizer is not None and authorizer.authorizer_id is not None:
            authorizers[authorizer.authorizer_id] = V2Authorizer(
                authorizer.authorizer_id,
                authorizer.name,
                authorizer.type,
                lambda_uri(authorizer.uri),
                authorizer.credentials,
            )
            routes.append(V2Route(route_key, target, "CUSTOM", authorizer.authorizer_id))
        else:
            routes.append(V2Route(route_key, target))
    return V2Spec(current.protocol, tuple(routes), integrations, authorizers, exported.problems)


def lambda_uri(uri: str | None) -> str | None:
    """The integration URI in API Gateway's `lambda:path` form (v2 also takes a plain Lambda ARN)."""
    if not uri:
        return None
    match = _PLAIN_LAMBDA_ARN.match(uri)
    if match is None:
        return uri
    return (
        f"arn:{match['partition']}:apigateway:{match['region']}:lambda:path/2015-03-31/functions/"
        f"{uri}/invocations"
    )


def stage_uri(uri: str | None, variables: Mapping[str, str]) -> str | None:
    """An integration URI that is a stage variable as a whole (`${stageVariables.fn}`, holding a
    Lambda ARN) resolved for one stage; any other URI unchanged (its variables are resolved later).

    Raises ParseError when the stage does not define the variable.
    """
    if uri and uri.startswith("${stageVariables.") and parse_integration_uri(uri) is None:
        return lambda_uri(substitute_stage_variables(uri, dict(variables)))
    return uri


def integration_from(item: Mapping[str, Any]) -> V2Integration:
    return V2Integration(
        str(item["IntegrationId"]),
        str(item.get("IntegrationType") or ""),
        lambda_uri(item.get("IntegrationUri")),
        item.get("CredentialsArn") or None,
    )


def authorizer_from(item: Mapping[str, Any]) -> V2Authorizer:
    return V2Authorizer(
        str(item["AuthorizerId"]),
        str(item.get("Name") or ""),
        str(item.get("AuthorizerType") or ""),
        lambda_uri(item.get("AuthorizerUri")),
        item.get("AuthorizerCredentialsArn") or None,
    )


def route_from(item: Mapping[str, Any]) -> V2Route:
    return V2Route(
        str(item["RouteKey"]),
        item.get("Target") or None,
        str(item.get("AuthorizationType") or "NONE"),
        item.get("AuthorizerId") or None,
    )


def stage_from(item: Mapping[str, Any]) -> V2Stage:
    logs = item.get("AccessLogSettings") or {}
    return V2Stage(
        str(item["StageName"]),
        dict(item.get("StageVariables") or {}),
        logs.get("Format") or None,
        logs.get("DestinationArn") or None,
        bool(item.get("AutoDeploy")),
        item.get("DeploymentId") or None,
        (item.get("DefaultRouteSettings") or {}).get("LoggingLevel"),
    )


def v2_stage_targets(api: ApiRef, api_name: str, spec: V2Spec, stage: V2Stage) -> StageTargets:
    """Every Lambda integration and REQUEST authorizer a v2 stage's routes invoke."""
    base: dict[str, Any] = {
        "api_id": api.api_id,
        "api_name": api_name,
        "stage": stage.name,
        "api_type": spec.protocol,
    }
    findings: list[Finding] = _deployment_findings(base, stage)
    current, spec = spec, stage.served or spec
    if stage.served is None and not stage.auto_deploy and stage.deployment_id is None:
        spec = V2Spec(current.protocol)  # never deployed: the stage serves nothing
    targets: list[Target] = []
    used: dict[str, V2Authorizer] = {}
    for route in spec.routes:
        if route.authorization_type == "CUSTOM" and route.authorizer_id in spec.authorizers:
            used.setdefault(str(route.authorizer_id), spec.authorizers[str(route.authorizer_id)])
        integration = spec.integrations.get(route.integration_id or "")
        if integration is None or integration.type not in LAMBDA_INTEGRATION_TYPES:
            continue
        method, path = route.method_and_path(spec.protocol)
        where = {**base, "method": method, "resource_path": path, "route_key": route.route_key}
        try:
            uri = stage_uri(integration.uri, stage.variables)
        except ParseError as exc:
            findings.append(
                Finding(FindingKind.MISSING_FUNCTION, **where, detail=f"{integration.uri}: {exc}")
            )
            continue
        function = _function(api, uri, integration.credentials, stage.variables, where, findings)
        if function is not None:
            targets.append(
                Target(
                    TargetKind.INTEGRATION,
                    api,
                    stage.name,
                    function,
                    method,
                    path,
                    api_type=spec.protocol,
                    route_key=route.route_key,
                )
            )
    for authorizer_id, authorizer in used.items():
        if authorizer.type != LAMBDA_AUTHORIZER_TYPE:
            continue
        where = {**base, "authorizer_id": authorizer_id}
        function = _function(api, authorizer.uri, authorizer.credentials, stage.variables, where, findings)
        if function is not None:
            targets.append(
                Target(
                    TargetKind.AUTHORIZER,
                    api,
                    stage.name,
                    function,
                    authorizer_id=authorizer_id,
                    api_type=spec.protocol,
                )
            )
    lambda_authorized = any(a.type == LAMBDA_AUTHORIZER_TYPE for a in used.values())
    findings.extend(_logging_findings(base, spec, stage, lambda_authorized))
    return StageTargets(_unique(targets), _unique(findings))


def _deployment_findings(base: Mapping[str, Any], stage: V2Stage) -> list[Finding]:
    """What a stage's served deployment names that permheal cannot match: reported, never guessed."""
    if stage.auto_deploy or stage.served is None:
        return []
    return [Finding(FindingKind.UNDEPLOYED_CHANGE, **base, detail=p) for p in stage.served.problems]


def v2_undeployed_changes(
    api: ApiRef, api_name: str, current: V2Spec, stages: Sequence[V2Stage]
) -> list[Finding]:
    """Lambda targets of the current API that no stage serves: reported, never granted (as for REST).

    An auto-deploy stage serves the current API, so only an HTTP API whose stages all have
    auto-deploy off can have any; a WebSocket stage's deployment cannot be read.
    """
    if not stages or any(stage.auto_deploy or stage.served is None for stage in stages):
        return []
    deployed = {
        (route.route_key, _invokes(stage.served.integrations.get(route.integration_id or "")))
        for stage in stages
        if stage.served is not None
        for route in stage.served.routes
    }
    deployed_authorizers = {
        (a.authorizer_id, a.type, a.uri, a.credentials)
        for stage in stages
        if stage.served is not None
        for a in stage.served.authorizers.values()
    }
    only = stages[0] if len(stages) == 1 else None
    stage_name = only.name if only else None
    where = f"stage {only.name} (deployment {only.deployment_id})" if only else "any stage"
    variables = [stage.variables for stage in stages]
    findings: list[Finding] = []
    reported: set[str] = set()
    for route in current.routes:
        integration = current.integrations.get(route.integration_id or "")
        if (
            integration is not None
            and integration.type in LAMBDA_INTEGRATION_TYPES
            and (route.route_key, _invokes(integration)) not in deployed
            and (uri := _lambda_uri(_whole_variable_uri(integration.uri, variables))) is not None
        ):
            method, path = route.method_and_path(current.protocol)
            finding = _undeployed(
                api,
                api_name,
                stage_name,
                uri,
                variables,
                f"route {route.route_key}",
                where,
                method=method,
                resource_path=path,
            )
            findings.append(replace(finding, api_type=current.protocol, route_key=route.route_key))
        authorizer = current.authorizers.get(route.authorizer_id or "")
        if (
            route.authorization_type == "CUSTOM"
            and authorizer is not None
            and authorizer.type == LAMBDA_AUTHORIZER_TYPE
            and authorizer.authorizer_id not in reported
            and (authorizer.authorizer_id, authorizer.type, authorizer.uri, authorizer.credentials)
            not in deployed_authorizers
            and (uri := _lambda_uri(authorizer.uri)) is not None
        ):
            reported.add(authorizer.authorizer_id)
            finding = _undeployed(
                api,
                api_name,
                stage_name,
                uri,
                variables,
                f"authorizer {authorizer.name} ({authorizer.authorizer_id})",
                where,
                authorizer_id=authorizer.authorizer_id,
            )
            findings.append(replace(finding, api_type=current.protocol))
    return findings


def _invokes(integration: V2Integration | None) -> tuple[str, str | None, str | None] | None:
    """An integration compared by what it invokes, not by id (the export names no ids)."""
    return None if integration is None else (integration.type, integration.uri, integration.credentials)


def _whole_variable_uri(uri: str | None, variables: Sequence[Mapping[str, str]]) -> str | None:
    """A URI that is a stage variable as a whole, resolved when every stage resolves it the same way."""
    resolved: set[str | None] = set()
    for values in variables:
        try:
            resolved.add(stage_uri(uri, values))
        except ParseError:
            continue
    return resolved.pop() if len(resolved) == 1 else uri


def _logging_findings(
    base: Mapping[str, Any], spec: V2Spec, stage: V2Stage, authorized: bool
) -> list[Finding]:
    """Can permheal's detector see a permission failure on this stage? Say what to add when not."""
    if spec.protocol == WEBSOCKET:
        if (stage.logging_level or "OFF").upper() in ("INFO", "ERROR"):
            return []
        return [
            Finding(
                FindingKind.LOGGING_DISABLED,
                **base,
                detail="execution logging is off: permheal cannot detect failures on this stage",
            )
        ]
    detail = access_log_gap(stage.access_log_format, stage.access_log_destination, authorized)
    return [] if detail is None else [Finding(FindingKind.ACCESS_LOG_MISSING_ERROR, **base, detail=detail)]


def access_log_gap(log_format: str | None, destination: str | None, authorizer: bool = True) -> str | None:
    """Why an HTTP stage's access log cannot show a permission failure, with the exact line to add.

    The integration failure shows only in `$context.integrationErrorMessage` (or its alias
    `$context.integration.error`); a Lambda authorizer's only in `$context.authorizer.error`.
    """
    if not destination or not log_format:
        return (
            "access logging is off: permheal cannot detect failures on this stage; set the stage's "
            f"access log (AccessLogSettings) with the format {RECOMMENDED_JSON_FORMAT}"
        )
    missing: list[str] = []
    if not any(variable in log_format for variable in INTEGRATION_ERROR_VARIABLES):
        missing.append("$context.integrationErrorMessage")
    if authorizer and AUTHORIZER_ERROR_VARIABLE not in log_format:
        missing.append(AUTHORIZER_ERROR_VARIABLE)
    if not missing:
        return None
    if log_format.lstrip().startswith("{"):
        line = ",".join(f'"{_JSON_KEYS[m]}":"{m}"' for m in missing)
        how = f"add to the JSON format: {line}"
    else:
        how = f"append to the format: {' '.join(missing)}"
    return f"the access-log format does not log {', '.join(missing)}: failures are invisible; {how}"


def v2_targets(
    api: ApiRef, api_name: str, spec: V2Spec, stages: Sequence[V2Stage]
) -> tuple[list[Target], list[Finding]]:
    targets: list[Target] = []
    findings: list[Finding] = []
    for stage in stages:
        found = v2_stage_targets(api, api_name, spec, stage)
        targets.extend(found.targets)
        findings.extend(found.findings)
    findings.extend(v2_undeployed_changes(api, api_name, spec, stages))
    return targets, findings
