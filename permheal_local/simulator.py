"""An API Gateway (REST) request simulator: the permission check moto does not model, and its logs.

moto stores APIs, stages and Lambda policies but never decides whether API Gateway may invoke a
function (aws-facts.md §7). `ApiGatewaySimulator.request` does what the data plane does for one
request: resolve the route in what the stage serves (its deployment's snapshot, or for a canary
request the canary's deployment with its variable overrides; see `faithful_apigateway`), check a
Lambda authorizer's invoke permission, then the integration's,
each against the policy of the exact qualifier invoked, with the source ARN API Gateway presents
(aws-facts.md §3). It answers as API Gateway would and writes the execution-log lines API Gateway
writes (aws-facts.md §1) to `API-Gateway-Execution-Logs_{api}/{stage}`. The backend is never
invoked: an allowed call answers `200 {"ok": true}`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from permheal.arns import ApiRef, FunctionRef, parse_integration_uri, resolve_integration_function
from permheal.errors import ParseError
from permheal_local import faithful_apigateway, oracle
from permheal_local.builder import ACCOUNT, World

LOG_GROUP_PREFIX = "API-Gateway-Execution-Logs_"
PERMISSION_FAILURE = "Execution failed due to configuration error: Invalid permissions on Lambda function"
AUTHORIZER_ERROR = "Execution failed due to configuration error: Authorizer error"
MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_ERROR = {"message": "Internal server error"}
LAMBDA_AUTHORIZERS = ("TOKEN", "REQUEST")


@dataclass(frozen=True)
class SimResponse:
    status: int
    body: dict[str, Any]
    request_id: str
    log_lines: tuple[str, ...] = ()
    route: str | None = None
    """`METHOD /resource/{template}` the request matched (`ANY` when the method is ANY)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Route:
    resource_path: str
    method: str
    """The method key: the HTTP method, or ANY."""
    http_method: str
    definition: dict[str, Any]
    path_parameters: dict[str, str] = field(default_factory=dict)


# --- routing (pure) ---------------------------------------------------------------------------------


@dataclass
class _Node:
    path: str | None = None
    literals: dict[str, _Node] = field(default_factory=dict)
    params: dict[str, _Node] = field(default_factory=dict)
    greedy: dict[str, str] = field(default_factory=dict)
    """`{name+}` child: parameter name -> resource path (a greedy segment ends the path)."""


def match_resource(resource_paths: Iterable[str], request_path: str) -> tuple[str, dict[str, str]] | None:
    """The resource a path selects, as API Gateway picks it: literal, then `{param}`, then `{proxy+}`.

    A literal or parameter branch that leads nowhere falls back to the next kind; a greedy
    segment takes one or more remaining segments.
    """
    root = _Node()
    for resource_path in resource_paths:
        node = root
        parts = [p for p in resource_path.split("/") if p]
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("+}"):
                if index == len(parts) - 1:
                    node.greedy[part[1:-2]] = resource_path
                break
            if part.startswith("{") and part.endswith("}"):
                node = node.params.setdefault(part[1:-1], _Node())
            else:
                node = node.literals.setdefault(part, _Node())
        else:
            node.path = resource_path
    segments = [s for s in request_path.split("?", 1)[0].split("/") if s]
    return _search(root, segments, 0, {})


def _search(
    node: _Node, segments: list[str], index: int, params: dict[str, str]
) -> tuple[str, dict[str, str]] | None:
    if index == len(segments):
        return (node.path, params) if node.path is not None else None
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None and (found := _search(child, segments, index + 1, params)) is not None:
        return found
    for name, child in node.params.items():
        if (found := _search(child, segments, index + 1, {**params, name: segment})) is not None:
            return found
    if node.greedy:
        name, resource_path = next(iter(node.greedy.items()))
        return resource_path, {**params, name: "/".join(segments[index:])}
    return None


def select_method(methods: Mapping[str, Any], http_method: str) -> str | None:
    """The method key a request uses: the exact HTTP method, else ANY."""
    wanted = http_method.upper()
    if wanted in methods:
        return wanted
    return "ANY" if "ANY" in methods else None


# --- the simulator ----------------------------------------------------------------------------------


class _Log:
    """One request's execution-log lines; `error` lines are the only ones ERROR level keeps."""

    def __init__(self, request_id: str):
        self.request_id = request_id
        self.lines: list[tuple[str, bool]] = []

    def info(self, text: str) -> None:
        self.lines.append((text, False))

    def error(self, text: str) -> None:
        self.lines.append((text, True))

    def rendered(self, level: str | None) -> tuple[str, ...]:
        level = (level or "OFF").upper()
        if level not in ("INFO", "ERROR"):
            return ()
        return tuple(
            f"({self.request_id}) {text}" for text, is_error in self.lines if level == "INFO" or is_error
        )


