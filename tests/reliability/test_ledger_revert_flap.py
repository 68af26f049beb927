"""The audit ledger, `permheal history`, `permheal revert` and the flap breaker, end to end.

Repairs go through the deployed workflow (the `stack` fixture: template.yaml's LedgerTable and
functions in moto) or through the engine and CLI with a ledger table built from the same template.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from permheal.adapters.ledger import EntryKind, Ledger, LedgerEntry
from permheal.adapters.ports import Adapters
from permheal.config import Settings
from permheal.policy import POLICY_SIZE_LIMIT, policy_size
from permheal.workflow.in_process import remediate
from permheal.workflow.state import ExecutionInput
from permheal_local.builder import World, function_arn
from tests.conftest import load_event
from tests.integration.support import (
    Petstore,
    build_petstore,
    received,
    retarget,
    run,
    subscribe_queue,
    wait_for_executions,
)
from tests.reliability.conftest import Record
from tests.reliability.support import by_sid, execute_api, lost_in, snapshot, stack_ledger_table

pytestmark = pytest.mark.reliability

FUNCTIONS = (("pets", "live"), ("pets-authorizer", None))
LIVE_ARN = function_arn("pets", "live")
AUTHORIZER_ARN = function_arn("pets-authorizer")


def manual(**fields: Any) -> dict[str, Any]:
    return {"source": "manual", "apiName": "petstore", "stage": "prod", **fields}


def calls(petstore: Petstore) -> dict[tuple[str, str | None], list[str]]:
    return {("pets", "live"): [petstore.method_arn()], ("pets-authorizer", None): [petstore.authorizer_arn()]}


def entries(table: str, **filters: str) -> list[LedgerEntry]:
    return Ledger(table).history(**filters)


def permheal_sids(world: World, function: str, qualifier: str | None) -> list[str]:
    return [s["Sid"] for s in world.statements(function, qualifier) if s["Sid"].startswith("permheal-")]


def drift(world: World) -> None:
    """What IaC drift does: the next deploy removes the grant permheal added to pets:live."""
    for sid in permheal_sids(world, "pets", "live"):
        world.client("lambda").remove_permission(FunctionName="pets", Qualifier="live", StatementId=sid)


def remediate_local(cli: Any, *flags: str) -> Any:
    return cli("remediate", "--api", "petstore", "--stage", "prod", "--local", "--format", "json", *flags)


# ------------------------------------------------------------------------------------ the ledger


def test_workflow_repair_records_policies_statements_execution_trigger_and_time(
    world: World, stack: Any, record: Record
) -> None:
    # Given the petstore failing on both its integration and its authorizer
    petstore = build_petstore(world)
    baseline = snapshot(*FUNCTIONS)
    started = datetime.now(UTC)

    # When a manual execution of the deployed workflow repairs it
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    after = snapshot(*FUNCTIONS)
    lost = lost_in(baseline, after, calls(petstore))
    record(
        "ledger: repair by the deployed workflow (manual)", json.loads(execution["output"])["outcome"], lost
    )

    # Then each applied change is one ledger entry with everything the audit needs
    recorded = {e.function_key: e for e in entries(stack_ledger_table(world))}
    assert set(recorded) == {LIVE_ARN, AUTHORIZER_ARN}
    for arn, (name, qualifier) in ((LIVE_ARN, FUNCTIONS[0]), (AUTHORIZER_ARN, FUNCTIONS[1])):
        entry = recorded[arn]
        assert (entry.kind, entry.trigger, entry.api_id, entry.stage) == (
            "repair",
            "manual",
            petstore.api_id,
            "prod",
        )
        assert entry.execution_arn == execution["executionArn"]
        assert started <= datetime.fromisoformat(entry.at) <= datetime.now(UTC)
        assert entry.change_id.startswith(datetime.fromisoformat(entry.at).strftime("%Y%m%dT%H%M%S"))
        assert entry.policy_before["Statement"] == baseline[(name, qualifier)] == []
        assert entry.policy_after["Statement"] == after[(name, qualifier)]
        assert [a["sid"] for a in entry.added] == [s["Sid"] for s in after[(name, qualifier)]]
        assert entry.removed == ()
    assert lost == 0


def test_detected_repair_is_recorded_with_the_logs_trigger(world: World, stack: Any, record: Record) -> None:
    # Given the petstore failing, and CloudWatch Logs delivering the failure to the deployed detector
    petstore = build_petstore(world)
    baseline = snapshot(*FUNCTIONS)
    event = retarget(load_event("logs-integration-failure-info.json"), petstore.api_id, "prod")

    # When the detector starts the workflow and it finishes
    response = world.client("lambda").invoke(
        FunctionName=stack.functions["DetectorFunction"], Payload=json.dumps(event)
    )
    assert "FunctionError" not in response
    (execution,) = wait_for_executions(world.client("stepfunctions"), stack.state_machine_arn, count=1)
    lost = lost_in(baseline, snapshot(*FUNCTIONS), calls(petstore))
    record("ledger: repair started by the detector (logs)", json.loads(execution["output"])["outcome"], lost)

    # Then the repair is recorded as triggered by logs, with the execution that made it
    recorded = entries(stack_ledger_table(world), api_id=petstore.api_id)
    assert recorded
    assert {(e.kind, e.trigger, e.execution_arn) for e in recorded} == {
        ("repair", "logs", execution["executionArn"])
    }
    assert lost == 0


def test_engine_with_a_ledger_records_each_change_once(world: World, ledger: str, record: Record) -> None:
    # Given the petstore failing, and the engine given a ledger (what `remediate --local` builds)
    petstore = build_petstore(world)
    world.allow("petstore")
    baseline = snapshot(*FUNCTIONS)

    # When it remediates twice (the second run has nothing to do)
    adapters = Adapters.default(ledger)
    first = remediate(adapters, ExecutionInput("petstore", "prod"), Settings.from_env())
    second = remediate(adapters, ExecutionInput("petstore", "prod"), Settings.from_env())
    lost = lost_in(baseline, snapshot(*FUNCTIONS), calls(petstore))
    record("ledger: repair by the engine (manual, no execution)", first.outcome.value, lost)

    # Then the ledger holds the first run's two changes only, readable one by one
    assert (first.outcome.value, second.outcome.value) == ("repaired", "no_change")
    recorded = entries(ledger)
    assert sorted(e.function_key for e in recorded) == [AUTHORIZER_ARN, LIVE_ARN]
    for entry in recorded:
        assert (entry.trigger, entry.execution_arn) == ("manual", "")
        assert Ledger(ledger).get(entry.change_id) == entry
    assert lost == 0


def test_refusals_are_recorded_for_the_api_and_for_the_function(
    world: World, ledger: str, cli: Any, record: Record
) -> None:
    # Given the petstore outside the allowlist, and pets:live's policy too full for another grant
    petstore = build_petstore(world)
    world.allow("someone-else")
    others = [world.rest_api(f"other-{n}") for n in range(3)]
    index = 0
    while policy_size(world.statements("pets", "live")) < 20_300:
        source = execute_api(others[index % 3], f"*/GET/resource-{index:03d}")
        world.grant("pets", source, sid=f"fill-{index:03d}", qualifier="live")
        index += 1
    assert policy_size(world.statements("pets", "live")) <= POLICY_SIZE_LIMIT
    baseline = snapshot(*FUNCTIONS)

    # When it is remediated before and after being allowlisted
    refused = remediate_local(cli)
    world.allow("petstore")
    failed = remediate_local(cli)
    lost = lost_in(baseline, snapshot(*FUNCTIONS), calls(petstore))
    record(
        "ledger: refusal (not allowlisted, policy size limit)",
        f"{refused.json['outcome']}/{failed.json['outcome']}",
        lost,
    )

    # Then both refusals are recorded: the API-wide one, and the one for pets:live with its reason
    assert (refused.json["outcome"], failed.json["outcome"]) == ("refused", "failed")
    refusals = [e for e in entries(ledger, api_id=petstore.api_id) if e.kind == "refusal"]
    assert sorted((e.function_key, e.detail.split(" ")[0]) for e in refusals) == [
        ("-", "API"),
        (LIVE_ARN, "policy"),
    ]
    assert any(f"{POLICY_SIZE_LIMIT}-byte limit" in e.detail for e in refusals)
    assert snapshot(*FUNCTIONS)[("pets", "live")] == baseline[("pets", "live")]
    assert lost == 0


# ----------------------------------------------------------------------------------- history


def test_history_lists_entries_as_json_filtered_by_api_and_by_function(
    world: World, ledger: str, cli: Any, record: Record
) -> None:
    # Given two allowlisted APIs, each repaired once
    petstore = build_petstore(world)
    world.function("orders-fn")
    orders = world.rest_api("orders")
    world.method(orders, "/orders", "GET", function_arn("orders-fn"))
    world.deploy(orders, "prod")
    world.allow("petstore", "orders")
    assert remediate_local(cli).code == 0
    assert cli("remediate", "--api", "orders", "--local", "--format", "json").code == 0

    # When the history is listed whole, by API and by function
    everything = cli("history", "--format", "json")
    by_api = cli("history", "--api", orders, "--format", "json")
    by_function = cli("history", "--function", LIVE_ARN, "--format", "json")
    by_short_name = cli("history", "--function", "pets:live", "--format", "json")
    table = cli("history")
    record("ledger: permheal history (json, --api, --function)", f"exit {everything.code}", 0)

    # Then each lists exactly its entries, newest first, with the documented fields
    assert (everything.code, by_api.code, by_function.code, table.code) == (0, 0, 0, 0)
    listed = everything.json["entries"]
    assert sorted(e["function"] for e in listed) == sorted(
        [AUTHORIZER_ARN, LIVE_ARN, function_arn("orders-fn")]
    )
    assert [e["changeId"] for e in listed] == sorted((e["changeId"] for e in listed), reverse=True)
    assert set(listed[0]) >= {
        "changeId",
        "at",
        "kind",
        "apiId",
        "function",
        "trigger",
        "executionArn",
        "added",
    }
    assert [(e["apiId"], e["function"]) for e in by_api.json["entries"]] == [
        (orders, function_arn("orders-fn"))
    ]
    assert [(e["apiId"], e["function"]) for e in by_function.json["entries"]] == [(petstore.api_id, LIVE_ARN)]
    assert by_short_name.json == by_function.json  # `pets:live` means this account's and region's pets:live
    assert table.out.splitlines()[0].split() == [
        "CHANGE_ID",
        "KIND",
        "API/STAGE",
        "FUNCTION",
        "WHAT",
        "TRIGGER",
    ]


# ------------------------------------------------------------------------------------ revert


def only_change(table: str, function_key: str) -> LedgerEntry:
    (entry,) = [e for e in entries(table, function=function_key) if e.kind == "repair"]
    return entry


def test_revert_removes_what_a_repair_added_and_is_recorded(
    world: World, stack: Any, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given a repair made by the deployed workflow
    build_petstore(world)
    baseline = snapshot(*FUNCTIONS)
    run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    table = stack_ledger_table(world)
    monkeypatch.setenv("PERMHEAL_LEDGER_TABLE", table)
    change = only_change(table, LIVE_ARN)
    repaired = snapshot(*FUNCTIONS)

    # When the operator reverts the pets:live change
    result = cli("revert", change.change_id, "--format", "json")
    after = snapshot(*FUNCTIONS)
    lost = lost_in(baseline, after, {})
    record("revert: a repair (grant added)", "reverted" if result.json["reverted"] else "refused", lost)

    # Then exactly what it added is gone, the other function is untouched, and the revert is recorded
    assert (result.code, result.json["reverted"]) == (0, True)
    assert result.json["removed"] == [a["sid"] for a in change.added]
    assert after[("pets", "live")] == change.policy_before["Statement"] == baseline[("pets", "live")]
    assert after[("pets-authorizer", None)] == repaired[("pets-authorizer", None)]
    revert_entry = Ledger(table).get(result.json["revertId"])
    assert (revert_entry.kind, revert_entry.revert_of, revert_entry.function_key) == (
        "revert",
        change.change_id,
        LIVE_ARN,
    )
    assert [r["sid"] for r in revert_entry.removed] == [a["sid"] for a in change.added]
    assert revert_entry.policy_before["Statement"] == repaired[("pets", "live")]
    assert revert_entry.policy_after["Statement"] == after[("pets", "live")]
    history = cli("history", "--function", LIVE_ARN, "--format", "json").json["entries"]
    assert [e["kind"] for e in history] == ["revert", "repair"]
    assert lost == 0


def test_revert_refuses_when_a_sid_it_added_now_holds_a_different_statement(
    world: World, ledger: str, cli: Any, record: Record
) -> None:
    # Given a repair of pets:live, after which someone re-used its Sid for another grant
    petstore = build_petstore(world)
    world.allow("petstore")
    remediate_local(cli)
    change = only_change(ledger, LIVE_ARN)
    (sid,) = [a["sid"] for a in change.added]
    world.client("lambda").remove_permission(FunctionName="pets", Qualifier="live", StatementId=sid)
    world.grant("pets", execute_api(petstore.api_id, "*/DELETE/pets/*"), sid=sid, qualifier="live")
    before = snapshot(*FUNCTIONS)

    # When the operator reverts the change
    result = cli("revert", change.change_id)
    after = snapshot(*FUNCTIONS)
    lost = lost_in(before, after, calls(petstore))
    record("revert: refused, a Sid it added holds another statement", f"refused (exit {result.code})", lost)

    # Then it refuses, explaining why, and changes and records nothing
    assert result.code == 1
    assert result.out.startswith(f"refused to revert {change.change_id}; nothing changed")
    assert sid in result.out and "different statement" in result.out
    assert after == before
    assert [e.kind for e in entries(ledger, function=LIVE_ARN)] == ["repair"]
    assert lost == 0


def test_revert_of_a_dedupe_re_adds_the_console_duplicates_it_removed(
    world: World, ledger: str, cli: Any, record: Record
) -> None:
    # Given pets:live with two console grants the same as a third, which a repair deduplicated
    petstore = build_petstore(world)
    world.allow("petstore")
    for sid in ("console-1", "console-2", "console-3"):
        world.grant("pets", execute_api(petstore.api_id, "*/GET/pets/*"), sid=sid, qualifier="live")
    baseline = snapshot(*FUNCTIONS)
    assert remediate_local(cli).json["outcome"] == "repaired"
    change = only_change(ledger, LIVE_ARN)
    assert sorted(r["sid"] for r in change.removed) == ["console-2", "console-3"]
    assert change.added == ()

    # When the operator reverts the dedupe
    result = cli("revert", change.change_id, "--format", "json")
    after = snapshot(*FUNCTIONS)
    lost = lost_in(baseline, after, calls(petstore))
    record(
        "revert: a dedupe (console duplicates removed)",
        "reverted" if result.json["reverted"] else "refused",
        lost,
    )

    # Then both duplicates are back, statement for statement
    assert (result.code, sorted(result.json["restored"])) == (0, ["console-2", "console-3"])
    assert by_sid(after[("pets", "live")]) == by_sid(baseline[("pets", "live")])
    assert lost == 0


def test_only_applied_changes_can_be_reverted(world: World, ledger: str, cli: Any, capsys: Any) -> None:
    # Given a refusal in the ledger
    build_petstore(world)
    world.allow("nothing")
    remediate_local(cli)
    (refusal,) = entries(ledger)

    # When the operator tries to revert it, or an id that does not exist
    refused = cli("revert", refusal.change_id)
    unknown = cli("revert", "20990101T000000.000000Z-deadbeef")

    # Then both are errors that say why
    assert (refused.code, unknown.code) == (2, 2)
    err = capsys.readouterr().err
    assert "only applied changes can be reverted" in err and "no ledger entry" in err


# ------------------------------------------------------------------------------- flap breaker


def test_fourth_repair_within_a_day_is_refused_as_flapping_until_cleared(
    world: World, stack: Any, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given the deployed workflow repaired pets:live three times, IaC drift removing the grant each time
    build_petstore(world)
    inbox = subscribe_queue(world, stack.topic_arn)
    sfn = world.client("stepfunctions")
    outputs = []
    for _ in range(3):
        outputs.append(json.loads(run(sfn, stack.state_machine_arn, manual())["output"])["outcome"])
        drift(world)
    assert outputs == ["repaired"] * 3
    received(world, inbox)
    before = snapshot(*FUNCTIONS)
    table = stack_ledger_table(world)
    repairs = [e.change_id for e in entries(table, function=LIVE_ARN) if e.kind == "repair"]

    # When the failure happens a fourth time
    execution = run(sfn, stack.state_machine_arn, manual())
    output = json.loads(execution["output"])
    after = snapshot(*FUNCTIONS)
    record("flap: 4th repair of a function within 24 h", output["outcome"], lost_in(before, after, {}))

    # Then permheal stops: outcome flapping, nothing added, on-call told with the repair history
    assert (execution["status"], output["outcome"]) == ("SUCCEEDED", "flapping")
    assert after == before
    assert permheal_sids(world, "pets", "live") == []
    (notice,) = received(world, inbox)
    assert notice.attributes["outcome"] == "flapping"
    assert notice.subject.startswith("permheal flapping: petstore/prod")
    assert all(change_id in notice.message for change_id in repairs)
    assert "permheal clear-flap" in notice.message
    # And the stop is in the ledger
    latest = entries(table, function=LIVE_ARN)[0]
    assert (latest.kind, latest.execution_arn) == ("flapping", execution["executionArn"])

    # When an operator clears the breaker and the failure happens again
    monkeypatch.setenv("PERMHEAL_LEDGER_TABLE", table)
    cleared = cli("clear-flap", LIVE_ARN)
    again = json.loads(run(sfn, stack.state_machine_arn, manual())["output"])
    record("flap: after permheal clear-flap", again["outcome"], lost_in(before, snapshot(*FUNCTIONS), {}))

    # Then it repairs again
    assert cleared.code == 0 and cleared.out.startswith(f"cleared the flap breaker for {LIVE_ARN}")
    assert again["outcome"] == "repaired"
    assert len(permheal_sids(world, "pets", "live")) == 1


def test_flap_threshold_is_configurable(
    world: World, ledger: str, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given a threshold of 1 repair, and pets:live repaired once then drifted
    build_petstore(world)
    world.allow("petstore")
    monkeypatch.setenv("PERMHEAL_FLAP_THRESHOLD", "1")
    assert remediate_local(cli).json["outcome"] == "repaired"
    drift(world)
    before = snapshot(*FUNCTIONS)

    # When it fails again
    second = remediate_local(cli)
    record(
        "flap: PERMHEAL_FLAP_THRESHOLD=1, 2nd repair",
        second.json["outcome"],
        lost_in(before, snapshot(*FUNCTIONS), {}),
    )

    # Then the second repair is already refused as flapping, and recorded
    assert (second.code, second.json["outcome"]) == (1, "flapping")
    assert "repaired 1 times in 24 h" in second.json["error"]
    assert snapshot(*FUNCTIONS) == before
    assert [e.kind for e in entries(ledger, function=LIVE_ARN)] == ["flapping", "repair"]

    # When the operator clears it
    assert cli("clear-flap", LIVE_ARN).code == 0
    third = remediate_local(cli)

    # Then the next failure is repaired, and the breaker counts again from there
    assert third.json["outcome"] == "repaired"
    drift(world)
    assert remediate_local(cli).json["outcome"] == "flapping"


def test_repairs_of_the_same_function_for_other_grants_are_not_flapping(
    world: World, ledger: str, cli: Any, record: Record
) -> None:
    # Given pets:live repaired three times today, each time for a grant other than the one it needs now
    # (three APIs sharing the function, each deployed without its permission)
    build_petstore(world)
    world.allow("petstore")
    for index in range(3):
        grant = {
            "sid": f"permheal-{index:016x}",
            "sourceArn": f"arn:aws:execute-api:us-east-1:1:other{index}/*",
        }
        Ledger(ledger).record(LedgerEntry(EntryKind.REPAIR, f"other{index}", LIVE_ARN, added=(grant,)))
    before = snapshot(*FUNCTIONS)

    # When the petstore's grant is missing for the first time
    result = remediate_local(cli)
    record(
        "flap: 3 repairs of the function for other APIs, then a first repair",
        result.json["outcome"],
        lost_in(before, snapshot(*FUNCTIONS), {}),
    )

    # Then it is repaired: only re-adding the same grant again and again is flapping
    assert result.json["outcome"] == "repaired"


def test_repairs_older_than_the_window_do_not_count(
    world: World, ledger: str, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given three repairs of pets:live recorded 25 hours ago
    build_petstore(world)
    world.allow("petstore")
    planned = remediate_local(cli, "--dry-run").json["changes"]
    (grant,) = next(c["added"] for c in planned if c["qualifier"] == "live")
    old = Ledger(ledger, clock=lambda: datetime.now(UTC) - timedelta(hours=25))
    for _ in range(3):
        old.record(LedgerEntry(EntryKind.REPAIR, "api", LIVE_ARN, added=(grant,)))

    # When pets:live fails now, with the default 24 h window and then with a 48 h one
    within_day = remediate_local(cli)
    drift(world)
    monkeypatch.setenv("PERMHEAL_FLAP_WINDOW_HOURS", "48")
    within_two_days = remediate_local(cli)
    record(
        "flap: repairs 25 h old, window 24 h then 48 h",
        f"{within_day.json['outcome']}/{within_two_days.json['outcome']}",
        0,
    )

    # Then only the longer window sees them (four repairs in 48 h)
    assert (within_day.json["outcome"], within_two_days.json["outcome"]) == ("repaired", "flapping")
