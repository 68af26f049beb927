"""`permheal check` on real public templates (tests/check_corpus/SOURCES.md) and on the ways real
IaC breaks them: each correct template is clean, each break is found at the resource that
causes it, and applying the finding's fix makes the template clean again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from permheal.check import CheckKind, check_paths
from permheal.check import sam as sam_module
from permheal.check.loader import load
from permheal.check.predict import predict
from tests.integration.check_support import apply_fixes, check, corpus, line_of, read, write

CLEAN = [
    "sam/api_with_auth_all_minimum.yaml",
    "sam/explicit_http_api.yaml",
    "sam/http_api_explicit_stage.yaml",
    "sam/http_api_lambda_auth_with_permissions_resource.yaml",
    "patterns/apigw-lambda-authorizer/template.yaml",
    "patterns/apigw-http-api-lambda/template.yml",
    "patterns/apigw-mappingtemplate-lambda/template.yaml",
    "cdk/lambda-api.cdk.out",
    "cdk/token-authorizer.cdk.out",
    "cdk/http-lambda-proxy.cdk.out",
    "cdk/http-lambda-authorizer.cdk.out",
]
AUTH = "patterns/apigw-lambda-authorizer/template.yaml"
HTTP = "patterns/apigw-http-api-lambda/template.yml"
CDK = "cdk/lambda-api.cdk.out/LambdaApiIntegrationOptionsStack.template.json"
CDK_AUTH = "cdk/token-authorizer.cdk.out/TokenAuthorizerInteg.template.json"
MAPPING = "patterns/apigw-mappingtemplate-lambda/template.yaml"
CDK_HTTP = "cdk/http-lambda-authorizer.cdk.out/AuthorizerInteg.template.json"


def calls_of(relative: str) -> int:
    total = 0
    for path in sorted(corpus(relative).rglob("*.template.json")) or [corpus(relative)]:
        doc = load(path)
        template = sam_module.transform(doc.data, path.parent) if sam_module.is_sam(doc.data) else doc.data
        total += len(predict(doc, template)[1])
    return total


@pytest.mark.parametrize("relative", CLEAN)
def test_a_correct_real_template_gives_no_findings(relative: str) -> None:
    # Given a real public template that works when deployed, with Lambda integrations to check
    assert calls_of(relative) > 0
    # When it is checked / Then nothing is reported
    assert check_paths([corpus(relative)]) == []


def test_a_sam_http_api_lambda_authorizer_without_permission_is_a_real_missing_permission() -> None:
    # Given SAM's own test input: an HttpApi Lambda authorizer without EnableFunctionDefaultPermissions
    path = corpus("sam/http_api_lambda_auth.yaml")
    # When it is checked
    findings = check(path)
    # Then the authorizer (which SAM grants nothing) is reported where MyApi is defined
    assert [(f.kind, f.api, f.authorizer, f.function, f.line) for f in findings] == [
        (CheckKind.MISSING_PERMISSION, "MyApi", "LambdaAuth", "MyAuthFn", line_of(path, "MyApi"))
    ]
    assert "/authorizers/*" in str(findings[0].fix)


REAL_BREAKS = {
    # SAM's own inputs that SAM transforms without complaint, yet whose APIs would answer 500
    "sam/api_merge_definitions_with_different_methods.yaml": (
        # the body integrates POST /test; the function's event (and so SAM's grant) is GET /test
        CheckKind.MISSING_PERMISSION,
        "MyApi",
        {"POST /test"},
    ),
    "sam/globals_for_api.yaml": (
        # ExplicitApi's body calls the function, whose event attaches it to the implicit API only
        CheckKind.MISSING_PERMISSION,
        "ExplicitApi",
        {"GET /"},
    ),
    "sam/api_request_model.yaml": (
        # `RestApiId: HtmlApi` as a plain string: SAM writes the logical id into the SourceArn
        CheckKind.WRONG_SOURCE_ARN,
        "HtmlApi",
        {"GET /", "ANY /any"},
    ),
}


@pytest.mark.parametrize("relative", sorted(REAL_BREAKS))
def test_a_real_template_that_would_fail_is_reported_and_fixed(relative: str, tmp_path: Path) -> None:
    kind, api, calls = REAL_BREAKS[relative]
    path = write(read(relative), tmp_path, relative)
    findings = check(path)
    assert {(f.kind, f.api) for f in findings} == {(kind, api)}
    assert {f.where for f in findings} == calls
    assert {f.line for f in findings} == {line_of(path, api)}
    assert check(apply_fixes(path, findings)) == []


def test_an_api_defined_in_s3_is_unresolved_not_guessed() -> None:
    path = corpus("sam/function_with_alias_and_event_sources.yaml")
    findings = check(path)
    assert [(f.kind, f.api) for f in findings] == [(CheckKind.UNRESOLVED, "GetHtmlApi")]
    assert "S3" in findings[0].detail and findings[0].fix is None


# --- variants: the ways real IaC breaks ---------------------------------------------------------


def removed(relative: str, logical_id: str) -> Any:
    template = read(relative)
    del template["Resources"][logical_id]
    return template


def _sub(template: dict[str, Any], logical_id: str, text: str) -> None:
    template["Resources"][logical_id]["Properties"]["SourceArn"] = {"Fn::Sub": text}


def another_stage() -> Any:
    template = read(AUTH)
    _sub(
        template,
        "AppFunctionPermission",
        "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${AppApi}/dev/GET/",
    )
    return template


def authorizer_as_method() -> Any:
    template = read(AUTH)
    _sub(
        template,
        "TokenAuthorizerFunctionPermission",
        "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${AppApi}/*/*/*",
    )
    return template


def logical_id_for_api_id() -> Any:
    template = read(AUTH)
    _sub(
        template,
        "AppFunctionPermission",
        "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:AppApi/*/GET/",
    )
    return template


def http_logical_id() -> Any:
    template = read(HTTP)
    _sub(
        template,
        "FunctionResourcePermission",
        "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:HttpApi/*",
    )
    return template


def alias_added() -> Any:
    """An alias is introduced and the integrations call it; the grants stay on the function."""
    template = read(CDK)
    resources = template["Resources"]
    resources["myfnVersion"] = {
        "Type": "AWS::Lambda::Version",
        "Properties": {"FunctionName": {"Ref": "myfn8C66D016"}},
    }
    resources["myfnAliasLive"] = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "FunctionName": {"Ref": "myfn8C66D016"},
            "FunctionVersion": {"Fn::GetAtt": ["myfnVersion", "Version"]},
            "Name": "live",
        },
    }
    uri = {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "${myfnAliasLive}/invocations"
    }
    for method in ("lambdarestapiproxyANYC900233F", "lambdarestapiANYB9BB3FB2"):
        resources[method]["Properties"]["Integration"]["Uri"] = uri
    return template


def stage_variable_only() -> Any:
    template = read(CDK)
    uri = {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${!stageVariables.fn}"
        "/invocations"
    }
    template["Resources"]["lambdarestapiproxyANYC900233F"]["Properties"]["Integration"]["Uri"] = uri
    return template


def event_removed() -> Any:
    """The OpenAPI body still integrates the function, but the SAM event (and its grant) is gone."""
    template = read(MAPPING)
    del template["Resources"]["APIFunction"]["Properties"]["Events"]
    return template


def many_grants() -> Any:
    """70 methods, one per-method grant each (how CDK's default grows a policy)."""
    template = read(AUTH)
    resources = template["Resources"]
    for index in range(70):
        resources[f"Item{index}Resource"] = {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "AppApi"},
                "ParentId": {"Fn::GetAtt": ["AppApi", "RootResourceId"]},
                "PathPart": f"item{index}",
            },
        }
        resources[f"Item{index}Get"] = {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "AppApi"},
                "ResourceId": {"Ref": f"Item{index}Resource"},
                "HttpMethod": "GET",
                "AuthorizationType": "NONE",
                "Integration": resources["RootMethodGet"]["Properties"]["Integration"],
            },
        }
        resources[f"Item{index}Permission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": "AppFunction"},
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${AppApi}/*/GET/"
                    f"item{index}"
                },
            },
        }
    return template


VARIANTS = {
    # name: (original, make variant, kind, resource the finding points at, function, extra checks)
    "permission removed (REST method)": (
        AUTH,
        lambda: removed(AUTH, "AppFunctionPermission"),
        CheckKind.MISSING_PERMISSION,
        "RootMethodGet",
        "AppFunction",
    ),
    "permission removed (REST authorizer)": (
        AUTH,
        lambda: removed(AUTH, "TokenAuthorizerFunctionPermission"),
        CheckKind.MISSING_PERMISSION,
        "AuthorizersLambdaToken",
        "TokenAuthorizerFunction",
    ),
    "permission removed (HTTP $default)": (
        HTTP,
        lambda: removed(HTTP, "FunctionResourcePermission"),
        CheckKind.MISSING_PERMISSION,
        "HttpApi",
        "LambdaFunction",
    ),
    "permission removed (CDK authorizer)": (
        CDK_AUTH,
        lambda: removed(
            CDK_AUTH, "MyAuthorizerFunctionTokenAuthorizerIntegMyAuthorizer793B1D5FPermissions7557AE26"
        ),
        CheckKind.MISSING_PERMISSION,
        "MyAuthorizer6575980E",
        "MyAuthorizerFunction70F1223E",
    ),
    "permission removed (CDK HTTP route with {proxy+})": (
        CDK_HTTP,
        lambda: removed(CDK_HTTP, "RouteRootIntegrationPermissionC2C15701"),
        CheckKind.MISSING_PERMISSION,
        "RouteA67450D2",
        "lambda8B5974B5",
    ),
    "permission removed (CDK HTTP authorizer)": (
        CDK_HTTP,
        lambda: removed(
            CDK_HTTP, "MyHttpApiAuthorizerIntegMyHttpApiLambdaAuthorizerB89228D7Permission82260331"
        ),
        CheckKind.MISSING_PERMISSION,
        "MyHttpApiLambdaAuthorizerB8A0E2A4",
        "authfunction96361832",
    ),
    "SAM event removed, OpenAPI body still integrates": (
        MAPPING,
        event_removed,
        CheckKind.MISSING_PERMISSION,
        "RestApi",
        "APIFunction",
    ),
    "another stage": (AUTH, another_stage, CheckKind.WRONG_SOURCE_ARN, "RootMethodGet", "AppFunction"),
    "/*/*/* for an authorizer": (
        AUTH,
        authorizer_as_method,
        CheckKind.WRONG_SOURCE_ARN,
        "AuthorizersLambdaToken",
        "TokenAuthorizerFunction",
    ),
    "logical id where the API id belongs": (
        AUTH,
        logical_id_for_api_id,
        CheckKind.WRONG_SOURCE_ARN,
        "RootMethodGet",
        "AppFunction",
    ),
    "logical id where the HTTP API id belongs": (
        HTTP,
        http_logical_id,
        CheckKind.WRONG_SOURCE_ARN,
        "HttpApi",
        "LambdaFunction",
    ),
    "alias added, grants left on the function": (
        CDK,
        alias_added,
        CheckKind.WRONG_QUALIFIER,
        "lambdarestapiproxyANYC900233F",
        "myfn8C66D016",
    ),
    "70 per-method grants on one function": (
        AUTH,
        many_grants,
        CheckKind.POLICY_SIZE_RISK,
        "AppFunction",
        "AppFunction",
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_broken_variant_is_found_at_its_resource_and_its_fix_makes_it_clean(
    name: str, tmp_path: Path
) -> None:
    original, make, kind, resource, function = VARIANTS[name]
    # Given a real template broken the way real IaC breaks
    path = write(make(), tmp_path, original)
    # When it is checked
    findings = check(path)
    # Then every finding is of the expected kind, names the function, and points at the resource
    assert findings, name
    assert {f.kind for f in findings} == {kind}
    assert {f.function for f in findings} == {function}
    assert line_of(path, resource) in {f.line for f in findings}
    # And applying the fixes makes the template clean
    fixed = apply_fixes(path, findings)
    assert check(fixed) == []


def test_the_size_fix_replaces_the_per_method_grants_with_one(tmp_path: Path) -> None:
    path = write(many_grants(), tmp_path, AUTH)
    (finding,) = check(path)
    assert "Item69Permission" in str(finding.fix) and "/*/*/*" in str(finding.fix)
    fixed = apply_fixes(path, [finding])
    assert "Item0Permission" not in load(fixed).data["Resources"]


def test_wrong_qualifier_says_which_qualifier_was_granted(tmp_path: Path) -> None:
    findings = check(write(alias_added(), tmp_path, CDK))
    assert all(f.qualifier == "live" and "unqualified" in f.detail for f in findings)


def test_another_stage_names_both_stages(tmp_path: Path) -> None:
    (finding,) = check(write(another_stage(), tmp_path, AUTH))
    assert "stage dev" in finding.detail and "stage Prod" in finding.detail


def test_logical_id_for_api_id_says_so(tmp_path: Path) -> None:
    (finding,) = check(write(logical_id_for_api_id(), tmp_path, AUTH))
    assert "logical id AppApi" in finding.detail


def test_a_function_chosen_only_by_a_stage_variable_is_unresolved_without_a_fix(tmp_path: Path) -> None:
    path = write(stage_variable_only(), tmp_path, CDK)
    findings = check(path)
    assert [(f.kind, f.stage, f.resource_path, f.fix) for f in findings] == [
        (CheckKind.UNRESOLVED, "prod", "/{proxy+}", None)
    ]
    assert "stage variable" in findings[0].detail and "fn" in findings[0].detail
    assert findings[0].line == line_of(path, "lambdarestapiproxyANYC900233F")


def test_a_stage_variable_the_stage_sets_is_followed(tmp_path: Path) -> None:
    # Given the integration picks the function by stage variable, and the stage names the function
    template = stage_variable_only()
    template["Resources"]["myfn8C66D016"]["Properties"]["FunctionName"] = "pets"
    stage = template["Resources"]["lambdarestapiDeploymentStageprodA05F84EA"]["Properties"]
    stage["Variables"] = {"fn": "pets"}
    # Then the call is judged like any other: the template's grants on that function allow it
    assert check(write(template, tmp_path, CDK)) == []
    # And a stage naming a function this template neither defines nor grants is unresolved, not guessed
    stage["Variables"] = {"fn": "other-function"}
    findings = check(write(template, tmp_path / "other", CDK))
    assert [(f.kind, f.function) for f in findings] == [
        (
            CheckKind.UNRESOLVED,
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:other-function",
        )
    ]
    assert "not defined in this template" in findings[0].detail


# --- deployed into the local AWS: the simulator agrees with the prediction ----------------------

REST_VARIANTS = sorted(
    name
    for name, (original, *_rest) in VARIANTS.items()
    if original in (AUTH, CDK, CDK_AUTH, MAPPING) and "70" not in name
)
HTTP_VARIANTS = sorted(name for name, (original, *_rest) in VARIANTS.items() if original in (HTTP, CDK_HTTP))
HTTP_REAL_BREAKS = ["sam/http_api_lambda_auth.yaml"]  # SAM grants its Lambda authorizer nothing


def _broken(name: str, tmp_path: Path) -> Path:
    if name in REAL_BREAKS or name in HTTP_REAL_BREAKS:
        return write(read(name), tmp_path, name)
    original, make, *_ = VARIANTS[name]
    return write(make(), tmp_path, original)


@pytest.mark.parametrize("name", REST_VARIANTS + sorted(REAL_BREAKS) + HTTP_VARIANTS + HTTP_REAL_BREAKS)
def test_deployed_locally_the_broken_template_fails_where_predicted_and_the_fixed_one_works(
    name: str, tmp_path: Path, world: Any
) -> None:
    from tests.integration.check_deploy import deploy, send_all

    path = _broken(name, tmp_path)
    findings = check(path)
    # Given the broken template deployed into the local AWS: the simulator's requests fail with 500
    broken = send_all(world, deploy(world, path))
    failing = {request for request, status in broken.items() if status == 500}
    assert failing and set(broken.values()) <= {200, 500}
    # exactly where the prediction said (for breaks of method integrations)
    if not any(f.authorizer for f in findings):
        assert {(r.stage, r.call.site.method, r.call.site.resource_path) for r in failing} == {
            (f.stage, f.method, f.resource_path) for f in findings
        }
    elif {r.api_type for r in failing} == {"HTTP"}:  # HTTP authorizers guard routes of their own
        assert {(r.stage, r.call.site.authorizer) for r in failing} == {
            (f.stage, f.authorizer) for f in findings
        }
    # And the fixed template deployed (a fresh API, fresh functions): every request succeeds
    fixed = send_all(world, deploy(world, apply_fixes(path, findings)))
    assert fixed and set(fixed.values()) == {200}


CLEAN_HTTP = [
    "sam/explicit_http_api.yaml",
    "sam/http_api_explicit_stage.yaml",
    "sam/http_api_lambda_auth_with_permissions_resource.yaml",
    HTTP,
    "cdk/http-lambda-proxy.cdk.out/integ-lambda-proxy.template.json",
    CDK_HTTP,
]


@pytest.mark.parametrize("relative", CLEAN_HTTP)
def test_deployed_locally_a_correct_http_template_works(relative: str, tmp_path: Path, world: Any) -> None:
    from tests.integration.check_deploy import deploy, send_all

    # Given a real HTTP API template check finds clean, deployed into the local AWS
    path = write(read(relative), tmp_path, relative)
    assert check(path) == []
    sent = send_all(world, deploy(world, path))
    # Then it has HTTP requests to send, and every one succeeds
    assert {r.api_type for r in sent} == {"HTTP"}
    assert set(sent.values()) == {200}
