"""`permheal local-aws`: the Local AWS over HTTP, used by the real CLI through AWS_ENDPOINT_URL.

The server runs in this process and shares moto's backends with it, so one server runs at a time.
Each test starts its own (the healing test changes the seeded API the scan test reads), so any
test passes alone and in any order.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterator

import pytest

from permheal.errors import ConfigError
from permheal_local.server import LocalAwsServer, start_local_aws

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No application metrics to publish")]


@pytest.fixture
def server() -> Iterator[LocalAwsServer]:
    """A fresh Local AWS with the broken petstore seeded, stopped after the test."""
    handle = start_local_aws(0, deliver_every=None)
    yield handle
    handle.stop()


def test_scan_through_the_endpoint_finds_the_seeded_broken_api(
    server: LocalAwsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given
    from permheal.cli import main

    assert server.petstore is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    out = io.StringIO()

    # When
    code = main(["scan", "--format", "json"], out)

    # Then
    missing = [f for f in json.loads(out.getvalue())["findings"] if f["kind"] == "missing_permission"]
    assert code == 1
    assert {(f["method"], f["resourcePath"], f["authorizerId"]) for f in missing} == {
        ("ANY", "/{proxy+}", None),
        ("GET", "/pets/{petId}", None),
        (None, None, server.petstore.authorizer_id),
    }
    assert {f["apiId"] for f in missing} == {server.petstore.api_id}


def test_failures_logged_to_the_server_reach_the_detector_which_heals_the_api(server: LocalAwsServer) -> None:
    # Given a failing request whose logs are written through the endpoint
    assert server.petstore is not None
    simulator = server.local.simulator()
    failed = simulator.request(server.petstore.api_id, "prod", "POST", "/orders")

    # When
    deliveries = server.local.flush_logs()

    # Then
    (delivery,) = deliveries
    assert failed.status == 500
    assert delivery.error is None and delivery.result["incidents"] == 1
    assert server.local.settle(timeout=60)
    sfn = server.local.client("stepfunctions")
    assert sfn.describe_execution(executionArn=delivery.result["started"][0])["status"] == "SUCCEEDED"
    assert simulator.request(server.petstore.api_id, "prod", "POST", "/orders").status == 200


def test_a_busy_port_is_a_configuration_error() -> None:
    # Given a port something else listens on
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()

        # When / Then
        with pytest.raises(ConfigError, match="cannot listen"):
            start_local_aws(busy.getsockname()[1])


def test_stop_closes_the_port_and_restores_the_environment() -> None:
    before = os.environ.get("MOTO_PORT")
    handle = start_local_aws(0, seed=False, deliver_every=0.2)

    handle.stop()

    assert os.environ.get("MOTO_PORT") == before
    assert handle.delivery_errors == []
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", handle.port), timeout=2):
        pass


def test_the_server_throttles_through_the_aws_model_when_given_one() -> None:
    # Given a server started with a quota-only model (fake clock: nothing sleeps)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from permheal_local.aws_model import AwsModel, FakeClock
    from permheal_local.server import FAKE_CREDENTIALS

    model = AwsModel(clock=FakeClock(), latency=False, cold_starts=False)
    handle = start_local_aws(0, deliver_every=None, model=model)
    try:
        session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        apigw = session.client(
            "apigateway", endpoint_url=handle.endpoint, config=Config(retries={"total_max_attempts": 1})
        )

        # When a client over HTTP spends the account's API Gateway management quota (burst 40)
        for _ in range(40):
            apigw.get_rest_apis()
        with pytest.raises(ClientError) as raised:
            apigw.get_rest_apis()
    finally:
        handle.stop()

    # Then the 41st call is answered 429 TooManyRequestsException, and stopping removed the model
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert model.stats()["throttles"] == {"apigateway:GetRestApis": 1}
    from permheal_local import aws_model

    assert aws_model.current() is None
