"""Predicting permission failures from plain CloudFormation (no SAM transform needed)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from permheal.check import CheckKind, check_paths
from permheal.check.model import CheckFinding

SUB_API = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Http}"
LAMBDA_URI = (
    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${%s}/invocations"
)


def grant(function: Any, source: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "Action": "lambda:InvokeFunction",
        "FunctionName": function,
        "Principal": "apigateway.amazonaws.com",
    }
    if source is not None:
        properties["SourceArn"] = {"Fn::Sub": source}
    return {"Type": "AWS::Lambda::Permission", "Properties": properties}


HTTP: dict[str, Any] = {
    "Resources": {
        "Pets": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Auth": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Http": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP"}},
        "Integration": {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": "Http"},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": ["Pets", "Arn"]},
            },
        },
        "Authorizer": {
            "Type": "AWS::ApiGatewayV2::Authorizer",
            "Properties": {
                "ApiId": {"Ref": "Http"},
                "AuthorizerType": "REQUEST",
                "AuthorizerUri": {"Fn::Sub": LAMBDA_URI % "Auth.Arn"},
            },
        },
        "Route": {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": "Http"},
                "RouteKey": "GET /pets/{id}",
                "Target": {"Fn::Sub": "integrations/${Integration}"},
                "AuthorizationType": "CUSTOM",
                "AuthorizerId": {"Ref": "Authorizer"},
            },
        },
        "Stage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": {"Ref": "Http"}, "StageName": "v1"},
        },
        "PetsGrant": grant({"Ref": "Pets"}, SUB_API + "/*/GET/pets/*"),
        "AuthGrant": grant({"Fn::GetAtt": ["Auth", "Arn"]}, SUB_API + "/authorizers/${Authorizer}"),
    }
}


def run(tmp_path: Path, template: dict[str, Any], name: str = "t.json") -> list[CheckFinding]:
    path = tmp_path / name
    path.write_text(json.dumps(template, indent=1))
    return check_paths([path])


def variant(**changes: Any) -> dict[str, Any]:
    template = copy.deepcopy(HTTP)
    for key, value in changes.items():
        if value is None:
            del template["Resources"][key]
        else:
            template["Resources"][key] = value
    return template


def test_an_http_api_with_route_integration_and_authorizer_grants_is_clean(tmp_path: Path) -> None:
    assert run(tmp_path, HTTP) == []


def test_a_missing_route_grant_is_reported_with_route_key_and_method_scope_fix(tmp_path: Path) -> None:
    (finding,) = run(tmp_path, variant(PetsGrant=None))
    assert (finding.kind, finding.api_type, finding.route_key, finding.stage) == (
        CheckKind.MISSING_PERMISSION,
        "HTTP",
        "GET /pets/{id}",
        "v1",
    )
    assert (finding.method, finding.resource_path, finding.function) == ("GET", "/pets/{id}", "Pets")
    assert "/v1/GET/pets/{id}" in finding.detail
    assert json.loads(str(finding.fix))  # JSON template -> JSON fix
    assert "${Http}/*/GET/pets/*" in str(finding.fix)


def test_a_method_shaped_grant_for_an_http_authorizer_is_a_wrong_source_arn(tmp_path: Path) -> None:
    (finding,) = run(tmp_path, variant(AuthGrant=grant({"Ref": "Auth"}, SUB_API + "/*/*/*")))
    assert (finding.kind, finding.authorizer, finding.function) == (
        CheckKind.WRONG_SOURCE_ARN,
        "Authorizer",
        "Auth",
    )
    assert "authorizers" in finding.detail and "${Authorizer}" in str(finding.fix)


def test_a_trailing_slash_grant_says_so(tmp_path: Path) -> None:
    (finding,) = run(tmp_path, variant(PetsGrant=grant({"Ref": "Pets"}, SUB_API + "/*/GET/pets/")))
    assert finding.kind is CheckKind.WRONG_SOURCE_ARN and "ends with a slash" in finding.detail


def test_a_grant_on_another_api_does_not_count_and_is_not_blamed(tmp_path: Path) -> None:
    other = "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:abcdefghij/*/GET/pets/*"
    (finding,) = run(tmp_path, variant(PetsGrant=grant({"Ref": "Pets"}, other)))
    assert finding.kind is CheckKind.MISSING_PERMISSION


def test_a_grant_without_source_arn_allows_every_call(tmp_path: Path) -> None:
    assert run(tmp_path, variant(PetsGrant=grant({"Ref": "Pets"}, None))) == []


def test_an_integration_invoked_with_a_role_needs_no_grant(tmp_path: Path) -> None:
    template = variant(PetsGrant=None)
    template["Resources"]["Integration"]["Properties"]["CredentialsArn"] = "arn:aws:iam::123456789012:role/r"
    assert run(tmp_path, template) == []


def test_an_authorizer_no_route_uses_is_never_invoked(tmp_path: Path) -> None:
    template = variant(AuthGrant=None)
    del template["Resources"]["Route"]["Properties"]["AuthorizerId"]
    assert run(tmp_path, template) == []


def test_a_stage_only_deploy_names_matches_a_grant_naming_the_same_parameter(tmp_path: Path) -> None:
    template = variant(PetsGrant=grant({"Ref": "Pets"}, SUB_API + "/${StageName}/GET/pets/*"))
    template["Parameters"] = {"StageName": {"Type": "String"}}
    template["Resources"]["Stage"]["Properties"]["StageName"] = {"Ref": "StageName"}
    assert run(tmp_path, template) == []


def test_a_stage_only_deploy_names_against_a_literal_stage_grant_is_unresolved(tmp_path: Path) -> None:
    template = variant(PetsGrant=grant({"Ref": "Pets"}, SUB_API + "/prod/GET/pets/*"))
    template["Parameters"] = {"StageName": {"Type": "String"}}
    template["Resources"]["Stage"]["Properties"]["StageName"] = {"Ref": "StageName"}
    (finding,) = run(tmp_path, template)
    assert finding.kind is CheckKind.UNRESOLVED and "StageName" in finding.detail and finding.fix is None


def test_a_wildcard_stage_grant_covers_a_stage_only_deploy_names(tmp_path: Path) -> None:
    template = copy.deepcopy(HTTP)
    template["Parameters"] = {"StageName": {"Type": "String"}}
    template["Resources"]["Stage"]["Properties"]["StageName"] = {"Ref": "StageName"}
    assert run(tmp_path, template) == []


REST: dict[str, Any] = {
    "Resources": {
        "Pets": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "pets"}},
        "Version": {"Type": "AWS::Lambda::Version", "Properties": {"FunctionName": {"Ref": "Pets"}}},
        "Live": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {
                "FunctionName": {"Ref": "Pets"},
                "Name": "live",
                "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]},
            },
        },
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
        "Items": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "items",
            },
        },
        "Get": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": {"Ref": "Items"},
                "HttpMethod": "GET",
                "Integration": {
                    "Type": "AWS_PROXY",
                    "Uri": {
                        "Fn::Sub": (
                            "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                            "${Pets.Arn}:${!stageVariables.alias}/invocations"
                        )
                    },
                },
            },
        },
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "StageName": "prod",
                "StageDescription": {"Variables": {"alias": "live"}},
            },
        },
        "Grant": grant(
            {"Ref": "Live"}, "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/prod/GET/items"
        ),
    }
}


def test_a_stage_variable_alias_granted_on_that_alias_is_clean(tmp_path: Path) -> None:
    assert run(tmp_path, REST) == []


def test_a_stage_variable_alias_granted_on_the_function_is_a_wrong_qualifier(tmp_path: Path) -> None:
    template = copy.deepcopy(REST)
    template["Resources"]["Grant"]["Properties"]["FunctionName"] = {"Ref": "Pets"}
    (finding,) = run(tmp_path, template)
    assert (finding.kind, finding.function, finding.qualifier, finding.resource_path) == (
        CheckKind.WRONG_QUALIFIER,
        "Pets",
        "live",
        "/items",
    )
    assert '"Ref": "Live"' in str(finding.fix)


def test_a_bare_openapi_file_reports_only_what_it_decides_alone(tmp_path: Path) -> None:
    uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations"
    document = {
        "openapi": "3.0.1",
        "paths": {
            "/a": {
                "get": {
                    "x-amazon-apigateway-integration": {
                        "type": "aws_proxy",
                        "uri": uri.format("arn:aws:lambda:us-east-1:123456789012:function:a"),
                    }
                }
            },
            "/b": {
                "get": {
                    "x-amazon-apigateway-integration": {
                        "type": "aws_proxy",
                        "uri": uri.format(
                            "arn:aws:lambda:us-east-1:123456789012:function:${stageVariables.fn}"
                        ),
                    }
                }
            },
        },
    }
    (finding,) = run(tmp_path, document, "openapi.json")
    assert (finding.kind, finding.resource_path) == (CheckKind.UNRESOLVED, "/b")
    assert "stage variable" in finding.detail


def test_a_resource_whose_condition_is_false_is_not_deployed(tmp_path: Path) -> None:
    template = variant(PetsGrant=None)
    template["Parameters"] = {"Env": {"Type": "String", "Default": "dev"}}
    template["Conditions"] = {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}}
    template["Resources"]["Route"]["Condition"] = "IsProd"
    assert run(tmp_path, template) == []  # the route (and its call) exists only in prod
    template["Resources"]["Route"]["Condition"] = "Unknown"
    assert [f.kind for f in run(tmp_path, template)] == [CheckKind.MISSING_PERMISSION]


def test_a_canary_whose_overrides_pick_another_alias_needs_its_own_grant(tmp_path: Path) -> None:
    # Given the stage serves alias live, and its canary overrides the variable to alias next
    template = copy.deepcopy(REST)
    del template["Resources"]["Deployment"]["Properties"]["StageName"]
    template["Resources"]["Next"] = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {"FunctionName": {"Ref": "Pets"}, "Name": "next", "FunctionVersion": "1"},
    }
    template["Resources"]["Stage"] = {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "StageName": "prod",
            "DeploymentId": {"Ref": "Deployment"},
            "Variables": {"alias": "live"},
            "CanarySetting": {"PercentTraffic": 10, "StageVariableOverrides": {"alias": "next"}},
        },
    }
    # When checked, Then the canary call (stage prod, alias next) has only the grant on alias live
    (finding,) = run(tmp_path, template)
    assert (finding.kind, finding.stage, finding.qualifier) == (
        CheckKind.WRONG_QUALIFIER,
        "prod (canary)",
        "next",
    )
    assert "Pets:next" in finding.detail and '"Ref": "Next"' in str(finding.fix)
