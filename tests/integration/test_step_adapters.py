"""Each workflow step builds only the AWS clients it calls (Adapters are lazy)."""

from __future__ import annotations

from typing import Any

import pytest

from permheal.adapters import aws
from tests.integration.support import build_petstore


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services permheal builds a client for, in order (the cache is emptied first)."""
    services: list[str] = []
    real = aws._client

    def recording(service: str, *rest: Any) -> Any:
        services.append(service)
        return real(service, *rest)

    aws.forget_clients()
    monkeypatch.setattr(aws, "_client", recording)
    return services


def test_resolve_builds_no_lambda_client_and_repair_no_api_gateway_client(
    world: Any, lambda_context: Any, built: list[str]
) -> None:
    from permheal.handlers import repair, resolve

    # Given the petstore, allowlisted
    build_petstore(world)
    world.client("ssm").put_parameter(Name="/permheal/allowed-apis", Value="petstore", Type="StringList")
    # When the resolve step runs
    resolution = resolve.lambda_handler({"request": {"apiName": "petstore", "stage": "prod"}}, lambda_context)
    # Then it read API Gateway and the allowlist, and built no Lambda client
    assert resolution["allowed"] and resolution["groups"]
    assert "apigateway" in built and "lambda" not in built
    # When the repair step runs on the first function, given what the Map passes it
    built.clear()
    event = {"group": resolution["groups"][0], "resolution": resolution["context"]}
    result = repair.lambda_handler(event, lambda_context)
    # Then it repaired through Lambda alone
    assert result["verified"] and result["change"]["added"]
    assert "lambda" in built and "apigateway" not in built
