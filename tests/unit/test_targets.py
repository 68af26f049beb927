"""Control-plane target resolution and log-hint narrowing (permheal.targets)."""

from __future__ import annotations

from typing import Any

import pytest

from permheal.arns import ApiRef, FunctionRef
from permheal.models import FindingKind, Target, TargetKind
from permheal.openapi import (
    ApiSpec,
    Authorizer,
    Canary,
    Integration,
    Method,
    authorizers_from_list,
    from_resources,
)
from permheal.targets import Hint, StageTargets, narrow, stage_targets, undeployed_changes

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
API = ApiRef("aws", REGION, ACCOUNT, "api1")
FN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders"
ORDERS = FunctionRef("aws", REGION, ACCOUNT, "orders")
ROLE = f"arn:aws:iam::{ACCOUNT}:role/apigw-invoke"


def uri(function_text: str = FN_ARN, region: str = REGION) -> str:
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_text}/invocations"


def method(
    integration_type: str | None = "AWS_PROXY",
    integration_uri: str | None = None,
    credentials: str | None = None,
    authorization: str = "NONE",
    authorizer_id: str | None = None,
) -> dict[str, Any]:
    """One entry of GetResources(embed=methods).resourceMethods."""
    definition: dict[str, Any] = {"authorizationType": authorization}
    if authorizer_id:
        definition["authorizerId"] = authorizer_id
    if integration_type is not None:
        integration: dict[str, Any] = {"type": integration_type}
        if integration_uri is not None or integration_type in ("AWS", "AWS_PROXY"):
            integration["uri"] = integration_uri if integration_uri is not None else uri()
        if credentials:
            integration["credentials"] = credentials
        definition["methodIntegration"] = integration
    return definition


def resource(path: str, **methods: dict[str, Any]) -> dict[str, Any]:
    return {"id": path.strip("/") or "root", "path": path, "resourceMethods": methods}


def lambda_authorizer(
    authorizer_id: str = "auth1",
    kind: str = "TOKEN",
    function_text: str = FN_ARN,
    credentials: str | None = None,
) -> dict[str, Any]:
    authorizer: dict[str, Any] = {"id": authorizer_id, "type": kind, "authorizerUri": uri(function_text)}
    if credentials:
        authorizer["authorizerCredentials"] = credentials
    return authorizer


def resolve(
    resources: list[dict[str, Any]],
    authorizers: list[dict[str, Any]] | None = None,
    variables: dict[str, str] | None = None,
    logging_level: str | None = "INFO",
) -> StageTargets:
    """The stage serving these GetResources-shaped methods (the same types as its export)."""
    served = from_resources(resources, authorizers_from_list(authorizers or []))
    return stage_targets(API, "orders-api", "prod", variables or {}, logging_level, served)


def route(verb: str, path: str, function: FunctionRef = ORDERS) -> Target:
    return Target(TargetKind.INTEGRATION, API, "prod", function, verb, path)


# --- stage_targets: integrations -------------------------------------------------------------------


@pytest.mark.parametrize("integration_type", ["AWS_PROXY", "AWS"])
def test_a_lambda_integration_is_a_target(integration_type: str) -> None:
    # Given a method with a Lambda proxy or custom Lambda integration
    resources = [resource("/pets/{petId}", GET=method(integration_type))]
    # When the stage's targets are resolved
    result = resolve(resources)
    # Then the method is a target invoking that function, with no finding
    assert result == StageTargets((route("GET", "/pets/{petId}"),), ())


@pytest.mark.parametrize(
    "definition",
    [
        method("HTTP", "https://example.com/pets"),
        method("HTTP_PROXY", "https://example.com/{proxy}"),
        method("MOCK"),
        method("AWS", f"arn:aws:apigateway:{REGION}:sqs:path/{ACCOUNT}/queue"),
        method("AWS", f"arn:aws:apigateway:{REGION}:dynamodb:action/PutItem"),
        method(None),
    ],
)
def test_methods_without_a_lambda_integration_are_ignored(definition: dict[str, Any]) -> None:
    # Given a method integrating with HTTP, a mock, another AWS service, or nothing
    # When the stage's targets are resolved
    result = resolve([resource("/pets", GET=definition)])
    # Then there is neither a target nor a finding for it
    assert result == StageTargets((), ())


