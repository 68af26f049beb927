"""A failure storm through the deployed detector: thousands of lines, one execution per API stage.

5,000 failure lines of three API/stage pairs, all inside one 900-second incident window, arrive in
50 shuffled subscription batches of 100 lines (one log group per batch, as CloudWatch Logs delivers
them). Storm suppression must turn them into exactly one execution and one notification per pair.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from permheal_local.stack import deploy
from tests.integration.support import (
    FAILURE,
    Petstore,
    allows,
    build_petstore,
    executions,
    log_payload,
    received,
    subscribe_queue,
    wait_for_executions,
)

LINES = 5_000
BATCH = 100
WINDOW_SECONDS = 900
WINDOW_START = 1_763_715_600 // WINDOW_SECONDS * WINDOW_SECONDS
LINES_PER_PAIR = {("petstore", "prod"): 1_700, ("petstore", "beta"): 1_700, ("shop", "prod"): 1_600}


@dataclass(frozen=True)
class Storm:
    world: World
    stack: Any
    petstore: Petstore
    shop_id: str
    responses: list[dict[str, Any]]
    inbox: str


def build_shop(world: World) -> str:
    world.function("orders")
    api_id = world.rest_api("shop")
    world.method(api_id, "/orders", "GET", function_arn("orders"))
    world.deploy(api_id, "prod")
    return api_id


def batches(api_ids: dict[str, str], rng: random.Random) -> list[dict[str, Any]]:
    """Every pair's failure lines, timestamped inside one window, cut into shuffled batches."""
    payloads: list[dict[str, Any]] = []
    for (api, stage), count in LINES_PER_PAIR.items():
        group = f"API-Gateway-Execution-Logs_{api_ids[api]}/{stage}"
        lines = sorted(
            (
                WINDOW_START * 1000 + rng.randrange(WINDOW_SECONDS * 1000),
                f"({uuid.UUID(int=rng.getrandbits(128))}) {FAILURE}",
            )
            for _ in range(count)
        )
        payloads.extend(log_payload(group, lines[i : i + BATCH]) for i in range(0, count, BATCH))
    rng.shuffle(payloads)
    return payloads


@pytest.fixture(scope="module")
def storm() -> Iterator[Storm]:
    """The storm delivered once to the deployed detector, every execution it started finished.

    Module-scoped (its own moto, like the `aws` and `stack` fixtures) so the three tests share one
    storm instead of replaying 50 batches each.
    """
    from moto import mock_aws

    from permheal_local import faithful_apigateway, faithful_lambda, lambda_runtime

    faithful_lambda.install()
    faithful_apigateway.install()
    with mock_aws(config={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}):
        lambda_runtime.install()
        try:
            yield deliver_storm(World())
        finally:
            lambda_runtime.uninstall()


def deliver_storm(world: World) -> Storm:
    stack = deploy(world, {"AllowedApis": "petstore"})
    petstore = build_petstore(world, stages={"prod": "live", "beta": "beta"})
    shop_id = build_shop(world)
    world.allow("petstore", "shop")
    inbox = subscribe_queue(world, stack.topic_arn)
    payloads = batches({"petstore": petstore.api_id, "shop": shop_id}, random.Random(900))
    assert sum(LINES_PER_PAIR.values()) == LINES and len(payloads) == LINES // BATCH
    lam = world.client("lambda")
    responses = []
    for payload in payloads:
        response = lam.invoke(FunctionName=stack.functions["DetectorFunction"], Payload=json.dumps(payload))
        assert "FunctionError" not in response, response["Payload"].read()
        responses.append(json.loads(response["Payload"].read()))
    wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn, count=3, timeout=60)
    return Storm(world, stack, petstore, shop_id, responses, inbox)


def test_storm_starts_exactly_one_execution_per_api_stage(storm: Storm) -> None:
    # Given 5,000 failures of three API stages in one window, in 50 batches
    # When the detector has handled every batch
    listed = executions(storm.world.client("stepfunctions"), storm.stack.state_machine_arn)
    # Then there is one execution per API stage, every later batch was suppressed, and all succeeded
    assert len(listed) == 3
    assert {e["name"] for e in listed} == {
        f"{storm.petstore.api_id}-prod-{WINDOW_START}",
        f"{storm.petstore.api_id}-beta-{WINDOW_START}",
        f"{storm.shop_id}-prod-{WINDOW_START}",
    }
    assert sum(len(r["started"]) for r in storm.responses) == 3
    assert sum(r["suppressed"] for r in storm.responses) == LINES // BATCH - 3
    sfn = storm.world.client("stepfunctions")
    failures = [
        sfn.describe_execution(executionArn=e["executionArn"]) for e in listed if e["status"] != "SUCCEEDED"
    ]
    assert not failures, [(f.get("error"), f.get("cause")) for f in failures]


def test_storm_sends_exactly_one_notification_per_api_stage(storm: Storm) -> None:
    # Given the storm was handled
    # When on-call reads the queue
    notices = received(storm.world, storm.inbox)
    # Then there is one repair notice per API stage
    assert sorted(n.subject.split(" (")[0] for n in notices) == [
        "permheal repaired: petstore/beta",
        "permheal repaired: petstore/prod",
        "permheal repaired: shop/prod",
    ]
    assert {n.attributes["outcome"] for n in notices} == {"repaired"}


def test_storm_repairs_every_policy(storm: Storm) -> None:
    # Given the storm was handled
    world, api, shop = storm.world, storm.petstore.api_id, storm.shop_id

    def method(api_id: str, stage: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/GET{path}"

    # When the policies are evaluated
    # Then every function and qualifier the three stages invoke may now be invoked by them
    assert allows(world, "pets", "live", method(api, "prod", "/pets/{petId}"))
    assert allows(world, "pets", "beta", method(api, "beta", "/pets/{petId}"))
    assert allows(world, "pets-authorizer", None, storm.petstore.authorizer_arn())
    assert allows(world, "orders", None, method(shop, "prod", "/orders"))
