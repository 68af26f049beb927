"""The execution-log parser as it was before the detector was optimised (issue 15): the reference."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

from permheal.errors import ParseError

PERMISSION_FAILURE_PHRASE = "Invalid permissions on Lambda function"
"""The subscription filter phrase; case-sensitive, as CloudWatch Logs matches it."""

EXECUTION_LOG_GROUP_PREFIX = _LOG_GROUP_PREFIX = "API-Gateway-Execution-Logs_"
_V2_LOG_GROUP_PREFIX = "/aws/apigateway/"
"""WebSocket execution logs may also be named `/aws/apigateway/{api}/{stage}` (unverified which one AWS
uses for WebSocket APIs; both are read as the API and stage they name)."""
_API_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_STAGE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CANARY_SUFFIX = "/Canary"
"""A canary's execution logs also go to `…_{api}/{stage}/Canary` (aws-facts.md §8): same API/stage."""

# UUIDs (REST) and base64-ish extended ids (WebSocket, e.g. "Xyz12AbCdEFg=").
_PREFIX = re.compile(r"\(([A-Za-z0-9+/=_-]{1,128})\)[ \t]*")

_CONFIG_ERROR = "Execution failed due to configuration error: "
_PERMISSION_FAILURE_TEXT = _CONFIG_ERROR + PERMISSION_FAILURE_PHRASE
_AUTHORIZER_ERROR_TEXT = _CONFIG_ERROR + "Authorizer error"
_ASSUME_ROLE_PHRASE = "API Gateway does not have permission to assume the provided role"
_ASSUME_ROLE_TEXT = _CONFIG_ERROR + _ASSUME_ROLE_PHRASE
_SENDING = "Sending request to "
_ENDPOINT_URI = "Endpoint request URI: "
_METHOD = "HTTP Method: "
_RESOURCE_PATH = ", Resource Path: "
_START = "Starting execution for request"
_AUTHORIZER_START = "Starting authorizer: "
_AUTHORIZER_COMPLETED = "Successfully completed authorizer execution"
_GATEWAY_RESPONSE = "Gateway response type: "
_GATEWAY_STATUS = " with status code: "
_METHOD_COMPLETED = "Method completed with status: "
_WEBSOCKET_ROUTE = "WebSocket Request Route: ["
"""WebSocket execution logs name the route (`$connect`, `sendmessage`); prefix is the extended id."""
_FUNCTIONS = "/functions/"
_INVOCATIONS = "/invocations"

# HTTP API access logs ($context.integrationErrorMessage / authorizer error). The apostrophe in
# "doesn't" may be straight or curly, so matching avoids it.
_HTTP_API_MARK = "The IAM role configured on the "
_HTTP_API_CALL = "have permissions to call the "

_AUTHORIZER_GATEWAY_RESPONSES = frozenset({"AUTHORIZER_CONFIGURATION_ERROR", "AUTHORIZER_FAILURE"})

_MAX_SHOWN = 200
_MAX_ARN = 512
_MAX_PATH = 2048


class LineKind(StrEnum):
    """What an execution-log line says; OTHER for everything permheal does not need."""

    START = "start"
    METHOD = "method"
    ENDPOINT_URI = "endpoint_uri"
    SENDING_REQUEST = "sending_request"
    AUTHORIZER_START = "authorizer_start"
    AUTHORIZER_COMPLETED = "authorizer_completed"
    PERMISSION_FAILURE = "permission_failure"
    AUTHORIZER_ERROR = "authorizer_error"
    ASSUME_ROLE_FAILURE = "assume_role_failure"
    GATEWAY_RESPONSE = "gateway_response"
    METHOD_COMPLETED = "method_completed"
    WEBSOCKET_ROUTE = "websocket_route"
    HTTP_API_INTEGRATION_FAILURE = "http_api_integration_failure"
    OTHER = "other"


