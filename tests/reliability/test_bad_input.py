"""Bad input through the real entry points: the detector handler, the deployed workflow, the CLI.

Malformed, oversized, non-UTF-8 and forged input must be rejected or ignored with a reason, never
crash the handler, never reach a function the API does not integrate, and never lose a statement.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from permheal.adapters.ledger import Ledger
from permheal_local.aws import awslogs_payload as gz  # short: the matrix below uses it on every row
from permheal_local.aws import wait_until_stopped
from permheal_local.builder import World, function_arn
from tests.integration.support import (
    FAILURE,
    build_petstore,
    dead_letters,
    log_payload,
    wait_for_executions,
)
from tests.reliability.conftest import Record
from tests.reliability.support import execute_api, lost_in, snapshot, stack_ledger_table

pytestmark = pytest.mark.reliability

FUNCTIONS = (("pets", "live"), ("pets-authorizer", None), ("evil", None))
OTHER_ACCOUNT = "999999999999"
T0 = 1_763_715_600_000
HOUR = 3_600_000  # each started case in its own incident window: the same one would be suppressed
LAMBDA_URI = "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/{}/invocations"
SURROGATE_URI = LAMBDA_URI.format("pets\ud800:live")


def b64(data: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(data).decode()}}


def data_message(log_group: str = "API-Gateway-Execution-Logs_abc123/prod", **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": log_group,
        "logStream": "0f0e0d0c0b0a09080706050403020100",
        "subscriptionFilters": ["permheal-permission-failures"],
        "logEvents": [{"id": "0", "timestamp": T0, "message": f"(r1) {FAILURE}"}],
    }
    document.update(fields)
    return document


def failing_request(request_id: str, function_text: str, path: str = "/pets/{petId}") -> list[str]:
    return [
        f"({request_id}) Starting execution for request: {request_id}",
        f"({request_id}) HTTP Method: GET, Resource Path: {path}",
        f"({request_id}) Sending request to {LAMBDA_URI.format(function_text)}",
        f"({request_id}) {FAILURE}",
        f"({request_id}) Method completed with status: 500",
    ]


def lines_payload(log_group: str, messages: list[str], hour: int = 0) -> dict[str, Any]:
    """A payload of `messages`, `hour` hours after T0 (another hour is another incident window)."""
    return log_payload(log_group, [(T0 + hour * HOUR + i, m) for i, m in enumerate(messages)])


# ----------------------------------------------------------------------- the detector's payloads

HTTP_FAILURE = (
    "The IAM role configured on the integration or API Gateway doesn’t have permissions to call the "
    "integration. Check the permissions and try again."
)
ASSUME = "API Gateway does not have permission to assume the provided role arn:aws:iam::123456789012:role/r"
DEAD = "dead-lettered"
IGNORED = "ignored"
STARTED = "started 1 execution"

PAYLOADS: dict[str, tuple[Callable[[], Any], str]] = {
    # not a subscription event at all
    "payload: a JSON list": (lambda: [], DEAD),
    "payload: a string": (lambda: "awslogs", DEAD),
    "payload: null": (lambda: None, DEAD),
    "payload: empty object": (lambda: {}, DEAD),
    'payload: "awslogs" not an object': (lambda: {"awslogs": "data"}, DEAD),
    'payload: no "data"': (lambda: {"awslogs": {}}, DEAD),
    'payload: "data" a number': (lambda: {"awslogs": {"data": 12}}, DEAD),
    # encoding layers
    "payload: data not base64": (lambda: {"awslogs": {"data": "%%% not base64 %%%"}}, DEAD),
    "payload: base64 of plain text": (lambda: b64(b"hello, not gzip"), DEAD),
    "payload: truncated gzip": (lambda: b64(gzip.compress(json.dumps(data_message()).encode())[:40]), DEAD),
    "payload: gzip of non-JSON": (lambda: b64(gzip.compress(b"{not json")), DEAD),
    "payload: gzip of non-UTF-8 bytes": (lambda: b64(gzip.compress(b'{"logGroup": "\xff\xfe\xfa"}')), DEAD),
    "payload: gzip of Latin-1 text": (
        lambda: b64(gzip.compress(json.dumps(data_message()).encode() + b"\xe9")),
        DEAD,
    ),
    "payload: JSON nested 100000 deep": (lambda: b64(gzip.compress(b"[" * 100_000 + b"]" * 100_000)), DEAD),
    "payload: oversized junk (300 KB, undecodable)": (lambda: {"awslogs": {"data": "A" * 300_001}}, DEAD),
    # the document's shape
    "payload: a JSON list inside": (lambda: gz([data_message()]), DEAD),
    "payload: no logEvents": (
        lambda: gz({k: v for k, v in data_message().items() if k != "logEvents"}),
        DEAD,
    ),
    "payload: logEvents not a list": (lambda: gz(data_message(logEvents="many")), DEAD),
    "payload: event without message": (
        lambda: gz(data_message(logEvents=[{"id": "0", "timestamp": T0}])),
        DEAD,
    ),
    "payload: timestamp not a number": (
        lambda: gz(data_message(logEvents=[{"id": "0", "timestamp": "noon", "message": FAILURE}])),
        DEAD,
    ),
    "payload: unknown messageType": (lambda: gz(data_message(messageType="SURPRISE")), DEAD),
    "payload: CONTROL_MESSAGE": (
        lambda: gz(data_message(messageType="CONTROL_MESSAGE", logEvents=[])),
        IGNORED,
    ),
    "payload: no failure line": (
        lambda: gz(
            data_message(logEvents=[{"id": "0", "timestamp": T0, "message": "(r1) Method completed"}])
        ),
        IGNORED,
    ),
    # log groups that are not API Gateway execution log groups, odd API ids and stages
    "log group: a Lambda log group": (lambda: gz(data_message("/aws/lambda/pets")), DEAD),
    "log group: no stage": (lambda: gz(data_message("API-Gateway-Execution-Logs_abc123")), DEAD),
    "log group: empty stage": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_abc123/")),
        DEAD,
    ),
    "log group: path traversal": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_../prod")),
        DEAD,
    ),
    "log group: nested stage": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_abc123/prod/x")),
        DEAD,
    ),
    "log group: full-width API id": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_ａｂｃ/prod")),
        DEAD,
    ),
    "log group: API id of 65 characters": (
        lambda: gz(data_message(f"API-Gateway-Execution-Logs_{'a' * 65}/p")),
        DEAD,
    ),
    "log group: stage $default": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_abc123/$default")),
        DEAD,
    ),
    "log group: stage with a newline": (
        lambda: gz(data_message("API-Gateway-Execution-Logs_abc123/prod\n")),
        DEAD,
    ),
    "log group: 64-char API id, 128-char stage": (
        lambda: gz(data_message(f"API-Gateway-Execution-Logs_{'a' * 64}/{'s' * 128}")),
        STARTED,
    ),
    # HTTP API access logs (any group that is not an execution log group)
    "access log: JSON failure line": (
        lambda: gz(
            data_message(
                "/access/http-api",
                logEvents=[
                    {"id": "0", "timestamp": T0 + 3 * HOUR, "message": json.dumps({"e": HTTP_FAILURE})}
                ],
            )
        ),
        STARTED,
    ),
    "access log: assume-role line only": (
        lambda: gz(
            data_message("/access/http-api", logEvents=[{"id": "0", "timestamp": T0, "message": ASSUME}])
        ),
        IGNORED,
    ),
    "access log: failure phrase cut in half": (
        lambda: gz(
            data_message(
                "/access/http-api", logEvents=[{"id": "0", "timestamp": T0, "message": HTTP_FAILURE[:60]}]
            )
        ),
        DEAD,
    ),
    "access log: 1 MB JSON line with the failure": (
        lambda: gz(
            data_message(
                "/access/http-api",
                logEvents=[
                    {
                        "id": "0",
                        "timestamp": T0 + 4 * HOUR,
                        "message": json.dumps({"e": HTTP_FAILURE, "pad": "x" * 1_000_000}),
                    }
                ],
            )
        ),
        STARTED,
    ),
    "access log: JSON nested 100000 deep with the failure": (
        lambda: gz(
            data_message(
                "/access/http-api",
                logEvents=[
                    {
                        "id": "0",
                        "timestamp": T0 + 5 * HOUR,
                        "message": "[" * 100_000 + HTTP_FAILURE + "]" * 100_000,
                    }
                ],
            )
        ),
        STARTED,
    ),
    # oversized and non-UTF-8 content in a well-formed payload
    "message: 1 MB failure line": (
        lambda: gz(
            data_message(
                logEvents=[{"id": "0", "timestamp": T0, "message": f"(r1) {FAILURE} " + "x" * 1_000_000}]
            )
        ),
        STARTED,
    ),
    "message: 10000 failing requests": (
        lambda: gz(
            data_message(
                logEvents=[
                    {"id": str(i), "timestamp": T0 + HOUR + i, "message": f"(r{i}) {FAILURE}"}
                    for i in range(10_000)
                ]
            )
        ),
        STARTED,
    ),
    "message: lone surrogates and NULs in lines": (
        lambda: gz(
            data_message(
                logEvents=[
                    {"id": str(i), "timestamp": T0 + 2 * HOUR + i, "message": m}
                    for i, m in enumerate(
                        [
                            "(r1) HTTP Method: G\udcffET, Resource Path: /pets/\udcff\x00",
                            f"(r1) Sending request to {SURROGATE_URI}",
                            f"(r1) {FAILURE}",
                        ]
                    )
                ]
            )
        ),
        STARTED,
    ),
}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_every_malformed_or_odd_subscription_payload_is_dead_lettered_ignored_or_started_once(
    world: World, detector_env: SimpleNamespace, lambda_context: Any, record: Record, name: str
) -> None:
    from permheal.handlers.detect import lambda_handler

    sfn = world.client("stepfunctions")
    make, expected = PAYLOADS[name]
    # Given one payload of the matrix
    event = make()

    # When the detector handler receives it
    try:
        response = lambda_handler(event, lambda_context)
    except Exception as exc:  # the handler must never crash on input
        response = {"crashed": f"{type(exc).__name__}: {exc}"[:200]}
    started = len(sfn.list_executions(stateMachineArn=detector_env.machine)["executions"])
    kept = dead_letters(world, detector_env.queue)

    # Then it is kept for a person with the reason, ignored, or starts exactly one execution
    outcome = (
        f"crashed: {response['crashed']}"
        if "crashed" in response
        else DEAD
        if kept and started == 0 and response.get("rejected")
        else STARTED
        if started == 1 and not kept
        else IGNORED
        if started == 0 and not kept
        else f"started {started}, dead-lettered {len(kept)}"
    )
    record(f"bad input: detector, {name}", outcome, 0)
    assert outcome == expected, response
    if kept:
        assert kept[0]["reason"] == response.get("rejected")
        assert len(json.dumps(kept[0])) < 256_000  # an SQS message must fit


# --------------------------------------------------------------- forged lines, deployed workflow


def test_forged_and_odd_log_lines_never_reach_a_function_the_api_does_not_integrate(
    world: World, stack: Any, record: Record
) -> None:
    # Given the petstore (allowlisted), an "evil" function it does not integrate, and an API "orders"
    # outside the allowlist
    petstore = build_petstore(world)
    world.function("evil")
    orders = world.rest_api("orders")
    baseline = snapshot(*FUNCTIONS)
    group = f"API-Gateway-Execution-Logs_{petstore.api_id}/prod"
    payloads = {
        "forged: line names a function the API does not integrate": lines_payload(
            group, failing_request("r1", function_arn("evil"))
        ),
        "forged: line names the function in another account": lines_payload(
            group,
            failing_request("r2", f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:pets:live"),
            hour=1,
        ),
        "forged: execution log group of an API outside the allowlist": lines_payload(
            f"API-Gateway-Execution-Logs_{orders}/prod", failing_request("r3", function_arn("pets", "live"))
        ),
        "odd: execution log group of an API id that does not exist": lines_payload(
            "API-Gateway-Execution-Logs_zz9zz9zz9z/prod", failing_request("r4", function_arn("pets", "live"))
        ),
    }
    sfn = world.client("stepfunctions")
    outcomes: dict[str, Any] = {}
    for name, payload in payloads.items():
        # When each reaches the deployed detector, and the workflow it starts finishes
        response = world.client("lambda").invoke(
            FunctionName=stack.functions["DetectorFunction"], Payload=json.dumps(payload)
        )
        assert "FunctionError" not in response, response["Payload"].read()
        (arn,) = json.loads(response["Payload"].read())["started"]
        execution = wait_until_stopped(sfn, arn)
        result = json.loads(execution.get("output") or execution.get("cause") or "{}")
        outcomes[name] = (execution["status"], result.get("outcome"), result)
        lost = lost_in(baseline, snapshot(*FUNCTIONS), {("pets", "live"): [petstore.method_arn()]})
        record(f"bad input: {name}", f"{result.get('outcome')}", lost)
        assert lost == 0
    wait_for_executions(sfn, stack.state_machine_arn, count=len(payloads))

    # Then only the petstore's own control-plane targets were granted, in this account
    after = snapshot(*FUNCTIONS)
    assert after[("evil", None)] == []
    granted = [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in after[("pets", "live")]]
    assert granted == [execute_api(petstore.api_id, "*/GET/pets/*")]
    ledger = Ledger(stack_ledger_table(world)).history()
    assert all(e.function_key.split(":")[4] == "123456789012" for e in ledger if e.function_key != "-")
    assert "evil" not in json.dumps([e.to_dict() for e in ledger])
    # And the other API was refused, the missing one failed, both changing nothing
    assert outcomes["forged: execution log group of an API outside the allowlist"][:2] == (
        "SUCCEEDED",
        "refused",
    )
    missing = outcomes["odd: execution log group of an API id that does not exist"]
    assert missing[:2] == ("FAILED", "failed")
    assert "zz9zz9zz9z" in missing[2]["error"]


# ------------------------------------------------------------------ workflow execution inputs

INPUTS: dict[str, Any] = {
    "a JSON list": [],
    "a string": "petstore",
    "a number": 42,
    "null": None,
    "empty object": {},
    "apiId a number": {"apiId": 5},
    "apiId empty": {"apiId": ""},
    "apiId blank": {"apiId": "   "},
    "apiName 2000 characters": {"apiName": "p" * 2000},
    "apiId with path characters": {"apiId": "../../restapis"},
    "apiName with a NUL": {"apiName": "petstore\u0000"},
    "stage a number": {"apiName": "petstore", "stage": 7},
    "stage empty": {"apiName": "petstore", "stage": ""},
    "stage 200 characters": {"apiName": "petstore", "stage": "s" * 200},
    "stage that does not exist": {"apiName": "petstore", "stage": "nope"},
    "hints a string": {"apiName": "petstore", "hints": "GET /pets"},
    "hints of numbers": {"apiName": "petstore", "hints": [1, 2]},
    "dryRun a string": {"apiName": "petstore", "dryRun": "false"},
}


def test_malformed_workflow_inputs_fail_the_execution_with_a_reason_and_change_nothing(
    world: World, stack: Any, record: Record
) -> None:
    # Given the petstore, failing on permissions, behind the deployed workflow
    petstore = build_petstore(world)
    baseline = snapshot(*FUNCTIONS[:2])
    sfn = world.client("stepfunctions")

    wrong = []
    for index, (name, value) in enumerate(INPUTS.items()):
        # When an execution is started with each malformed input (one at a time: moto's interpreter
        # creates a boto3 client per task, which is not thread-safe under load)
        arn = sfn.start_execution(
            stateMachineArn=stack.state_machine_arn, name=f"bad-input-{index}", input=json.dumps(value)
        )["executionArn"]
        execution = wait_until_stopped(sfn, arn)
        try:
            result = json.loads(execution.get("cause") or execution.get("output") or "{}")
        except ValueError:
            result = {"error": execution.get("cause")}
        outcome = f"{execution['status']} {execution.get('error', '')} {result.get('outcome')}".strip()
        record(f"bad input: workflow input, {name}", outcome, 0)
        # Then each fails with the reason in the result, not silently, and not by crashing
        if (execution["status"], execution.get("error"), result.get("outcome")) != (
            "FAILED",
            "RemediationFailed",
            "failed",
        ) or not result.get("error"):
            wrong.append(f"{name}: {outcome} {result.get('error')}")
    assert wrong == []
    # And nothing changed
    after = snapshot(*FUNCTIONS[:2])
    assert after == baseline
    assert lost_in(baseline, after, {("pets", "live"): [petstore.method_arn()]}) == 0


# --------------------------------------------------------------------------------------- CLI


UNKNOWN_ARGUMENTS = {
    "no command": (),
    "unknown flag": ("--bogus",),
    "unknown command": ("frobnicate",),
    "scan --bogus": ("scan", "--bogus"),
    "scan --format xml": ("scan", "--format", "xml"),
    "remediate without --api": ("remediate",),
    "remediate --api without value": ("remediate", "--api"),
    "remediate --dry-run=yes": ("remediate", "--api", "petstore", "--dry-run=yes"),
    "remediate extra positional": ("remediate", "--api", "petstore", "now"),
    "history --since": ("history", "--since", "1d"),
    "history --api without value": ("history", "--api"),
    "revert without id": ("revert",),
    "revert two ids": ("revert", "a", "b"),
    "clear-flap without function": ("clear-flap",),
    "demo --bogus": ("demo", "--bogus"),
    "local-aws --port http": ("local-aws", "--port", "http"),
}


@pytest.mark.parametrize("argv", list(UNKNOWN_ARGUMENTS.values()), ids=list(UNKNOWN_ARGUMENTS))
def test_unknown_cli_arguments_exit_2_with_usage_and_do_nothing(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], record: Record
) -> None:
    from permheal.cli import main

    # When the CLI is run with arguments it does not know
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    name = next(k for k, v in UNKNOWN_ARGUMENTS.items() if v == argv)
    record(f"bad input: CLI {name}", f"exit {exited.value.code}", 0)

    # Then it exits 2 with the usage on stderr, before touching anything
    assert exited.value.code == 2
    assert out == ""
    assert "usage: permheal" in err


BAD_SETTINGS = {
    "PERMHEAL_MODE=bogus": ({"PERMHEAL_MODE": "bogus"}, ("scan",), "PERMHEAL_MODE"),
    "PERMHEAL_SCOPE=everything": ({"PERMHEAL_SCOPE": "everything"}, ("scan",), "PERMHEAL_SCOPE"),
    "PERMHEAL_FLAP_THRESHOLD=0": ({"PERMHEAL_FLAP_THRESHOLD": "0"}, ("scan",), "PERMHEAL_FLAP_THRESHOLD"),
    "PERMHEAL_FLAP_WINDOW_HOURS=a day": (
        {"PERMHEAL_FLAP_WINDOW_HOURS": "a day"},
        ("remediate", "--api", "x", "--local"),
        "PERMHEAL_FLAP_WINDOW_HOURS",
    ),
    "clear-flap of a non-ARN": ({}, ("clear-flap", "not a function!"), "not a Lambda function"),
}


@pytest.mark.parametrize("name", list(BAD_SETTINGS))
def test_bad_settings_and_arguments_values_exit_2_naming_the_problem(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], record: Record
) -> None:
    from permheal.cli import main

    # Given a bad setting or argument value
    env, argv, named = BAD_SETTINGS[name]
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    # When the CLI runs
    code = main(list(argv))
    err = capsys.readouterr().err
    record(f"bad input: CLI {name}", f"exit {code}", 0)

    # Then it stops with exit 2 and a message naming what is wrong
    assert code == 2
    assert named in err
