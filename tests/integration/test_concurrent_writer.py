"""Another writer changes the alias policy between permheal's read and its write.

The double's RevisionId check makes permheal's stale write fail with PreconditionFailed; permheal
must re-read, re-plan, and neither lose the other writer's change nor any caller's access.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from permheal.adapters.lambda_policy import LambdaPolicies, StaleRevision
from permheal.arns import FunctionRef
from permheal.policy import InvokeRequest, Policy, evaluate
from permheal_local.builder import ACCOUNT, REGION, World, execute_api, function_arn

APIGW = "apigateway.amazonaws.com"


def alias_api(world: World) -> str:
    """GET /pets invoking pets:live, allowlisted, no permission yet."""
    world.function("pets", alias="live")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("pets", "live"))
    world.deploy(api, "prod")
    world.allow("*")
    return api


def other_writer() -> Any:
    """A separate client, as another tool or person would use."""
    return boto3.client("lambda", region_name=REGION)


def after_first_read_of_alias(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Run `act` right after permheal's first GetPolicy of pets:live returns, before it plans."""
    original = LambdaPolicies.read
    done = False

    def read(self: LambdaPolicies, function: FunctionRef) -> Policy:
        nonlocal done
        policy = original(self, function)
        if not done and (function.name, function.qualifier) == ("pets", "live"):
            done = True
            act()
        return policy

    monkeypatch.setattr(LambdaPolicies, "read", read)


def stale_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the writes Lambda rejected because permheal's RevisionId was stale."""
    rejected: list[str] = []
    for name in ("add", "remove"):
        original = getattr(LambdaPolicies, name)

        def write(self: LambdaPolicies, *args: Any, _original: Any = original, _name: str = name) -> None:
            try:
                _original(self, *args)
            except StaleRevision:
                rejected.append(_name)
                raise

        monkeypatch.setattr(LambdaPolicies, name, write)
    return rejected


def allows(world: World, source: str) -> bool:
    policy = Policy(tuple(world.statements("pets", "live")))
    return evaluate(policy, InvokeRequest(function_arn("pets", "live"), source, ACCOUNT)).allowed


def remediate(cli: Any) -> Any:
    return cli("remediate", "--api", "pets", "--local", "--format", "json")


def add_orders_grant(orders: str) -> Callable[[], None]:
    """The other writer: a grant with its own Sid for another API, "orders"."""
    return lambda: other_writer().add_permission(
        FunctionName="pets",
        Qualifier="live",
        StatementId="orders-writer",
        Action="lambda:InvokeFunction",
        Principal=APIGW,
        SourceArn=execute_api(orders, "*/GET/orders"),
    )


def test_statement_another_writer_adds_mid_repair_survives_and_repair_succeeds(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given pets:live has a policy (so permheal's write carries its RevisionId) but no grant for pets,
    # and another writer adds a grant for API "orders" right after permheal reads the policy
    api = alias_api(world)
    orders = world.rest_api("orders")
    world.grant("pets", execute_api(world.rest_api("users"), "*/GET/users"), sid="users", qualifier="live")
    after_first_read_of_alias(monkeypatch, add_orders_grant(orders))
    rejected = stale_writes(monkeypatch)

    # When the API is remediated
    run = remediate(cli)

    # Then permheal's stale write was rejected, and after re-reading all three statements are in place
    assert rejected == ["add"]
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    added = [a["sid"] for a in run.json["changes"][0]["added"]]
    assert [s["Sid"] for s in world.statements("pets", "live")] == ["users", "orders-writer", *added]
    assert allows(world, execute_api(api, "prod/GET/pets"))
    assert allows(world, execute_api(orders, "prod/GET/orders"))


def test_first_statement_of_a_new_policy_does_not_clobber_another_writers(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given pets:live has no policy yet (so there is no RevisionId to carry), and another writer
    # adds the first statement right after permheal finds the policy empty
    api = alias_api(world)
    orders = world.rest_api("orders")
    after_first_read_of_alias(monkeypatch, add_orders_grant(orders))

    # When the API is remediated
    run = remediate(cli)

    # Then AddPermission only ever adds: both statements are in the policy
    assert run.json["outcome"] == "repaired"
    sids = [s["Sid"] for s in world.statements("pets", "live")]
    assert (len(sids), sids[0]) == (2, "orders-writer")
    assert allows(world, execute_api(api, "prod/GET/pets"))
    assert allows(world, execute_api(orders, "prod/GET/orders"))


def test_narrow_grant_is_kept_when_another_writer_removes_the_broad_one_it_relied_on(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broad grant that makes the narrow one redundant, and another writer removing the broad
    # grant right after permheal reads the policy
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/*/*"), sid="broad", qualifier="live")
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="narrow", qualifier="live")
    after_first_read_of_alias(
        monkeypatch,
        lambda: other_writer().remove_permission(FunctionName="pets", Qualifier="live", StatementId="broad"),
    )
    rejected = stale_writes(monkeypatch)

    # When the API is remediated
    run = remediate(cli)

    # Then the planned removal of the narrow grant was rejected and, re-planned, not retried: no access lost
    assert rejected == ["remove"]
    assert (run.code, run.json["outcome"], run.json["changes"]) == (0, "no_change", [])
    assert [s["Sid"] for s in world.statements("pets", "live")] == ["narrow"]
    assert allows(world, execute_api(api, "prod/GET/pets"))
