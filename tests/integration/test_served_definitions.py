"""Targets come from what each stage serves (its deployment, its canary), end to end (issue 9, 2 and 3).

Each test builds an API with real boto3 calls against moto made faithful to AWS
(`faithful_apigateway`: stages serve deployment snapshots, canaries are kept), runs the real CLI,
and sends requests through the simulator, which serves the same snapshots API Gateway would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from permheal.handlers import detect
from permheal_local.builder import REGION, World, execute_api, function_arn
from permheal_local.simulator import ApiGatewaySimulator, log_group_name
from tests.integration.support import allows, dead_letters, log_payload, wait_for_executions


def scan(cli: Any, api: str) -> Any:
    return cli("scan", "--api", api, "--format", "json")


def remediate(cli: Any, api: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json")


def of_kind(findings: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["kind"] == kind]


def changed(result: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(c["functionArn"], c["qualifier"]) for c in result["changes"]}


# --- (a) an integration edited without redeploying ------------------------------------------------


def test_an_edit_without_redeploy_heals_the_deployed_function_and_only_reports_the_new_one(
    world: World, cli: Any
) -> None:
    # Given GET /pets deployed to prod invoking `pets-v1`, then edited to `pets-v2` without redeploying
    world.function("pets-v1")
    world.function("pets-v2")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("pets-v1"))
    world.deploy(api, "prod")
    world.method(api, "/pets", "GET", function_arn("pets-v2"))
    world.allow("*")
    simulator = ApiGatewaySimulator(world)
    assert simulator.request(api, "prod", "GET", "/pets").status == 500

    # When scanned
    scanned = scan(cli, api)
    # Then the deployed function lacks its grant and the working copy's function is an undeployed change
    assert scanned.code == 1
    (missing,) = of_kind(scanned.json["findings"], "missing_permission")
    assert missing["functionArn"] == function_arn("pets-v1")
    (undeployed,) = of_kind(scanned.json["findings"], "undeployed_change")
    assert (undeployed["method"], undeployed["resourcePath"]) == ("GET", "/pets")
    assert undeployed["functionArn"] == function_arn("pets-v2")
    assert "pets-v2" in undeployed["detail"]

    # When remediated
    run = remediate(cli, api)
    # Then the deployed function got the grant, the working copy's none, and the live call succeeds
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert changed(run.json) == {(function_arn("pets-v1"), None)}
    assert allows(world, "pets-v1", None, execute_api(api, "prod/GET/pets"))
    assert world.statements("pets-v2") == []
    assert [f["functionArn"] for f in of_kind(run.json["findings"], "undeployed_change")] == [
        function_arn("pets-v2")
    ]
    assert simulator.request(api, "prod", "GET", "/pets").ok


def test_an_authorizer_edited_without_redeploy_keeps_the_deployed_authorizer_function(
    world: World, cli: Any
) -> None:
    # Given a TOKEN authorizer deployed invoking `auth-v1`, then pointed at `auth-v2` without redeploying
    for name in ("pets", "auth-v1", "auth-v2"):
        world.function(name)
    api = world.rest_api("pets")
    authorizer = world.authorizer(api, "gate", function_arn("auth-v1"))
    world.method(api, "/pets", "GET", function_arn("pets"), authorizer_id=authorizer)
    world.deploy(api, "prod")
    world.client("apigateway").update_authorizer(
        restApiId=api,
        authorizerId=authorizer,
        patchOperations=[
            {
                "op": "replace",
                "path": "/authorizerUri",
                "value": f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                f"{function_arn('auth-v2')}/invocations",
            }
        ],
    )
    world.allow("*")

    # When remediated
    run = remediate(cli, api)

    # Then the deployed authorizer function is granted, the edited one only reported
    assert run.json["outcome"] == "repaired"
    assert allows(world, "auth-v1", None, execute_api(api, f"authorizers/{authorizer}"))
    assert world.statements("auth-v2") == []
    (undeployed,) = of_kind(run.json["findings"], "undeployed_change")
    assert (undeployed["authorizerId"], undeployed["functionArn"]) == (authorizer, function_arn("auth-v2"))
    response = ApiGatewaySimulator(world).request(api, "prod", "GET", "/pets", {"Authorization": "t"})
    assert response.ok


# --- (b) stages on different deployments ------------------------------------------------------------


def test_dev_and_prod_on_different_deployments_each_get_their_own_grant(world: World, cli: Any) -> None:
    # Given prod deployed invoking `orders-prod`, then the method changed and deployed to dev only
    world.function("orders-prod")
    world.function("orders-dev")
    api = world.rest_api("orders")
    world.method(api, "/orders/{id}", "GET", function_arn("orders-prod"))
    world.deploy(api, "prod")
    world.method(api, "/orders/{id}", "GET", function_arn("orders-dev"))
    world.deploy(api, "dev")
    world.allow("*")

    # When remediated
    run = remediate(cli, api)

    # Then each stage's function was granted, nothing is undeployed, and both stages answer
    assert run.json["outcome"] == "repaired"
    assert changed(run.json) == {(function_arn("orders-prod"), None), (function_arn("orders-dev"), None)}
    assert allows(world, "orders-prod", None, execute_api(api, "prod/GET/orders/{id}"))
    assert allows(world, "orders-dev", None, execute_api(api, "dev/GET/orders/{id}"))
    assert of_kind(run.json["findings"], "undeployed_change") == []
    simulator = ApiGatewaySimulator(world)
    assert simulator.request(api, "prod", "GET", "/orders/7").ok
    assert simulator.request(api, "dev", "GET", "/orders/7").ok


# --- (c) canary -----------------------------------------------------------------------------------


def canary_api(world: World) -> str:
    """`pets:${stageVariables.alias}` on prod (alias=live, granted), canary overriding alias=canary."""
    world.function("pets", alias="live")
    version = world.client("lambda").publish_version(FunctionName="pets", Description="canary")["Version"]
    world.client("lambda").create_alias(FunctionName="pets", Name="canary", FunctionVersion=version)
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("pets", "${stageVariables.alias}"))
    world.deploy(api, "prod", {"alias": "live"})
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="console-live", qualifier="live")
    world.deploy_canary(api, "prod", {"alias": "canary"})
    world.allow("*")
    return api


def test_a_canary_with_an_alias_override_is_scanned_and_healed(world: World, cli: Any) -> None:
    # Given prod healthy and its canary invoking pets:canary without a grant
    api = canary_api(world)
    simulator = ApiGatewaySimulator(world)
    assert simulator.request(api, "prod", "GET", "/pets").ok
    assert simulator.request(api, "prod", "GET", "/pets", canary=True).status == 500

    # When scanned
    scanned = scan(cli, api)
    # Then the canary's missing grant is reported on the canary alias
    assert scanned.code == 1
    (missing,) = of_kind(scanned.json["findings"], "missing_permission")
    assert (missing["functionArn"], missing["qualifier"], missing["stage"]) == (
        function_arn("pets"),
        "canary",
        "prod",
    )

    # When remediated
    run = remediate(cli, api)
    # Then the canary alias got the grant and canary requests succeed
    assert run.json["outcome"] == "repaired"
    assert changed(run.json) == {(function_arn("pets"), "canary")}
    assert allows(world, "pets", "canary", execute_api(api, "prod/GET/pets"))
    assert simulator.request(api, "prod", "GET", "/pets", canary=True).ok
    assert scan(cli, api).code == 0


# --- (d) canary execution logs ----------------------------------------------------------------------


@pytest.fixture
def env(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PERMHEAL_STATE_MACHINE_ARN", stack.state_machine_arn)
    monkeypatch.setenv("PERMHEAL_DEAD_LETTER_QUEUE_URL", stack.dead_letter_queue_url)
    monkeypatch.setenv("PERMHEAL_INCIDENT_WINDOW_SECONDS", "900")
    return stack


def test_a_canary_log_group_failure_is_one_incident_of_the_stage_and_gets_healed(
    world: World, env: Any, lambda_context: Any
) -> None:
    # Given a failing canary request, logged to the stage's canary group
    api = canary_api(world)
    world.allow("pets")
    response = ApiGatewaySimulator(world).request(api, "prod", "GET", "/pets", canary=True)
    assert response.status == 500
    group = log_group_name(api, "prod/Canary")
    events = world.client("logs").filter_log_events(logGroupName=group)["events"]
    assert any(response.request_id in e["message"] for e in events)

    # When the canary group's batch reaches the detector
    result = detect.lambda_handler(
        log_payload(group, [(e["timestamp"], e["message"]) for e in events]), lambda_context
    )

    # Then it starts one execution for the API and stage, and nothing is dead-lettered
    assert len(result["started"]) == 1
    assert dead_letters(world, env.dead_letter_queue_url) == []
    (execution,) = wait_for_executions(world.client("stepfunctions"), env.state_machine_arn, count=1)
    execution_input = json.loads(execution["input"])
    assert (execution_input["apiId"], execution_input["stage"]) == (api, "prod")
    # And the workflow grants the canary alias
    assert execution["status"] == "SUCCEEDED"
    assert allows(world, "pets", "canary", execute_api(api, "prod/GET/pets"))


def test_a_canary_on_an_edited_deployment_is_reported_not_granted(world: World, cli: Any) -> None:
    # Given prod invoking `pets-v1`, and a canary deployed after editing the method to `pets-v2`
    world.function("pets-v1")
    world.function("pets-v2")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("pets-v1"))
    world.deploy(api, "prod")
    world.method(api, "/pets", "GET", function_arn("pets-v2"))
    world.deploy_canary(api, "prod")
    world.allow("*")

    # When remediated
    run = remediate(cli, api)

    # Then the stage's function is healed; the canary's deployment cannot be exported (the
    # documented limit), so its new function is reported, naming the canary, and not granted
    assert changed(run.json) == {(function_arn("pets-v1"), None)}
    assert world.statements("pets-v2") == []
    (undeployed,) = of_kind(run.json["findings"], "undeployed_change")
    assert undeployed["functionArn"] == function_arn("pets-v2")
    assert "canary of prod" in undeployed["detail"]
    simulator = ApiGatewaySimulator(world)
    assert simulator.request(api, "prod", "GET", "/pets").ok
    assert simulator.request(api, "prod", "GET", "/pets", canary=True).status == 500
