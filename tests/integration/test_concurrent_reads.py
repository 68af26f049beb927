"""Resolve and repair make independent reads at once: same results, same failures as one at a time."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from permheal import parallel
from permheal.adapters import apigateway, apigatewayv2
from permheal.adapters.account import Identity
from permheal.adapters.ledger import ROUTE_PREFIX, Ledger
from permheal.adapters.ports import Adapters
from permheal.config import Settings
from permheal.errors import AwsCallError, NotFoundError
from permheal.workflow import repair as repair_step
from permheal.workflow import resolve as resolve_step
from permheal.workflow.state import ExecutionInput
from permheal_local.builder import ACCOUNT, World, function_arn
from tests.integration.support import build_petstore
from tests.integration.support_v2 import http_api, integration, request_authorizer, route, stage
from tests.reliability.support import Faults, create_ledger_table, install_faults

SETTINGS = Settings()


def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read made in turn, as before reads were made together."""

    def run_all(*calls: Any) -> tuple[parallel.Outcome[Any], ...]:
        return tuple(parallel.capture(call) for call in calls)

    def gather(calls: Any) -> list[Any]:
        return [outcome.get() for outcome in run_all(*calls)]

    for module in (resolve_step, repair_step, apigateway, apigatewayv2):
        monkeypatch.setattr(module, "run_all", run_all)
    monkeypatch.setattr(apigatewayv2, "gather", gather)


def adapters() -> Adapters:
    made = Adapters.default()
    made.identity = lambda: Identity("aws", ACCOUNT)
    return made


def both_apis(world: World) -> tuple[str, str]:
    """A REST API (alias through a stage variable, TOKEN authorizer) and an HTTP API, none granted."""
    rest = build_petstore(world).api_id
    world.function("auth")
    v2 = http_api(world, "shop")
    target = integration(world, v2, function_arn("pets", "${stageVariables.alias}"))
    authorizer = request_authorizer(world, v2, function_arn("auth"))
    route(world, v2, "ANY /{proxy+}", target, authorizer_id=authorizer)
    stage(world, v2, "$default", {"alias": "live"})
    world.allow("*")
    return rest, v2


def resolve_and_plan(api: str, stage_name: str | None) -> list[dict[str, Any]]:
    """Resolve the API, then each function group's repair as a dry run (nothing written)."""
    made = adapters()
    resolution = resolve_step.resolve(made, ExecutionInput(api, stage_name, dry_run=True), SETTINGS)
    context = resolution.context
    repairs = [repair_step.repair_group(made, context, group, SETTINGS) for group in resolution.groups]
    return [resolution.to_dict(), *(result.to_dict() for result in repairs)]


@pytest.mark.parametrize("stage_name", ["prod", None])
def test_results_are_those_of_one_read_at_a_time(
    world: World, monkeypatch: pytest.MonkeyPatch, stage_name: str | None
) -> None:
    # Given a REST and an HTTP API, resolved and planned with reads made together
    rest, v2 = both_apis(world)
    together = [resolve_and_plan(rest, stage_name), resolve_and_plan(v2, stage_name and "$default")]
    # When the same runs make one read at a time
    one_at_a_time(monkeypatch)
    in_turn = [resolve_and_plan(rest, stage_name), resolve_and_plan(v2, stage_name and "$default")]
    # Then everything is the same, findings and their order included, and each function had findings
    assert together == in_turn
    assert all(len(plans) == 3 and all(plan["findings"] for plan in plans[1:]) for plans in together)


def test_a_real_repair_with_reads_made_together_is_verified(world: World) -> None:
    # Given the REST API, resolved
    rest, _ = both_apis(world)
    made = adapters()
    resolution = resolve_step.resolve(made, ExecutionInput(rest, "prod"), SETTINGS)
    context = resolution.context
    # When each function is repaired
    results = [repair_step.repair_group(made, context, group, SETTINGS) for group in resolution.groups]
    # Then each was written and verified by re-reading its policy
    assert results and all(r.verified and r.change.added and r.error is None for r in results)


def faulty(monkeypatch: pytest.MonkeyPatch, *operations: str) -> Faults:
    """`operations` answered AccessDeniedException; clients made here, before any read runs in a thread."""
    faults = install_faults(monkeypatch)
    for service in ("apigateway", "ssm", "lambda"):
        faults.client(service)
    for operation in operations:
        faults.inject(operation, "AccessDeniedException", None)
    return faults


def test_a_missing_stage_is_reported_even_when_a_read_made_alongside_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a REST API whose resources cannot be read, asked for a stage it does not have
    rest, _ = both_apis(world)
    faults = faulty(monkeypatch, "GetResources")
    # When it is resolved
    with pytest.raises(NotFoundError, match="has no stage 'nope'"):
        resolve_step.resolve(adapters(), ExecutionInput(rest, "nope"), SETTINGS)
    # Then the failure raised is the first read's (GetStage), as when reads were made in turn,
    # though the resources were read (and failed) alongside
    assert faults.injected["GetResources"] >= 1


