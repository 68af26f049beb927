"""Fixtures of the reliability suite: `record` rows for the report, fault injection, a ledger table.

The option `--reliability-report` is registered in tests/conftest.py (options must live in an
initial conftest); the plugin that prints the table is tests/reliability/report.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from permheal_local.builder import World
from tests.reliability.report import PROPERTY
from tests.reliability.support import Faults, create_ledger_table, install_faults

Record = Callable[..., None]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """`record(case, outcome, lost, runs=1)`: one row of the reliability table."""

    def add(case: str, outcome: str, lost: int, runs: int = 1) -> None:
        row = {"case": case, "outcome": outcome, "runs": runs, "lost": lost}
        request.node.user_properties.append((PROPERTY, row))

    return add


@pytest.fixture
def faults(aws: None, monkeypatch: pytest.MonkeyPatch) -> Faults:
    """Fault injection on every AWS call permheal makes (botocore backoff made instant)."""
    return install_faults(monkeypatch)


@pytest.fixture
def ledger(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ledger table as template.yaml declares it, named by PERMHEAL_LEDGER_TABLE for the CLI."""
    table = create_ledger_table(world)
    monkeypatch.setenv("PERMHEAL_LEDGER_TABLE", table)
    return table


@pytest.fixture
def instant_sfn_retries(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """moto's Step Functions interpreter really sleeps between Retry attempts: record the waits instead."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Guard: every test here must carry the reliability marker (module-level `pytestmark`)."""
    for item in items:
        if "tests/reliability/" in item.nodeid and item.get_closest_marker("reliability") is None:
            raise pytest.UsageError(f"{item.nodeid} lacks pytest.mark.reliability")


@pytest.fixture
def detector_env(world: World, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The detector handler's environment: a one-state workflow and its dead-letter queue."""
    sfn, sqs = world.client("stepfunctions"), world.client("sqs")
    machine = sfn.create_state_machine(
        name="noop",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn=world.execution_role(),
    )["stateMachineArn"]
    queue = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    monkeypatch.setenv("PERMHEAL_STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("PERMHEAL_DEAD_LETTER_QUEUE_URL", queue)
    return SimpleNamespace(machine=machine, queue=queue, sfn=sfn, sqs=sqs)