def test_every_lambda_method_of_every_resource_is_a_target() -> None:
    # Given several resources, some with several methods, one without methods
    resources = [
        resource("/", GET=method()),
        resource("/pets", POST=method(), GET=method(), OPTIONS=method("MOCK")),
        {"id": "empty", "path": "/empty"},
        {"id": "none", "path": "/none", "resourceMethods": None},
        resource("/{proxy+}", ANY=method(integration_uri=uri("other"))),
    ]
    # When the stage's targets are resolved
    result = resolve(resources)
    # Then each Lambda method is one target (methods in sorted order within a resource)
    other = FunctionRef("aws", REGION, ACCOUNT, "other")
    assert result.targets == (
        route("GET", "/"),
        route("GET", "/pets"),
        route("POST", "/pets"),
        route("ANY", "/{proxy+}", other),
    )


@pytest.mark.parametrize(
    ("function_text", "variables", "expected"),
    [
        ("${stageVariables.fn}", {"fn": "orders"}, ORDERS),
        (
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:${{stageVariables.fn}}",
            {"fn": "orders"},
            ORDERS,
        ),
        (
            f"{FN_ARN}:${{stageVariables.alias}}",
            {"alias": "live"},
            FunctionRef("aws", REGION, ACCOUNT, "orders", "live"),
        ),
        (f"{FN_ARN}:${{stageVariables.alias}}", {"alias": "$LATEST"}, ORDERS),
    ],
)
def test_stage_variables_select_the_function_and_qualifier(
    function_text: str, variables: dict[str, str], expected: FunctionRef
) -> None:
    # Given an integration whose function name or alias is a stage variable
    resources = [resource("/pets", GET=method(integration_uri=uri(function_text)))]
    # When resolved with the stage's variables
    result = resolve(resources, variables=variables)
    # Then the target invokes exactly the substituted function and qualifier
    assert [t.function for t in result.targets] == [expected]


def test_an_undefined_stage_variable_is_a_missing_function_finding() -> None:
    # Given an integration whose alias is a stage variable the stage does not define
    integration_uri = uri(f"{FN_ARN}:${{stageVariables.alias}}")
    resources = [resource("/pets", GET=method(integration_uri=integration_uri))]
    # When the stage's targets are resolved
    result = resolve(resources, variables={"other": "x"})
    # Then there is no target but a missing_function finding naming the method and the variable
    assert result.targets == ()
    (finding,) = result.findings
    assert finding.kind is FindingKind.MISSING_FUNCTION
    assert (finding.api_id, finding.api_name, finding.stage, finding.method, finding.resource_path) == (
        "api1",
        "orders-api",
        "prod",
        "GET",
        "/pets",
    )
    assert "alias" in finding.detail


def test_an_integration_with_credentials_is_reported_not_targeted() -> None:
    # Given a Lambda integration invoked through an IAM role
    resources = [resource("/pets", GET=method(credentials=ROLE))]
    # When the stage's targets are resolved
    result = resolve(resources)
    # Then it is not a target (its resource policy is not used) but an integration_role finding
    assert result.targets == ()
    (finding,) = result.findings
    assert finding.kind is FindingKind.INTEGRATION_ROLE
    assert (finding.method, finding.resource_path, finding.function_arn, finding.qualifier) == (
        "GET",
        "/pets",
        FN_ARN,
        None,
    )
    assert ROLE in finding.detail


