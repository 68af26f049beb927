"""The workflow steps on in-memory doubles: grouping by function+qualifier, repairing, summarizing."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from permheal.adapters.ports import Adapters
from permheal.arns import ApiRef, FunctionRef
from permheal.config import Settings
from permheal.models import FindingKind, Outcome, RestApi, Scope, Target, TargetKind
from permheal.planner import PlanOptions
from permheal.policy import Policy, invoke_statement
from permheal.workflow.outcome import summarize
from permheal.workflow.repair import plan_options, repair, settings_options
from permheal.workflow.resolve import group_by_function
from permheal.workflow.state import FunctionGroup, Resolution

ACCOUNT = "123456789012"
API = ApiRef("aws", "us-east-1", ACCOUNT, "api1")
PETS = FunctionRef("aws", "us-east-1", ACCOUNT, "pets")
LIVE = FunctionRef("aws", "us-east-1", ACCOUNT, "pets", "live")
V1 = FunctionRef("aws", "us-east-1", ACCOUNT, "pets", "1")


def route(function: FunctionRef, stage: str = "prod", method: str = "GET") -> Target:
    return Target(TargetKind.INTEGRATION, API, stage, function, method, "/pets")


class Policies:
    """An in-memory LambdaPolicies: one policy per function+qualifier, every write recorded."""

    def __init__(self, statements: dict[FunctionRef, list[dict[str, Any]]]) -> None:
        self.statements = statements
        self.writes: list[tuple[str, str]] = []

    def read(self, function: FunctionRef) -> Policy:
        return Policy(tuple(self.statements.get(function, [])), f"rev-{len(self.writes)}")

    def add(self, function: FunctionRef, statement: dict[str, Any], revision_id: str | None) -> None:
        self.writes.append(("add", statement["Sid"]))
        self.statements.setdefault(function, []).append(statement)

    def remove(self, function: FunctionRef, sid: str, revision_id: str | None) -> None:
        self.writes.append(("remove", sid))
        self.statements[function] = [s for s in self.statements[function] if s["Sid"] != sid]


def adapters(policies: Policies) -> Adapters:
    return Adapters(None, policies, lambda: None, lambda _: None, sleep=lambda _: None)  # type: ignore[arg-type]


def deny(sid: str, function: FunctionRef, pattern: str) -> dict[str, Any]:
    return {**invoke_statement(sid, function.arn, pattern), "Effect": "Deny"}


# --- grouping -----------------------------------------------------------------------------------------


def test_a_function_invoked_unqualified_and_through_an_alias_gives_two_groups() -> None:
    # Given dev invoking pets unqualified and prod invoking pets:live and pets:1 (in any order)
    targets = [route(LIVE, "prod"), route(V1, "canary"), route(PETS, "dev")]
    # When the targets are grouped
    groups = group_by_function(targets)
    # Then there is one group per qualifier, the unqualified one first, without a TypeError
    assert [(g.function.qualifier, [t.stage for t in g.targets]) for g in groups] == [
        (None, ["dev"]),
        ("1", ["canary"]),
        ("live", ["prod"]),
    ]


# --- a call still denied ---------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_call_denied_with_nothing_else_to_do_is_an_error_naming_the_statement(dry_run: bool) -> None:
    # Given prod's call to pets:live granted and also denied by `block`
    policies = Policies(
        {
            LIVE: [
                invoke_statement("ok", LIVE.arn, f"{API.prefix}/*/GET/pets"),
                deny("block", LIVE, f"{API.prefix}/prod/*"),
            ]
        }
    )
    group = FunctionGroup(LIVE, (route(LIVE),))
    # When the group is repaired (or dry-run)
    result = repair(adapters(policies), group, PlanOptions(), dry_run=dry_run)
    # Then nothing is written, the result is unverified, its error and its finding name the statement
    assert policies.writes == []
    assert result.verified is False
    assert result.error is not None and "block" in result.error
    (finding,) = result.findings
    assert (finding.kind, finding.sid) == (FindingKind.MISSING_PERMISSION, "block")


def test_a_deny_left_after_other_repairs_is_an_error_naming_the_statement() -> None:
    # Given GET denied by `block-get`, and POST missing its grant
    policies = Policies({LIVE: [deny("block-get", LIVE, f"{API.prefix}/*/GET/*")]})
    group = FunctionGroup(LIVE, (route(LIVE), route(LIVE, method="POST")))
    # When the group is repaired
    result = repair(adapters(policies), group, PlanOptions(), dry_run=False)
    # Then POST is granted and the error names the Deny that still blocks GET
    assert [w[0] for w in policies.writes] == ["add"]
    assert result.error is not None and "block-get" in result.error
    assert f"{API.prefix}/prod/GET/pets" in result.error


def test_summary_of_a_repair_with_an_error_is_failed_even_in_a_dry_run() -> None:
    # Given a dry-run resolution whose only repair reports a denied call
    policies = Policies({LIVE: [deny("block", LIVE, f"{API.prefix}/*")]})
    group = FunctionGroup(LIVE, (route(LIVE),))
    result = repair(adapters(policies), group, PlanOptions(), dry_run=True)
    resolution = Resolution(RestApi("api1", "pets"), None, allowed=True, groups=(group,), dry_run=True)
    # When the results are summarized
    summary = summarize(resolution, [result])
    # Then the outcome is failed (exit 1), with the statement in the error
    assert summary.outcome is Outcome.FAILED
    assert summary.error is not None and "block" in summary.error


# --- planning options ---------------------------------------------------------------------------


def test_repair_options_follow_the_settings_and_remove_only_the_apis_own_grants() -> None:
    # Given settings with every planning choice changed from its default
    settings = Settings(scope=Scope.API, prune_stale=True, consolidate=True, dedupe_iac=True)
    resolution = Resolution(RestApi("api1", "pets"), None, allowed=True, existing_api_ids=frozenset({"api1"}))
    # When the options of one repair (and of a scan) are derived
    options = plan_options(settings, resolution.context, API)
    # Then each setting is carried, and only grants of this very API (ApiRef, not the bare id) go
    assert options == PlanOptions(Scope.API, True, True, frozenset({"api1"}), frozenset({API}), True)
    assert settings_options(settings) == PlanOptions(Scope.API, True, True, dedupe_iac=True)


# --- wire types ---------------------------------------------------------------------------------


def test_the_detectors_execution_input_reads_back_whole() -> None:
    """One type writes and reads the execution input: nothing the detector writes is dropped."""
    from permheal.detection import Incident
    from permheal.targets import Hint
    from permheal.workflow.state import ExecutionInput

    # Given an incident as the detector builds it
    incident = Incident(
        "a1b2c3", "prod", 60_000, "API-Gateway-Execution-Logs_a1b2c3/prod", 7, 61_000, (Hint(),)
    )
    # When its execution input is written and read back
    event = incident.execution_input()
    request = ExecutionInput.from_event(event)
    # Then every key is carried, and writing it again gives the same input
    assert (request.api, request.stage, request.source, request.failures) == ("a1b2c3", "prod", "logs", 7)
    assert request.log_group == incident.log_group and request.detected_at == event["detectedAt"]
    assert request.to_event() == event


def test_the_manual_execution_input_names_the_api_as_typed() -> None:
    from permheal.workflow.state import ExecutionInput

    event = ExecutionInput("petstore", None, dry_run=True).to_event()
    assert event == {"source": "manual", "apiName": "petstore", "dryRun": True, "hints": []}
    assert ExecutionInput.from_event(event) == ExecutionInput("petstore", None, dry_run=True)


def test_the_proactive_execution_input_round_trips_its_trigger_and_wait() -> None:
    from permheal.models import Trigger
    from permheal.proactive import Window, execution_input
    from permheal.workflow.state import ExecutionInput

    # Given the input the proactive trigger writes for a deploy event
    trigger = Trigger("apigateway.amazonaws.com", "CreateDeployment", "2026-12-05T08:00:17Z", "e-1")
    event = execution_input("abc123", trigger, Window.of(trigger, 30, 1))
    # When Resolve reads it and it is written again
    request = ExecutionInput.from_event(event)
    # Then the trigger and the wait survive, and nothing is added or lost
    assert (request.api, request.by_id, request.source) == ("abc123", True, "cloudtrail")
    assert (request.trigger, request.not_before) == (trigger, "2026-12-05T08:00:31Z")
    assert request.to_event() == event
    from permheal.errors import ParseError

    with pytest.raises(ParseError):
        ExecutionInput.from_event({**event, "trigger": {"eventSource": 1}})


def test_the_repair_step_reads_its_context_as_resolve_wrote_it() -> None:
    """The Map passes each repair the resolution's `context`: a RepairContext, not a faked Resolution."""
    from permheal.workflow.state import RepairContext

    group = FunctionGroup(LIVE, (route(LIVE),))
    resolution = Resolution(
        RestApi("api1", "pets"), "prod", True, (group,), existing_api_ids=frozenset({"api1"}), dry_run=True
    )
    context = RepairContext.from_dict(resolution.to_dict()["context"])
    assert context == replace(resolution.context, repair_budget=context.repair_budget)
    assert context.dry_run and context.existing_api_ids == frozenset({"api1"})
