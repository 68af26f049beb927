"""HTTP API access-log lines: failures recognised by value in JSON and CLF formats, context read robustly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.accesslog import (
    ACCESS_LOG_PHRASE,
    ASSUME_ROLE_PHRASE,
    AccessFailure,
    AccessFailureKind,
    StageLog,
    locate_stage,
    log_group_of,
    may_be_access_failure,
    parse_access_line,
    route_hint,
    stages_writing_to,
)
from permheal.errors import AmbiguousApiError, NotFoundError

INTEGRATION = (
    "The IAM role configured on the integration or API Gateway doesn't have permissions to call the "
    "integration. Check the permissions and try again."
)
AUTHORIZER = INTEGRATION.replace("integration", "authorizer")
CURLY = INTEGRATION.replace("'", "’")
ROLE = "arn:aws:iam::123456789012:role/api-invoker"
ASSUME = f"API Gateway does not have permission to assume the provided role {ROLE}"
REQUEST_ID = "AqCiOhxcLPEEMIA="
CLF = (
    f'203.0.113.7 - - [05/Dec/2026:08:00:00 +0000] "GET $default HTTP/1.1" 500 35 {REQUEST_ID} ' + INTEGRATION
)

INTEG, AUTH, ROLE_FAULT = (
    AccessFailureKind.INTEGRATION,
    AccessFailureKind.AUTHORIZER,
    AccessFailureKind.ASSUME_ROLE,
)


def js(**fields: object) -> str:
    return json.dumps(fields, ensure_ascii=False)


CASES = [
    (
        "json_console_default_keys",
        js(
            requestId=REQUEST_ID,
            apiId="a1b2c3d4e5",
            stage="$default",
            routeKey="GET /pets/{id}",
            status="500",
            integrationErrorMessage=INTEGRATION,
        ),
        AccessFailure(INTEG, "a1b2c3d4e5", "$default", "GET /pets/{id}", REQUEST_ID),
    ),
    (
        "json_snake_case_keys_and_curly_apostrophe",
        js(request_id=REQUEST_ID, api_id="a1b2c3d4e5", stage_name="prod", route_key="$default", err=CURLY),
        AccessFailure(INTEG, "a1b2c3d4e5", "prod", "$default", REQUEST_ID),
    ),
    (
        "json_nested_context_object",
        js(context={"apiId": "a1b2c3d4e5", "stage": "prod", "routeKey": "ANY /{proxy+}"}, error=INTEGRATION),
        AccessFailure(INTEG, "a1b2c3d4e5", "prod", "ANY /{proxy+}"),
    ),
    (
        "json_escaped_curly_apostrophe",
        json.dumps({"apiId": "a1b2c3d4e5", "integrationError": CURLY}),  # ensure_ascii: \u2019
        AccessFailure(INTEG, "a1b2c3d4e5"),
    ),
    (
        "json_authorizer_variant",
        js(apiId="a1b2c3d4e5", stage="prod", routeKey="GET /pets", authorizerError=AUTHORIZER),
        AccessFailure(AUTH, "a1b2c3d4e5", "prod", "GET /pets"),
    ),
    (
        "json_without_api_id_or_stage",
        js(requestId=REQUEST_ID, integrationErrorMessage=INTEGRATION),
        AccessFailure(INTEG, request_id=REQUEST_ID),
    ),
    (
        "json_assume_role_variant_names_the_role",
        js(apiId="a1b2c3d4e5", stage="prod", integrationErrorMessage=ASSUME),
        AccessFailure(ROLE_FAULT, "a1b2c3d4e5", "prod", role_arn=ROLE),
    ),
    (
        "json_permission_failure_wins_over_an_assume_role_value",
        js(a=ASSUME, b=INTEGRATION),
        AccessFailure(INTEG),
    ),
    (
        "clf_real_line",
        CLF,
        AccessFailure(INTEG, route_key="$default", request_id=REQUEST_ID),
    ),
    (
        "clf_curly_apostrophe",
        CLF.replace("'", "’"),
        AccessFailure(INTEG, route_key="$default", request_id=REQUEST_ID),
    ),
    (
        "clf_route_key_with_method",
        CLF.replace('"GET $default HTTP/1.1"', '"GET GET /pets/{id} HTTP/1.1"'),
        AccessFailure(INTEG, route_key="GET /pets/{id}", request_id=REQUEST_ID),
    ),
    (
        "clf_raw_path_is_not_a_route",
        CLF.replace('"GET $default HTTP/1.1"', '"GET /pets/42 HTTP/1.1"'),
        AccessFailure(INTEG, request_id=REQUEST_ID),
    ),
    (
        "clf_authorizer_variant",
        CLF.replace(INTEGRATION, AUTHORIZER),
        AccessFailure(AUTH, route_key="$default", request_id=REQUEST_ID),
    ),
    (
        "bare_message_only",
        INTEGRATION,
        AccessFailure(INTEG),
    ),
    (
        "assume_role_text_line",
        f"{REQUEST_ID} {ASSUME}",
        AccessFailure(ROLE_FAULT, role_arn=ROLE),
    ),
]


@pytest.mark.parametrize(("line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_access_line_failure_and_context_are_read_by_value(line: str, expected: AccessFailure) -> None:
    # Given an access-log line in some user-chosen format
    # When it is parsed
    # Then the failure kind and exactly the context the format carries are read
    assert parse_access_line(line) == expected


FORGED_OR_NOT_FAILURES = [
    pytest.param(js(status="200", routeKey="GET /pets"), id="healthy-request"),
    pytest.param(js(error="The IAM role configured on the "), id="mark-only"),
    pytest.param(INTEGRATION.replace("call the integration", "call the authorizer"), id="subjects-disagree"),
    pytest.param(INTEGRATION.replace("doesn't", "does not"), id="reworded"),
    pytest.param(INTEGRATION.lower(), id="lower-case"),
    pytest.param(js(**{INTEGRATION: "key, not a value"}), id="phrase-as-json-key"),
]


@pytest.mark.parametrize("line", FORGED_OR_NOT_FAILURES)
def test_lines_that_are_not_the_failure_message_are_not_failures(line: str) -> None:
    assert parse_access_line(line) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"apiId": "../../etc", "stage": "prod"}, (None, "prod"), id="api-id-with-slashes"),
        pytest.param({"apiId": "a1b2c3d4e5", "stage": "prod/x"}, ("a1b2c3d4e5", None), id="nested-stage"),
        pytest.param({"apiId": "a" * 65, "stage": "-"}, (None, None), id="api-id-too-long-empty-stage"),
        pytest.param({"apiId": "ａｂｃ", "stage": "prod"}, (None, "prod"), id="full-width-api-id"),
        pytest.param({"apiId": "x1", "ctx": {"apiId": "x2"}}, (None, None), id="two-different-api-ids"),
        pytest.param({"apiId": "x1", "ctx": {"apiId": "x1"}}, ("x1", None), id="same-api-id-twice"),
        pytest.param({"apiId": 12345, "stage": True}, ("12345", None), id="non-string-values"),
        pytest.param({"d": {"e": {"f": {"g": {"apiId": "deep"}}}}}, (None, None), id="deeper-than-4"),
    ],
)
def test_odd_or_ambiguous_context_values_are_dropped_not_guessed(
    fields: dict[str, object], expected: tuple[str | None, str | None]
) -> None:
    # Given a failure line whose context fields are odd, forged or ambiguous
    line = json.dumps({**fields, "integrationErrorMessage": INTEGRATION})
    # When it is parsed
    found = parse_access_line(line)
    # Then the failure is still seen, and only valid, unambiguous context is kept
    assert found is not None and found.kind is INTEG
    assert (found.api_id, found.stage) == expected


def test_route_key_with_control_characters_is_no_route() -> None:
    found = parse_access_line(js(routeKey="GET /a\nb", e=INTEGRATION))
    assert found is not None and found.route_key is None


def test_truncated_json_is_still_a_failure_read_as_text() -> None:
    # Given a JSON line cut off after the message
    line = js(apiId="a1b2c3d4e5", integrationErrorMessage=INTEGRATION)[:-5]
    # When it is parsed
    found = parse_access_line(line)
    # Then the failure counts, but nothing is read from the broken document
    assert found == AccessFailure(INTEG)


@pytest.mark.parametrize(
    ("route_key", "expected"),
    [
        ("GET /pets/{id}", ("GET", "/pets/{id}")),
        ("ANY /{proxy+}", ("ANY", "/{proxy+}")),
        ("$default", ("ANY", "$default")),
        ("$connect", (None, None)),
        ("sendmessage", (None, None)),
        ("get /pets", (None, None)),
        ("GET pets", (None, None)),
        (None, (None, None)),
    ],
)
def test_route_hint_gives_method_and_path_for_http_route_keys_only(
    route_key: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert route_hint(route_key) == expected


def test_filter_phrases_occur_in_every_message_detection_needs() -> None:
    # The subscription's phrases must match every failure the parser reports, apostrophe either way.
    for message in (INTEGRATION, AUTHORIZER, CURLY, CURLY.replace("integration", "authorizer")):
        assert ACCESS_LOG_PHRASE in message
    assert ASSUME_ROLE_PHRASE in ASSUME


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([INTEGRATION, CURLY, AUTHORIZER, ASSUME, '{"', "}", '"', " ", "apiId", "\\u2019"])
        | st.text(max_size=20),
        max_size=8,
    )
)
def test_parse_never_raises_and_reports_only_what_the_prefilter_lets_through(parts: list[str]) -> None:
    line = "".join(parts)
    found = parse_access_line(line)
    if found is not None:
        assert may_be_access_failure(line)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:logs:us-east-1:123456789012:log-group:/access/pets", "/access/pets"),
        ("arn:aws:logs:us-east-1:123456789012:log-group:/access/pets:*", "/access/pets"),
        ("arn:aws-cn:logs:cn-north-1:123456789012:log-group:api-logs", "api-logs"),
        ("arn:aws:firehose:us-east-1:123456789012:deliverystream/amazon-apigateway-x", None),
        ("arn:aws:logs:us-east-1:123456789012:log-group:", None),
        ("/access/pets", None),
        (None, None),
    ],
)
def test_log_group_of_a_destination_arn(arn: str | None, expected: str | None) -> None:
    assert log_group_of(arn) == expected


def test_stages_writing_to_a_group_are_narrowed_never_widened_by_the_line() -> None:
    dest = "arn:aws:logs:us-east-1:123456789012:log-group:/access/shared"
    stages = [
        StageLog("api1", "prod", dest),
        StageLog("api1", "$default", dest + ":*"),
        StageLog("api2", "prod", "arn:aws:logs:us-east-1:123456789012:log-group:/access/other"),
        StageLog("api3", "prod", None),
    ]
    assert [s.stage for s in stages_writing_to(stages, "/access/shared")] == ["prod", "$default"]
    assert stages_writing_to(stages, "/access/shared", "api1", "prod") == (stages[0],)
    assert stages_writing_to(stages, "/access/shared", "api2") == ()  # api2 writes elsewhere
    assert stages_writing_to(stages, "/access/shared", stage="beta") == ()
    assert locate_stage(stages, "/access/other") == stages[2]
    with pytest.raises(AmbiguousApiError, match="api1/prod, api1/\\$default"):
        locate_stage(stages, "/access/shared")
    with pytest.raises(NotFoundError, match="API 'api2'"):
        locate_stage(stages, "/access/shared", "api2")


def test_deeply_nested_json_is_read_as_text_not_a_crash() -> None:
    line = '{"a":' * 10_000 + json.dumps(INTEGRATION) + "}" * 10_000
    assert parse_access_line(line) == AccessFailure(INTEG)
