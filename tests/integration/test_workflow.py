"""The deployed workflow end to end against moto: real handlers, real ASL, real SNS → SQS delivery.

The `stack` fixture deploys template.yaml (allowlist: petstore); the detector is invoked through
Lambda's Invoke API, executions run in moto's Step Functions interpreter and each Task calls the real
handler in this process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from permheal_local.stack import deploy
from tests.conftest import load_event
from tests.integration.support import (
    Petstore,
    all_statements,
    allows,
    executions,
    received,
    retarget,
    run,
    subscribe_queue,
    wait_for_executions,
)

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "remediation.asl.json"


def untouched(world: Any) -> dict[str, list[dict[str, Any]]]:
    return all_statements(world, ("pets", "live"), ("pets", None), ("pets-authorizer", None))


def detect_through_lambda(world: Any, stack: Any, petstore: Petstore) -> dict[str, Any]:
    """Deliver the INFO-level failure payload to the deployed detector and wait for the workflow."""
    event = retarget(load_event("logs-integration-failure-info.json"), petstore.api_id, "prod")
    response = world.client("lambda").invoke(
        FunctionName=stack.functions["DetectorFunction"], Payload=json.dumps(event)
    )
    assert "FunctionError" not in response, response["Payload"].read()
    detected: dict[str, Any] = json.loads(response["Payload"].read())
    wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn, count=1)
    return detected


def manual(**fields: Any) -> dict[str, Any]:
    return {"source": "manual", "apiName": "petstore", "stage": "prod", **fields}


def explode(monkeypatch: pytest.MonkeyPatch, *targets: str, message: str = "exploded") -> None:
    """Make each named function raise RuntimeError(message) when called."""

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError(message)

    for target in targets:
        monkeypatch.setattr(target, crash)


# ------------------------------------------------------------------------------ detector to repair


def test_detector_invocation_starts_exactly_one_execution_for_the_api_stage(
    world: Any, stack: Any, petstore: Petstore
) -> None:
    # Given the petstore's prod stage failing on permissions
    # When CloudWatch Logs delivers the failure to the deployed detector
    detected = detect_through_lambda(world, stack, petstore)
    # Then one execution was started for that API and stage, and it succeeded
    listed = executions(world.client("stepfunctions"), stack.state_machine_arn)
    assert [e["executionArn"] for e in listed] == detected["started"]
    execution = world.client("stepfunctions").describe_execution(executionArn=listed[0]["executionArn"])
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["input"])["apiId"] == petstore.api_id
    assert json.loads(execution["input"])["stage"] == "prod"


def test_detected_failure_is_repaired_on_the_alias_the_stage_invokes(
    world: Any, stack: Any, petstore: Petstore
) -> None:
    # Given API Gateway may not invoke pets:live
    assert not allows(world, "pets", "live", petstore.method_arn())
    # When the detector receives the failure and the workflow runs
    detect_through_lambda(world, stack, petstore)
    # Then the alias policy now allows the call, and the unqualified function was not touched
    assert allows(world, "pets", "live", petstore.method_arn())
    assert world.statements("pets") == []


def test_repair_notifies_on_call_with_subject_attributes_summary_and_json(
    world: Any, stack: Any, petstore: Petstore, inbox: str
) -> None:
    # Given an on-call queue subscribed to the topic
    # When a detected failure is repaired
    detect_through_lambda(world, stack, petstore)
    # Then exactly one notification arrived, saying what happened
    (notice,) = received(world, inbox)
    assert notice.subject == "permheal repaired: petstore/prod (1 change)"
    assert notice.attributes == {"outcome": "repaired", "apiId": petstore.api_id}
    assert notice.message.startswith(
        f"permheal repaired API Gateway's permission to invoke Lambda for petstore ({petstore.api_id})"
    )
    # And the body ends with the JSON result of the contract
    result = notice.result
    assert result["outcome"] == "repaired"
    assert result["apiId"] == petstore.api_id
    assert result["stage"] == "prod"
    ((change),) = result["changes"]
    assert (change["functionArn"].rsplit(":", 1)[-1], change["qualifier"]) == ("pets", "live")
    assert len(change["added"]) == 1
    assert change["policyBytesBefore"] < change["policyBytesAfter"]


def test_successful_execution_output_is_the_json_result(world: Any, stack: Any, petstore: Petstore) -> None:
    # Given a manual run of the petstore
    # When it finishes
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then it succeeded and its output is the result (integration and authorizer repaired)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["outcome"] == "repaired"
    assert {(c["functionArn"].rsplit(":", 1)[-1], c["qualifier"]) for c in output["changes"]} == {
        ("pets", "live"),
        ("pets-authorizer", None),
    }
    assert allows(world, "pets-authorizer", None, petstore.authorizer_arn())


# ------------------------------------------------------------------------------ what is not changed


def test_api_outside_the_allowlist_is_refused_notified_and_left_alone(
    world: Any, stack: Any, petstore: Petstore, inbox: str
) -> None:
    # Given the allowlist no longer names the petstore
    world.allow("other")
    before = untouched(world)
    # When a run for the petstore executes
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then the execution succeeds with a refusal, on-call hears about it and nothing changed
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["outcome"] == "refused"
    (notice,) = received(world, inbox)
    assert notice.subject == "permheal refused: petstore/prod (0 changes)"
    assert notice.attributes == {"outcome": "refused", "apiId": petstore.api_id}
    assert untouched(world) == before


def test_dry_run_input_reports_the_plan_and_changes_nothing(
    world: Any, stack: Any, petstore: Petstore, inbox: str
) -> None:
    # Given a petstore whose functions lack permissions
    before = untouched(world)
    # When a run asks for a dry run
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual(dryRun=True))
    # Then the result lists what would change, on-call is told, and no policy changed
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["outcome"] == "dry_run"
    (notice,) = received(world, inbox)
    assert notice.attributes["outcome"] == "dry_run"
    assert notice.subject == "permheal dry_run: petstore/prod (2 changes)"
    assert len(notice.result["changes"]) == 2
    assert untouched(world) == before


def test_dry_run_deployment_stays_dry_when_the_input_asks_to_enforce(
    world: Any, stack: Any, petstore: Petstore
) -> None:
    # Given a second stack deployed with Mode=dry-run
    dry = deploy(world, {"AllowedApis": "petstore", "Mode": "dry-run"}, stack_name="permheal-dry")
    inbox = subscribe_queue(world, dry.topic_arn, name="dry-on-call")
    before = untouched(world)
    # When a run explicitly asks not to be a dry run
    execution = run(world.client("stepfunctions"), dry.state_machine_arn, manual(dryRun=False))
    # Then it is still a dry run: an input can only make a run drier
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["outcome"] == "dry_run"
    (notice,) = received(world, inbox)
    assert notice.attributes["outcome"] == "dry_run"
    assert untouched(world) == before


# ------------------------------------------------------------------------------ failures


def test_task_failure_notifies_failed_with_the_cause_and_fails_the_execution(
    world: Any, stack: Any, petstore: Petstore, inbox: str
) -> None:
    # Given an execution input naming an API that does not exist
    # When the workflow runs
    execution = run(
        world.client("stepfunctions"), stack.state_machine_arn, manual(apiName="no-such-api", stage="prod")
    )
    # Then on-call is told why it failed
    (notice,) = received(world, inbox)
    assert notice.attributes == {"outcome": "failed", "apiId": "no-such-api"}
    assert notice.subject.startswith("permheal failed: ")
    assert "NotFoundError" in notice.message
    assert "no-such-api" in notice.result["error"]
    # And the execution failed with RemediationFailed, its cause being the result
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RemediationFailed"
    assert json.loads(execution["cause"])["outcome"] == "failed"


def test_crash_inside_the_repair_map_is_caught_per_function_and_notified(
    world: Any, stack: Any, petstore: Petstore, inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a repair step that crashes
    explode(monkeypatch, "permheal.handlers.repair.repair_group", message="repair exploded")
    before = untouched(world)
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then each iteration's Catch reports its own function's failure, on-call is told, nothing changed
    (notice,) = received(world, inbox)
    assert notice.attributes == {"outcome": "failed", "apiId": petstore.api_id}
    assert "RuntimeError" in notice.message
    assert "pets:live: RuntimeError: repair exploded" in notice.result["error"]
    assert "pets-authorizer: RuntimeError: repair exploded" in notice.result["error"]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RemediationFailed"
    assert untouched(world) == before


def test_failure_that_cannot_be_reported_still_names_the_function(
    world: Any, stack: Any, petstore: Petstore, inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a repair step that crashes, and reporting the failure crashing too
    explode(
        monkeypatch,
        "permheal.handlers.repair.repair_group",
        "permheal.handlers.repair.error_text",
        message="exploded",
    )
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then the last resort still yields each function's failure with the error's name
    (notice,) = received(world, inbox)
    assert notice.attributes == {"outcome": "failed", "apiId": petstore.api_id}
    assert "pets:live: RuntimeError (details in the execution history)" in notice.result["error"]
    assert "pets-authorizer: RuntimeError" in notice.result["error"]
    assert execution["error"] == "RemediationFailed"


def test_failed_notification_fails_the_execution_but_keeps_the_repair(
    world: Any, stack: Any, petstore: Petstore, retry_waits: list[float]
) -> None:
    # Given the notification topic was deleted
    world.client("sns").delete_topic(TopicArn=stack.topic_arn)
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then the publish was retried with backoff, then the execution failed with NotificationFailed
    assert len(retry_waits) == 4
    assert all(wait <= 2 * 2**attempt for attempt, wait in enumerate(retry_waits))
    assert execution["status"] == "FAILED"
    assert execution["error"] == "NotificationFailed"
    assert json.loads(execution["cause"])["outcome"] == "repaired"
    # And the repair itself happened
    assert allows(world, "pets", "live", petstore.method_arn())


def test_crash_while_summarizing_notifies_the_error_and_fails_as_crashed(
    world: Any, stack: Any, petstore: Petstore, inbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a summary step that crashes
    explode(monkeypatch, "permheal.handlers.summarize.result_from_state", message="summary exploded")
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then on-call still hears about it, with the error and the request, and the execution failed as crashed
    (notice,) = received(world, inbox)
    assert notice.subject == "permheal failed: the workflow crashed"
    assert notice.attributes == {"outcome": "failed", "apiId": "unknown"}
    assert "summary exploded" in notice.message
    assert '"apiName":"petstore"' in notice.message.split("Request:", 1)[1]
    assert execution["status"] == "FAILED"
    assert execution["error"] == "WorkflowCrashed"


def test_crash_that_cannot_be_notified_fails_as_notification_failed(
    world: Any, stack: Any, petstore: Petstore, monkeypatch: pytest.MonkeyPatch, retry_waits: list[float]
) -> None:
    # Given a summary step that crashes and a topic that no longer exists
    explode(monkeypatch, "permheal.handlers.summarize.result_from_state", message="summary exploded")
    world.client("sns").delete_topic(TopicArn=stack.topic_arn)
    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    # Then the crash notice was retried with growing waits, then the execution failed as NotificationFailed
    assert len(retry_waits) == 4
    assert all(wait <= 2 * 2**attempt for attempt, wait in enumerate(retry_waits))
    assert execution["status"] == "FAILED"
    assert execution["error"] == "NotificationFailed"


@pytest.mark.parametrize(
    "execution_input",
    [
        pytest.param({"source": "manual", "stage": "prod"}, id="no-api"),
        pytest.param({"apiName": "", "stage": "prod"}, id="empty-api-name"),
        pytest.param({"apiId": 42, "stage": "prod"}, id="api-id-not-a-string"),
        pytest.param(manual(dryRun="yes"), id="dry-run-not-a-bool"),
        pytest.param(manual(hints={"method": "GET"}), id="hints-not-a-list"),
        pytest.param(manual(hints=["GET /pets"]), id="hints-not-objects"),
        pytest.param(manual(stage=""), id="empty-stage"),
        pytest.param(["petstore"], id="not-an-object"),
        pytest.param("petstore", id="a-bare-string"),
    ],
)
def test_malformed_input_is_notified_as_failed_and_changes_nothing(
    world: Any, stack: Any, petstore: Petstore, inbox: str, execution_input: Any
) -> None:
    # Given a petstore whose functions lack permissions
    before = untouched(world)
    # When an execution starts with a malformed input
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, execution_input)
    # Then on-call is told the run failed and why, the execution failed, and nothing changed
    (notice,) = received(world, inbox)
    assert notice.attributes["outcome"] == "failed"
    assert "ParseError" in notice.message
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RemediationFailed"
    assert untouched(world) == before


# ------------------------------------------------------------------------------ the CLI, deployed


def test_cli_remediate_starts_the_deployed_workflow_and_prints_its_result(
    world: Any, stack: Any, petstore: Petstore, cli: Any
) -> None:
    # Given the deployed state machine
    # When `permheal remediate` runs without --local
    result = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--format", "json"
    )
    # Then it waited for the execution and printed its JSON result
    assert result.code == 0, result.out
    assert result.json["outcome"] == "repaired"
    assert result.json["apiId"] == petstore.api_id
    assert len(executions(world.client("stepfunctions"), stack.state_machine_arn)) == 1
    assert allows(world, "pets", "live", petstore.method_arn())


def test_cli_remediate_no_wait_prints_the_execution_arn(
    world: Any, stack: Any, petstore: Petstore, cli: Any
) -> None:
    # Given the deployed state machine
    # When `permheal remediate --no-wait` runs
    result = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--no-wait"
    )
    # Then it printed the ARN of the execution it started
    assert result.code == 0
    arn = result.out.strip()
    (listed,) = wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn, count=1)
    assert arn == listed["executionArn"]
    assert arn.startswith(stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":")


def test_cli_remediate_finds_the_state_machine_in_the_environment(
    world: Any, stack: Any, petstore: Petstore, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_STATE_MACHINE_ARN names the deployed state machine
    monkeypatch.setenv("PERMHEAL_STATE_MACHINE_ARN", stack.state_machine_arn)
    # When `permheal remediate` runs with neither --local nor --state-machine-arn
    result = cli("remediate", "--api", "petstore", "--format", "json")
    # Then it ran the deployed workflow
    assert result.code == 0, result.out
    assert result.json["outcome"] == "repaired"
    assert len(executions(world.client("stepfunctions"), stack.state_machine_arn)) == 1


def test_cli_remediate_runs_of_the_same_api_are_separate_executions(
    world: Any, stack: Any, petstore: Petstore, cli: Any
) -> None:
    # Given a first run repaired the petstore
    first = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--format", "json"
    )
    assert first.json["outcome"] == "repaired"
    # When the same command runs again
    second = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--format", "json"
    )
    # Then a new execution ran and found nothing left to change
    assert second.code == 0, second.out
    assert second.json["outcome"] == "no_change"
    assert len(executions(world.client("stepfunctions"), stack.state_machine_arn)) == 2


def test_cli_remediate_exits_1_when_the_deployed_run_is_refused(
    world: Any, stack: Any, petstore: Petstore, cli: Any
) -> None:
    # Given the petstore is not allowlisted
    world.allow("other")
    # When `permheal remediate` runs the deployed workflow
    result = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--format", "json"
    )
    # Then it reports the refusal and exits 1
    assert result.code == 1
    assert result.json["outcome"] == "refused"


def test_cli_remediate_exits_1_with_the_cause_when_the_deployed_run_fails(
    world: Any, stack: Any, petstore: Petstore, cli: Any
) -> None:
    # Given an API name that does not exist
    # When `permheal remediate` runs the deployed workflow for it
    result = cli(
        "remediate",
        "--api",
        "no-such-api",
        "--state-machine-arn",
        stack.state_machine_arn,
        "--format",
        "json",
    )
    # Then the failed execution's cause is printed as the result and the exit code is 1
    assert result.code == 1
    assert result.json["outcome"] == "failed"
    assert "no-such-api" in result.json["error"]


# ------------------------------------------------------------------------------ structure


def _task_states(
    states: dict[str, Any], inside_map: str | None = None
) -> list[tuple[str, dict[str, Any], str | None]]:
    found: list[tuple[str, dict[str, Any], str | None]] = []
    for name, state in states.items():
        if state["Type"] == "Task":
            found.append((name, state, inside_map))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.extend(_task_states(processor["States"], name))
    return found


def test_every_task_is_caught_by_itself_or_by_its_map() -> None:
    # Given the ASL
    states = json.loads(ASL.read_text())["States"]
    # When its Task states are listed, with the Map each one runs in
    tasks = _task_states(states)
    # Then each has a catch-all, or runs inside a Map that has one
    assert tasks
    for name, state, map_name in tasks:
        catchers = state.get("Catch") or (states[map_name].get("Catch") if map_name else None) or []
        assert any("States.ALL" in c["ErrorEquals"] for c in catchers), f"{name!r} is not caught"


def test_every_task_retries_with_exponential_backoff() -> None:
    # Given the ASL
    states = json.loads(ASL.read_text())["States"]
    # When the Task states' retriers are read
    tasks = _task_states(states)
    # Then every Task retries, waiting longer each time
    for name, state, _ in tasks:
        assert state.get("Retry"), f"{name!r} never retries"
        for retrier in state["Retry"]:
            assert retrier.get("IntervalSeconds", 1) >= 1, name
            assert retrier.get("MaxAttempts", 3) >= 2, name
            assert retrier.get("BackoffRate", 2.0) > 1, name


def test_a_stack_given_a_hub_topic_notifies_the_hub_and_not_its_own_topic(
    world: Any, stack: Any, petstore: Petstore
) -> None:
    # Given a hub topic (org/hub.yaml's, here in the same local account) and a stack pointed at it
    hub = world.client("sns").create_topic(Name="permheal-hub")["TopicArn"]
    member = deploy(
        world, {"AllowedApis": "petstore", "HubNotificationTopicArn": hub}, stack_name="permheal-member"
    )
    hub_inbox = subscribe_queue(world, hub, name="hub-on-call")
    own_inbox = subscribe_queue(world, member.topic_arn, name="member-on-call")
    # When the member's workflow repairs the API
    execution = run(world.client("stepfunctions"), member.state_machine_arn, manual())
    # Then the hub heard about it, the stack's own topic did not (it keeps the alarms)
    assert execution["status"] == "SUCCEEDED"
    (notice,) = received(world, hub_inbox)
    assert (notice.attributes["outcome"], notice.attributes["apiId"]) == ("repaired", petstore.api_id)
    assert received(world, own_inbox) == []
