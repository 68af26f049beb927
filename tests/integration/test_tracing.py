"""TraceAwsCalls: what a handler sends to X-Ray, read off the wire as Lambda's X-Ray daemon receives it.

Each case runs the detector in a fresh Lambda-like process (LAMBDA_TASK_ROOT, a sampled trace
header, tracing not disabled) against moto, with the X-Ray daemon address pointed at a UDP socket
this test listens on: an undecodable payload makes exactly one AWS call (SQS SendMessage to the
dead-letter queue).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_SEGMENT = "53995c3f42cd8ad8"
"""The invocation's segment, which Lambda records (the trace header's Parent)."""

_DETECTOR_CALL = """
import json, os, sys
from moto import mock_aws
with mock_aws():
    import boto3
    url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="dlq")["QueueUrl"]
    os.environ["PERMHEAL_DEAD_LETTER_QUEUE_URL"] = url
    from permheal.handlers.detect import lambda_handler
    class Context:
        function_name = "permheal-detector"; memory_limit_in_mb = 256; aws_request_id = "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:permheal-detector"
    answer = lambda_handler({"awslogs": {"data": "not base64 gzip"}}, Context())
    sent = boto3.client("sqs", region_name="us-east-1").receive_message(QueueUrl=url)["Messages"]
print(json.dumps({"answer": answer, "dead_letters": len(sent),
                  "xray_sdk": sorted(m for m in sys.modules if m.split(".")[0] == "aws_xray_sdk")}))
"""


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    """A UDP socket standing in for the X-Ray daemon Lambda runs beside the function."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        yield sock


def run_detector(daemon: socket.socket, trace_aws_calls: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The detector's answer and what it sent to the daemon (each datagram: a header line, a document)."""
    host, port = daemon.getsockname()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PERMHEAL_", "AWS_XRAY"))}
    env.update(
        PYTHONPATH=f"{ROOT / 'functions'}{os.pathsep}{ROOT}",
        LAMBDA_TASK_ROOT="/var/task",
        AWS_LAMBDA_FUNCTION_NAME="permheal-detector",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_XRAY_DAEMON_ADDRESS=f"{host}:{port}",
        _X_AMZN_TRACE_ID=f"Root={TRACE_ID};Parent={LAMBDA_SEGMENT};Sampled=1",
        POWERTOOLS_SERVICE_NAME="permheal",
        POWERTOOLS_METRICS_NAMESPACE="Permheal",
        PERMHEAL_STATE_MACHINE_ARN="arn:aws:states:us-east-1:123456789012:stateMachine:permheal",
        PERMHEAL_DEAD_LETTER_QUEUE_URL="set by the probe",
        PERMHEAL_TRACE_AWS_CALLS=trace_aws_calls,
    )
    done = subprocess.run(
        [sys.executable, "-c", _DETECTOR_CALL], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    documents = []
    try:
        while True:
            header, _, body = daemon.recv(65536).decode().partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            documents.append(json.loads(body))
    except TimeoutError:
        pass
    return json.loads(done.stdout.strip().splitlines()[-1]), documents


def test_with_trace_aws_calls_the_handler_and_each_aws_call_get_a_subsegment(daemon: socket.socket) -> None:
    # Given TraceAwsCalls=true and a payload the detector sends to its dead-letter queue
    # When the detector runs in a sampled Lambda invocation
    probe, documents = run_detector(daemon, "true")
    # Then it answered as usual, and X-Ray received the handler's subsegment and the SendMessage call's,
    # in Lambda's trace, the call nested in the handler
    assert probe["dead_letters"] == 1 and probe["answer"]["started"] == []
    (handler,) = [d for d in documents if d["name"] == "## lambda_handler"]
    calls = [d for d in documents if d.get("parent_id") == handler["id"]]
    assert handler["trace_id"] == TRACE_ID and handler["parent_id"] == LAMBDA_SEGMENT
    assert handler["annotations"] == {"ColdStart": True, "Service": "permheal"}
    assert [(c["namespace"], c["name"], c["aws"]["operation"]) for c in calls] == [
        ("aws", "sqs", "SendMessage")
    ]
    assert calls[0]["aws"]["queue_url"].endswith("/dlq") and calls[0]["trace_id"] == TRACE_ID
    assert "metadata" not in handler  # the response stays out of traces (capture_response=False)


def test_without_trace_aws_calls_the_handler_sends_nothing_and_loads_no_xray_sdk(
    daemon: socket.socket,
) -> None:
    # Given TraceAwsCalls=false (the default)
    # When the same invocation runs
    probe, documents = run_detector(daemon, "false")
    # Then it answered the same, sent nothing to the daemon (Lambda's own segment is all), and never
    # imported the X-Ray SDK
    assert probe["dead_letters"] == 1 and probe["answer"]["started"] == []
    assert documents == []
    assert probe["xray_sdk"] == []
