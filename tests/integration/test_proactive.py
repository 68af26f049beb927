"""Proactive healing end to end: a deploy call → CloudTrail event → the template's rule → the trigger
Lambda → the real ASL (its debounce Wait) → the repair, before any request is sent.

The stack is template.yaml deployed into moto (1 s debounce window so runs wait at most 2 s);
`CloudTrail.attach` turns the World's API Gateway and Lambda calls into CloudTrail-shaped events
and delivers them to the deployed rule's Lambda target, as EventBridge does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from permheal.adapters.ledger import Ledger
from permheal_local import lambda_runtime
from permheal_local.builder import World, function_arn
from permheal_local.cloudtrail import CloudTrail, cloudtrail_event
from permheal_local.demo_proactive import move_integration
from permheal_local.eventbridge import deliver
from permheal_local.simulator import ApiGatewaySimulator
from permheal_local.stack import LocalStack, deploy
from tests.integration.support import (
    Petstore,
    all_statements,
    build_petstore,
    executions,
    wait_for_executions,
)

TOKEN = {"Authorization": "Bearer token"}
PARAMETERS = {"AllowedApis": "petstore,shop", "ProactiveWindowSeconds": "1"}


def deploy_stack(world: World, **overrides: str) -> Iterator[LocalStack]:
    lambda_runtime.install({"POWERTOOLS_LOG_LEVEL": "WARNING"})
    try:
        yield deploy(world, {**PARAMETERS, **overrides})
    finally:
        lambda_runtime.uninstall()


@pytest.fixture
def stack(world: World) -> Iterator[LocalStack]:
    yield from deploy_stack(world)


@pytest.fixture
def petstore(world: World, stack: LocalStack) -> Petstore:
    """The petstore with every grant in place: GET /pets/42 answers 200 before anything is changed."""
    petstore = build_petstore(world)
    world.grant("pets", petstore.method_arn("*"), sid="pets-get", qualifier="live")
    world.grant("pets-authorizer", petstore.authorizer_arn(), sid="authorizer")
    assert get_pet(world, petstore).status == 200
    return petstore


@pytest.fixture
def trail(world: World, petstore: Petstore) -> Iterator[CloudTrail]:
    trail = CloudTrail.attach(world)
    yield trail
    trail.detach()


def get_pet(world: World, petstore: Petstore, stage: str = "prod") -> Any:
    return ApiGatewaySimulator(world).request(petstore.api_id, stage, "GET", "/pets/42", TOKEN)


def sfn_executions(world: World, stack: LocalStack) -> list[dict[str, Any]]:
    return wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn)


def outputs(world: World, stack: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(e.get("output") or "{}") for e in sfn_executions(world, stack)]


def past_event(api_id: str, seconds_ago: int = 120, **fields: Any) -> dict[str, Any]:
    """A CreateDeployment event whose window closed long ago: its run does not wait."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds_ago)
    return cloudtrail_event(
        "aws.apigateway",
        "apigateway.amazonaws.com",
        "CreateDeployment",
        {"restApiId": api_id, "createDeploymentInput": {"stageName": "prod"}},
        at=at,
        **fields,
    )


# ------------------------------------------------------------------------------ deploy-caused breaks


def test_create_deployment_onto_a_function_without_permission_is_repaired_before_any_request(
    world: World, stack: LocalStack, petstore: Petstore, trail: CloudTrail
) -> None:
    # Given the integration moved to a new function that has no permission yet
    world.function("pets-v2")
    move_integration(world, petstore.api_id, "/pets/{petId}", "GET", "pets-v2")
    # When the change is deployed (CreateDeployment → CloudTrail → rule → trigger → workflow)
    world.client("apigateway").create_deployment(restApiId=petstore.api_id, stageName="prod")
    # Then the very first request succeeds: the repair came from the deploy event, not from a failure
    response = get_pet(world, petstore)
    assert (response.status, response.body) == (200, {"ok": True})
    deployments = [d for d in trail.deliveries if d.event["detail"]["eventName"] == "CreateDeployment"]
    assert [d.error for d in deployments] == [None]
    assert deployments[0].result["apis"] == [petstore.api_id]
    runs = sfn_executions(world, stack)
    assert all(e["status"] == "SUCCEEDED" for e in runs)
    started = {arn for d in trail.deliveries for arn in (d.result or {}).get("started", [])}
    assert started == {e["executionArn"] for e in runs}
    deployed = next(
        json.loads(e["input"]) for e in runs if e["executionArn"] in deployments[0].result["started"]
    )
    assert deployed["source"] == "cloudtrail"
    assert deployed["trigger"]["eventName"] == "CreateDeployment"
    assert "repaired" in [o["outcome"] for o in outputs(world, stack)]


