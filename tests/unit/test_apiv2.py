"""HTTP and WebSocket APIs in the pure core: integration URIs, source ARNs and grant scopes, stage
targets, and whether an access-log format can show a permission failure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from permheal.apiv2 import (
    V2Authorizer,
    V2Integration,
    V2Route,
    V2Spec,
    V2Stage,
    access_log_gap,
    lambda_uri,
    served_from_export,
    v2_stage_targets,
    v2_targets,
    v2_undeployed_changes,
)
from permheal.arnlike import arn_like
from permheal.arns import ApiRef, FunctionRef
from permheal.models import FindingKind, Scope, Target, TargetKind

ACCOUNT = "123456789012"
API = ApiRef("aws", "us-east-1", ACCOUNT, "h7x2k9abcd")
PREFIX = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:h7x2k9abcd"
FN = FunctionRef("aws", "us-east-1", ACCOUNT, "pets")
PLAIN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pets"
PATH_FORM = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{PLAIN}/invocations"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (PLAIN, PATH_FORM),
        (f"{PLAIN}:live", PATH_FORM.replace(PLAIN, f"{PLAIN}:live")),
        (PATH_FORM, PATH_FORM),
        ("https://example.com/backend", "https://example.com/backend"),
        (None, None),
    ],
)
def test_integration_uri_forms_become_the_lambda_path_form(uri: str | None, expected: str | None) -> None:
    assert lambda_uri(uri) == expected


def http(route_key: str, method: str | None, path: str | None, stage: str = "prod") -> Target:
    return Target(TargetKind.INTEGRATION, API, stage, FN, method, path, api_type="HTTP", route_key=route_key)


def websocket(route_key: str) -> Target:
    return Target(TargetKind.INTEGRATION, API, "prod", FN, api_type="WEBSOCKET", route_key=route_key)


@pytest.mark.parametrize(
    ("target", "source", "method_scope", "stage_scope"),
    [
        (
            http("GET /pets/{id}", "GET", "/pets/{id}"),
            "prod/GET/pets/{id}",
            "*/GET/pets/*",
            "prod/GET/pets/*",
        ),
        (http("ANY /{proxy+}", "ANY", "/{proxy+}"), "prod/ANY/{proxy+}", "*/*/*", "prod/*/*"),
        (http("$default", "ANY", "$default"), "prod/$default", "*/$default", "prod/$default"),
        (websocket("$connect"), "prod/$connect", "*/$connect", "prod/$connect"),
        (websocket("sendMessage"), "prod/sendMessage", "*/sendMessage", "prod/sendMessage"),
    ],
)
def test_v2_source_arns_and_grant_scopes(
    target: Target, source: str, method_scope: str, stage_scope: str
) -> None:
    # Given a v2 route target
    # When its source ARN and grants are computed
    # Then they are design.md's, and every scope's grant matches the call it is for
    assert target.source_arn == f"{PREFIX}/{source}"
    assert target.grant_pattern(Scope.METHOD) == f"{PREFIX}/{method_scope}"
    assert target.grant_pattern(Scope.STAGE) == f"{PREFIX}/{stage_scope}"
    for scope in Scope:
        assert arn_like(target.grant_pattern(scope), target.source_arn), scope


def test_v2_site_round_trips_kind_and_route_key() -> None:
    target = websocket("$connect")
    assert Target.at_site(API, FN, target.site()) == target
    rest = Target(TargetKind.INTEGRATION, API, "prod", FN, "GET", "/pets")
    assert "apiType" not in rest.site() and Target.at_site(API, FN, rest.site()) == rest


def spec(**authorizers: V2Authorizer) -> V2Spec:
    return V2Spec(
        "HTTP",
        (
            V2Route("GET /pets", "integrations/i1", "CUSTOM", "a1"),
            V2Route("GET /me", "integrations/i2", "JWT", "a2"),
            V2Route("POST /roled", "integrations/i3"),
            V2Route("GET /web", "integrations/i4"),
        ),
        {
            "i1": V2Integration("i1", "AWS_PROXY", lambda_uri(f"{PLAIN}:${{stageVariables.alias}}")),
            "i2": V2Integration("i2", "AWS_PROXY", lambda_uri(PLAIN)),
            "i3": V2Integration("i3", "AWS_PROXY", lambda_uri(PLAIN), "arn:aws:iam::123456789012:role/r"),
            "i4": V2Integration("i4", "HTTP_PROXY", "https://example.com"),
        },
        {
            "a1": V2Authorizer("a1", "auth", "REQUEST", lambda_uri(PLAIN.replace("pets", "auth"))),
            "a2": V2Authorizer("a2", "jwt", "JWT"),
        },
    )


def test_stage_targets_resolve_variables_skip_jwt_and_report_roles() -> None:
    # Given an HTTP API spec and a stage mapping alias -> live, logging the errors
    stage = V2Stage(
        "prod", {"alias": "live"}, "$context.integrationErrorMessage $context.authorizer.error", "arn:g", True
    )
    # When its targets are computed
    found = v2_stage_targets(API, "shop", spec(), stage)
    # Then the aliased route, the JWT route and the REQUEST authorizer; the roled route is a finding
    assert [(t.kind, t.route_key, t.function.label) for t in found.targets] == [
        (TargetKind.INTEGRATION, "GET /pets", "pets:live"),
        (TargetKind.INTEGRATION, "GET /me", "pets"),
        (TargetKind.AUTHORIZER, None, "auth"),
    ]
    assert [(f.kind, f.route_key, f.api_type) for f in found.findings] == [
        (FindingKind.INTEGRATION_ROLE, "POST /roled", "HTTP")
    ]


def test_stage_without_the_variable_is_a_missing_function_finding() -> None:
    found = v2_stage_targets(
        API,
        "shop",
        spec(),
        V2Stage("dev", {}, "$context.integration.error $context.authorizer.error", "g", True),
    )
    assert [f.kind for f in found.findings] == [FindingKind.MISSING_FUNCTION, FindingKind.INTEGRATION_ROLE]


@pytest.mark.parametrize(
    ("log_format", "destination", "authorizer", "missing"),
    [
        (None, None, False, "access logging is off"),
        ("$context.requestId", None, False, "access logging is off"),
        ("$context.integrationErrorMessage", "g", False, None),
        ("$context.integration.error", "g", False, None),
        ("$context.integrationErrorMessage", "g", True, "append to the format: $context.authorizer.error"),
        (
            '{"id":"$context.requestId"}',
            "g",
            True,
            '"integrationErrorMessage":"$context.integrationErrorMessage",',
        ),
    ],
)
def test_access_log_gap_says_exactly_what_to_add(
    log_format: str | None, destination: str | None, authorizer: bool, missing: str | None
) -> None:
    gap = access_log_gap(log_format, destination, authorizer)
    if missing is None:
        assert gap is None
    else:
        assert gap is not None and missing in gap


def test_websocket_stage_without_execution_logging_is_reported() -> None:
    ws = V2Spec(
        "WEBSOCKET",
        (V2Route("$default", "integrations/i"),),
        {"i": V2Integration("i", "AWS", lambda_uri(PLAIN))},
    )
    quiet = v2_stage_targets(API, "chat", ws, V2Stage("prod", auto_deploy=True))
    logged = v2_stage_targets(API, "chat", ws, V2Stage("prod", auto_deploy=True, logging_level="ERROR"))
    assert [f.kind for f in quiet.findings] == [FindingKind.LOGGING_DISABLED]
    assert logged.findings == () and [t.source_arn for t in logged.targets] == [f"{PREFIX}/prod/$default"]


def test_integration_uri_that_is_a_stage_variable_resolves_per_stage() -> None:
    # Given an integration whose whole URI is `${stageVariables.fn}`
    whole = V2Spec(
        "HTTP",
        (V2Route("GET /x", "integrations/i"),),
        {"i": V2Integration("i", "AWS_PROXY", "${stageVariables.fn}")},
    )
    logged = "$context.integrationErrorMessage"
    # When a stage defines it as a qualified Lambda ARN, and another does not define it
    prod = v2_stage_targets(API, "x", whole, V2Stage("prod", {"fn": f"{PLAIN}:live"}, logged, "g", True))
    dev = v2_stage_targets(API, "x", whole, V2Stage("dev", {}, logged, "g", True))
    # Then prod invokes pets:live, and dev is a missing-function finding (never a guess)
    assert [t.function.label for t in prod.targets] == ["pets:live"]
    assert dev.targets == () and [f.kind for f in dev.findings] == [FindingKind.MISSING_FUNCTION]


# --------------------------------------------------------------- what a stage without auto-deploy serves

AUTH = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:auth"


def export(uri: str, authorizer: str = "auth", authorizer_uri: str = AUTH) -> dict[str, object]:
    """An HTTP API stage export as ExportApi writes it (OAS 3.0, both extensions)."""
    integration = {"type": "aws_proxy", "uri": uri, "payloadFormatVersion": "2.0", "httpMethod": "POST"}
    return {
        "openapi": "3.0.1",
        "paths": {
            "/pets/{id}": {
                "get": {"security": [{authorizer: []}], "x-amazon-apigateway-integration": integration}
            },
            "/$default": {
                "x-amazon-apigateway-any-method": {
                    "isDefaultRoute": True,
                    "x-amazon-apigateway-integration": integration,
                }
            },
        },
        "components": {
            "securitySchemes": {
                authorizer: {
                    "type": "apiKey",
                    "x-amazon-apigateway-authorizer": {
                        "type": "request",
                        "authorizerUri": lambda_uri(authorizer_uri),
                    },
                }
            }
        },
    }


def current(uri: str) -> V2Spec:
    return V2Spec(
        "HTTP",
        (V2Route("GET /pets/{id}", "integrations/i", "CUSTOM", "a1"), V2Route("$default", "integrations/i")),
        {"i": V2Integration("i", "AWS_PROXY", lambda_uri(uri))},
        {"a1": V2Authorizer("a1", "auth", "REQUEST", lambda_uri(AUTH))},
    )


def test_export_is_read_as_routes_with_authorizer_ids_by_name() -> None:
    # Given a stage export serving pets, behind authorizer `auth`, on a route and on `$default`
    served = served_from_export(export(PLAIN), current(PLAIN))
    # Then the route keys, integration and the authorizer's id (from the current authorizers by name)
    assert [(r.route_key, r.authorizer_id) for r in served.routes] == [
        ("$default", None),
        ("GET /pets/{id}", "a1"),
    ]
    assert {i.uri for i in served.integrations.values()} == {PATH_FORM}
    assert served.problems == ()
    # And an authorizer the current API no longer has is a problem (its id is unknown), not a guess
    renamed = served_from_export(export(PLAIN, authorizer="old"), current(PLAIN))
    assert renamed.authorizers == {} and len(renamed.problems) == 1


def test_stage_serves_its_export_and_the_differing_working_copy_is_undeployed() -> None:
    # Given prod (auto-deploy off) serving pets while the working copy invokes pets-v2
    moved = PLAIN.replace("pets", "pets-v2")
    prod = V2Stage("prod", access_log_format="$context.integrationErrorMessage $context.authorizer.error")
    prod = replace(prod, access_log_destination="g", deployment_id="d1")
    prod = replace(prod, served=served_from_export(export(PLAIN), current(moved)))
    # When its targets are computed
    targets, findings = v2_targets(API, "shop", current(moved), [prod])
    # Then pets (served) is targeted on both routes, and the move is undeployed on the named stage
    assert {(t.route_key, t.function.name) for t in targets if t.kind is TargetKind.INTEGRATION} == {
        ("GET /pets/{id}", "pets"),
        ("$default", "pets"),
    }
    undeployed = [f for f in findings if f.kind is FindingKind.UNDEPLOYED_CHANGE]
    assert {(f.route_key, f.stage, f.function_arn) for f in undeployed} == {
        ("GET /pets/{id}", "prod", moved),
        ("$default", "prod", moved),
    }
    # And beside an auto-deploy stage (which serves the working copy) nothing is undeployed
    auto = V2Stage("$default", auto_deploy=True)
    assert v2_undeployed_changes(API, "shop", current(moved), [prod, auto]) == []