class ApiGatewaySimulator:
    """Send requests to REST APIs in the local AWS, as a client of `execute-api` would."""

    def __init__(
        self,
        source: World | Mapping[str, Any],
        *,
        account: str | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._source = source
        self._account = account
        self._clock = clock
        self._streams: dict[str, str] = {}

    def client(self, service: str) -> Any:
        if isinstance(self._source, World):
            return self._source.client(service)
        return self._source[service]

    @property
    def region(self) -> str:
        return str(self.client("apigateway").meta.region_name)

    @property
    def account(self) -> str:
        if self._account is None:
            try:
                self._account = str(self.client("sts").get_caller_identity()["Account"])
            except (KeyError, ClientError):
                self._account = ACCOUNT
        return self._account

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
        """One request to what the stage serves: its deployment, or with `canary` its canary's.

        A canary request runs the canary's deployment with its stage-variable overrides (a stage
        without a canary serves it from its own deployment) and is logged to the stage's group and
        to `…/{stage}/Canary`.
        """
        request_id = str(uuid.uuid4())
        apigw = self.client("apigateway")
        try:
            stage_info = apigw.get_stage(restApiId=api_id, stageName=stage)
        except ClientError as exc:
            if _code(exc) != "NotFoundException":
                raise
            exists = _api_exists(apigw, api_id)
            return SimResponse(
                403 if exists else 404, {"message": "Forbidden" if exists else "Not Found"}, request_id
            )
        settings = (stage_info.get("methodSettings") or {}).get("*/*", {})
        canary = canary and bool(stage_info.get("canarySettings"))
        served = faithful_apigateway.served(
            api_id, stage, canary=canary, account_id=self.account, region=self.region
        )
        route = _route(served.snapshot, method, path)
        if route is None:
            return SimResponse(403, dict(MISSING_TOKEN), request_id)
        log = _Log(request_id)
        authorizers = {str(a["id"]): a for a in served.snapshot.authorizers}
        response = self._handle(
            api_id, stage, dict(served.variables), route, dict(headers or {}), log, settings, authorizers
        )
        lines = log.rendered(settings.get("loggingLevel"))
        if lines:
            self._write_logs(api_id, stage, lines)
            if canary:
                self._write_logs(api_id, f"{stage}/Canary", lines)
        return SimResponse(
            response[0], response[1], request_id, lines, f"{route.method} {route.resource_path}"
        )

    # -- the data plane --------------------------------------------------------------------------------

    def _handle(
        self,
        api_id: str,
        stage: str,
        variables: dict[str, str],
        route: Route,
        headers: dict[str, str],
        log: _Log,
        settings: Mapping[str, Any],
        authorizers: Mapping[str, Mapping[str, Any]],
    ) -> tuple[int, dict[str, Any]]:
        api = ApiRef("aws", self.region, self.account, api_id)
        definition = route.definition
        if definition.get("authorizationType") == "CUSTOM" and definition.get("authorizerId"):
            authorizer_id = str(definition["authorizerId"])
            authorizer = authorizers.get(authorizer_id, {})
            denied = self._authorize(api, authorizer_id, authorizer, variables, headers, log)
            if denied is not None:
                return denied
        log.info(f"Starting execution for request: {log.request_id}")
        log.info(f"HTTP Method: {route.http_method}, Resource Path: {route.resource_path}")
        if settings.get("dataTraceEnabled") and route.path_parameters:
            shown = ", ".join(f"{k}={v}" for k, v in route.path_parameters.items())
            log.info(f"Method request path: {{{shown}}}")
        integration = definition.get("methodIntegration") or {}
        uri = parse_integration_uri(str(integration.get("uri") or ""))
        if uri is None:  # MOCK, HTTP, other AWS services: no Lambda permission involved
            log.info("Method completed with status: 200")
            return 200, {"ok": True}
        try:
            function = resolve_integration_function(uri, variables, api.account)
        except ParseError as exc:
            log.error(f"Execution failed due to configuration error: {exc}")
            log.info("Method completed with status: 500")
            return 500, dict(INTERNAL_ERROR)
        self._log_call(log, function)
        source_arn = api.method_arn(stage, route.method, route.resource_path)
        if integration.get("credentials") or self._may_invoke(function, source_arn, api.account):
            log.info("Received response. Status: 200, Integration latency: 12 ms")
            log.info("Method completed with status: 200")
            return 200, {"ok": True}
        log.error(PERMISSION_FAILURE)
        log.info("Method completed with status: 500")
        return 500, dict(INTERNAL_ERROR)

    def _authorize(
        self,
        api: ApiRef,
        authorizer_id: str,
        authorizer: Mapping[str, Any],
        variables: dict[str, str],
        headers: dict[str, str],
        log: _Log,
    ) -> tuple[int, dict[str, Any]] | None:
        """Check a Lambda authorizer's permission (as deployed); a response when the request stops here."""
        if authorizer.get("type") not in LAMBDA_AUTHORIZERS:
            return None  # Cognito: no Lambda permission involved
        if not _has_identity(authorizer, headers):
            return 401, {"message": "Unauthorized"}  # API Gateway does not call the authorizer
        log.info(f"Starting authorizer: {authorizer_id} for request: {log.request_id}")
        uri = parse_integration_uri(str(authorizer.get("authorizerUri") or ""))
        allowed = bool(authorizer.get("authorizerCredentials"))
        if uri is not None:
            try:
                function = resolve_integration_function(uri, variables, api.account)
            except ParseError:
                function = None
            if function is not None:
                self._log_call(log, function)
                allowed = allowed or self._may_invoke(
                    function, api.authorizer_arn(authorizer_id), api.account
                )
        if allowed:
            log.info("Successfully completed authorizer execution")
            return None
        log.error(PERMISSION_FAILURE)
        log.error(AUTHORIZER_ERROR)
        log.info("Gateway response type: AUTHORIZER_CONFIGURATION_ERROR with status code: 500")
        # The default AUTHORIZER_CONFIGURATION_ERROR gateway response carries no message.
        return 500, {"message": None}

    def _may_invoke(self, function: FunctionRef, source_arn: str, account: str) -> bool:
        """Evaluate the policy of exactly the qualifier invoked: another qualifier's grants do not count.

        Judged by `permheal_local.oracle`, never by `permheal.policy`, so the two cannot share a mistake.
        """
        try:
            response = self.client("lambda").get_policy(
                FunctionName=function.unqualified_arn,
                **({"Qualifier": function.qualifier} if function.qualifier else {}),
            )
        except ClientError:  # no policy, no such function or qualifier: nothing grants the call
            return False
        # The independent oracle, not permheal.policy: the simulator grades permheal's repairs.
        return oracle.allows(response["Policy"], function.arn, source_arn, account)

    def _log_call(self, log: _Log, function: FunctionRef) -> None:
        endpoint = (
            f"https://lambda.{function.region}.amazonaws.com/2015-03-31/functions/{function.arn}/invocations"
        )
        log.info(f"Endpoint request URI: {endpoint}")
        log.info(f"Sending request to {endpoint}")

    # -- CloudWatch Logs -------------------------------------------------------------------------------

    def _write_logs(self, api_id: str, stage: str, lines: tuple[str, ...]) -> None:
        self._put_lines(log_group_name(api_id, stage), lines)

    def _put_lines(self, group: str, lines: Sequence[str]) -> None:
        """Append `lines` to one stream of `group` (created on first use), stamped now."""
        if not lines:
            return
        logs = self.client("logs")
        stream = self._streams.get(group)
        if stream is None:
            stream = uuid.uuid4().hex
            try:
                logs.create_log_group(logGroupName=group)
            except ClientError as exc:
                if _code(exc) != "ResourceAlreadyExistsException":
                    raise
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams[group] = stream
        timestamp = int(self._clock() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": timestamp, "message": line} for line in lines],
        )


def _route(snapshot: faithful_apigateway.Snapshot, method: str, path: str) -> Route | None:
    """The deployed method a request selects (the working copy is not served)."""
    resources = {str(item["path"]): item for item in snapshot.resources}
    matched = match_resource(resources, path)
    if matched is None:
        return None
    resource_path, parameters = matched
    methods = resources[resource_path].get("resourceMethods") or {}
    key = select_method(methods, method)
    if key is None:
        return None
    return Route(resource_path, key, method.upper(), dict(methods[key]), parameters)


def log_group_name(api_id: str, stage: str) -> str:
    return f"{LOG_GROUP_PREFIX}{api_id}/{stage}"


def _has_identity(authorizer: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    """Whether every header the identity source names is present (other sources are not checked)."""
    present = {name.lower() for name, value in headers.items() if value}
    for source in str(authorizer.get("identitySource") or "").split(","):
        source = source.strip()
        if source.startswith("method.request.header.") and source.split(".", 3)[3].lower() not in present:
            return False
    return True


def _api_exists(apigw: Any, api_id: str) -> bool:
    try:
        apigw.get_rest_api(restApiId=api_id)
    except ClientError:
        return False
    return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def response_text(response: SimResponse) -> str:
    return f"{response.status} {json.dumps(response.body)}"
