"""The deployed workflow at Step Functions' and SNS's size limits, and with one function failing.

moto's interpreter does not enforce the 256 KiB limit on a state's data (on AWS, going over it fails
the execution with `States.DataLimitExceeded`, which no Catch sees): `assert_within_limits` reads the
execution history and checks every state's input and output, every task's parameters and result, and
the execution's input and output against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from permheal import limits
from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.adapters.ledger import Ledger
from permheal.arns import ApiRef, FunctionRef
from permheal.errors import AwsCallError
from permheal.models import (
    Change,
    Finding,
    FindingKind,
    Outcome,
    RemediationResult,
    RemovedStatement,
    RestApi,
    Target,
    TargetKind,
)
from permheal.notify import notification
from permheal.policy import Policy
from permheal.workflow.outcome import result_from_state
from permheal.workflow.state import FunctionGroup, RepairResult, Resolution
from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from permheal_local.faithful_lambda import POLICY_SIZE_LIMIT, policy_size
from tests.integration.support import (
    Petstore,
    allows,
    build_petstore,
    received,
    run,
)
from tests.reliability.support import stack_ledger_table

STEP_FUNCTIONS_DATA_LIMIT = 262_144
"""AWS: a state's input/output, a task's parameters/result and an execution's input/output, in bytes.