def test_caller_credentials_passthrough_is_also_an_integration_role() -> None:
    # Given an integration that passes the caller's identity through
    resources = [resource("/pets", GET=method(credentials="arn:aws:iam::*:user/*"))]
    # When the stage's targets are resolved
    result = resolve(resources)
    # Then permheal does not touch it either
    assert (result.targets, [f.kind for f in result.findings]) == ((), [FindingKind.INTEGRATION_ROLE])


@pytest.mark.parametrize(
    "function_text",
    [
        f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:orders",
        f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders",
        f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:orders",
        f"{OTHER_ACCOUNT}:function:orders:live",
    ],
)
def test_a_function_outside_the_api_account_and_region_is_reported_not_targeted(function_text: str) -> None:
    # Given an integration invoking a function in another account, region or partition
    resources = [resource("/pets", GET=method(integration_uri=uri(function_text)))]
    # When the stage's targets are resolved
    result = resolve(resources)
    # Then permheal will not edit it: no target, a cross_account_function finding
    assert result.targets == ()
    assert [f.kind for f in result.findings] == [FindingKind.CROSS_ACCOUNT_FUNCTION]


def test_a_stage_variable_pointing_at_another_account_is_reported() -> None:
    # Given a stage variable holding a full ARN in another account
    resources = [resource("/pets", GET=method(integration_uri=uri("${stageVariables.fn}")))]
    variables = {"fn": f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:orders"}
    # When the stage's targets are resolved
    result = resolve(resources, variables=variables)
    # Then it is a cross-account finding, not a target
    assert (result.targets, [f.kind for f in result.findings]) == ((), [FindingKind.CROSS_ACCOUNT_FUNCTION])


# --- stage_targets: authorizers --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["TOKEN", "REQUEST"])
def test_a_lambda_authorizer_used_by_a_method_is_a_target(kind: str) -> None:
    # Given a method protected by a custom (Lambda) authorizer
    auth_fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:auth"
    resources = [resource("/pets", GET=method("MOCK", authorization="CUSTOM", authorizer_id="auth1"))]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1", kind, auth_fn)])
    # Then the authorizer is a target of its own, with no method/path
    assert result.targets == (
        Target(
            TargetKind.AUTHORIZER,
            API,
            "prod",
            FunctionRef("aws", REGION, ACCOUNT, "auth"),
            authorizer_id="auth1",
        ),
    )


def test_a_lambda_authorizer_no_method_uses_is_not_a_target() -> None:
    # Given an authorizer defined on the API but not attached to any method
    resources = [resource("/pets", GET=method("MOCK"))]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1")])
    # Then API Gateway never invokes it: no target
    assert result.targets == ()


def test_an_authorizer_id_on_a_non_custom_method_does_not_count_as_use() -> None:
    # Given a method with an authorizerId but IAM authorization
    resources = [resource("/pets", GET=method("MOCK", authorization="AWS_IAM", authorizer_id="auth1"))]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1")])
    # Then the authorizer is not a target
    assert result.targets == ()


def test_a_cognito_authorizer_is_ignored() -> None:
    # Given a method using a Cognito user-pool authorizer
    resources = [
        resource("/pets", GET=method("MOCK", authorization="COGNITO_USER_POOLS", authorizer_id="cog"))
    ]
    cognito = {"id": "cog", "type": "COGNITO_USER_POOLS", "providerARNs": ["arn:aws:cognito-idp:x"]}
    # When the stage's targets are resolved
    result = resolve(resources, [cognito])
    # Then there is no Lambda to grant to
    assert result == StageTargets((), ())


def test_a_cognito_authorizer_attached_as_custom_is_still_ignored() -> None:
    # Given an (inconsistent) CUSTOM method pointing at a Cognito authorizer
    resources = [resource("/pets", GET=method("MOCK", authorization="CUSTOM", authorizer_id="cog"))]
    cognito = {"id": "cog", "type": "COGNITO_USER_POOLS", "providerARNs": ["arn:aws:cognito-idp:x"]}
    # When the stage's targets are resolved
    # Then only Lambda authorizer types become targets
    assert resolve(resources, [cognito]).targets == ()


def test_an_authorizer_with_credentials_is_reported_not_targeted() -> None:
    # Given a used Lambda authorizer invoked through a role
    resources = [resource("/pets", GET=method("MOCK", authorization="CUSTOM", authorizer_id="auth1"))]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1", credentials=ROLE)])
    # Then it is an integration_role finding naming the authorizer
    assert result.targets == ()
    (finding,) = result.findings
    assert (finding.kind, finding.authorizer_id) == (FindingKind.INTEGRATION_ROLE, "auth1")


def test_an_authorizer_with_an_undefined_stage_variable_is_a_missing_function() -> None:
    # Given a used authorizer whose function is an undefined stage variable
    resources = [resource("/pets", GET=method("MOCK", authorization="CUSTOM", authorizer_id="auth1"))]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1", function_text="${stageVariables.authFn}")])
    # Then it is a missing_function finding for that authorizer
    assert [(f.kind, f.authorizer_id) for f in result.findings] == [(FindingKind.MISSING_FUNCTION, "auth1")]


def test_an_authorizer_used_by_several_methods_is_one_target() -> None:
    # Given two methods sharing an authorizer
    resources = [
        resource("/a", GET=method(authorization="CUSTOM", authorizer_id="auth1")),
        resource("/b", POST=method(authorization="CUSTOM", authorizer_id="auth1")),
    ]
    # When the stage's targets are resolved
    result = resolve(resources, [lambda_authorizer("auth1")])
    # Then the authorizer appears once, after the integrations
    assert [t.kind for t in result.targets] == [
        TargetKind.INTEGRATION,
        TargetKind.INTEGRATION,
        TargetKind.AUTHORIZER,
    ]


# --- stage_targets: logging ------------------------------------------------------------------------


@pytest.mark.parametrize("level", [None, "", "OFF", "off"])
def test_a_stage_without_execution_logging_is_reported(level: str | None) -> None:
    # Given a stage whose execution logging is off or unset
    # When the stage's targets are resolved
    result = resolve([], logging_level=level)
    # Then a logging_disabled finding names the API and stage
    (finding,) = result.findings
    assert (finding.kind, finding.api_id, finding.api_name, finding.stage) == (
        FindingKind.LOGGING_DISABLED,
        "api1",
        "orders-api",
        "prod",
    )


@pytest.mark.parametrize("level", ["INFO", "ERROR", "info", "error"])
def test_a_stage_with_execution_logging_is_not_reported(level: str) -> None:
    # Given a stage logging at INFO or ERROR (both log permission failures)
    # When the stage's targets are resolved
    # Then there is no logging finding
    assert resolve([], logging_level=level).findings == ()


# --- narrow ----------------------------------------------------------------------------------------

PAYMENTS = FunctionRef("aws", REGION, ACCOUNT, "payments")
AUTH_FN = FunctionRef("aws", REGION, ACCOUNT, "auth")
GET_PETS = route("GET", "/pets")
POST_PETS = route("POST", "/pets", PAYMENTS)
GET_PET = route("GET", "/pets/{petId}")
ANY_PROXY = route("ANY", "/{proxy+}")
AUTH1 = Target(TargetKind.AUTHORIZER, API, "prod", AUTH_FN, authorizer_id="auth1")
AUTH2 = Target(TargetKind.AUTHORIZER, API, "prod", AUTH_FN, authorizer_id="auth2")
ALL = (GET_PETS, POST_PETS, GET_PET, ANY_PROXY, AUTH1, AUTH2)


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ([Hint("GET", "/pets")], (GET_PETS,)),
        ([Hint("get", "/pets")], (GET_PETS,)),
        ([Hint("POST", "/pets")], (POST_PETS,)),
        ([Hint("GET", "/{proxy+}")], (ANY_PROXY,)),
        ([Hint("DELETE", "/{proxy+}")], (ANY_PROXY,)),
        ([Hint("GET")], (GET_PETS, GET_PET, ANY_PROXY)),
        ([Hint(resource_path="/pets")], (GET_PETS, POST_PETS)),
        ([Hint(authorizer_id="auth2")], ALL),
        ([Hint("GET", "/pets", authorizer_id="auth1")], ALL),
        ([Hint(function="payments")], (POST_PETS,)),
        ([Hint(function=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payments:live")], (POST_PETS,)),
        ([Hint("GET", "/pets", function="orders")], (GET_PETS,)),
        ([Hint("GET", "/pets"), Hint("POST", "/pets"), Hint("GET", "/pets")], (GET_PETS, POST_PETS)),
        ([Hint("POST", "/pets"), Hint(authorizer_id="auth1")], ALL),
    ],
)
def test_narrow_keeps_the_targets_the_hints_point_at(hints: list[Hint], expected: tuple[Target, ...]) -> None:
    # Given the stage's targets and hints taken from failing requests' log lines
    # When the targets are narrowed
    # Then only matching targets remain (ANY matches every verb), in first-hint order, without repeats;
    # an authorizer failure hides the integrations behind it, so it keeps every target
    assert narrow(ALL, hints) == expected


@pytest.mark.parametrize(
    "hints",
    [
        [],
        [Hint()],
        [Hint("GET", "/admin")],
        [Hint(authorizer_id="forged")],
        [Hint(function="attacker-fn")],
        [Hint(function=f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:attacker")],
        [Hint("PATCH", "/pets")],
    ],
)
def test_narrow_falls_back_to_every_target_when_no_hint_matches(hints: list[Hint]) -> None:
    # Given hints that are absent, empty, or name nothing the control plane knows
    # When the targets are narrowed
    # Then every real target is kept, and nothing that is not one is invented
    assert narrow(ALL, hints) == ALL


def test_a_forged_function_hint_never_adds_a_target() -> None:
    # Given a hint naming a function (with a matching method/path) no integration invokes
    hints = [Hint("GET", "/pets", function="attacker-fn")]
    # When the targets are narrowed
    result = narrow(ALL, hints)
    # Then every returned target is one of the control-plane targets
    assert set(result) <= set(ALL)
    assert all(t.function.name != "attacker-fn" for t in result)


def test_an_unparseable_function_hint_is_ignored_and_method_and_path_decide() -> None:
    # Given a hint whose function text is garbage, alongside a method and path
    hints = [Hint("GET", "/pets", function="https://lambda/2015-03-31/functions/x y/invocations")]
    # When the targets are narrowed
    # Then the method and path still narrow
    assert narrow(ALL, hints) == (GET_PETS,)


def test_narrow_accepts_any_iterable_of_hints() -> None:
    # Given hints from a generator (consumed once)
    hints = (h for h in [Hint("POST", "/pets")])
    # When the targets are narrowed
    # Then it works like a list
    assert narrow(ALL, hints) == (POST_PETS,)


# --- hints across the workflow boundary ------------------------------------------------------------


def test_hint_round_trips_through_its_dict() -> None:
    # Given a hint with every field
    hint = Hint("GET", "/pets/{petId}", "auth1", FN_ARN)
    # When it is serialised and read back
    # Then it is unchanged and uses camelCase keys
    assert hint.to_dict() == {
        "method": "GET",
        "resourcePath": "/pets/{petId}",
        "authorizerId": "auth1",
        "function": FN_ARN,
    }
    assert Hint.from_dict(hint.to_dict()) == hint


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, Hint()),
        ({"method": "", "resourcePath": None}, Hint()),
        ({"method": 5, "resourcePath": ["/x"], "authorizerId": {"a": 1}, "function": True}, Hint()),
        ({"method": "GET", "unknown": "x"}, Hint("GET")),
        ({"resourcePath": "/" + "a" * 5000}, Hint(resource_path="/" + "a" * 1023)),
    ],
)
def test_hint_from_dict_keeps_only_bounded_strings(data: dict[str, Any], expected: Hint) -> None:
    # Given untrusted hint data from the execution input
    # When it is read
    # Then non-strings and empty strings are dropped and strings are cut at 1024 characters
    assert Hint.from_dict(data) == expected


# --- canary and undeployed changes -----------------------------------------------------------------

ALIASED = uri(FN_ARN + ":${stageVariables.alias}")


def served(*methods: Method, problems: tuple[str, ...] = ()) -> ApiSpec:
    return ApiSpec(methods, problems)


def lambda_method(
    function_uri: str = ALIASED, path: str = "/pets", verb: str = "GET", **extra: Any
) -> Method:
    return Method(verb, path, Integration("AWS_PROXY", function_uri), **extra)


def test_a_canary_override_adds_the_target_its_requests_invoke() -> None:
    # Given prod on alias live with a canary overriding alias=canary
    spec = served(lambda_method())
    canary = Canary("d2", {"alias": "canary"})
    # When the stage's targets are resolved
    result = stage_targets(API, "orders-api", "prod", {"alias": "live"}, "INFO", spec, canary)
    # Then both the stage's and the canary's function are targets, with the stage's source ARN
    assert result.targets == (
        route("GET", "/pets", FunctionRef("aws", REGION, ACCOUNT, "orders", "live")),
        route("GET", "/pets", FunctionRef("aws", REGION, ACCOUNT, "orders", "canary")),
    )


def test_a_canary_without_overrides_adds_no_duplicate() -> None:
    spec = served(lambda_method())
    result = stage_targets(API, "orders-api", "prod", {"alias": "live"}, "INFO", spec, Canary("d2", {}))
    assert len(result.targets) == 1


def test_a_canary_override_naming_a_missing_variable_source_is_reported_once() -> None:
    # Given a stage without the variable, a canary defining it
    spec = served(lambda_method())
    result = stage_targets(API, "orders-api", "prod", {}, "INFO", spec, Canary("d2", {"alias": "canary"}))
    # Then the canary's target is found and the stage's missing variable reported
    assert [t.function.qualifier for t in result.targets] == ["canary"]
    assert [f.kind for f in result.findings] == [FindingKind.MISSING_FUNCTION]


def test_what_a_stage_serves_but_cannot_be_identified_is_reported() -> None:
    result = stage_targets(API, "orders-api", "prod", {}, "INFO", served(problems=("authorizer 'x' ...",)))
    assert [(f.kind, f.stage, f.detail) for f in result.findings] == [
        (FindingKind.UNDEPLOYED_CHANGE, "prod", "authorizer 'x' ...")
    ]


def test_a_working_copy_integration_no_stage_serves_is_reported_with_its_function() -> None:
    # Given prod serving `orders` and a working copy invoking `other`
    working = served(lambda_method(uri(FN_ARN.replace("orders", "other"))))
    # When compared
    (finding,) = undeployed_changes(API, "orders-api", working, [served(lambda_method(uri()))], [{}])
    # Then it names the method, path and the function the working copy would invoke
    assert (finding.kind, finding.method, finding.resource_path, finding.stage) == (
        FindingKind.UNDEPLOYED_CHANGE,
        "GET",
        "/pets",
        None,
    )
    assert finding.function_arn == FN_ARN.replace("orders", "other")
    assert "any stage" in finding.detail


def test_a_working_copy_served_by_some_stage_is_no_finding() -> None:
    working = served(lambda_method())
    assert undeployed_changes(API, "n", working, [served(), served(lambda_method())], [{}, {}]) == ()


def test_an_api_without_stages_has_no_undeployed_change() -> None:
    assert undeployed_changes(API, "n", served(lambda_method()), [], []) == ()


def test_non_lambda_working_copy_changes_are_not_reported() -> None:
    working = served(Method("GET", "/pets", Integration("HTTP", "https://example.com")))
    assert undeployed_changes(API, "n", working, [served()], [{}]) == ()


def test_an_undeployed_function_is_named_only_when_every_stage_resolves_it_alike() -> None:
    working = served(lambda_method(path="/new"))
    (same,) = undeployed_changes(API, "n", working, [served()], [{"alias": "live"}, {"alias": "live"}])
    (differs,) = undeployed_changes(API, "n", working, [served()], [{"alias": "live"}, {"alias": "beta"}])
    assert (same.function_arn, same.qualifier) == (FN_ARN, "live")
    assert (differs.function_arn, differs.qualifier) == (None, None)
    assert "${stageVariables.alias}" in differs.detail


def test_a_working_copy_authorizer_no_stage_serves_is_reported_once() -> None:
    deployed = Authorizer("auth1", "gate", "TOKEN", uri())
    edited = Authorizer("auth1", "gate", "TOKEN", uri(FN_ARN.replace("orders", "auth2")))
    working = served(lambda_method(authorizer=edited), lambda_method(path="/b", authorizer=edited))
    stage = served(lambda_method(authorizer=deployed), lambda_method(path="/b", authorizer=deployed))
    findings = undeployed_changes(API, "n", working, [stage], [{}], stage="prod")
    assert [(f.authorizer_id, f.stage, f.function_arn) for f in findings] == [
        ("auth1", "prod", FN_ARN.replace("orders", "auth2"))
    ]
    assert "stage prod" in findings[0].detail


def test_an_undeployed_change_names_canaries_permheal_cannot_read() -> None:
    working = served(lambda_method(path="/new"))
    (finding,) = undeployed_changes(API, "n", working, [served()], [{}], unexported_canaries=["prod"])
    assert "the canary of prod runs a deployment AWS does not export" in finding.detail


WS_API = ApiRef("aws", REGION, ACCOUNT, "ws1")
CONNECT = Target(TargetKind.INTEGRATION, WS_API, "prod", PAYMENTS, api_type="WEBSOCKET", route_key="$connect")
PING = Target(TargetKind.INTEGRATION, WS_API, "prod", AUTH_FN, api_type="WEBSOCKET", route_key="ping")
HTTP_API = ApiRef("aws", REGION, ACCOUNT, "http1")
HTTP_GET = Target(
    TargetKind.INTEGRATION,
    HTTP_API,
    "$default",
    PAYMENTS,
    "GET",
    "/pets/{id}",
    api_type="HTTP",
    route_key="GET /pets/{id}",
)
HTTP_DEFAULT = Target(
    TargetKind.INTEGRATION,
    HTTP_API,
    "$default",
    AUTH_FN,
    "ANY",
    "$default",
    api_type="HTTP",
    route_key="$default",
)


@pytest.mark.parametrize(
    ("targets", "hints", "expected"),
    [
        ((CONNECT, PING), [Hint(route_key="ping")], (PING,)),
        ((CONNECT, PING), [Hint(route_key="$connect", function="payments")], (CONNECT,)),
        ((CONNECT, PING), [Hint(route_key="$connect", function="auth")], (CONNECT, PING)),  # none match
        ((CONNECT, PING), [Hint(route_key="forged")], (CONNECT, PING)),
        ((HTTP_GET, HTTP_DEFAULT), [Hint("GET", "/pets/{id}", route_key="GET /pets/{id}")], (HTTP_GET,)),
        ((HTTP_GET, HTTP_DEFAULT), [Hint("ANY", "$default", route_key="$default")], (HTTP_DEFAULT,)),
        ((GET_PETS, POST_PETS), [Hint("GET", "/pets", route_key="GET /pets")], (GET_PETS,)),  # REST: no keys
    ],
)
def test_narrow_by_v2_route_key(
    targets: tuple[Target, ...], hints: list[Hint], expected: tuple[Target, ...]
) -> None:
    # Given v2 targets and hints naming the route the failing request took
    # When narrowed
    # Then only that route's target is kept; a route key no target has narrows nothing
    assert narrow(targets, hints) == expected
