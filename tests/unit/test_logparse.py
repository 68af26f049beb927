"""Unit tests for permheal.logparse: execution-log lines in, request traces out."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permheal.errors import ParseError
from permheal.logparse import (
    PERMISSION_FAILURE_PHRASE,
    LineKind,
    LogLine,
    RequestTrace,
    group_by_request,
    is_permission_failure,
    parse_line,
    parse_log_group,
)

RID = "8b4f5d0e-2c6a-4b8e-9f1d-3a7c5e9b1d2f"
RID2 = "0c2a9e4d-7f13-4e5b-8a6c-1d2e3f4a5b6c"
WS_RID = "Xyz12AbCdEFg="
FN = "arn:aws:lambda:us-east-1:123456789012:function:pets:live"
AUTH_FN = "arn:aws:lambda:us-east-1:123456789012:function:token-auth"
ROLE = "arn:aws:iam::123456789012:role/apigw-invoke"
LAMBDA_URL = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/{}/invocations"
PERM_FAIL = "Execution failed due to configuration error: Invalid permissions on Lambda function"
AUTH_ERR = "Execution failed due to configuration error: Authorizer error"
HTTP_API_INTEGRATION = (
    "The IAM role configured on the integration or API Gateway doesn't have permissions to call the "
    "integration. Check the permissions and try again."
)
HTTP_API_AUTHORIZER = (
    "The IAM role configured on the authorizer or API Gateway doesn’t have permissions to call the "
    "authorizer. Check the permissions and try again."
)


def integration_failure_lines(rid: str, method: str, path: str, fn: str) -> list[str]:
    """The INFO-level sequence API Gateway writes when it may not invoke the integration."""
    url = LAMBDA_URL.format(fn)
    return [
        f"({rid}) Starting execution for request: {rid}",
        f"({rid}) HTTP Method: {method}, Resource Path: {path}",
        f"({rid}) Method request path: {{}}",
        f"({rid}) Endpoint request URI: {url}",
        f"({rid}) Endpoint request headers: {{x-amzn-lambda-integration-tag={rid}, Accept=application/json}}",
        f"({rid}) Sending request to {url}",
        f"({rid}) {PERM_FAIL}",
        f"({rid}) Method completed with status: 500",
    ]


def authorizer_failure_lines(rid: str, authorizer_id: str, fn: str) -> list[str]:
    """The sequence API Gateway writes when it may not invoke a Lambda authorizer."""
    url = LAMBDA_URL.format(fn)
    return [
        f"({rid}) Extended Request Id: abcDEF1234=",
        f"({rid}) Starting authorizer: {authorizer_id} for request: {rid}",
        f"({rid}) Incoming identity: ***abc",
        f"({rid}) Endpoint request URI: {url}",
        f"({rid}) Sending request to {url}",
        f"({rid}) {PERM_FAIL}",
        f"({rid}) {AUTH_ERR}",
        f"({rid}) Gateway response type: AUTHORIZER_CONFIGURATION_ERROR with status code: 500",
    ]


# --- parse_line: one table row per line kind and per log shape -------------------------------

LINE_CASES: list[tuple[str, str, LogLine]] = [
    (
        "start",
        f"({RID}) Starting execution for request: {RID}",
        LogLine(RID, LineKind.START),
    ),
    (
        "method_with_template_path",
        f"({RID}) HTTP Method: GET, Resource Path: /pets/{{petId}}",
        LogLine(RID, LineKind.METHOD, method="GET", resource_path="/pets/{petId}"),
    ),
    (
        "method_any_with_greedy_proxy",
        f"({RID}) HTTP Method: ANY, Resource Path: /{{proxy+}}",
        LogLine(RID, LineKind.METHOD, method="ANY", resource_path="/{proxy+}"),
    ),
    (
        "endpoint_uri",
        f"({RID}) Endpoint request URI: {LAMBDA_URL.format(FN)}",
        LogLine(RID, LineKind.ENDPOINT_URI, function_arn=FN),
    ),
    (
        "sending_request",
        f"({RID}) Sending request to {LAMBDA_URL.format(FN)}",
        LogLine(RID, LineKind.SENDING_REQUEST, function_arn=FN),
    ),
    (
        "sending_request_to_non_lambda_integration",
        f"({RID}) Sending request to https://example.com/pets/42",
        LogLine(RID, LineKind.SENDING_REQUEST),
    ),
    (
        "sending_request_truncated_before_invocations",
        f"({RID}) Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:pe [TRUNCATED]",
        LogLine(RID, LineKind.SENDING_REQUEST),
    ),
    (
        "sending_request_truncated_inside_keyword",
        f"({RID}) Sending requ",
        LogLine(RID, LineKind.OTHER),
    ),
    (
        "authorizer_start",
        f"({RID}) Starting authorizer: abc123 for request: {RID}",
        LogLine(RID, LineKind.AUTHORIZER_START, authorizer_id="abc123"),
    ),
    (
        "authorizer_completed",
        f"({RID}) Successfully completed authorizer execution",
        LogLine(RID, LineKind.AUTHORIZER_COMPLETED),
    ),
    (
        "permission_failure",
        f"({RID}) {PERM_FAIL}",
        LogLine(RID, LineKind.PERMISSION_FAILURE),
    ),
    (
        "authorizer_error",
        f"({RID}) {AUTH_ERR}",
        LogLine(RID, LineKind.AUTHORIZER_ERROR),
    ),
    (
        "assume_role_failure",
        f"({RID}) Execution failed due to configuration error: API Gateway does not have permission to "
        f"assume the provided role {ROLE}",
        LogLine(RID, LineKind.ASSUME_ROLE_FAILURE, role_arn=ROLE),
    ),
    (
        "other_configuration_error",
        f"({RID}) Execution failed due to configuration error: Malformed Lambda proxy response",
        LogLine(RID, LineKind.OTHER),
    ),
    (
        "gateway_response",
        f"({RID}) Gateway response type: AUTHORIZER_CONFIGURATION_ERROR with status code: 500",
        LogLine(
            RID, LineKind.GATEWAY_RESPONSE, gateway_response="AUTHORIZER_CONFIGURATION_ERROR", status=500
        ),
    ),
    (
        "method_completed",
        f"({RID}) Method completed with status: 500",
        LogLine(RID, LineKind.METHOD_COMPLETED, status=500),
    ),
    (
        "http_api_integration_straight_apostrophe",
        f'{{"requestId":"abc","integrationErrorMessage":"{HTTP_API_INTEGRATION}"}}',
        LogLine(None, LineKind.HTTP_API_INTEGRATION_FAILURE),
    ),
    (
        "http_api_authorizer_curly_apostrophe",
        HTTP_API_AUTHORIZER,
        LogLine(None, LineKind.HTTP_API_INTEGRATION_FAILURE, via_authorizer=True),
    ),
    (
        "http_api_integration_curly_apostrophe",
        HTTP_API_INTEGRATION.replace("'", "’"),
        LogLine(None, LineKind.HTTP_API_INTEGRATION_FAILURE),
    ),
    (
        "websocket_extended_request_id",
        f"({WS_RID}) {PERM_FAIL}",
        LogLine(WS_RID, LineKind.PERMISSION_FAILURE),
    ),
    (
        "websocket_request_route",
        f"({WS_RID}) WebSocket Request Route: [$connect]",
        LogLine(WS_RID, LineKind.WEBSOCKET_ROUTE, route_key="$connect"),
    ),
    (
        "websocket_custom_route",
        f"({WS_RID}) WebSocket Request Route: [sendmessage]",
        LogLine(WS_RID, LineKind.WEBSOCKET_ROUTE, route_key="sendmessage"),
    ),
    (
        "websocket_route_without_closing_bracket_names_no_route",
        f"({WS_RID}) WebSocket Request Route: [$conn",
        LogLine(WS_RID, LineKind.WEBSOCKET_ROUTE),
    ),
    (
        "no_prefix_in_very_old_logs",
        PERM_FAIL,
        LogLine(None, LineKind.PERMISSION_FAILURE),
    ),
    (
        "trailing_whitespace_and_newline",
        f"({RID}) Method completed with status: 500 \r\n",
        LogLine(RID, LineKind.METHOD_COMPLETED, status=500),
    ),
    (
        "data_trace_line_is_other",
        f"({RID}) Method request path: {{petId=42}}",
        LogLine(RID, LineKind.OTHER),
    ),
    (
        "empty_text_after_prefix",
        f"({RID})",
        LogLine(RID, LineKind.OTHER),
    ),
    (
        "parenthesised_junk_is_not_a_request_id",
        f"(not an id) {PERM_FAIL}",
        LogLine(None, LineKind.OTHER),
    ),
    (
        "forged_arn_with_slash_is_not_a_hint",
        f"({RID}) Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
        "arn:aws:lambda:us-east-1:123456789012:function:a/b/invocations",
        LogLine(RID, LineKind.SENDING_REQUEST),
    ),
    (
        "percent_encoded_arn_is_decoded",
        f"({RID}) Endpoint request URI: https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/"
        "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Apets%3Alive/invocations",
        LogLine(RID, LineKind.ENDPOINT_URI, function_arn=FN),
    ),
    (
        "non_ascii_status_digits_are_ignored",
        f"({RID}) Method completed with status: ５００",
        LogLine(RID, LineKind.METHOD_COMPLETED),
    ),
    (
        "method_line_truncated_before_path",
        f"({RID}) HTTP Method: POST, Resource Pa",
        LogLine(RID, LineKind.METHOD, method="POST"),
    ),
]


@pytest.mark.parametrize(("message", "expected"), [c[1:] for c in LINE_CASES], ids=[c[0] for c in LINE_CASES])
def test_parse_line_classifies_each_known_line_and_extracts_its_fields(
    message: str, expected: LogLine
) -> None:
    # Given a message as CloudWatch Logs delivers it
    # When it is parsed
    line = parse_line(message)
    # Then kind and fields are exactly the expected ones
    assert line == expected


def test_every_line_kind_is_covered_by_the_table() -> None:
    # Given the table of sample lines
    # When their kinds are collected
    kinds = {expected.kind for _, _, expected in LINE_CASES}
    # Then no kind is left untested
    assert kinds == set(LineKind)


@pytest.mark.parametrize("bad", [None, 42, b"(r) Invalid permissions on Lambda function", ["x"]])
def test_parse_line_rejects_non_string_input_with_parse_error(bad: object) -> None:
    # Given something that is not a str
    # When it is parsed, Then only ParseError escapes
    with pytest.raises(ParseError):
        parse_line(bad)  # type: ignore[arg-type]


def test_log_line_is_immutable() -> None:
    # Given a parsed line
    line = parse_line(f"({RID}) {PERM_FAIL}")
    # When a field is assigned, Then the frozen dataclass refuses
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.kind = LineKind.OTHER  # type: ignore[misc]


# --- is_permission_failure --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"({RID}) {PERM_FAIL}", True),
        (PERM_FAIL, True),
        (HTTP_API_INTEGRATION, True),
        (HTTP_API_AUTHORIZER, True),
        (f"({RID}) {AUTH_ERR}", False),
        (f"({RID}) Method completed with status: 500", False),
        ("", False),
    ],
)
def test_is_permission_failure_spots_the_phrase_and_http_api_variants(message: str, expected: bool) -> None:
    # Given a message, When the hot-path filter runs, Then it flags exactly the failure texts
    assert is_permission_failure(message) is expected


def test_is_permission_failure_rejects_non_string_input() -> None:
    # Given bytes, When filtered, Then ParseError (not TypeError) is raised
    with pytest.raises(ParseError):
        is_permission_failure(b"x")  # type: ignore[arg-type]


def test_permission_failure_phrase_is_the_subscription_filter_text() -> None:
    # Given the constant, Then it is the case-sensitive phrase the filter pattern uses
    assert PERMISSION_FAILURE_PHRASE == "Invalid permissions on Lambda function"


# --- parse_log_group --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod", ("a1b2c3d4e5", "prod")),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/test-invoke-stage", ("a1b2c3d4e5", "test-invoke-stage")),
        ("API-Gateway-Execution-Logs_ABCdef123456789/v1_beta", ("ABCdef123456789", "v1_beta")),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod/Canary", ("a1b2c3d4e5", "prod")),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/Canary", ("a1b2c3d4e5", "Canary")),
    ],
)
def test_parse_log_group_returns_api_id_and_stage(name: str, expected: tuple[str, str]) -> None:
    # Given an execution log group name, When parsed, Then API id and stage come back
    assert parse_log_group(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/aws/lambda/pets", "not an API Gateway execution log group"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5", "no '/{stage}' part"),
        ("API-Gateway-Execution-Logs_/prod", "invalid API id"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod/extra", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod/canary", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod/Canary/Canary", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5//Canary", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2-c3d4/prod", "invalid API id"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/prod\n", "invalid stage name"),
        ("API-Gateway-Execution-Logs_a1b2c3d4e5/" + "s" * 129, "invalid stage name"),
        ("api-gateway-execution-logs_a1b2c3d4e5/prod", "not an API Gateway execution log group"),
        ("", "not an API Gateway execution log group"),
    ],
)
def test_parse_log_group_rejects_other_names_with_a_clear_message(name: str, reason: str) -> None:
    # Given a name that is not API-Gateway-Execution-Logs_{api-id}/{stage}
    # When parsed, Then ParseError says why
    with pytest.raises(ParseError, match=reason.replace("{", r"\{").replace("}", r"\}")):
        parse_log_group(name)


def test_parse_log_group_rejects_non_string_input() -> None:
    # Given None, When parsed, Then ParseError
    with pytest.raises(ParseError, match="must be a string"):
        parse_log_group(None)  # type: ignore[arg-type]


# --- group_by_request -------------------------------------------------------------------------


def test_info_level_integration_failure_yields_method_path_and_function_hint() -> None:
    # Given the INFO-level sequence of a failed integration call
    lines = [parse_line(m) for m in integration_failure_lines(RID, "GET", "/pets/{petId}", FN)]
    # When grouped
    traces = group_by_request(lines)
    # Then one trace names the method, template path and function hint; not an authorizer failure
    assert traces == [
        RequestTrace(
            request_id=RID,
            method="GET",
            resource_path="/pets/{petId}",
            function_hint=FN,
            permission_failure=True,
            status=500,
        )
    ]


def test_error_level_failure_line_alone_yields_a_bare_failure_trace() -> None:
    # Given ERROR-level logging, where only the failure line is written
    lines = [parse_line(f"({RID}) {PERM_FAIL}")]
    # When grouped
    traces = group_by_request(lines)
    # Then the trace knows only that the request failed on permissions
    assert traces == [RequestTrace(request_id=RID, permission_failure=True)]


def test_authorizer_failure_is_told_apart_from_integration_failure() -> None:
    # Given a request whose Lambda authorizer could not be invoked
    lines = [parse_line(m) for m in authorizer_failure_lines(RID, "abc123", AUTH_FN)]
    # When grouped
    (trace,) = group_by_request(lines)
    # Then it is an authorizer failure pointing at the authorizer function
    assert trace == RequestTrace(
        request_id=RID,
        function_hint=AUTH_FN,
        authorizer_id="abc123",
        permission_failure=True,
        authorizer_failure=True,
        status=500,
    )


def test_integration_failure_after_successful_authorizer_is_not_an_authorizer_failure() -> None:
    # Given an authorizer that succeeded, then an integration that could not be invoked
    auth_url = LAMBDA_URL.format(AUTH_FN)
    messages = [
        f"({RID}) Starting authorizer: abc123 for request: {RID}",
        f"({RID}) Endpoint request URI: {auth_url}",
        f"({RID}) Sending request to {auth_url}",
        f"({RID}) Authorizer result body before parsing: {{}}",
        f"({RID}) Successfully completed authorizer execution",
        *integration_failure_lines(RID, "POST", "/orders", FN),
    ]
    # When grouped
    (trace,) = group_by_request(parse_line(m) for m in messages)
    # Then the failure is the integration's, with the integration function as hint
    assert trace.permission_failure is True
    assert trace.authorizer_failure is False
    assert trace.function_hint == FN
    assert trace.authorizer_id == "abc123"
    assert (trace.method, trace.resource_path) == ("POST", "/orders")


def test_error_level_authorizer_failure_is_recognised_by_the_following_authorizer_error() -> None:
    # Given ERROR-level logging: the two configuration-error lines only
    lines = [parse_line(f"({RID}) {PERM_FAIL}"), parse_line(f"({RID}) {AUTH_ERR}")]
    # When grouped, Then the authorizer error marks it as an authorizer failure
    assert group_by_request(lines) == [RequestTrace(RID, permission_failure=True, authorizer_failure=True)]


def test_two_interleaved_requests_are_separated_in_first_seen_order() -> None:
    # Given the lines of an integration failure and an authorizer failure, interleaved
    first = integration_failure_lines(RID, "GET", "/pets/{petId}", FN)
    second = authorizer_failure_lines(RID2, "zz9abc", AUTH_FN)
    interleaved = [m for pair in zip(first, second, strict=True) for m in pair]
    # When grouped
    traces = group_by_request(parse_line(m) for m in interleaved)
    # Then each request keeps its own facts, in the order first seen
    assert [t.request_id for t in traces] == [RID, RID2]
    assert traces[0].authorizer_failure is False
    assert traces[0].function_hint == FN
    assert traces[1].authorizer_failure is True
    assert traces[1].function_hint == AUTH_FN
    assert traces[1].method is None


def test_truncated_sending_request_keeps_the_hint_from_the_endpoint_uri_line() -> None:
    # Given a full Endpoint request URI line followed by a truncated Sending request line
    messages = [
        f"({RID}) Endpoint request URI: {LAMBDA_URL.format(FN)}",
        f"({RID}) Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn:aws:la",
        f"({RID}) {PERM_FAIL}",
    ]
    # When grouped
    (trace,) = group_by_request(parse_line(m) for m in messages)
    # Then the hint survives the truncation
    assert trace.function_hint == FN


def test_assume_role_failure_is_reported_with_its_role() -> None:
    # Given an integration whose credentials role API Gateway cannot assume
    messages = [
        f"({RID}) HTTP Method: GET, Resource Path: /pets",
        f"({RID}) Execution failed due to configuration error: API Gateway does not have permission to "
        f"assume the provided role {ROLE}",
        f"({RID}) Method completed with status: 500",
    ]
    # When grouped
    (trace,) = group_by_request(parse_line(m) for m in messages)
    # Then the role is reported and no invoke permission is claimed missing
    assert trace.assume_role_failure == ROLE
    assert trace.permission_failure is False


def test_unprefixed_lines_become_one_trace_per_failure_and_others_are_dropped() -> None:
    # Given very old logs without request ids: noise, two failures, and a WebSocket-prefixed one
    messages = [
        "Starting execution for request: 1",
        PERM_FAIL,
        "Method completed with status: 500",
        HTTP_API_AUTHORIZER,
        f"({WS_RID}) {PERM_FAIL}",
    ]
    # When grouped
    traces = group_by_request(parse_line(m) for m in messages)
    # Then each unprefixed failure is its own trace under None, in order
    assert traces == [
        RequestTrace(None, permission_failure=True),
        RequestTrace(None, permission_failure=True, authorizer_failure=True),
        RequestTrace(WS_RID, permission_failure=True),
    ]


def test_group_by_request_rejects_non_log_lines() -> None:
    # Given raw strings instead of LogLines, When grouped, Then ParseError
    with pytest.raises(ParseError):
        group_by_request(["not a LogLine"])  # type: ignore[list-item]


def test_group_by_request_of_nothing_is_empty() -> None:
    # Given no lines, When grouped, Then no traces
    assert group_by_request([]) == []


# --- properties -------------------------------------------------------------------------------

_KNOWN_STARTS = [
    "",
    f"({RID}) ",
    f"({WS_RID}) ",
    "(",
    "Execution failed due to configuration error: ",
    PERM_FAIL,
    "Execution failed due to configuration error: API Gateway does not have permission to assume the "
    "provided role ",
    "Sending request to ",
    "Sending request to https://lambda/2015-03-31/functions/",
    "Endpoint request URI: ",
    "HTTP Method: ",
    "HTTP Method: GET, Resource Path: ",
    "Starting execution for request",
    "Starting authorizer: ",
    "Successfully completed authorizer execution",
    "Gateway response type: ",
    "Gateway response type: X with status code: ",
    "Method completed with status: ",
    "The IAM role configured on the ",
    "The IAM role configured on the integration have permissions to call the ",
]

_any_text = st.text(st.characters(codec="utf-8"), max_size=300)
_messages = st.one_of(
    _any_text,
    st.builds(
        lambda a, b, c: a + b + c, st.sampled_from(_KNOWN_STARTS), st.sampled_from(_KNOWN_STARTS), _any_text
    ),
)


@given(_messages)
def test_parse_line_never_raises_on_arbitrary_text(message: str) -> None:
    # Given arbitrary text (non-ASCII, control characters, near-miss prefixes)
    # When parsed
    line = parse_line(message)
    # Then a LogLine comes back, and every failure it reports passes the hot-path filter
    assert isinstance(line, LogLine)
    assert isinstance(line.kind, LineKind)
    if line.kind in (LineKind.PERMISSION_FAILURE, LineKind.HTTP_API_INTEGRATION_FAILURE):
        assert is_permission_failure(message)


@given(
    st.one_of(
        _any_text,
        st.builds(lambda s: "API-Gateway-Execution-Logs_" + s, _any_text),
    )
)
def test_parse_log_group_returns_or_raises_parse_error_only(name: str) -> None:
    # Given arbitrary text
    # When parsed as a log group
    try:
        api_id, stage = parse_log_group(name)
    except ParseError:
        return
    # Then a success puts both parts back together into the same name (or its canary group)
    assert name in (
        f"API-Gateway-Execution-Logs_{api_id}/{stage}",
        f"API-Gateway-Execution-Logs_{api_id}/{stage}/Canary",
    )


_methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"])
_segment = st.one_of(
    st.from_regex(r"[A-Za-z0-9._-]{1,20}", fullmatch=True),
    st.from_regex(r"\{[A-Za-z][A-Za-z0-9]{0,15}\}", fullmatch=True),
)
_paths = st.builds(
    lambda segments, proxy: "/" + "/".join(segments + (["{proxy+}"] if proxy else [])),
    st.lists(_segment, max_size=6),
    st.booleans(),
)
_functions = st.builds(
    lambda region, account, name, qualifier: (
        f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")
    ),
    st.sampled_from(["us-east-1", "eu-west-3", "ap-southeast-2"]),
    st.from_regex(r"[0-9]{12}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)),
)


@given(_methods, _paths, _functions, st.uuids(), st.booleans())
def test_realistic_failure_sequence_round_trips_to_its_trace(
    method: str, path: str, fn: str, rid: uuid.UUID, with_authorizer: bool
) -> None:
    # Given the execution log of a request with random method, path and function
    request_id = str(rid)
    messages = integration_failure_lines(request_id, method, path, fn)
    if with_authorizer:
        auth_url = LAMBDA_URL.format(AUTH_FN)
        messages = [
            f"({request_id}) Starting authorizer: abc123 for request: {request_id}",
            f"({request_id}) Endpoint request URI: {auth_url}",
            f"({request_id}) Sending request to {auth_url}",
            f"({request_id}) Successfully completed authorizer execution",
            *messages,
        ]
    # When every line is parsed and grouped
    traces = group_by_request(parse_line(m + "\n") for m in messages)
    # Then the single trace carries back what was written
    assert traces == [
        RequestTrace(
            request_id=request_id,
            method=method,
            resource_path=path,
            function_hint=fn,
            authorizer_id="abc123" if with_authorizer else None,
            permission_failure=True,
            status=500,
        )
    ]
