"""Lambda function references, integration URIs and execute-api source ARNs (permheal.arns)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arns import (
    ApiRef,
    FunctionRef,
    IntegrationUri,
    SourcePattern,
    execute_api_source,
    parse_function,
    parse_integration_uri,
    resolve_integration_function,
    substitute_stage_variables,
    wildcard_path,
)
from permheal.errors import ParseError

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"
API_CONTEXT = {"partition": "aws", "region": REGION, "account": ACCOUNT}


def lambda_uri(function_text: str, region: str = REGION, partition: str = "aws") -> str:
    return f"arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function_text}/invocations"


def ref(name: str = "orders", qualifier: str | None = None, **where: str) -> FunctionRef:
    base = {**API_CONTEXT, **where}
    return FunctionRef(base["partition"], base["region"], base["account"], name, qualifier)


# --- parse_function --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FN_ARN, ref()),
        (f"{FN_ARN}:live", ref(qualifier="live")),
        (f"{FN_ARN}:42", ref(qualifier="42")),
        (f"{FN_ARN}:$LATEST", ref()),
        (f"{ACCOUNT}:function:orders", ref()),
        (f"{ACCOUNT}:function:orders:live", ref(qualifier="live")),
        (f"{ACCOUNT}:function:orders:$LATEST", ref()),
        ("orders", ref()),
        ("orders:live", ref(qualifier="live")),
        ("orders:7", ref(qualifier="7")),
        ("orders:$LATEST", ref()),
        ("my_fn-2", ref(name="my_fn-2")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_parse_function_accepts_full_partial_and_bare_references(text: str, expected: FunctionRef) -> None:
    # Given a function reference in one of the forms an integration URI may use
    # When it is parsed in the context of an API in us-east-1 / 123456789012
    result = parse_function(text, **API_CONTEXT)
    # Then name and qualifier are split out and $LATEST is normalised to "unqualified"
    assert result == expected


def test_parse_function_full_arn_keeps_its_own_partition_region_and_account() -> None:
    # Given a full ARN naming another account, region and partition than the API's
    text = f"arn:aws-cn:lambda:cn-north-1:{OTHER_ACCOUNT}:function:orders:live"
    # When it is parsed in the API's context
    result = parse_function(text, **API_CONTEXT)
    # Then the ARN's own location wins (so cross-account functions can be recognised)
    assert result == FunctionRef("aws-cn", "cn-north-1", OTHER_ACCOUNT, "orders", "live")


def test_parse_function_partial_arn_takes_its_account_but_the_api_region() -> None:
    # Given a partial ARN with an account different from the API's
    text = f"{OTHER_ACCOUNT}:function:orders"
    # When it is parsed
    result = parse_function(text, **API_CONTEXT)
    # Then the account comes from the text and partition/region from the API
    assert result == FunctionRef("aws", REGION, OTHER_ACCOUNT, "orders", None)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "orders fn",
        "orders:",
        "orders:live:extra",
        ":live",
        "o" * 65,
        f"orders:{'a' * 129}",
        "orders:bad.alias",
        f"arn:aws:lambda:{REGION}:12345:function:orders",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:orders",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:",
        f"arn:aws:s3:::{ACCOUNT}",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:orders:1",
        "${stageVariables.fn}",
        "orders\n",
        f"{FN_ARN}:live\n",
        f" {FN_ARN}",
    ],
)
def test_parse_function_rejects_what_is_not_a_function_reference(text: str) -> None:
    # Given text that is not a Lambda function name, partial ARN or full ARN
    # When it is parsed
    # Then a ParseError is raised instead of guessing a function
    with pytest.raises(ParseError):
        parse_function(text, **API_CONTEXT)


@pytest.mark.parametrize("value", [None, 42, ["orders"], {"name": "orders"}])
def test_parse_function_rejects_non_string_input(value: object) -> None:
    # Given a value of the wrong type (e.g. from a malformed event)
    # When it is parsed
    # Then it is a ParseError, not a TypeError
    with pytest.raises(ParseError):
        parse_function(value, **API_CONTEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function", "arn", "unqualified", "label"),
    [
        (ref(), FN_ARN, FN_ARN, "orders"),
        (ref(qualifier="live"), f"{FN_ARN}:live", FN_ARN, "orders:live"),
    ],
)
def test_function_ref_arn_is_the_exact_arn_invoked(
    function: FunctionRef, arn: str, unqualified: str, label: str
) -> None:
    # Given a function reference with or without a qualifier
    # When its ARNs and label are read
    # Then the ARN carries the qualifier and the unqualified ARN never does
    assert (function.arn, function.unqualified_arn, function.label) == (arn, unqualified, label)


_names = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=64)
_qualifiers = (
    st.none()
    | st.from_regex(r"[A-Za-z_-][A-Za-z0-9_-]{0,20}", fullmatch=True)
    | st.from_regex(r"[0-9]{1,10}", fullmatch=True)
)


@settings(max_examples=150, deadline=None)
@given(name=_names, qualifier=_qualifiers)
def test_parse_function_round_trips_the_arn_it_prints(name: str, qualifier: str | None) -> None:
    # Given any valid function reference
    function = ref(name=name, qualifier=qualifier)
    # When its ARN is parsed back
    parsed = parse_function(function.arn, partition="aws-cn", region="eu-west-1", account=OTHER_ACCOUNT)
    # Then the very same reference comes out
    assert parsed == function


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=80)
    | st.from_regex(r"(arn:aws:lambda:[a-z0-9-]{0,12}:[0-9]{0,13}:)?function:.{0,20}")
)
def test_parse_function_either_parses_or_raises_parse_error(text: str) -> None:
    # Given arbitrary text
    # When it is parsed as a function reference
    try:
        result = parse_function(text, **API_CONTEXT)
    except ParseError:
        return
    # Then the only other outcome is a reference whose ARN parses back to itself
    assert parse_function(result.arn, **API_CONTEXT) == result


# --- integration URIs ------------------------------------------------------------------------------


def test_parse_integration_uri_extracts_the_function_part_of_a_lambda_uri() -> None:
    # Given a Lambda integration URI
    uri = lambda_uri(f"{FN_ARN}:live", region="eu-west-1", partition="aws-us-gov")
    # When it is parsed
    parsed = parse_integration_uri(uri)
    # Then partition, region and the function text are split out
    assert parsed == IntegrationUri("aws-us-gov", "eu-west-1", f"{FN_ARN}:live")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "https://example.com/pets",
        "http://internal.example.com/{proxy}",
        f"arn:aws:apigateway:{REGION}:s3:path/bucket/key",
        f"arn:aws:apigateway:{REGION}:dynamodb:action/PutItem",
        f"arn:aws:apigateway:{REGION}:sqs:path/{ACCOUNT}/queue",
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{FN_ARN}",
        FN_ARN,
        lambda_uri(FN_ARN) + "\n",
    ],
)
def test_parse_integration_uri_returns_none_for_non_lambda_uris(uri: str) -> None:
    # Given an integration URI that does not invoke a Lambda function
    # When it is parsed
    # Then there is nothing to repair: None
    assert parse_integration_uri(uri) is None


@pytest.mark.parametrize(
    ("function_text", "expected"),
    [
        (FN_ARN, ()),
        ("arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}", ("fn",)),
        (f"{FN_ARN}:${{stageVariables.alias}}", ("alias",)),
        ("${stageVariables.fn}:${stageVariables.alias}", ("fn", "alias")),
    ],
)
def test_integration_uri_lists_its_stage_variables(function_text: str, expected: tuple[str, ...]) -> None:
    # Given an integration URI's function text
    uri = IntegrationUri("aws", REGION, function_text)
    # When its stage variables are listed
    # Then every ${stageVariables.x} is named, in order
    assert uri.stage_variables == expected


@pytest.mark.parametrize(
    ("function_text", "variables", "expected"),
    [
        (f"{FN_ARN}:live", {}, ref(qualifier="live")),
        ("arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}", {"fn": "orders"}, ref()),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}",
            {"fn": "orders:v2"},
            ref(qualifier="v2"),
        ),
        (f"{FN_ARN}:${{stageVariables.alias}}", {"alias": "live"}, ref(qualifier="live")),
        (f"{FN_ARN}:${{stageVariables.alias}}", {"alias": "$LATEST"}, ref()),
        ("${stageVariables.fn}", {"fn": "orders"}, ref()),
        ("${stageVariables.fn}", {"fn": f"{FN_ARN}:blue"}, ref(qualifier="blue")),
        ("${stageVariables.fn}", {"fn": f"{OTHER_ACCOUNT}:function:orders"}, ref(account=OTHER_ACCOUNT)),
    ],
)
def test_resolve_integration_function_substitutes_stage_variables(
    function_text: str, variables: dict[str, str], expected: FunctionRef
) -> None:
    # Given an integration URI whose function name or alias may be a stage variable
    uri = IntegrationUri("aws", REGION, function_text)
    # When it is resolved against the stage's variables
    function = resolve_integration_function(uri, variables, ACCOUNT)
    # Then the exact function and qualifier the stage invokes come out
    assert function == expected


def test_resolve_integration_function_uses_the_uri_partition_and_region_for_bare_names() -> None:
    # Given a URI in aws-cn/cn-north-1 whose function is a stage variable holding a bare name
    uri = IntegrationUri("aws-cn", "cn-north-1", "${stageVariables.fn}")
    # When it is resolved
    function = resolve_integration_function(uri, {"fn": "orders"}, ACCOUNT)
    # Then the function lives where the URI says, in the API's account
    assert function == FunctionRef("aws-cn", "cn-north-1", ACCOUNT, "orders", None)


@pytest.mark.parametrize(
    ("function_text", "variables"),
    [
        ("${stageVariables.fn}", {}),
        (f"{FN_ARN}:${{stageVariables.alias}}", {"other": "live"}),
        ("${stageVariables.fn}:${stageVariables.alias}", {"fn": "orders"}),
        ("${stageVariables.fn}", {"fn": ""}),
        ("${stageVariables.fn}", {"fn": "not a function"}),
        (f"{FN_ARN}:${{stageVariables.alias}}", {"alias": ""}),
    ],
)
def test_resolve_integration_function_rejects_undefined_or_invalid_stage_variables(
    function_text: str, variables: dict[str, str]
) -> None:
    # Given a URI whose stage variable is missing on the stage or holds no valid function
    uri = IntegrationUri("aws", REGION, function_text)
    # When it is resolved
    # Then it is a ParseError, never a guessed function
    with pytest.raises(ParseError):
        resolve_integration_function(uri, variables, ACCOUNT)


def test_substitute_stage_variables_does_not_expand_values_recursively() -> None:
    # Given a stage variable whose value itself looks like a stage variable reference
    text = "${stageVariables.a}"
    # When it is substituted
    result = substitute_stage_variables(text, {"a": "${stageVariables.b}", "b": "orders"})
    # Then the value is used literally (and will later fail to parse as a function)
    assert result == "${stageVariables.b}"


# --- execute-api ARNs ------------------------------------------------------------------------------

API = ApiRef("aws", REGION, ACCOUNT, "abc123")
PREFIX = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123"


@pytest.mark.parametrize(
    ("stage", "method", "path", "expected"),
    [
        ("prod", "GET", "/pets/{petId}", f"{PREFIX}/prod/GET/pets/{{petId}}"),
        ("prod", "ANY", "/{proxy+}", f"{PREFIX}/prod/ANY/{{proxy+}}"),
        ("dev", "POST", "/", f"{PREFIX}/dev/POST/"),
        ("test-invoke-stage", "GET", "/pets", f"{PREFIX}/test-invoke-stage/GET/pets"),
    ],
)
def test_method_arn_is_the_source_arn_api_gateway_sends(
    stage: str, method: str, path: str, expected: str
) -> None:
    # Given an API, a stage, a method and its resource template
    # When the method's source ARN is built
    # Then it is {api}/{stage}/{METHOD}{template}, the template left unexpanded
    assert API.method_arn(stage, method, path) == expected


def test_authorizer_arn_has_no_stage() -> None:
    # Given an API and an authorizer id
    # When the authorizer's source ARN is built
    # Then it is {api}/authorizers/{id}
    assert API.authorizer_arn("auth01") == f"{PREFIX}/authorizers/auth01"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("/pets", "/pets"),
        ("/pets/{petId}", "/pets/*"),
        ("/{proxy+}", "/*"),
        ("/pets/{petId}/toys/{toyId}", "/pets/*/toys/*"),
        ("/files/{path+}", "/files/*"),
        ("/a/{b}/c", "/a/*/c"),
    ],
)
def test_wildcard_path_replaces_each_path_parameter_with_a_star(path: str, expected: str) -> None:
    # Given a resource template
    # When it is widened the way SAM scopes grants
    # Then every {param} / {param+} segment becomes `*` and literals stay
    assert wildcard_path(path) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (f"{PREFIX}/*/GET/pets", SourcePattern(REGION, ACCOUNT, "abc123")),
        (f"{PREFIX}/authorizers/a1", SourcePattern(REGION, ACCOUNT, "abc123")),
        (PREFIX, SourcePattern(REGION, ACCOUNT, "abc123")),
        ("arn:aws:execute-api:*:*:abc123/*", SourcePattern("*", "*", "abc123")),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/*/GET/pets", None),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc*/*", None),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:ab?123/*", None),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders", None),
        ("*", None),
        ("", None),
    ],
)
def test_execute_api_source_splits_patterns_with_a_literal_api_id(
    pattern: str, expected: SourcePattern | None
) -> None:
    # Given a SourceArn condition value
    # When it is split for stale-API detection
    # Then region/account/api come out only for execute-api patterns naming one literal API id
    assert execute_api_source(pattern) == expected