Written out here rather than taken from permheal.limits: the check must not share the code's numbers.
"""
SNS_MESSAGE_LIMIT = 262_144
"""AWS: an SNS message, in bytes."""
_DATA_FIELDS = ("input", "output", "parameters", "result")


def data_sizes(sfn: Any, execution_arn: str) -> Iterator[tuple[str, str, int]]:
    """(event type, state or field, UTF-8 size) of every piece of data the execution history records."""
    names: dict[int, str] = {}
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, includeExecutionData=True
    )
    for event in (e for page in pages for e in page["events"]):
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            if "name" in details:
                names[event["id"]] = details["name"]
            state = details.get("name") or names.get(event.get("previousEventId", -1), "")
            for field in _DATA_FIELDS:
                value = details.get(field)
                if isinstance(value, str):
                    yield event["type"], f"{state}.{field}", len(value.encode())


def assert_within_limits(sfn: Any, execution_arn: str) -> int:
    """Every state input/output and task parameters/result of the execution fit 256 KiB; the largest size."""
    sizes = list(data_sizes(sfn, execution_arn))
    assert sizes, "the execution history recorded no data"
    over = [(kind, where, size) for kind, where, size in sizes if size > STEP_FUNCTIONS_DATA_LIMIT]
    assert not over, f"over Step Functions' {STEP_FUNCTIONS_DATA_LIMIT} bytes: {over}"
    return max(size for _, _, size in sizes)


def manual(**fields: Any) -> dict[str, Any]:
    return {"source": "manual", "apiName": "petstore", "stage": "prod", **fields}


# ------------------------------------------------------------------------------ the size check itself


def test_size_check_flags_a_state_over_the_limit(world: World) -> None:
    # Given a one-state workflow, and an input just over 256 KiB (moto accepts it; AWS would not)
    sfn = world.client("stepfunctions")
    role = f"arn:aws:iam::{ACCOUNT}:role/unused"
    definition = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="echo", definition=json.dumps(definition), roleArn=role)
    big = {"blob": "x" * STEP_FUNCTIONS_DATA_LIMIT}
    # When it runs
    execution = run(sfn, machine["stateMachineArn"], big)
    # Then the size check fails, naming the state
    with pytest.raises(AssertionError, match="Echo"):
        assert_within_limits(sfn, execution["executionArn"])
    # And a small input passes it
    small = run(sfn, machine["stateMachineArn"], {"blob": "x"})
    assert assert_within_limits(sfn, small["executionArn"]) < 100


# ------------------------------------------------------------------------------ defect 8: at the limit

BLOATED = 5


def fill_with_console_duplicates(world: World, name: str, source_arn: str) -> int:
    """Add the same console grant under new Sids until Lambda refuses (20 KB); the statement count."""
    lam = world.client("lambda")
    count = 0
    while True:
        sid = f"{count:08x}-5f0c-4e4b-9d1a-{abs(hash(name)) % 10**12:012d}"
        try:
            world.grant(name, source_arn, sid=sid)
        except lam.exceptions.PolicyLengthExceededException:
            return count
        count += 1


@pytest.fixture
def bloated(world: World) -> SimpleNamespace:
    """The petstore API with 5 more functions, each policy at the 20 KB limit with console duplicates."""
    petstore = build_petstore(world)
    names = [f"inventory-{i}" for i in range(BLOATED)]
    for name in names:
        world.function(name)
        world.method(petstore.api_id, f"/{name}", "GET", function_arn(name))
    world.deploy(petstore.api_id, "prod", {"alias": "live"})
    counts = {}
    for name in names:
        source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{petstore.api_id}/*/GET/{name}"
        counts[name] = fill_with_console_duplicates(world, name, source)
        assert policy_size(world.statements(name)) > POLICY_SIZE_LIMIT - 400
    return SimpleNamespace(petstore=petstore, names=names, counts=counts)


def test_cleaning_five_policies_at_the_20kb_limit_stays_within_every_size_limit(
    world: World, stack: Any, bloated: SimpleNamespace, inbox: str
) -> None:
    # Given five functions whose policies are 20 KB of console duplicates (plus the petstore's two)
    api_id = bloated.petstore.api_id
    removed_expected = sum(count - 1 for count in bloated.counts.values())
    assert removed_expected > 250
    # When the workflow runs (the repairs pace their calls at Lambda's quotas: some 500 policy reads
    # and removals are over half a minute of calls, whatever the local AWS's speed)
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual(), timeout=300)
    # Then it succeeded, and no state, task result or input went over Step Functions' limit
    assert execution["status"] == "SUCCEEDED", execution
    assert_within_limits(world.client("stepfunctions"), execution["executionArn"])
    # And every duplicate is gone: one grant left per function
    for name in bloated.names:
        assert len(world.statements(name)) == 1, name
    # And on-call got one notification within SNS's limit, counting every removed statement
    (notice,) = received(world, inbox)
    assert len(notice.message.encode()) <= SNS_MESSAGE_LIMIT
    assert notice.subject == f"permheal repaired: petstore/prod ({removed_expected + 2} changes)"
    # And the message names every function and points to the ledger and the execution
    for name in bloated.names:
        assert f"{name} changed" in notice.message
    assert f"permheal history --api {api_id}" in notice.message
    assert execution["executionArn"] in notice.message
    # And the JSON result counts what it lists and what it omits, per function
    result = notice.result
    bloated_changes = [c for c in result["changes"] if c["functionArn"].rsplit(":", 1)[-1] in bloated.names]
    assert len(bloated_changes) == BLOATED
    for change in bloated_changes:
        name = change["functionArn"].rsplit(":", 1)[-1]
        assert len(change["removed"]) + change.get("removedOmitted", 0) == bloated.counts[name] - 1
    # And the ledger holds every removed statement in full, for `permheal revert`
    entries = Ledger(stack_ledger_table(world)).history(api_id=api_id)
    bodies = [r["statement"] for e in entries for r in e.removed]
    assert len(bodies) == removed_expected
    assert all(body["Sid"] and body["Condition"]["ArnLike"] for body in bodies)
    # And the execution's own output is the same bounded result
    assert json.loads(execution["output"])["outcome"] == "repaired"


# ------------------------------------------------------------------------------ defect 9: one fails


@pytest.fixture
def pets_policy_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of pets:live's policy fails (as under persistent throttling); other functions work."""
    read = LambdaPolicies.read

    def failing(self: LambdaPolicies, function: FunctionRef) -> Policy:
        if function.name == "pets":
            raise AwsCallError(f"GetPolicy {function.arn}: TooManyRequestsException (injected)")
        return read(self, function)

    monkeypatch.setattr(LambdaPolicies, "read", failing)