_FAILURE_KINDS = frozenset(
    {LineKind.PERMISSION_FAILURE, LineKind.HTTP_API_INTEGRATION_FAILURE, LineKind.ASSUME_ROLE_FAILURE}
)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One parsed line; fields a line kind does not carry stay None.

    ``function_arn`` is copied from log text and is untrusted: use it only to narrow targets
    found through the control plane. ``via_authorizer`` marks the HTTP API authorizer variant.
    """

    request_id: str | None
    kind: LineKind
    method: str | None = None
    resource_path: str | None = None
    function_arn: str | None = None
    authorizer_id: str | None = None
    role_arn: str | None = None
    status: int | None = None
    gateway_response: str | None = None
    via_authorizer: bool = False
    route_key: str | None = None


@dataclass(frozen=True, slots=True)
class RequestTrace:
    """What the lines of one request say happened, so the healer knows which grant is missing.

    ``function_hint`` is the function of the last Lambda call before the first permission
    failure (the last call at all when none failed): untrusted, a hint only.
    ``assume_role_failure`` holds the role ARN API Gateway could not assume ("" if unreadable);
    AddPermission cannot fix that, so it is reported instead.
    """

    request_id: str | None
    method: str | None = None
    resource_path: str | None = None
    function_hint: str | None = None
    authorizer_id: str | None = None
    permission_failure: bool = False
    authorizer_failure: bool = False
    assume_role_failure: str | None = None
    status: int | None = None
    route_key: str | None = None
    """The WebSocket route the request took (untrusted, narrows only)."""


def _shown(value: str) -> str:
    """Bound and escape untrusted text before it goes into an error message."""
    if len(value) > _MAX_SHOWN:
        return repr(value[:_MAX_SHOWN]) + "..."
    return repr(value)


def is_execution_log_group(name: str) -> bool:
    """A REST or WebSocket execution log group by its name; anything else may be an access log."""
    return isinstance(name, str) and (name.startswith(_LOG_GROUP_PREFIX) or _v2_group(name) is not None)


def _v2_group(name: str) -> tuple[str, str] | None:
    """`/aws/apigateway/{api}/{stage}` → (api, stage) when both parts are well-formed, else None."""
    if not name.startswith(_V2_LOG_GROUP_PREFIX):
        return None
    api_id, slash, stage = name[len(_V2_LOG_GROUP_PREFIX) :].partition("/")
    if slash and _API_ID.fullmatch(api_id) and _STAGE.fullmatch(stage):
        return api_id, stage
    return None


def parse_log_group(name: str) -> tuple[str, str]:
    """Split an execution log group name into (api_id, stage); the event names no API otherwise.

    The canary's group `…_{api}/{stage}/Canary` is the same API and stage: its failures are the
    stage's incident, remediated by the same workflow (which also resolves the canary's targets).
    """
    if not isinstance(name, str):
        raise ParseError(f"log group name must be a string, not {type(name).__name__}")
    v2 = _v2_group(name)
    if v2 is not None:
        return v2
    if not name.startswith(_LOG_GROUP_PREFIX):
        raise ParseError(f"not an API Gateway execution log group: {_shown(name)}")
    rest = name[len(_LOG_GROUP_PREFIX) :]
    if rest.endswith(_CANARY_SUFFIX) and rest.count("/") == 2:
        rest = rest[: -len(_CANARY_SUFFIX)]
    api_id, slash, stage = rest.partition("/")
    if not slash:
        raise ParseError(f"execution log group has no '/{{stage}}' part: {_shown(name)}")
    if _API_ID.fullmatch(api_id) is None:
        raise ParseError(f"execution log group has an invalid API id {_shown(api_id)}: {_shown(name)}")
    if _STAGE.fullmatch(stage) is None:
        raise ParseError(f"execution log group has an invalid stage name {_shown(stage)}: {_shown(name)}")
    return api_id, stage


def is_permission_failure(message: str) -> bool:
    """Cheap pre-filter for the hot path: a superset of the failure lines parse_line reports."""
    if not isinstance(message, str):
        raise ParseError(f"log message must be a string, not {type(message).__name__}")
    return PERMISSION_FAILURE_PHRASE in message or _HTTP_API_MARK in message


def may_be_failure(message: str) -> bool:
    """A superset of every line parse_line calls a failure, assume-role failures included."""
    return is_permission_failure(message) or _ASSUME_ROLE_PHRASE in message


def request_id_of(message: str) -> str | None:
    """The request id a line starts with, read exactly as parse_line reads it."""
    if not isinstance(message, str):
        raise ParseError(f"log message must be a string, not {type(message).__name__}")
    return _split_prefix(message.strip())[0]


def _split_prefix(text: str) -> tuple[str | None, str]:
    """`(request id) rest` → (request id, rest); (None, text) when the line has no valid prefix."""
    if text.startswith("("):
        match = _PREFIX.match(text)
        if match is not None:
            return match.group(1), text[match.end() :]
    return None, text


def _status(text: str) -> int | None:
    """An HTTP status code, or None: int() would accept signs, spaces and non-ASCII digits."""
    text = text.strip()
    if len(text) == 3 and text.isascii() and text.isdigit():
        return int(text)
    return None


def _token(text: str) -> str | None:
    """An ASCII identifier such as an authorizer id or a gateway response type, else None."""
    if 0 < len(text) <= 64 and text.isascii() and text.replace("_", "").isalnum():
        return text
    return None


def _function_arn(uri: str) -> str | None:
    """The text between /functions/ and /invocations; None if cut off by truncation or odd."""
    start = uri.find(_FUNCTIONS)
    if start < 0:
        return None
    start += len(_FUNCTIONS)
    end = uri.find(_INVOCATIONS, start)
    if end < 0:
        return None
    arn = uri[start:end]
    if "%" in arn:
        arn = unquote(arn)
    if not arn or len(arn) > _MAX_ARN or not arn.isprintable() or " " in arn or "/" in arn:
        return None
    return arn


def _method_line(request_id: str | None, rest: str) -> LogLine:
    """HTTP Method: GET, Resource Path: /pets/{petId} (the resource template, not the URL)."""
    method_text, sep, path_text = rest.partition(_RESOURCE_PATH)
    method_text = method_text.split(",", 1)[0].strip()
    method = (
        method_text
        if 0 < len(method_text) <= 16 and method_text.isascii() and method_text.isalpha()
        else None
    )
    path: str | None = None
    if sep:
        path_text = path_text.strip()
        if (
            path_text.startswith("/")
            and len(path_text) <= _MAX_PATH
            and path_text.isprintable()
            and " " not in path_text
        ):
            path = path_text
    return LogLine(request_id, LineKind.METHOD, method=method, resource_path=path)


def _config_error_line(request_id: str | None, text: str) -> LogLine:
    """The 'Execution failed due to configuration error: ...' family."""
    if text.startswith(_PERMISSION_FAILURE_TEXT):
        return LogLine(request_id, LineKind.PERMISSION_FAILURE)
    if text.startswith(_AUTHORIZER_ERROR_TEXT):
        return LogLine(request_id, LineKind.AUTHORIZER_ERROR)
    if text.startswith(_ASSUME_ROLE_TEXT):
        words = text[len(_ASSUME_ROLE_TEXT) :].split(None, 1)
        role = words[0] if words else None
        if role is not None and (len(role) > _MAX_ARN or not role.isprintable()):
            role = None
        return LogLine(request_id, LineKind.ASSUME_ROLE_FAILURE, role_arn=role)
    return LogLine(request_id, LineKind.OTHER)


def _http_api_line(request_id: str | None, message: str) -> LogLine:
    """HTTP API access-log text, which may sit anywhere in a custom (often JSON) format."""
    at = message.find(_HTTP_API_MARK)
    if at < 0 or _HTTP_API_CALL not in message:
        return LogLine(request_id, LineKind.OTHER)
    subject = message[at + len(_HTTP_API_MARK) : at + len(_HTTP_API_MARK) + 11]
    if subject.startswith("integration"):
        return LogLine(request_id, LineKind.HTTP_API_INTEGRATION_FAILURE)
    if subject.startswith("authorizer"):
        return LogLine(request_id, LineKind.HTTP_API_INTEGRATION_FAILURE, via_authorizer=True)
    return LogLine(request_id, LineKind.OTHER)


def _route(rest: str) -> str | None:
    """`$connect]` → `$connect`: a route key is printable, has no `]`, and is at most 128 characters."""
    route, bracket, _ = rest.partition("]")
    if bracket and 0 < len(route) <= 128 and route.isprintable() and route.strip() == route:
        return route
    return None


def parse_line(message: str) -> LogLine:
    """Classify one log message; junk becomes OTHER so one odd line never stops a batch."""
    if not isinstance(message, str):
        raise ParseError(f"log message must be a string, not {type(message).__name__}")
    request_id, text = _split_prefix(message.strip())
    if text.startswith(_CONFIG_ERROR):
        return _config_error_line(request_id, text)
    if text.startswith(_SENDING):
        return LogLine(request_id, LineKind.SENDING_REQUEST, function_arn=_function_arn(text))
    if text.startswith(_ENDPOINT_URI):
        return LogLine(request_id, LineKind.ENDPOINT_URI, function_arn=_function_arn(text))
    if text.startswith(_METHOD):
        return _method_line(request_id, text[len(_METHOD) :])
    if text.startswith(_START):
        return LogLine(request_id, LineKind.START)
    if text.startswith(_AUTHORIZER_START):
        auth_text = text[len(_AUTHORIZER_START) :].split(" ", 1)[0]
        return LogLine(request_id, LineKind.AUTHORIZER_START, authorizer_id=_token(auth_text))
    if text.startswith(_AUTHORIZER_COMPLETED):
        return LogLine(request_id, LineKind.AUTHORIZER_COMPLETED)
    if text.startswith(_GATEWAY_RESPONSE):
        response_text, _, status_text = text[len(_GATEWAY_RESPONSE) :].partition(_GATEWAY_STATUS)
        return LogLine(
            request_id,
            LineKind.GATEWAY_RESPONSE,
            gateway_response=_token(response_text.strip()),
            status=_status(status_text),
        )
    if text.startswith(_WEBSOCKET_ROUTE):
        return LogLine(request_id, LineKind.WEBSOCKET_ROUTE, route_key=_route(text[len(_WEBSOCKET_ROUTE) :]))
    if text.startswith(_METHOD_COMPLETED):
        return LogLine(request_id, LineKind.METHOD_COMPLETED, status=_status(text[len(_METHOD_COMPLETED) :]))
    if _HTTP_API_MARK in text:
        return _http_api_line(request_id, text)
    return LogLine(request_id, LineKind.OTHER)


@dataclass(slots=True)
class _TraceBuilder:
    """Mutable state while one request's lines are folded; frozen into a RequestTrace at the end."""

    request_id: str | None
    method: str | None = None
    resource_path: str | None = None
    authorizer_id: str | None = None
    permission_failure: bool = False
    authorizer_failure: bool = False
    assume_role_failure: str | None = None
    status: int | None = None
    route_key: str | None = None
    failure_hint: str | None = None
    last_function: str | None = None
    in_authorizer: bool = False

    def add(self, line: LogLine) -> None:
        """Fold one line in; the authorizer runs before the integration, so order matters."""
        kind = line.kind
        if kind is LineKind.ENDPOINT_URI:
            self.last_function = line.function_arn  # a new Lambda call starts here
        elif kind is LineKind.SENDING_REQUEST:
            if line.function_arn is not None:
                self.last_function = line.function_arn
        elif kind is LineKind.METHOD:
            self.in_authorizer = False
            if line.method is not None:
                self.method = line.method
            if line.resource_path is not None:
                self.resource_path = line.resource_path
        elif kind is LineKind.START or kind is LineKind.AUTHORIZER_COMPLETED:
            self.in_authorizer = False
            self.last_function = None
        elif kind is LineKind.AUTHORIZER_START:
            self.in_authorizer = True
            self.last_function = None
            if line.authorizer_id is not None:
                self.authorizer_id = line.authorizer_id
        elif kind is LineKind.PERMISSION_FAILURE:
            if not self.permission_failure:
                self.failure_hint = self.last_function
            self.permission_failure = True
            if self.in_authorizer:
                self.authorizer_failure = True
        elif kind is LineKind.HTTP_API_INTEGRATION_FAILURE:
            self.permission_failure = True
            if line.via_authorizer:
                self.authorizer_failure = True
        elif kind is LineKind.AUTHORIZER_ERROR:
            self.in_authorizer = False
            if self.permission_failure:
                self.authorizer_failure = True
        elif kind is LineKind.GATEWAY_RESPONSE:
            self.in_authorizer = False
            if line.status is not None:
                self.status = line.status
            if self.permission_failure and line.gateway_response in _AUTHORIZER_GATEWAY_RESPONSES:
                self.authorizer_failure = True
        elif kind is LineKind.METHOD_COMPLETED:
            self.in_authorizer = False
            if line.status is not None:
                self.status = line.status
        elif kind is LineKind.ASSUME_ROLE_FAILURE:
            self.assume_role_failure = line.role_arn or ""
        elif kind is LineKind.WEBSOCKET_ROUTE and line.route_key is not None:
            self.route_key = line.route_key

    def build(self) -> RequestTrace:
        """Freeze the folded state."""
        return RequestTrace(
            request_id=self.request_id,
            method=self.method,
            resource_path=self.resource_path,
            function_hint=self.failure_hint if self.permission_failure else self.last_function,
            authorizer_id=self.authorizer_id,
            permission_failure=self.permission_failure,
            authorizer_failure=self.authorizer_failure,
            assume_role_failure=self.assume_role_failure,
            status=self.status,
            route_key=self.route_key,
        )


def group_by_request(lines: Iterable[LogLine]) -> list[RequestTrace]:
    """Fold lines (in log order) into one trace per request id, in first-seen order.

    Lines without a request id cannot be tied to others, so only failures among them are kept,
    each as its own trace.
    """
    builders: list[_TraceBuilder] = []
    by_id: dict[str, _TraceBuilder] = {}
    for line in lines:
        if not isinstance(line, LogLine):
            raise ParseError(f"expected a LogLine, not {type(line).__name__}")
        if line.request_id is None:
            if line.kind in _FAILURE_KINDS:
                orphan = _TraceBuilder(None)
                orphan.add(line)
                builders.append(orphan)
            continue
        builder = by_id.get(line.request_id)
        if builder is None:
            builder = by_id[line.request_id] = _TraceBuilder(line.request_id)
            builders.append(builder)
        builder.add(line)
    return [builder.build() for builder in builders]
