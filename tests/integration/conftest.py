"""Fixtures of the deployed-workflow tests (test_workflow*.py): the petstore, on-call's inbox, retries."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from tests.integration.support import Petstore, build_petstore, subscribe_queue


@pytest.fixture
def petstore(world: Any) -> Petstore:
    return build_petstore(world)


@pytest.fixture
def inbox(world: Any, stack: Any) -> str:
    """An on-call SQS queue subscribed to the stack's topic."""
    return subscribe_queue(world, stack.topic_arn)


@pytest.fixture
def retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """moto's interpreter really sleeps between retries: record the waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    return waits
