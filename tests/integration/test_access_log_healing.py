"""HTTP APIs healed end to end from their access logs, on the local AWS.

A request fails on the missing invoke permission -> the stage writes its access-log line in the
user's format -> the template's subscription filter delivers it -> the deployed detector starts one
execution -> the real workflow resolves the stage through the v2 control plane and grants -> the
same request succeeds. The simulator's verdicts come from the independent oracle
(`permheal_local.oracle`), never from permheal's own policy evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from permheal_local.aws import LocalAws, local_aws
from permheal_local.builder import ACCOUNT, REGION, function_arn
from tests.integration.support_v2 import (
    CLF_FORMAT,
    JSON_FORMAT,
    http_api,
    integration,
    request_authorizer,
    route,
    simulator,
    stage,
    websocket_api,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def local(world: Any) -> Iterator[LocalAws]:  # `world` empties the module's moto first
    with local_aws({"AllowedApis": "*"}, handler_env={"POWERTOOLS_LOG_LEVEL": "WARNING"}) as deployed:
        yield deployed


def logged_stage(local: LocalAws, api_id: str, name: str, log_format: str, group: str) -> None:
    """A stage whose access log goes to `group` (a valid CloudWatch Logs name) in `log_format`."""
    local.client("apigatewayv2").create_stage(
        ApiId=api_id,
        StageName=name,
        AutoDeploy=True,
        AccessLogSettings={
            "DestinationArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}",
            "Format": log_format,
        },
    )


def heal(local: LocalAws) -> list[dict[str, Any]]:
    """Deliver what the subscription matches; wait for every execution the detector started."""
    deliveries = local.flush_logs()
    assert deliveries and all(d.error is None for d in deliveries), deliveries
    assert local.settle()
    sfn = local.client("stepfunctions")
    return [sfn.describe_execution(executionArn=arn) for d in deliveries for arn in d.result["started"]]


@pytest.mark.parametrize(
    ("log_format", "stage", "group"),
    [
        pytest.param(JSON_FORMAT, "$default", "/access/shop-json", id="json-format-default-stage"),
        pytest.param(CLF_FORMAT, "prod", "/access/shop-clf", id="clf-format-named-stage"),
    ],
)
def test_access_log_line_is_healed_end_to_end(
    local: LocalAws, log_format: str, stage: str, group: str
) -> None:
    # Given an allowlisted HTTP API whose route has no invoke permission, logging in the user's format
    world = local.world
    world.function("pets")
    api_id = http_api(world, "shop")
    route(world, api_id, "GET /pets/{id}", integration(world, api_id, function_arn("pets")))
    logged_stage(local, api_id, stage, log_format, group)
    # And another API, equally ungranted, logging the same way to its own group
    world.function("orders")
    other = http_api(world, "orders")
    route(world, other, "GET /orders", integration(world, other, function_arn("orders")))
    logged_stage(local, other, stage, log_format, group + "-orders")
    sim = simulator(world)
    failed = sim.request(api_id, stage, "GET", "/pets/1")
    assert failed.status == 500
    assert "have permissions to call the integration" in failed.log_lines[0]

    # When CloudWatch Logs delivers the line and the workflow runs
    (execution,) = heal(local)

    # Then one execution repaired the route's grant, and the same request now succeeds
    assert execution["status"] == "SUCCEEDED", execution
    given = json.loads(execution["input"])
    assert (given["logType"], given["logGroup"]) == ("access", group)
    # JSON names API and stage (checked against the stage's destination); CLF leaves them to the group
    assert given.get("apiId") == (api_id if log_format == JSON_FORMAT else None)
    output = json.loads(execution["output"])
    assert (output["outcome"], output["apiId"], output["stage"]) == ("repaired", api_id, stage)
    assert sim.request(api_id, stage, "GET", "/pets/1").status == 200
    assert local.flush_logs() == []  # the healed request logged no failure
    # And the API whose log group said nothing was left alone
    assert world.statements("orders") == []
    assert sim.request(other, stage, "GET", "/orders").status == 500


def test_http_authorizer_failure_is_healed_from_its_access_log_line(local: LocalAws) -> None:
    # Given a REQUEST authorizer (and the route behind it) without permissions
    world = local.world
    world.function("pets")
    world.function("auth")
    api_id = http_api(world, "shop")
    authorizer = request_authorizer(world, api_id, function_arn("auth"))
    route(
        world, api_id, "GET /pets", integration(world, api_id, function_arn("pets")), authorizer_id=authorizer
    )
    logged_stage(local, api_id, "$default", JSON_FORMAT, "/access/shop-auth")
    sim = simulator(world)
    assert sim.request(api_id, "$default", "GET", "/pets", {"Authorization": "t"}).status == 500

    # When the authorizer's access-log line is delivered and the workflow runs
    (execution,) = heal(local)

    # Then the authorizer and the route behind it were both granted (an authorizer hint never narrows)
    assert json.loads(execution["output"])["outcome"] == "repaired"
    assert sim.request(api_id, "$default", "GET", "/pets", {"Authorization": "t"}).status == 200


def test_assume_role_line_is_reported_and_nothing_is_repaired(local: LocalAws) -> None:
    # Given an HTTP API stage and an access-log line saying API Gateway could not assume the role
    world = local.world
    world.function("pets")
    api_id = http_api(world, "shop")
    role = f"arn:aws:iam::{ACCOUNT}:role/apigw-invoker"
    target = integration(world, api_id, function_arn("pets"), credentials=role)
    route(world, api_id, "GET /pets/{id}", target)
    logged_stage(local, api_id, "$default", JSON_FORMAT, "/access/shop-role")
    line = simulator(world).write_access_log(
        api_id,
        "$default",
        {
            "routeKey": "GET /pets/{id}",
            "status": 500,
            "integrationErrorMessage": (
                f"API Gateway does not have permission to assume the provided role {role}"
            ),
        },
    )
    assert line is not None

    # When the line is delivered
    (delivery,) = local.flush_logs()

    # Then the role is reported, no execution starts, and the function's policy is untouched
    assert delivery.result["roleFailures"] == [role]
    assert delivery.result["started"] == []
    assert world.statements("pets") == []


def test_websocket_execution_log_failure_is_healed_end_to_end(local: LocalAws) -> None:
    # Given an allowlisted WebSocket API whose $connect has no invoke permission, logging at ERROR level
    world = local.world
    world.function("ws")
    api_id = websocket_api(world, "chat")
    route(world, api_id, "$connect", integration(world, api_id, function_arn("ws"), path_form=True))
    stage(world, api_id, "prod", log_format=None, logging_level="ERROR")
    sim = simulator(world)
    assert sim.connect(api_id, "prod").status == 500

    # When the execution-log line is delivered and the workflow runs
    (execution,) = heal(local)

    # Then the API and stage came from the log group, the route was granted, and $connect now works
    given = json.loads(execution["input"])
    assert (given["apiId"], given["stage"], "logType" in given) == (api_id, "prod", False)
    assert json.loads(execution["output"])["outcome"] == "repaired"
    assert sim.connect(api_id, "prod").status == 200