def test_of_two_failing_reads_the_one_made_first_in_turn_is_raised(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a REST API whose export and resources both fail (in turn: the export came first)
    rest, _ = both_apis(world)
    faults = faulty(monkeypatch, "GetExport", "GetResources")
    # When it is resolved, then the export's failure is the one raised
    with pytest.raises(AwsCallError, match="GetExport") as raised:
        resolve_step.resolve(adapters(), ExecutionInput(rest, "prod"), SETTINGS)
    assert "GetResources" not in str(raised.value)
    assert faults.injected["GetResources"] >= 1


def test_an_api_lookup_failure_wins_over_an_allowlist_read_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rest, _ = both_apis(world)
    faulty(monkeypatch, "GetRestApi", "GetParameter")
    with pytest.raises(AwsCallError, match="GetRestApi"):
        resolve_step.resolve(adapters(), ExecutionInput(rest, "prod"), SETTINGS)


def test_a_policy_read_failure_is_ignored_when_the_allowlist_refuses_and_raised_when_it_allows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a resolved REST API whose functions' policies cannot be read
    rest, _ = both_apis(world)
    resolution = resolve_step.resolve(adapters(), ExecutionInput(rest, "prod"), SETTINGS)
    context = resolution.context
    group = resolution.groups[0]
    faults = faulty(monkeypatch, "GetPolicy")
    # When the API has left the allowlist, then the iteration is a refusal, as it was in turn
    world.allow("someone-else")
    refused = repair_step.repair_group(adapters(), context, group, SETTINGS)
    assert refused.refusal and "no longer in the allowlist" in refused.refusal
    # When it is allowlisted again, then the policy read's failure is raised
    world.allow("*")
    with pytest.raises(AwsCallError, match="GetPolicy"):
        repair_step.repair_group(adapters(), context, group, SETTINGS)
    assert faults.injected["GetPolicy"] >= 2


class _IndexTable:
    """A DynamoDB client double: UpdateItem meets the other writers at a barrier; one key fails."""

    def __init__(self, writers: int, failing: str) -> None:
        self.barrier = threading.Barrier(writers, timeout=30)
        self.failing = failing
        self.written: list[str] = []

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.barrier.wait()
        key = kwargs["Key"]["changeId"]["S"]
        if key.endswith(self.failing):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "UpdateItem")
        self.written.append(key)
        return {}


def test_the_routes_index_is_written_for_every_function_at_once_and_a_failure_still_raised() -> None:
    # Given three functions, the second's index item unwritable
    table = _IndexTable(3, "function:b")
    ledger = Ledger("permheal-ledger", dynamodb=table)  # type: ignore[arg-type]
    functions = [function_arn(name) for name in ("c", "b", "a")]
    # When resolve records the API for them, then the failure is raised once, as the ledger's error
    with pytest.raises(AwsCallError, match="ledger UpdateItem"):
        ledger.remember_routes("api1", functions)
    # And the other two were written (all three met at the barrier: the writes were made at once)
    assert sorted(table.written) == [ROUTE_PREFIX + function_arn("a"), ROUTE_PREFIX + function_arn("c")]


def meeting(barrier: threading.Barrier, call: Any) -> Any:
    """`call`, whose first call is made only once every other read sharing the barrier has started
    (made one at a time, the first would wait for the others until the barrier breaks)."""
    waited: list[bool] = []

    def met(*args: Any) -> Any:
        if not waited:
            waited.append(True)
            barrier.wait()
        return call(*args)

    return met


def test_resolve_reads_the_api_and_the_allowlist_at_once_then_the_definition_and_the_api_lists(
    world: World,
) -> None:
    rest, _ = both_apis(world)
    made = adapters()
    gateway = made.gateway
    first, second = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)
    gateway.find_api = meeting(first, gateway.find_api)  # type: ignore[method-assign]
    made.allowlist = meeting(first, made.allowlist)
    gateway.definition = meeting(second, gateway.definition)  # type: ignore[method-assign]
    gateway.all_api_ids = meeting(second, gateway.all_api_ids)  # type: ignore[method-assign]
    resolution = resolve_step.resolve(made, ExecutionInput(rest, "prod"), SETTINGS)
    assert resolution.allowed and resolution.groups and resolution.existing_api_ids


def test_repair_reads_the_allowlist_the_policy_and_the_flap_history_at_once(world: World) -> None:
    rest, _ = both_apis(world)
    resolution = resolve_step.resolve(adapters(), ExecutionInput(rest, "prod"), SETTINGS)
    ledger = Ledger(create_ledger_table(world))
    made = Adapters(ledger=ledger, identity=lambda: Identity("aws", ACCOUNT))
    barrier = threading.Barrier(3, timeout=30)
    made.allowlist = meeting(barrier, made.allowlist)
    made.policies.read = meeting(barrier, made.policies.read)  # type: ignore[method-assign]
    ledger.recent_repairs = meeting(barrier, ledger.recent_repairs)  # type: ignore[method-assign]
    result = repair_step.repair_group(made, resolution.context, resolution.groups[0], SETTINGS)
    assert result.verified and result.change.added
