"""The faithful API Gateway moto patch: stages serve deployments, keep canaries, export per stage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from permheal.openapi import authorizers_from_list, from_export, from_resources
from permheal_local import faithful_apigateway
from permheal_local.builder import World, function_arn, integration_uri

ROLE = "arn:aws:iam::123456789012:role/invoker"


def export(
    world: World, api: str, stage: str, extensions: str = "integrations,authorizers"
) -> dict[str, Any]:
    response = world.client("apigateway").get_export(
        restApiId=api,
        stageName=stage,
        exportType="oas30",
        parameters={"extensions": extensions} if extensions else {},
        accepts="application/json",
    )
    document: dict[str, Any] = json.loads(response["body"].read())
    return document


def uri_of(document: dict[str, Any], path: str, method: str) -> str:
    return str(document["paths"][path][method]["x-amazon-apigateway-integration"]["uri"])


@pytest.fixture
def api(world: World) -> str:
    """`GET /pets` invoking `old`, deployed to `prod`."""
    world.function("old")
    world.function("new")
    api_id = world.rest_api("shop")
    world.method(api_id, "/pets", "GET", "old")
    world.deploy(api_id, "prod")
    return api_id


def test_export_of_a_stage_shows_its_deployment_not_the_working_copy(world: World, api: str) -> None:
    # Given the integration edited after the deployment, without redeploying
    world.method(api, "/pets", "GET", "new")
    # When the stage is exported
    document = export(world, api, "prod")
    # Then it shows what was deployed (the working copy already says `new`)
    assert uri_of(document, "/pets", "get") == integration_uri("old")
    assert document["openapi"] == "3.0.1"
    assert document["servers"][0]["variables"]["basePath"]["default"] == "prod"


def test_stages_on_different_deployments_export_different_integrations(world: World, api: str) -> None:
    # Given dev deployed after the edit, prod not
    world.method(api, "/pets", "GET", "new")
    world.deploy(api, "dev")
    # Then each stage exports its own deployment
    assert uri_of(export(world, api, "prod"), "/pets", "get") == integration_uri("old")
    assert uri_of(export(world, api, "dev"), "/pets", "get") == integration_uri("new")


def test_export_renders_any_methods_authorizers_and_credentials(world: World, api: str) -> None:
    # Given an ANY method with a role and a method behind a REQUEST authorizer
    authorizer = world.authorizer(api, "gate", function_arn("old"), kind="REQUEST", credentials=ROLE)
    world.method(api, "/items/{id}", "ANY", "new", credentials=ROLE)
    world.method(api, "/private", "GET", "new", authorizer_id=authorizer)
    world.deploy(api, "prod")
    # When exported with both extensions
    document = export(world, api, "prod")
    # Then ANY is the any-method extension, with the integration's credentials
    any_method = document["paths"]["/items/{id}"]["x-amazon-apigateway-any-method"]
    assert any_method["x-amazon-apigateway-integration"] == {
        "type": "aws_proxy",
        "httpMethod": "POST",
        "uri": integration_uri("new"),
        "credentials": ROLE,
        "responses": {},
    }
    assert any_method["parameters"][0]["name"] == "id"
    # And the authorizer is a security scheme named after it, carrying type, URI and credentials
    assert document["paths"]["/private"]["get"]["security"] == [{"gate": []}]
    scheme = document["components"]["securitySchemes"]["gate"]["x-amazon-apigateway-authorizer"]
    assert (scheme["type"], scheme["authorizerUri"], scheme["authorizerCredentials"]) == (
        "request",
        integration_uri(function_arn("old")),
        ROLE,
    )
    assert "id" not in scheme


def test_export_without_extensions_has_no_integrations(world: World, api: str) -> None:
    document = export(world, api, "prod", extensions="")
    assert "x-amazon-apigateway-integration" not in document["paths"]["/pets"]["get"]


def test_export_of_an_unknown_stage_is_not_found(world: World, api: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        export(world, api, "nope")
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"


def test_redeploying_a_stage_keeps_its_settings_and_moves_its_deployment(world: World, api: str) -> None:
    # Given prod with INFO logging and a variable
    apigw = world.client("apigateway")
    before = apigw.get_stage(restApiId=api, stageName="prod")
    # When deployed again with another variable
    apigw.create_deployment(restApiId=api, stageName="prod", variables={"alias": "live"})
    after = apigw.get_stage(restApiId=api, stageName="prod")
    # Then the stage moved to the new deployment and kept its settings
    assert after["deploymentId"] != before["deploymentId"]
    assert after["methodSettings"]["*/*"]["loggingLevel"] == "INFO"
    assert after["variables"] == {"alias": "live"}


def canary_deploy(world: World, api: str, overrides: dict[str, str] | None = None) -> str:
    return world.deploy_canary(api, "prod", overrides)


def test_a_canary_deployment_goes_to_the_canary_not_to_the_stage(world: World, api: str) -> None:
    # Given prod on its deployment, then the integration edited and deployed as a canary
    apigw = world.client("apigateway")
    base = apigw.get_stage(restApiId=api, stageName="prod")["deploymentId"]
    world.method(api, "/pets", "GET", "new")
    canary = canary_deploy(world, api, {"alias": "canary"})
    # Then the stage still serves its deployment and the canary the new one, with its overrides
    stage = apigw.get_stage(restApiId=api, stageName="prod")
    assert stage["deploymentId"] == base
    assert stage["canarySettings"] == {
        "percentTraffic": 10.0,
        "deploymentId": canary,
        "stageVariableOverrides": {"alias": "canary"},
        "useStageCache": False,
    }
    assert apigw.get_stages(restApiId=api)["item"][0]["canarySettings"]["deploymentId"] == canary
    assert uri_of(export(world, api, "prod"), "/pets", "get") == integration_uri("old")
    served = faithful_apigateway.served(api, "prod", canary=True)
    assert served.deployment_id == canary
    assert served.variables == {"alias": "canary"}
    assert served.snapshot.resources[-1]["resourceMethods"]["GET"]["methodIntegration"]["uri"] == (
        integration_uri("new")
    )


def test_a_canary_deployment_needs_an_existing_stage(world: World, api: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        world.client("apigateway").create_deployment(
            restApiId=api, stageName="beta", canarySettings={"percentTraffic": 5.0}
        )
    assert excinfo.value.response["Error"]["Code"] == "NotFoundException"


def test_update_stage_edits_and_removes_canary_settings(world: World, api: str) -> None:
    # Given a canary with one override
    apigw = world.client("apigateway")
    base = apigw.get_stage(restApiId=api, stageName="prod")["deploymentId"]
    canary_deploy(world, api, {"alias": "canary"})

    def patch(*operations: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = apigw.update_stage(
            restApiId=api, stageName="prod", patchOperations=list(operations)
        )
        return result

    # When overrides, traffic and the canary's deployment change
    stage = patch(
        {"op": "replace", "path": "/canarySettings/stageVariableOverrides/flag", "value": "on"},
        {"op": "remove", "path": "/canarySettings/stageVariableOverrides/alias"},
        {"op": "replace", "path": "/canarySettings/percentTraffic", "value": "25.5"},
        {"op": "replace", "path": "/canarySettings/deploymentId", "value": base},
        {"op": "replace", "path": "/variables/alias", "value": "live"},
    )
    # Then the canary changed and the stage's own deployment did not
    assert stage["canarySettings"]["stageVariableOverrides"] == {"flag": "on"}
    assert stage["canarySettings"]["percentTraffic"] == 25.5
    assert stage["canarySettings"]["deploymentId"] == base
    assert stage["deploymentId"] == base
    assert stage["variables"] == {"alias": "live"}
    # And removing the canary removes it
    assert "canarySettings" not in patch({"op": "remove", "path": "/canarySettings"})
    assert "canarySettings" not in apigw.get_stage(restApiId=api, stageName="prod")


def test_promoting_a_canary_copies_its_deployment_and_overrides(world: World, api: str) -> None:
    # Given a canary on a new deployment with an override
    apigw = world.client("apigateway")
    canary = canary_deploy(world, api, {"alias": "canary"})
    # When promoted as AWS documents it
    stage = apigw.update_stage(
        restApiId=api,
        stageName="prod",
        patchOperations=[
            {"op": "copy", "from": "/canarySettings/deploymentId", "path": "/deploymentId"},
            {"op": "copy", "from": "/canarySettings/stageVariableOverrides", "path": "/variables"},
            {"op": "remove", "path": "/canarySettings"},
        ],
    )
    # Then the stage serves the canary's deployment with its variables
    assert (stage["deploymentId"], stage["variables"]) == (canary, {"alias": "canary"})


def test_create_stage_keeps_canary_settings(world: World, api: str) -> None:
    apigw = world.client("apigateway")
    base = apigw.get_stage(restApiId=api, stageName="prod")["deploymentId"]
    stage = apigw.create_stage(
        restApiId=api,
        stageName="beta",
        deploymentId=base,
        canarySettings={"percentTraffic": 5.0, "deploymentId": base, "stageVariableOverrides": {"a": "b"}},
    )
    assert stage["canarySettings"]["stageVariableOverrides"] == {"a": "b"}
    assert apigw.get_stage(restApiId=api, stageName="beta")["canarySettings"]["percentTraffic"] == 5.0


def test_a_stage_without_canary_serves_canary_requests_from_its_deployment(world: World, api: str) -> None:
    stage = world.client("apigateway").get_stage(restApiId=api, stageName="prod")
    served = faithful_apigateway.served(api, "prod", canary=True)
    assert served.deployment_id == stage["deploymentId"]


def test_without_the_patch_moto_exports_the_working_copy_and_drops_canaries(world: World, api: str) -> None:
    # Given the working copy edited after the deployment
    world.method(api, "/pets", "GET", "new")
    faithful_apigateway.uninstall()
    try:
        # Then plain moto keeps no canary and its export ignores the stage (Swagger, no integrations)
        canary_deploy(world, api)
        stage = world.client("apigateway").get_stage(restApiId=api, stageName="prod")
        assert "canarySettings" not in stage
        document = export(world, api, "prod")
        assert "openapi" not in document
        assert "x-amazon-apigateway-integration" not in document["paths"]["/pets"]["GET"]
        with pytest.raises(RuntimeError, match="not installed"):
            faithful_apigateway.served(api, "prod")
    finally:
        faithful_apigateway.install()
    assert faithful_apigateway.is_installed()


def test_the_export_reads_back_as_the_deployed_resources(world: World, api: str) -> None:
    # Given an API with ANY, a role, a TOKEN and a REQUEST authorizer, deployed, then edited
    token = world.authorizer(api, "token", function_arn("old"))
    request = world.authorizer(api, "request", function_arn("new"), kind="REQUEST", credentials=ROLE)
    world.method(api, "/a/{id}", "ANY", "new", credentials=ROLE, authorizer_id=token)
    world.method(api, "/b", "POST", function_arn("old"), authorizer_id=request)
    world.method(api, "/c", "GET", None)
    world.deploy(api, "prod")
    world.method(api, "/b", "POST", "new")
    # When the stage's export is parsed by permheal
    known = authorizers_from_list(world.client("apigateway").get_authorizers(restApiId=api)["items"])
    exported = from_export(export(world, api, "prod"), known)
    # Then it holds exactly the deployment's methods, as GetResources held them when deployed
    snapshot = faithful_apigateway.served(api, "prod").snapshot
    deployed = from_resources(snapshot.resources, authorizers_from_list(snapshot.authorizers))
    assert exported.problems == ()
    assert sorted(exported.methods, key=repr) == sorted(deployed.methods, key=repr)
    assert len(exported.methods) == 4