def test_one_function_failing_does_not_hide_the_others_changes(
    world: World,
    stack: Any,
    inbox: str,
    retry_waits: list[float],
    pets_policy_unreadable: None,
) -> None:
    # Given the petstore, whose pets:live policy cannot be read while its authorizer's can
    petstore: Petstore = build_petstore(world)
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then the failing read was retried, and the execution failed as a whole
    assert retry_waits
    assert (execution["status"], execution["error"]) == ("FAILED", "RemediationFailed")
    # And the authorizer was repaired anyway
    assert allows(world, "pets-authorizer", None, petstore.authorizer_arn())
    # And on-call hears that it failed, with the change that was made and how to revert it
    (notice,) = received(world, inbox)
    assert notice.attributes == {"outcome": "failed", "apiId": petstore.api_id}
    assert notice.subject == "permheal failed: petstore/prod (1 change)"
    ((change),) = notice.result["changes"]
    assert change["functionArn"] == function_arn("pets-authorizer")
    (added,) = change["added"]
    assert (
        f"aws lambda remove-permission --function-name {function_arn('pets-authorizer')}"
        f" --statement-id {added['sid']}"
    ) in notice.message
    # And the failed function is named with the error
    assert "pets:live" in notice.result["error"]
    assert "TooManyRequestsException (injected)" in notice.result["error"]
    assert "pets:live" in notice.message.split("Result (JSON):")[0]
    # And the execution's cause is that same result
    cause = json.loads(execution["cause"])
    assert cause["outcome"] == "failed"
    assert [c["functionArn"] for c in cause["changes"]] == [function_arn("pets-authorizer")]


# ------------------------------------------------------------------------------ the budgets, pure


def test_budgets_add_up_to_less_than_the_aws_limits() -> None:
    # Given the shares each producer of workflow data keeps to
    # Then what "Summarize for on-call" reads, and the summary that replaces the state, fit a state
    assert limits.SUMMARIZE_INPUT <= STEP_FUNCTIONS_DATA_LIMIT
    assert limits.REPORT <= STEP_FUNCTIONS_DATA_LIMIT
    # And the message fits SNS, the cause a Fail state, every group its least share
    assert limits.MESSAGE_BUDGET + limits.REPORT_OVERHEAD <= SNS_MESSAGE_LIMIT
    assert limits.CAUSE_BUDGET < limits.FAIL_CAUSE_LIMIT
    assert limits.MAX_GROUPS * limits.MIN_REPAIR_BUDGET <= limits.REPAIRS_BUDGET


def _function(name: str, qualifier: str | None = None) -> FunctionRef:
    return FunctionRef("aws", REGION, ACCOUNT, name, qualifier)