def test_without_the_deploy_event_the_same_change_breaks_the_first_request(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given the same change, with no CloudTrail delivery (what the test above proves is the event's doing)
    world.function("pets-v2")
    move_integration(world, petstore.api_id, "/pets/{petId}", "GET", "pets-v2")
    world.client("apigateway").create_deployment(restApiId=petstore.api_id, stageName="prod")
    # Then the first request fails and nothing ran
    assert get_pet(world, petstore).status == 500
    assert executions(world.client("stepfunctions"), stack.state_machine_arn) == []


def test_update_alias_repairs_every_api_invoking_the_function(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given a second allowlisted API invoking the same alias, and both alias grants lost (alias re-created)
    shop = world.rest_api("shop")
    world.method(shop, "/pets/{petId}", "GET", function_arn("pets", "live"))
    world.deploy(shop, "prod")
    lam = world.client("lambda")
    lam.remove_permission(FunctionName="pets", Qualifier="live", StatementId="pets-get")
    assert get_pet(world, petstore).status == 500
    assert ApiGatewaySimulator(world).request(shop, "prod", "GET", "/pets/1").status == 500
    trail = CloudTrail.attach(world)
    try:
        # When the alias is moved to a new version (UpdateAlias20150331 → the routes index or the scan)
        version = lam.publish_version(FunctionName="pets", Description="v2")["Version"]
        lam.update_alias(FunctionName="pets", Name="live", FunctionVersion=version)
    finally:
        trail.detach()
    # Then both APIs were checked and repaired before any request
    names = [d.event["detail"]["eventName"] for d in trail.deliveries]
    assert "UpdateAlias20150331" in names
    update = next(d for d in trail.deliveries if d.event["detail"]["eventName"] == "UpdateAlias20150331")
    assert sorted(update.result["apis"]) == sorted([petstore.api_id, shop])
    assert get_pet(world, petstore).status == 200
    assert ApiGatewaySimulator(world).request(shop, "prod", "GET", "/pets/1").status == 200
    # And every resolve refreshed the routes index with the APIs it saw invoking pets
    ledger = Ledger(stack_table(world))
    assert ledger.apis_invoking(function_arn("pets")) == {petstore.api_id, shop}
    assert all(not e.change_id.startswith("route#") for e in ledger.history())


def stack_table(world: World) -> str:
    tables = world.client("dynamodb").list_tables()["TableNames"]
    (table,) = tables
    return str(table)


def test_a_function_event_uses_the_routes_index_once_a_resolve_filled_it(
    world: World, stack: LocalStack, petstore: Petstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a resolve has indexed petstore as invoking pets (a proactive run on it)
    CloudTrail(world, settle=True).put(past_event(petstore.api_id))
    assert Ledger(stack_table(world)).apis_invoking(function_arn("pets")) == {petstore.api_id}
    # And the fallback scan would find nothing
    from permheal.handlers import proactive

    monkeypatch.setattr(proactive, "scan_for_function", lambda *_: frozenset())
    # When a Lambda event about pets arrives
    at = datetime.now(UTC) - timedelta(seconds=300)
    event = cloudtrail_event(
        "aws.lambda", "lambda.amazonaws.com", "PublishVersion20150331", {"functionName": "pets"}, at=at
    )
    (delivery,) = deliver(world, [event])
    # Then the index named petstore
    assert delivery.result["apis"] == [petstore.api_id]
    assert len(delivery.result["started"]) == 1


def test_remove_permission_is_repaired_and_the_flap_breaker_still_stops_iac_that_keeps_removing_it(
    world: World, stack: LocalStack, petstore: Petstore, trail: CloudTrail
) -> None:
    lam = world.client("lambda")
    outcomes: list[str] = []
    for _ in range(4):
        # Given IaC drift that removes the API's grant again and again (RemovePermission20150331v2)
        lam.remove_permission(FunctionName="pets", Qualifier="live", StatementId=_grant_sid(world))
        outcomes.append(_latest_outcome(world, stack))
    # Then the first three removals were repaired from the event, the fourth is refused as flapping
    assert outcomes == ["repaired", "repaired", "repaired", "flapping"]
    assert get_pet(world, petstore).status == 500
    names = {d.event["detail"]["eventName"] for d in trail.deliveries}
    assert names == {"RemovePermission20150331v2"}


def _grant_sid(world: World) -> str:
    statements = world.statements("pets", "live")
    return str(next(s["Sid"] for s in statements if "GET/pets" in json.dumps(s)))


def _latest_outcome(world: World, stack: LocalStack) -> str:
    runs = sorted(sfn_executions(world, stack), key=lambda e: e["startDate"])
    return str(json.loads(runs[-1].get("output") or runs[-1].get("cause") or "{}")["outcome"])


# ------------------------------------------------------------------------------ debounce


def test_twenty_events_in_a_burst_start_one_execution(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given a deployment's burst: 20 events about one API within one window
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=120)
    at = at - timedelta(seconds=at.second % 30)
    burst = [
        cloudtrail_event(
            "aws.apigateway",
            "apigateway.amazonaws.com",
            name,
            {"restApiId": petstore.api_id, "createDeploymentInput": {"stageName": "prod"}},
            at=at + timedelta(milliseconds=40 * index),
        )
        for index, name in enumerate(["PutIntegration", "PutMethod", "UpdateStage", "CreateDeployment"] * 5)
    ]
    # When EventBridge delivers them all
    deliveries = CloudTrail(world, settle=False).put_many(burst)
    # Then one execution ran, the other 19 were suppressed by its name
    runs = sfn_executions(world, stack)
    assert len(runs) == 1
    assert sum(len(d.result["started"]) for d in deliveries) == 1
    assert sum(d.result["suppressed"] for d in deliveries) == 19


# ------------------------------------------------------------------------------ what must not run


def test_proactive_mode_off_creates_nothing_and_nothing_runs(world: World) -> None:
    for stack in deploy_stack(world, ProactiveMode="off"):
        # Given the stack deployed with ProactiveMode=off
        petstore = build_petstore(world)
        trail = CloudTrail.attach(world)
        # When a deploy event happens
        world.client("apigateway").create_deployment(restApiId=petstore.api_id, stageName="prod")
        trail.detach()
        # Then there is no rule, no trigger, no delivery, no execution
        assert world.client("events").list_rules()["Rules"] == []
        assert "ProactiveTriggerFunction" not in stack.functions
        assert trail.deliveries == []
        assert executions(world.client("stepfunctions"), stack.state_machine_arn) == []


def test_an_api_outside_the_allowlist_starts_nothing_and_changes_nothing(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given an API that is not allowlisted, broken
    other = world.rest_api("other")
    world.method(other, "/pets/{petId}", "GET", function_arn("pets", "live"))
    before = all_statements(world, ("pets", "live"), ("pets", None))
    # When its deploy event arrives
    (delivery,) = deliver(world, [past_event(other)])
    # Then the trigger refused it before starting anything: no execution, no ledger entry, no change
    assert delivery.error is None
    assert (delivery.result["started"], delivery.result["notAllowlisted"]) == ([], 1)
    assert executions(world.client("stepfunctions"), stack.state_machine_arn) == []
    assert Ledger(stack_table(world)).history() == []
    assert all_statements(world, ("pets", "live"), ("pets", None)) == before


def _bad_events(api_id: str) -> list[tuple[str, dict[str, Any]]]:
    foreign = past_event(api_id, account="999999999999")
    forged_source = past_event(api_id)
    forged_source["detail"]["eventSource"] = "lambda.amazonaws.com"
    other_region = past_event(api_id)
    other_region["detail"]["awsRegion"] = "eu-west-1"
    no_identity = past_event(api_id)
    del no_identity["detail"]["userIdentity"]
    bad_time = past_event(api_id)
    bad_time["detail"]["eventTime"] = "soon"
    bad_id = past_event(api_id)
    bad_id["detail"]["requestParameters"]["restApiId"] = {"$ne": None}
    recipient = past_event(api_id)
    recipient["detail"]["recipientAccountId"] = "999999999999"
    own = past_event(api_id)  # the repair step's own call (its role, as the template names it)
    own["detail"]["userIdentity"]["sessionContext"] = {
        "sessionIssuer": {"arn": f"arn:aws:iam::{own['account']}:role/permheal-RepairPolicyFunctionRole"}
    }
    return [
        ("foreign-account", foreign),
        ("forged", forged_source),
        ("foreign-region", other_region),
        ("malformed", no_identity),
        ("malformed", bad_time),
        ("malformed", bad_id),
        ("foreign-account", recipient),
        ("own-change", own),
    ]


def test_malformed_forged_and_foreign_account_events_start_nothing_and_never_crash(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given events the rule lets through but the trigger must not trust
    bad = _bad_events(petstore.api_id)
    # When EventBridge delivers them, and garbage is invoked directly
    deliveries = deliver(world, [event for _, event in bad])
    lam = world.client("lambda")
    direct = [
        lam.invoke(FunctionName=stack.functions["ProactiveTriggerFunction"], Payload=json.dumps(payload))
        for payload in ([], "text", {"detail": None}, {"detail-type": "AWS API Call via CloudTrail"})
    ]
    # Then every one was dropped with its reason, none crashed, nothing started
    assert [d.error for d in deliveries] == [None] * len(bad)
    assert [d.result["dropped"] for d in deliveries] == [reason for reason, _ in bad]
    assert all("FunctionError" not in response for response in direct)
    assert all(json.loads(r["Payload"].read())["started"] == [] for r in direct)
    assert executions(world.client("stepfunctions"), stack.state_machine_arn) == []


# ------------------------------------------------------------------------------ HTTP APIs (v2)


def test_an_http_api_built_and_staged_is_repaired_from_its_v2_events_before_any_request(
    world: World, stack: LocalStack
) -> None:
    from tests.integration.support_v2 import http_api, integration, route, simulator, stage

    # Given an allowlisted HTTP API (name shop) built with CloudTrail recording: CreateIntegration,
    # CreateRoute and CreateStage are apigatewayv2 events naming the API by apiId
    world.function("orders")
    api_id = http_api(world, "shop")
    trail = CloudTrail.attach(world, settle=False)
    try:
        target = integration(world, api_id, function_arn("orders"))
        route(world, api_id, "GET /orders", target)
        stage(world, api_id, "$default")
    finally:
        trail.detach()
    # When the runs those events started have finished (one per debounce window)
    runs = sfn_executions(world, stack)
    # Then every event named the API, the runs were the trigger's, and the first request succeeds
    assert {d.event["detail"]["eventName"] for d in trail.deliveries} >= {"CreateIntegration", "CreateRoute"}
    assert all(d.result["apis"] == [api_id] for d in trail.deliveries)
    assert runs and all(json.loads(e["input"])["source"] == "cloudtrail" for e in runs)
    assert "repaired" in [o["outcome"] for o in outputs(world, stack)]
    assert simulator(world).request(api_id, "$default", "GET", "/orders").status == 200


def test_the_one_run_of_a_burst_sees_the_state_after_its_last_event(
    world: World, stack: LocalStack, petstore: Petstore
) -> None:
    # Given the first event of a deploy's burst (the integration moved, not yet deployed), delivered at
    # once; its window (1 s) closes 7 s from now at the earliest (eventTime 6 s ahead, as a skewed
    # clock: room for a loaded machine to deploy before the window closes)
    world.function("pets-v2")
    move_integration(world, petstore.api_id, "/pets/{petId}", "GET", "pets-v2")
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    request = {"restApiId": petstore.api_id}
    put = cloudtrail_event("aws.apigateway", "apigateway.amazonaws.com", "PutIntegration", request, at=at)
    (first,) = deliver(world, [put])
    # When the deployment that serves the change lands, its event in the same window
    world.client("apigateway").create_deployment(restApiId=petstore.api_id, stageName="prod")
    deployed_at = datetime.now(UTC)
    deployed = cloudtrail_event(
        "aws.apigateway",
        "apigateway.amazonaws.com",
        "CreateDeployment",
        {**request, "stageName": "prod"},
        at=at,
    )
    (second,) = deliver(world, [deployed])
    # Then there was one run; it waited until its window had closed, after the deployment, and only
    # then read the API: it repaired the function the deployment serves
    assert (len(first.result["started"]), second.result["started"], second.result["suppressed"]) == (1, [], 1)
    (run,) = sfn_executions(world, stack)
    not_before = datetime.fromisoformat(json.loads(run["input"])["notBefore"].replace("Z", "+00:00"))
    # moto's Wait sleeps whole seconds (int(delta)): it resumes up to 1 s early, at the window's end
    window_end = not_before - timedelta(seconds=1)
    assert deployed_at < window_end  # the deployment happened inside the window
    events = world.client("stepfunctions").get_execution_history(executionArn=run["executionArn"])["events"]
    resolved = next(
        e["timestamp"]
        for e in events
        if (e.get("stateEnteredEventDetails") or {}).get("name") == "Resolve targets"
    )
    assert resolved >= window_end > deployed_at
    assert json.loads(run["output"])["outcome"] == "repaired"
    assert get_pet(world, petstore).status == 200
