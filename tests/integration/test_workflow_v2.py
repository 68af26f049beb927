"""HTTP and WebSocket APIs through the deployed workflow: real ASL in moto's interpreter, real handlers."""

from __future__ import annotations

import json
from typing import Any

from permheal_local.builder import World, function_arn
from tests.integration.support import run
from tests.integration.support_v2 import (
    execute_api,
    http_api,
    integration,
    request_authorizer,
    route,
    simulator,
    stage,
    websocket_api,
)


def test_workflow_heals_an_http_api_named_in_the_input(world: World, stack: Any) -> None:
    # Given an allowlisted HTTP API (name petstore): `ANY /{proxy+}` on an alias through a stage
    # variable, behind a REQUEST authorizer, none of it granted
    world.function("pets", alias="live")
    world.function("auth")
    api_id = http_api(world, "petstore")
    target = integration(world, api_id, function_arn("pets", "${stageVariables.alias}"))
    authorizer = request_authorizer(world, api_id, function_arn("auth"))
    route(world, api_id, "ANY /{proxy+}", target, authorizer_id=authorizer)
    stage(world, api_id, "$default", {"alias": "live"})
    sim = simulator(world)
    assert sim.request(api_id, "$default", "GET", "/pets/1", {"Authorization": "t"}).status == 500
    # When the workflow runs for it by name
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, {"apiName": "petstore"})
    # Then it succeeded, the alias and the authorizer were granted, and the call now works
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["outcome"] == "repaired"
    assert {(c["functionArn"].rsplit(":", 1)[-1], c["qualifier"]) for c in output["changes"]} == {
        ("pets", "live"),
        ("auth", None),
    }
    assert {f["apiType"] for f in output["findings"] if f["kind"] == "missing_permission"} == {"HTTP"}
    assert sim.request(api_id, "$default", "GET", "/pets/1", {"Authorization": "t"}).status == 200


def test_workflow_heals_a_websocket_api_by_id(world: World, stack: Any) -> None:
    # Given an allowlisted WebSocket API with $connect and a custom route
    world.function("ws")
    api_id = websocket_api(world, "petstore")
    target = integration(world, api_id, function_arn("ws"), path_form=True)
    route(world, api_id, "$connect", target)
    route(world, api_id, "ping", target)
    stage(world, api_id, "prod", log_format=None, logging_level="ERROR")
    # When the workflow runs for it by id and stage
    execution = run(
        world.client("stepfunctions"), stack.state_machine_arn, {"apiId": api_id, "stage": "prod"}
    )
    # Then both route keys were granted, and both work
    output = json.loads(execution["output"])
    assert output["outcome"] == "repaired", output
    assert sorted(a["sourceArn"] for a in output["changes"][0]["added"]) == [
        execute_api(api_id, "*/$connect"),
        execute_api(api_id, "*/ping"),
    ]
    sim = simulator(world)
    assert (sim.connect(api_id, "prod").status, sim.send(api_id, "prod", {"action": "ping"}).status) == (
        200,
        200,
    )