def _removed(count: int, name: str = "orders") -> tuple[RemovedStatement, ...]:
    source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/*/GET/{name}"
    body = {"Sid": "x", "Effect": "Allow", "Condition": {"ArnLike": {"AWS:SourceArn": source}}}
    return tuple(
        RemovedStatement(f"{i:08x}-5f0c-4e4b-9d1a-000000000000", source, "duplicate of first", body)
        for i in range(count)
    )


def test_repair_result_keeps_to_its_share_and_counts_what_it_leaves_out() -> None:
    # Given a repair that removed 300 statements and found as many duplicates
    fn = _function("orders")
    change = Change(fn.unqualified_arn, None, removed=_removed(300))
    finding = Finding(FindingKind.DUPLICATE_STATEMENT, "abc123", detail="duplicate of first " + "x" * 200)
    result = RepairResult(change, findings=(finding,) * 300, error="e" * 10_000)
    # When it is written into the workflow state with a 2,000-byte share
    data = result.to_dict(2_000)
    # Then it fits, carries no statement bodies, and counts every removal it leaves out
    assert limits.json_size(data) <= 2_000
    assert all("statement" not in r for r in data["change"]["removed"])
    back = RepairResult.from_dict(json.loads(json.dumps(data)))
    assert len(back.change.removed) + back.change.removed_omitted == 300
    assert back.change.count == 300
    assert len(back.findings) + back.findings_omitted == 300
    assert back.error is not None and back.error.endswith("more characters)")


def test_resolution_with_more_functions_than_one_execution_carries_is_refused() -> None:
    # Given an API whose targets span more function+qualifier groups than REPAIRS_BUDGET can hold
    api = ApiRef("aws", REGION, ACCOUNT, "abc123")
    groups = tuple(
        FunctionGroup(
            _function(f"fn{i}"),
            (Target(TargetKind.INTEGRATION, api, "prod", _function(f"fn{i}"), "GET", f"/r{i}"),),
        )
        for i in range(limits.MAX_GROUPS + 1)
    )
    resolution = Resolution(RestApi("abc123", "big"), "prod", True, groups)
    # When it is written into the workflow state
    # Then Resolve fails with an error that a Catch sees and that says what to do instead
    with pytest.raises(limits.TooLargeError, match="--stage"):
        resolution.to_dict()
    # And one group fewer is carried, each repair given its share
    fits = Resolution(RestApi("abc123", "big"), "prod", True, groups[:-1]).to_dict()
    assert limits.json_size(fits) <= limits.RESOLUTION_BUDGET
    assert fits["context"]["repairBudget"] * len(groups[:-1]) <= limits.REPAIRS_BUDGET


def test_notification_of_a_huge_result_fits_sns_the_state_and_the_fail_cause() -> None:
    # Given a result with 120 changed functions, each with 60 removed statements
    changes = tuple(
        Change(_function(f"fn{i}").unqualified_arn, "live", removed=_removed(60, f"fn{i}"))
        for i in range(120)
    )
    result = RemediationResult(Outcome.FAILED, "abc123", "prod", "big", changes, error="boom; " * 2_000)
    # When on-call's notification is built
    notice = notification(result, "arn:aws:states:us-east-1:123456789012:execution:m:e", REGION)
    # Then every part keeps to its budget, and the JSON documents are whole
    assert len(notice.message.encode()) <= limits.MESSAGE_BUDGET
    assert limits.json_size(notice.result) <= limits.RESULT_BUDGET
    assert len(notice.cause) <= limits.CAUSE_BUDGET
    cause = RemediationResult.from_dict(json.loads(notice.cause))
    assert len(cause.changes) + cause.changes_omitted == 120
    assert limits.json_size(notice.to_dict()) <= limits.REPORT - limits.ERROR_BUDGET
    # And the subject counts every statement, the message says how many more the ledger lists
    assert notice.subject == "permheal failed: big/prod (7200 changes)"
    assert "more function(s) changed (`permheal history --api abc123` lists them all)" in notice.message


def test_a_map_that_fails_as_a_whole_names_the_resolved_api_and_points_to_the_ledger() -> None:
    # Given the state after the Map itself failed (its Catch), once targets were resolved
    api = ApiRef("aws", REGION, ACCOUNT, "abc123")
    group = FunctionGroup(
        _function("orders"), (Target(TargetKind.INTEGRATION, api, "prod", _function("orders"), "GET", "/o"),)
    )
    resolution = Resolution(RestApi("abc123", "shop"), "prod", True, (group,)).to_dict()
    state = {
        "request": {"apiName": "shop", "stage": "prod"},
        "resolution": resolution,
        "error": {"Error": "States.Runtime", "Cause": "an iteration could not be described"},
    }
    # When the result is read from it
    result = result_from_state(state)
    # Then it is a failure of the resolved API that says where to look for changes already made
    assert (result.outcome, result.api_id, result.api_name) == (Outcome.FAILED, "abc123", "shop")
    assert result.error == (
        "States.Runtime: an iteration could not be described "
        "(functions may have been changed before that: `permheal history --api abc123`)"
    )


def test_a_thousand_method_api_fits_its_share_and_round_trips() -> None:
    # Given one stage of 1,000 methods spread over 8 function aliases
    api = ApiRef("aws", REGION, ACCOUNT, "abcdefghij")
    functions = [_function(f"fn{i}", "live") for i in range(8)]
    groups = tuple(
        FunctionGroup(
            fn,
            tuple(
                Target(TargetKind.INTEGRATION, api, "prod", fn, "GET", f"/r{j:04d}/{{id}}")
                for j in range(i, 1_000, 8)
            ),
        )
        for i, fn in enumerate(functions)
    )
    resolution = Resolution(RestApi("abcdefghij", "big"), "prod", True, groups)
    # When it is written into the workflow state and read back
    data = resolution.to_dict()
    back = Resolution.from_dict(json.loads(json.dumps(data)))
    # Then it fits Resolve's share, and every target comes back
    assert limits.json_size(data) <= limits.RESOLUTION_BUDGET
    assert back.groups == groups


def test_function_group_written_before_an_update_is_still_read() -> None:
    # Given a Map item as the previous version wrote it (targets as a list of objects)
    fn = _function("orders", "live")
    target = Target(TargetKind.INTEGRATION, ApiRef("aws", REGION, ACCOUNT, "abc123"), "prod", fn, "GET", "/o")
    old = {**FunctionGroup(fn, (target,)).to_dict(), "targets": [target.site()]}
    del old["sites"]
    # When the updated repair step reads it
    # Then it is the same group
    assert FunctionGroup.from_dict(old) == FunctionGroup(fn, (target,))
