"""boto3 client factory: one retry policy for every AWS call permheal makes.

botocore's `standard` mode retries throttling (`TooManyRequestsException`, `ThrottlingException`,
...) and transient 5xx with exponential backoff and jitter, so adapters never hand-roll that.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

RETRY_ATTEMPTS = 6


@cache
def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": RETRY_ATTEMPTS},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="permheal/0.1",
    )


def client(service: str, region: str | None = None) -> Any:
    """A client for `service` honouring AWS_REGION / AWS_PROFILE / AWS_ENDPOINT_URL.

    Clients are reused for the life of the process (a warm Lambda saves ~50 ms per client); the
    cache key includes the endpoint so pointing AWS_ENDPOINT_URL elsewhere gets a new client.
    """
    return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_PROFILE"))


@cache
def _client(service: str, region: str | None, endpoint: str | None, profile: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region, config=_config())  # type: ignore[call-overload]


def forget_clients() -> None:
    """Drop cached clients (a new local AWS or test double starts from fresh ones)."""
    _client.cache_clear()


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError, '' for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))
