"""The two orchestrators cannot drift: the state machine (real ASL, real handlers) and the in-process
`remediate --local` give the same result and leave the same policies, scenario by scenario.

Each scenario runs through the deployed workflow first; its policy changes are then undone (grants
it added removed, statements it removed granted again) and the in-process run starts from the same
state. Removed statements' bodies are the one difference by design: the workflow's copy leaves them
to the audit ledger, `remediate --local` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from permheal.adapters.ports import Adapters
from permheal.adapters.workflow import Workflow
from permheal.config import Settings
from permheal.workflow.in_process import remediate
from permheal.workflow.state import ExecutionInput
from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from tests.integration.support import all_statements, build_petstore

FUNCTIONS = (("pets", "live"), ("pets", None), ("pets-authorizer", None), ("ghost", None))


def missing_grants(world: World) -> None:
    """The petstore: neither the method nor the authorizer may invoke its function."""
    build_petstore(world)


def console_duplicates(world: World) -> None:
    """The method's grant added three times under different Sids."""
    api = build_petstore(world).api_id
    for sid in ("console-1", "console-2", "console-3"):
        world.grant(
            "pets", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*/GET/pets/*", sid=sid, qualifier="live"
        )


def missing_function(world: World) -> None:
    """A method whose integration names a function that does not exist (the run fails)."""
    api = build_petstore(world).api_id
    world.method(api, "/ghosts", "GET", function_arn("ghost"))
    world.deploy(api, "prod", {"alias": "live"})


def not_allowlisted(world: World) -> None:
    build_petstore(world, name="elsewhere")


SCENARIOS: dict[str, tuple[Callable[[World], None], str, bool]] = {
    "missing grants": (missing_grants, "petstore", False),
    "missing grants, dry run": (missing_grants, "petstore", True),
    "console duplicates": (console_duplicates, "petstore", False),
    "missing function": (missing_function, "petstore", False),
    "not allowlisted": (not_allowlisted, "elsewhere", False),
}


def policies(world: World) -> dict[str, list[dict[str, Any]]]:
    return all_statements(world, *[(f, q) for f, q in FUNCTIONS if f != "ghost"])


def undo(world: World, result: dict[str, Any]) -> None:
    """Put every policy back as it was before `result`'s changes."""
    for change in result["changes"]:
        name, qualifier = change["functionArn"].rsplit(":", 1)[-1], change["qualifier"]
        for added in change["added"]:
            world.client("lambda").remove_permission(
                FunctionName=name, StatementId=added["sid"], **({"Qualifier": qualifier} if qualifier else {})
            )
        for removed in change["removed"]:
            world.grant(name, removed["sourceArn"], sid=removed["sid"], qualifier=qualifier)


def workflow_settings(world: World, stack: Any) -> Settings:
    """The settings the deployed repair function runs with (its environment from the template)."""
    configuration = world.client("lambda").get_function_configuration(
        FunctionName=stack.functions["RepairPolicyFunction"]
    )
    return Settings.from_env(configuration["Environment"]["Variables"])


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_state_machine_and_the_in_process_run_agree(world: World, stack: Any, scenario: str) -> None:
    build, api, dry_run = SCENARIOS[scenario]
    # Given the scenario, and the settings the deployed functions run with
    build(world)
    before = policies(world)
    settings = workflow_settings(world, stack)
    request = ExecutionInput(api, "prod", dry_run=dry_run)
    # When the deployed state machine remediates it
    workflow = Workflow(stack.state_machine_arn)
    through_asl = workflow.wait(workflow.start(request.to_event()), sleep=lambda _: None).to_dict()
    after_asl = policies(world)
    # And, from the same policies again, the in-process orchestrator does
    if after_asl != before:  # a dry run lists changes it did not make
        undo(world, through_asl)
    assert policies(world) == before
    local = remediate(Adapters.default(settings.ledger_table), request, settings)
    # Then both report the same result and leave the same policies (removed statements' bodies are
    # the one difference by design: the workflow's copy leaves them to the audit ledger)
    in_process = local.to_dict(statements=False)
    assert in_process == through_asl, json.dumps({"in_process": in_process, "asl": through_asl}, indent=1)
    assert policies(world) == after_asl
    # And the scenario exercised what it names
    expected = {
        "missing grants": "repaired",
        "missing grants, dry run": "dry_run",
        "console duplicates": "repaired",
        "missing function": "failed",
        "not allowlisted": "refused",
    }
    assert through_asl["outcome"] == expected[scenario]
