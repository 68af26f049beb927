"""The optimised detector finds exactly what the reference detector (tests/reference, as it was) finds.

Every batch shape the detector meets: INFO-level mixed traffic, storms of failure lines (one request
each, uniform or mixed request ids, one or several windows), the same line again and again, WebSocket
execution logs, HTTP API access logs in JSON (any key naming, nesting, many APIs) and CLF, and forged
or malformed lines. Same incidents (API, stage, window, failures, first seen, hints, execution name),
same failure-line count, same role failures, or both reject the batch.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import detector as bench
from benchmarks.logs import mixed_traffic
from permheal import accesslog, detection, logparse
from permheal.errors import ParseError
from tests.reference import accesslog as reference_accesslog
from tests.reference import detection as reference
from tests.reference import logparse as reference_logparse

WINDOW_MS = 900_000
START_MS = 1_763_715_600_000  # a window start
REST_GROUP = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
GROUPS = (
    REST_GROUP,
    REST_GROUP + "/Canary",
    "/aws/apigateway/w1s2o3c4k5/production",
    "/aws/vendedlogs/http-api/access",
    "/aws/apigateway/access-logs",
    "bad group name!",
)
FN = "arn:aws:lambda:us-east-1:123456789012:function:pets:live"
URI = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/{}/invocations"
FAILURE = "Execution failed due to configuration error: Invalid permissions on Lambda function"
INTEGRATION = (
    "The IAM role configured on the integration or API Gateway doesn't have permissions to call the "
    "integration. Check the permissions and try again."
)
ACCESS_FAILURES = (
    INTEGRATION,
    INTEGRATION.replace("integration", "authorizer"),
    INTEGRATION.replace("'", "’"),
    INTEGRATION.replace("'", "\\u2019"),
    INTEGRATION.replace("call the integration", "call the authorizer"),  # no such message
    "API Gateway does not have permission to assume the provided role arn:aws:iam::123456789012:role/r",
    "could not ASSUME the role",
    "The IAM role configured on the ",
    "-",
    "OK",
)
EXECUTION_TEXTS = (
    "Extended Request Id: N7RjdGhNIAMF_Xg=",
    "Starting execution for request: r",
    "HTTP Method: GET, Resource Path: /pets/{petId}",
    "HTTP Method: POST, Resource Path: /pets",
    "HTTP Method: D3L, Resource Path: pets",
    "Endpoint request URI: " + URI.format(FN),
    "Endpoint request URI: " + URI.format("arn:aws:lambda:us-east-1:123456789012:function:orders"),
    "Sending request to " + URI.format(FN),
    "Sending request to " + URI.format("arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Ax"),
    "Starting authorizer: x7y8z9 for request: r",
    "Starting authorizer: not valid!",
    "Successfully completed authorizer execution",
    FAILURE,
    FAILURE + " arn:aws:lambda:us-east-1:123456789012:function:pets",
    "Execution failed due to configuration error: Authorizer error",
    "Execution failed due to configuration error: API Gateway does not have permission to assume the "
    "provided role arn:aws:iam::123456789012:role/apigw",
    "Gateway response type: AUTHORIZER_CONFIGURATION_ERROR with status code: 500",
    "Gateway response type: DEFAULT_5XX with status code: 502",
    "Method completed with status: 500",
    "WebSocket Request Route: [$connect]",
    "WebSocket Request Route: [sendmessage]",
    INTEGRATION,
    INTEGRATION.replace("integration", "authorizer"),
    "Invalid permissions on Lambda function",
    "",
    "ünïcødé ✓ junk",
)
REQUEST_IDS = (
    "6f1d0c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6",
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "N7RjdGhNIAMF_Xg=",
    "r1",
    "bad id",
)


def outcome(module: Any, batch: tuple[str, str, tuple[tuple[int, str], ...]]) -> Any:
    """What a detector makes of a batch, in plain values; ("rejected",) when it raises ParseError."""
    group, message_type, events = batch
    try:
        found = module.detect(module.LogBatch(group, message_type, events))
    except ParseError:
        return ("rejected",)
    return (
        [
            (
                i.api_id,
                i.stage,
                i.window_start,
                i.log_group,
                i.failures,
                i.first_seen_ms,
                i.hints,
                i.access_log,
                i.execution_name,
                i.execution_input(),
            )
            for i in found.incidents
        ],
        found.failure_lines,
        found.role_failures,
    )


def assert_same(group: str, events: list[tuple[int, str]], message_type: str = "DATA_MESSAGE") -> Any:
    batch = (group, message_type, tuple(events))
    expected = outcome(reference, batch)
    assert outcome(detection, batch) == expected
    # Each optimised branch on its own: the id search, the per-length pass and the per-line pass.
    for budget, lengths in ((0, 8), (0, 0)):
        with (
            mock.patch.object(detection, "_SCAN_BUDGET", budget),
            mock.patch.object(detection, "_PREFIX_LENGTHS_LIMIT", lengths),
        ):
            assert outcome(detection, batch) == expected
    return expected


def stamps(count: int, offset: int, spread: int) -> list[int]:
    return [START_MS + offset + index * spread for index in range(count)]


prefix = st.one_of(
    st.sampled_from(REQUEST_IDS).map(lambda rid: f"({rid}) "),
    st.sampled_from(REQUEST_IDS).map(lambda rid: f"  ({rid})\t"),
    st.sampled_from(REQUEST_IDS).map(lambda rid: f"({rid})"),
    st.sampled_from(["", "(", "(r1 ", "() "]),
)
execution_line = st.builds(
    lambda p, text, tail: p + text + tail,
    prefix,
    st.sampled_from(EXECUTION_TEXTS),
    st.sampled_from(["", "  ", "\n"]),
)
offsets = st.integers(min_value=-2 * WINDOW_MS, max_value=2 * WINDOW_MS)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(GROUPS),
    st.lists(st.tuples(offsets, execution_line), max_size=30),
)
def test_any_execution_lines_in_any_group_and_order(group: str, lines: list[tuple[int, str]]) -> None:
    assert_same(group, [(START_MS + offset, line) for offset, line in lines])


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(GROUPS[:3]),
    st.integers(min_value=1, max_value=60),
    st.lists(st.sampled_from(EXECUTION_TEXTS[12:17] + EXECUTION_TEXTS[21:23]), min_size=1, max_size=3),
    st.sampled_from(["uuid", "extended", "mixed lengths", "one repeated"]),
    offsets,
    st.sampled_from([0, 1, 40_000]),
    st.sampled_from([" ", "\t", "  ", ""]),
)
def test_storms_of_failure_lines(
    group: str, count: int, texts: list[str], ids: str, offset: int, spread: int, blank: str
) -> None:
    def rid(index: int) -> str:
        if ids == "uuid":
            return str(uuid.UUID(int=index + 1))
        if ids == "extended":
            return uuid.UUID(int=index + 1).hex[-15:] + "="
        if ids == "mixed lengths":
            return f"r{index}"
        return "r1"

    lines = [f"({rid(i)}){blank}{texts[i % len(texts)]}" for i in range(count)]
    assert_same(group, list(zip(stamps(count, offset, spread), lines, strict=True)))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(GROUPS), st.integers(min_value=1, max_value=50), execution_line, offsets)
def test_the_same_line_again_and_again(group: str, count: int, line: str, offset: int) -> None:
    assert_same(group, [(START_MS + offset + i, line) for i in range(count)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]),
    st.sampled_from(GROUPS[:3]),
)
def test_mixed_info_level_traffic(seed: int, failure_rate: float, group: str) -> None:
    traffic = mixed_traffic(20_000, failure_rate, seed=seed, start_ms=START_MS - 5_000)
    assert_same(group, list(traffic.events))


def access_json(
    api_key: str, api: str | None, stage: str | None, route: str | None, error: str, index: int, nested: bool
) -> str:
    fields: dict[str, Any] = {"requestId": f"R{index}=", "status": 500, "latency": 1.5, "ok": False}
    if api is not None:
        fields[api_key] = api
    if stage is not None:
        fields["stage"] = stage
    if route is not None:
        fields["routeKey"] = route
    if nested:
        fields["context"] = {"error": {"message": error}, "list": [error, 3]}
    else:
        fields["integrationErrorMessage"] = error
    return json.dumps(fields, ensure_ascii=index % 2 == 0)


access_json_line = st.builds(
    access_json,
    st.sampled_from(["apiId", "api_id", "context.apiId", "API-ID"]),
    st.sampled_from([None, "a1b2c3d4e5", "b2", "-", "bad id!"]),
    st.sampled_from([None, "prod", "$default", "-"]),
    st.sampled_from([None, "GET /pets/{id}", "$default", "$connect", "-", "GET  /x", "POST /pets"]),
    st.sampled_from(ACCESS_FAILURES),
    st.integers(min_value=0, max_value=10**6),
    st.booleans(),
)
access_clf_line = st.builds(
    lambda ip, method, target, rid, error, pad: (
        f'{pad}{ip} - - [05/Dec/2026:08:00:00 +0000] "{method} {target} HTTP/1.1" 500 35 {rid} {error}{pad}'
    ),
    st.sampled_from(["203.0.113.7", '"quoted"', "-"]),
    st.sampled_from(["GET", "POST", "ANY", "get"]),
    st.sampled_from(["$default", "GET /pets/{id}", "/pets/42", "ANY /x", "$connect"]),
    st.sampled_from(["AqCiOhxcLPEEMIA=", "-", "x" * 200]),
    st.sampled_from(ACCESS_FAILURES),
    st.sampled_from(["", " ", "\t"]),
)
forged_line = st.one_of(
    st.sampled_from(
        [
            "{not json " + INTEGRATION,
            '{"a": ' * 50 + INTEGRATION,
            "[" + json.dumps(INTEGRATION) + "]",
            INTEGRATION + " The IAM role configured on the ",
            '"GET $default HTTP/1.1" ' + INTEGRATION,
            'x "GET $default HTTP/1.1 ' + INTEGRATION,
        ]
    ),
    st.text(max_size=80),
    execution_line,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(GROUPS),
    st.lists(st.tuples(offsets, st.one_of(access_json_line, access_clf_line, forged_line)), max_size=25),
)
def test_access_log_lines_json_clf_and_forged(group: str, lines: list[tuple[int, str]]) -> None:
    assert_same(group, [(START_MS + offset, line) for offset, line in lines])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=120),
    st.sampled_from(["json", "clf"]),
    st.integers(min_value=1, max_value=30),
    offsets,
)
def test_access_log_storms_across_many_apis(count: int, form: str, apis: int, offset: int) -> None:
    routes = ("GET /pets/{id}", "POST /pets", "$default")

    def line(index: int) -> str:
        if form == "json":
            return bench._access_json(index, f"api{index % apis}", "prod", routes[index % 3])
        return (
            f'203.0.113.{index % 250} - - [21/Nov/2025:10:00:00 +0000] "GET {routes[index % 3]} HTTP/1.1" '
            f"500 35 R{index}= {INTEGRATION}"
        )

    assert_same(GROUPS[3], [(START_MS + offset + i * 997, line(i)) for i in range(count)])


@pytest.mark.parametrize("shape", bench.shapes(quick=True), ids=lambda shape: shape.name)
def test_every_benchmark_shape(shape: bench.Shape) -> None:
    # The benchmark's own batches: what it measures is what the reference finds
    assert assert_same(shape.log_group, list(shape.events)) != ("rejected",)


def test_control_messages_and_unknown_types_alike() -> None:
    assert assert_same(REST_GROUP, [(START_MS, FAILURE)], "CONTROL_MESSAGE") == ([], 0, ())
    assert assert_same(REST_GROUP, [(START_MS, FAILURE)], "SOMETHING_ELSE") == ("rejected",)


@settings(max_examples=300, deadline=None)
@given(st.one_of(execution_line, access_json_line, access_clf_line, forged_line))
def test_each_line_reads_as_before(message: str) -> None:
    assert logparse.parse_line(message) == _as_new_line(reference_logparse.parse_line(message))
    before = reference_accesslog.parse_access_line(message)
    after = accesslog.parse_access_line(message)
    assert (after is None) == (before is None)
    if before is not None and after is not None:
        assert (
            after.kind.value,
            after.api_id,
            after.stage,
            after.route_key,
            after.request_id,
            after.role_arn,
        ) == (
            before.kind.value,
            before.api_id,
            before.stage,
            before.route_key,
            before.request_id,
            before.role_arn,
        )
    read = None if after is None else (after.kind, after.api_id, after.stage, after.route_key, after.role_arn)
    assert accesslog.read_access_failures([(7, message)]) == ([] if read is None else [(7, read)])


def _as_new_line(line: reference_logparse.LogLine) -> logparse.LogLine:
    fields = {name: getattr(line, name) for name in logparse.LogLine.__slots__}
    fields["kind"] = logparse.LineKind(line.kind.value)
    return logparse.LogLine(**fields)


def _payload(document: Any) -> dict[str, Any]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return {"awslogs": {"data": base64.b64encode(gzip.compress(body)).decode()}}


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.builds(
            lambda group, events: {"messageType": "DATA_MESSAGE", "logGroup": group, "logEvents": events},
            st.sampled_from(GROUPS),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "timestamp": st.one_of(
                            st.integers(0, 2**41), st.sampled_from(["12", 1.5, True, None])
                        ),
                        "message": st.one_of(execution_line, st.integers(), st.none()),
                    }
                ),
                max_size=5,
            ),
        ),
        st.sampled_from([[1, 2], {"logEvents": "x"}, {"messageType": 1, "logGroup": 2, "logEvents": {}}]),
    )
)
def test_decode_reads_payloads_as_before(document: Any) -> None:
    event = _payload(document)
    try:
        expected: Any = reference.decode(event)
    except ParseError:
        expected = ParseError
    try:
        found: Any = detection.decode(event)
    except ParseError:
        found = ParseError
    if expected is ParseError or found is ParseError:
        assert found is expected
    else:
        assert (found.log_group, found.message_type, found.events) == (
            expected.log_group,
            expected.message_type,
            expected.events,
        )
