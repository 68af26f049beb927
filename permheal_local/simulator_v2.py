"""An API Gateway v2 (HTTP and WebSocket) request simulator: the permission check moto does not model.

`ApiGatewayV2Simulator.request` does what an HTTP API's data plane does for one request: select the
route (`METHOD /path` with `{param}` and `{proxy+}`, the exact method before `ANY`, else `$default`),
run a REQUEST Lambda authorizer (its invoke permission on `{api}/authorizers/{id}`; a JWT authorizer
only needs a token), then the Lambda integration (its permission on `{api}/{stage}/{METHOD}{path}`,
`{api}/{stage}/$default` for the `$default` route), each against the exact qualifier's policy and
judged by the independent `permheal_local.oracle`. It answers as API Gateway does (HTTP API:
`500 {"message":"Internal Server Error"}`) and writes the stage's access-log line, rendered from its
`AccessLogSettings.Format`, to the destination log group (`access_log_line` is the hook detection
tests use). `connect`/`send` do the same for WebSocket routes (`$connect`, custom route keys chosen
by `$request.body.action`, `$default`), whose source ARN is `{api}/{stage}/{routeKey}` and whose
execution-log lines go to `/aws/apigateway/{api}/{stage}` when the stage logs. The backend is never
invoked: an allowed call answers `200 {"ok": true}`. A stage serves what AWS would run: an
auto-deploy stage the current API, any other its deployment's snapshot
(`faithful_apigatewayv2.served`), never the undeployed working copy.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from permheal.apiv2 import lambda_uri, stage_uri
from permheal.arns import ApiRef, FunctionRef, parse_integration_uri, resolve_integration_function
from permheal.errors import ParseError
from permheal_local import faithful_apigatewayv2
from permheal_local.simulator import ApiGatewaySimulator, SimResponse, match_resource

INTEGRATION_PERMISSION_ERROR = (
    "The IAM role configured on the integration or API Gateway doesn't have permissions to call the "
    "integration. Check the permissions and try again."
)
AUTHORIZER_PERMISSION_ERROR = (
    "The IAM role configured on the authorizer or API Gateway doesn't have permissions to call the "
    "authorizer. Check the permissions and try again."
)
HTTP_INTERNAL_ERROR = {"message": "Internal Server Error"}
WEBSOCKET_INTERNAL_ERROR = {"message": "Internal server error"}
WEBSOCKET_PERMISSION_FAILURE = (
    "Execution failed due to configuration error: Invalid permissions on Lambda function"
)
_CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")


def access_log_line(log_format: str, context: Mapping[str, Any]) -> str:
    """Render an access-log format as API Gateway does: each `$context.x` by its value, `-` when unset.

    In a JSON format (one starting with `{`) values are escaped for a JSON string.
    """
    is_json = log_format.lstrip().startswith("{")

    def value(match: re.Match[str]) -> str:
        found = context.get(match[1])
        text = "-" if found is None or found == "" else str(found)
        return json.dumps(text)[1:-1] if is_json else text

    return _CONTEXT_VARIABLE.sub(value, log_format)


def log_group_of(destination_arn: str) -> str:
    """`arn:aws:logs:r:a:log-group:NAME[:*]` -> NAME."""
    name = destination_arn.split(":log-group:", 1)[-1]
    return name[:-2] if name.endswith(":*") else name


def websocket_log_group(api_id: str, stage: str) -> str:
    return f"/aws/apigateway/{api_id}/{stage}"


class ApiGatewayV2Simulator(ApiGatewaySimulator):
    """Send requests to HTTP and WebSocket APIs in the local AWS, as their clients would.

    Shares the REST simulator's plumbing (clients, account, the oracle's permission check, log
    streams); `request` here is an HTTP API request (HTTP APIs have no canary: `canary` is ignored).
    """

    # -- HTTP APIs --------------------------------------------------------------------------------------

    def request(
        self,
        api_id: str,
        stage: str,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        *,
        canary: bool = False,
    ) -> SimResponse:
        """One request to an HTTP API's stage; the access-log line (if the stage logs) is written."""
        request_id = _request_id()
        context: dict[str, Any] = {
            "requestId": request_id,
            "extendedRequestId": request_id,
            "apiId": api_id,
            "stage": stage,
            "httpMethod": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "requestTime": datetime.fromtimestamp(self._clock(), UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(self._clock() * 1000),
            "identity.sourceIp": "203.0.113.7",
        }
        stage_info = self._stage_info(api_id, stage)
        if stage_info is None:
            return SimResponse(404, {"message": "Not Found"}, request_id)
        deployed = self._deployed(api_id, stage)
        route = select_http_route(list(deployed.routes), method, path)
        if route is None:
            status, body = 404, {"message": "Not Found"}
        else:
            context["routeKey"] = route["RouteKey"]
            status, body = self._http_route(api_id, stage, deployed, route, dict(headers or {}), context)
        context.update(status=status, responseLength=len(json.dumps(body)))
        if status >= 500:
            context["error.message"] = body.get("message")
        lines = self._write_access_log(stage_info, context)
        return SimResponse(status, body, request_id, lines, route["RouteKey"] if route else None)

    def _http_route(
        self,
        api_id: str,
        stage: str,
        deployed: Deployed,
        route: Mapping[str, Any],
        headers: Mapping[str, str],
        context: dict[str, Any],
    ) -> tuple[int, dict[str, Any]]:
        api = ApiRef("aws", self.region, self.account, api_id)
        variables = dict(deployed.variables)
        denied = self._run_authorizer(api, deployed, route, variables, headers, context, HTTP_INTERNAL_ERROR)
        if denied is not None:
            return denied
        route_key = str(route["RouteKey"])
        if route_key == "$default":
            source_arn = f"{api.prefix}/{stage}/$default"
        else:
            route_method, _, route_path = route_key.partition(" ")
            source_arn = api.method_arn(stage, route_method.upper(), route_path)
        return self._run_integration(
            api, deployed, route, variables, source_arn, context, HTTP_INTERNAL_ERROR
        )

    # -- WebSocket APIs ---------------------------------------------------------------------------------

    def connect(self, api_id: str, stage: str, headers: Mapping[str, str] | None = None) -> SimResponse:
        """A WebSocket handshake: the `$connect` route (with its authorizer), if the API has one."""
        return self._websocket(api_id, stage, "$connect", dict(headers or {}), required=False)

    def disconnect(self, api_id: str, stage: str) -> SimResponse:
        return self._websocket(api_id, stage, "$disconnect", {}, required=False)

    def send(self, api_id: str, stage: str, message: Mapping[str, Any] | str) -> SimResponse:
        """A message on an open connection: the route its `action` names, else `$default`."""
        action = message.get("action") if isinstance(message, Mapping) else None
        return self._websocket(api_id, stage, str(action) if action else "$default", {}, required=True)

    def _websocket(
        self, api_id: str, stage: str, wanted: str, headers: dict[str, str], *, required: bool
    ) -> SimResponse:
        request_id = _request_id()
        stage_info = self._stage_info(api_id, stage)
        if stage_info is None:
            return SimResponse(403, {"message": "Forbidden"}, request_id)
        deployed = self._deployed(api_id, stage)
        routes = {str(r["RouteKey"]): r for r in deployed.routes}
        route = routes.get(wanted)
        if route is None and wanted not in ("$connect", "$disconnect"):
            route = routes.get("$default")
        if route is None:
            if required:
                return SimResponse(403, {"message": "Forbidden"}, request_id)
            return SimResponse(200, {"ok": True}, request_id)
        api = ApiRef("aws", self.region, self.account, api_id)
        route_key = str(route["RouteKey"])
        context: dict[str, Any] = {
            "requestId": request_id,
            "apiId": api_id,
            "stage": stage,
            "routeKey": route_key,
        }
        lines = [f"({request_id}) Received request for route key {route_key}"]
        variables = dict(deployed.variables)
        status, body = 200, {"ok": True}
        denied = None
        if route_key == "$connect":
            denied = self._run_authorizer(
                api, deployed, route, variables, headers, context, WEBSOCKET_INTERNAL_ERROR
            )
        if denied is not None:
            status, body = denied
        else:
            source_arn = f"{api.prefix}/{stage}/{route_key}"
            failure = WEBSOCKET_INTERNAL_ERROR
            status, body = self._run_integration(
                api, deployed, route, variables, source_arn, context, failure
            )
        if context.get("integration.error") or context.get("authorizer.error"):
            lines.append(f"({request_id}) {WEBSOCKET_PERMISSION_FAILURE}")
        lines.append(f"({request_id}) Method completed with status: {status}")
        level = str((stage_info.get("DefaultRouteSettings") or {}).get("LoggingLevel") or "OFF").upper()
        if level in ("INFO", "ERROR"):
            kept = lines if level == "INFO" else [line for line in lines if "Execution failed" in line]
            self._put_lines(websocket_log_group(api_id, stage), kept)
        context["status"] = status
        written = self._write_access_log(stage_info, context)
        return SimResponse(status, body, request_id, tuple(lines) + written, route_key)

    # -- shared steps -----------------------------------------------------------------------------------

    def _run_authorizer(
        self,
        api: ApiRef,
        deployed: Deployed,
        route: Mapping[str, Any],
        variables: dict[str, str],
        headers: Mapping[str, str],
        context: dict[str, Any],
        failure: Mapping[str, Any],
    ) -> tuple[int, dict[str, Any]] | None:
        """Run the route's authorizer; a response when the request stops there."""
        authorization = str(route.get("AuthorizationType") or "NONE")
        if authorization not in ("CUSTOM", "JWT") or not route.get("AuthorizerId"):
            return None
        authorizer_id = str(route["AuthorizerId"])
        authorizer = deployed.authorizers.get(authorizer_id)
        if authorizer is None:  # the deployment holds no such authorizer: API Gateway answers 500
            return 500, dict(failure)
        present = {name.lower() for name, value in headers.items() if value}
        for source in authorizer.get("IdentitySource") or []:
            # HTTP APIs name `$request.header.X`, WebSocket APIs `route.request.header.X`
            header = source.split("request.header.", 1)[1] if "request.header." in source else None
            if header is not None and header.lower() not in present:
                return 401, {"message": "Unauthorized"}
        if authorizer.get("AuthorizerType") != "REQUEST":
            return None  # JWT: validated by API Gateway, no Lambda involved
        allowed = bool(authorizer.get("AuthorizerCredentialsArn"))
        try:
            function = self._invoked_function(authorizer.get("AuthorizerUri"), variables, api.account)
        except ParseError:
            function = None
        if not allowed and function is not None:
            allowed = self._may_invoke(function, api.authorizer_arn(authorizer_id), api.account)
        if allowed:
            return None
        context["authorizer.error"] = AUTHORIZER_PERMISSION_ERROR
        return 500, dict(failure)

    def _run_integration(
        self,
        api: ApiRef,
        deployed: Deployed,
        route: Mapping[str, Any],
        variables: dict[str, str],
        source_arn: str,
        context: dict[str, Any],
        failure: Mapping[str, Any],
    ) -> tuple[int, dict[str, Any]]:
        target = str(route.get("Target") or "")
        if not target.startswith("integrations/"):
            return 200, {"ok": True}
        integration = deployed.integrations.get(target.split("/", 1)[1])
        if integration is None:  # the deployment holds no such integration: API Gateway answers 500
            return 500, dict(failure)
        try:
            function = self._invoked_function(integration.get("IntegrationUri"), variables, api.account)
        except ParseError as exc:
            context["integrationErrorMessage"] = context["integration.error"] = str(exc)
            return 500, dict(failure)
        if function is None:  # not a Lambda integration: no Lambda permission involved
            context["integrationStatus"] = 200
            return 200, {"ok": True}
        if integration.get("CredentialsArn") or self._may_invoke(function, source_arn, api.account):
            context["integrationStatus"] = 200
            context["integration.status"] = 200
            return 200, {"ok": True}
        context["integrationErrorMessage"] = INTEGRATION_PERMISSION_ERROR
        context["integration.error"] = INTEGRATION_PERMISSION_ERROR
        return 500, dict(failure)

    def _invoked_function(self, uri: Any, variables: dict[str, str], account: str) -> FunctionRef | None:
        """The function a Lambda URI invokes on this stage; None for other URIs.

        Raises ParseError when a stage variable it needs is not defined (API Gateway answers 500)."""
        parsed = parse_integration_uri(stage_uri(lambda_uri(str(uri or "")), variables) or "")
        if parsed is None:
            return None
        return resolve_integration_function(parsed, variables, account)

    def _deployed(self, api_id: str, stage: str) -> Deployed:
        """The routes, integrations and authorizers the stage serves, keyed as the v2 API spells them."""
        served = faithful_apigatewayv2.served(api_id, stage, account_id=self.account, region=self.region)
        snapshot = served.snapshot
        return Deployed(
            tuple(_pascal(route) for route in snapshot.routes),
            {str(i["integrationId"]): _pascal(i) for i in snapshot.integrations},
            {str(a["authorizerId"]): _pascal(a) for a in snapshot.authorizers},
            served.variables,
        )

    def _stage_info(self, api_id: str, stage: str) -> dict[str, Any] | None:
        try:
            stage_info: dict[str, Any] = self.client("apigatewayv2").get_stage(ApiId=api_id, StageName=stage)
        except ClientError:
            return None
        return stage_info

    # -- CloudWatch Logs --------------------------------------------------------------------------------

    def write_access_log(self, api_id: str, stage: str, context: Mapping[str, Any]) -> str | None:
        """Render one access-log line from the stage's `AccessLogSettings.Format` and put it to its
        destination group; None when the stage has no access log.

        The hook for log lines no simulated request produces (an integration role API Gateway cannot
        assume, a curly apostrophe...): `context` holds `$context.*` values by name without the prefix
        (`requestId`, `apiId`, `stage`, `routeKey`, `status`, `integrationErrorMessage`,
        `integration.error`, `authorizer.error`, `httpMethod`, `path`, `protocol`, `requestTime`...).
        """
        stage_info = self._stage_info(api_id, stage)
        if stage_info is None:
            raise LookupError(f"API {api_id} has no stage {stage!r}")
        lines = self._write_access_log(stage_info, {"apiId": api_id, "stage": stage, **context})
        return lines[0] if lines else None

    def _write_access_log(self, stage_info: Mapping[str, Any], context: Mapping[str, Any]) -> tuple[str, ...]:
        """Render the stage's access-log line and put it to its destination group; () when off."""
        settings = stage_info.get("AccessLogSettings") or {}
        if not settings.get("DestinationArn") or not settings.get("Format"):
            return ()
        line = access_log_line(str(settings["Format"]), context)
        self._put_lines(log_group_of(str(settings["DestinationArn"])), [line])
        return (line,)


def select_http_route(routes: list[dict[str, Any]], method: str, path: str) -> dict[str, Any] | None:
    """The route an HTTP API request selects: the most specific path, its exact method before `ANY`,
    else the `$default` route."""
    wanted = method.upper()
    by_path: dict[str, dict[str, dict[str, Any]]] = {}
    default = None
    for route in routes:
        key = str(route["RouteKey"])
        if key == "$default":
            default = route
            continue
        route_method, _, route_path = key.partition(" ")
        if route_method.upper() in (wanted, "ANY"):
            by_path.setdefault(route_path, {})[route_method.upper()] = route
    matched = match_resource(by_path, path)
    if matched is None:
        return default
    methods = by_path[matched[0]]
    return methods.get(wanted) or methods.get("ANY")


@dataclass(frozen=True)
class Deployed:
    """What one stage serves (GetRoute/GetIntegration/GetAuthorizer shapes) and its variables."""

    routes: tuple[dict[str, Any], ...]
    integrations: Mapping[str, dict[str, Any]]
    authorizers: Mapping[str, dict[str, Any]]
    variables: Mapping[str, str]


def _pascal(item: Mapping[str, Any]) -> dict[str, Any]:
    """moto's wire keys (`routeKey`) as boto3 returns them (`RouteKey`)."""
    return {key[:1].upper() + key[1:]: value for key, value in item.items()}


def _request_id() -> str:
    """An HTTP API request id looks like `AqCiOhxcLPEEMIA=`."""
    return base64.b64encode(os.urandom(11)).decode()[:15] + "="
