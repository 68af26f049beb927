"""Shared fixtures: fake credentials, the faithful local AWS, a builder for APIs and functions, the CLI."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# Fake credentials keep every test away from real AWS; `PERMHEAL_E2E=1` (tests/e2e) opts out.
E2E = os.environ.get("PERMHEAL_E2E") == "1"
if not E2E:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SECURITY_TOKEN="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
    )
os.environ.update(
    POWERTOOLS_SERVICE_NAME="permheal",
    POWERTOOLS_METRICS_NAMESPACE="permheal",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
)


# CI runs the same hypothesis examples every time (a red build must be reproducible); local runs
# keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def _refuse_real_aws(request: Any, **_: Any) -> None:
    """Safety net: a call that moto does not intercept must fail here, never reach AWS."""
    from moto.core.models import botocore_stubber

    if not botocore_stubber.enabled and ".amazonaws.com" in str(getattr(request, "url", "")):
        raise RuntimeError(f"a test tried to call real AWS: {request.url}")


if not E2E:
    import botocore.handlers

    botocore.handlers.BUILTIN_HANDLERS.append(("before-send", _refuse_real_aws))

for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PERMHEAL_MODE", "PERMHEAL_SCOPE", "PERMHEAL_PRUNE_STALE"):
    if not E2E:
        os.environ.pop(_name, None)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in process, with Lambda policies made faithful to AWS."""
    from moto import mock_aws

    from permheal.adapters.aws import forget_clients
    from permheal_local import faithful_apigateway, faithful_apigatewayv2, faithful_lambda

    faithful_lambda.install()
    faithful_apigateway.install()
    faithful_apigatewayv2.install()
    forget_clients()
    with mock_aws(config={"lambda": {"use_docker": False}, "stepfunctions": {"execute_state_machine": True}}):
        yield


CLIENTS: dict[str, Any] = {}
"""The `world` fixtures' boto3 clients, kept across tests (each costs ~80 ms to make)."""


@pytest.fixture
def world(aws: None) -> Any:
    """An empty account for each test, through clients kept across tests.

    Safe because moto's stub is a botocore built-in handler of every client and each test's
    `mock_aws` starts from empty backends; the fixture's own objects (role, resources) stay per test.
    """
    from permheal_local.builder import World

    return World(clients=CLIENTS)


@pytest.fixture
def stack(world: Any) -> Any:
    """template.yaml deployed into moto with the real handlers behind every Lambda (allowlist: petstore)."""
    from permheal_local import lambda_runtime
    from permheal_local.stack import deploy

    lambda_runtime.install()
    try:
        yield deploy(world, {"AllowedApis": "petstore"})
    finally:
        lambda_runtime.uninstall()


@dataclass
class CliRun:
    code: int
    out: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli() -> Any:
    """Run `permheal ARGS...` in process and capture stdout."""
    from permheal.cli import main

    def run(*argv: str) -> CliRun:
        out = io.StringIO()
        return CliRun(main(list(argv), out), out.getvalue())

    return run


@pytest.fixture
def lambda_context() -> Any:
    @dataclass
    class LambdaContext:
        function_name: str = "permheal-test"
        memory_limit_in_mb: int = 256
        invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:permheal-test"
        aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    return LambdaContext()


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


# ------------------------------------------------------------------ reliability report (make reliability)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-report",
        action="store_true",
        default=False,
        help="print the fault / bad-input table of tests/reliability and write reliability-report.json",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--reliability-report"):
        from tests.reliability.report import ReliabilityReport

        config.pluginmanager.register(ReliabilityReport(config), "reliability-report")
