"""Fault injection: throttling and 5xx on every AWS call permheal makes, lost races, crashes, SNS and SSM.

Every case records its outcome and the statements lost, which must be 0: a fault may stop a
repair, never take away a grant that allowed a call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.adapters.ledger import Ledger
from permheal.arns import FunctionRef
from permheal.planner import permheal_sid
from permheal.policy import Policy, invoke_statement
from permheal.workflow import repair as repair_step
from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from tests.conftest import load_event
from tests.integration.support import Petstore, build_petstore, retarget, run
from tests.reliability.conftest import Record
from tests.reliability.support import (
    LANDED,
    MIXED,
    Faults,
    Snapshot,
    by_sid,
    execute_api,
    lost_in,
    snapshot,
    stack_ledger_table,
)

pytestmark = pytest.mark.reliability

APIGW = "apigateway.amazonaws.com"
FUNCTIONS = (("pets", "live"), ("pets-authorizer", None))
LIVE_ARN = function_arn("pets", "live")
AUTHORIZER_ARN = function_arn("pets-authorizer")

# Every AWS operation `permheal remediate --local` makes, with the service botocore names it under.
REMEDIATE_OPERATIONS = {
    "GetRestApi": "apigateway",
    "GetRestApis": "apigateway",
    "GetStage": "apigateway",
    "GetStages": "apigateway",
    "GetResources": "apigateway",
    "GetAuthorizers": "apigateway",
    "GetApis": "apigatewayv2",
    "GetPolicy": "lambda",
    "GetFunctionConfiguration": "lambda",
    "AddPermission": "lambda",
    "RemovePermission": "lambda",
    "GetParameter": "ssm",
    "GetCallerIdentity": "sts",
    "PutItem": "dynamodb",
    "Query": "dynamodb",
}
WRITES = ("AddPermission", "RemovePermission", "PutItem")


# ----------------------------------------------------------------------------------- the scene


@dataclass(frozen=True)
class Scene:
    """The petstore with a console duplicate on pets:live, other writers' statements, and a bare authorizer.

    One repair removes the duplicate (RemovePermission) and grants the authorizer (AddPermission):
    every operation above is exercised.
    """

    petstore: Petstore
    baseline: Snapshot
    calls: dict[tuple[str, str | None], list[str]]
    expected: Snapshot


def build_scene(world: World) -> Scene:
    petstore = build_petstore(world)
    orders = world.rest_api("orders")
    world.allow("petstore")
    world.grant("pets", execute_api(petstore.api_id, "prod/GET/pets/*"), sid="console-a", qualifier="live")
    world.grant("pets", execute_api(petstore.api_id, "prod/GET/pets/*"), sid="console-b", qualifier="live")
    world.grant("pets", execute_api(orders, "*/GET/orders"), sid="orders-writer", qualifier="live")
    world.client("lambda").add_permission(
        FunctionName="pets",
        Qualifier="live",
        StatementId="nightly-rule",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/nightly",
    )
    baseline = snapshot(*FUNCTIONS)
    authorizer_grant = invoke_statement(
        permheal_sid(petstore.authorizer_arn(), None), AUTHORIZER_ARN, petstore.authorizer_arn()
    )
    expected = {
        ("pets", "live"): [s for s in baseline[("pets", "live")] if s["Sid"] != "console-b"],
        ("pets-authorizer", None): [authorizer_grant],
    }
    calls = {
        ("pets", "live"): [petstore.method_arn()],
        ("pets-authorizer", None): [petstore.authorizer_arn()],
    }
    return Scene(petstore, baseline, calls, expected)


def remediate(cli: Any, *flags: str) -> Any:
    return cli("remediate", "--api", "petstore", "--local", "--format", "json", *flags)


def stage_flags(operation: str) -> tuple[str, ...]:
    """GetStages is only called when no stage is named, GetStage only when one is."""
    return () if operation == "GetStages" else ("--stage", "prod")


def recorded_repairs(table: str, api_id: str) -> list[str]:
    return sorted(e.function_key for e in Ledger(table).history(api_id=api_id) if e.kind == "repair")


def case(kind: str, operation: str, how: str) -> str:
    service = {**REMEDIATE_OPERATIONS, "StartExecution": "states", "SendMessage": "sqs"}[operation]
    return f"fault: {kind} on {service}:{operation} ({how})"


# ----------------------------------------------------------------------------- transient faults


TRANSIENT = [(op, MIXED) for op in REMEDIATE_OPERATIONS] + [(op, LANDED) for op in WRITES]


@pytest.mark.parametrize(
    ("operation", "kind"),
    TRANSIENT,
    ids=[f"{o}-{'landed' if k == LANDED else 'mixed'}" for o, k in TRANSIENT],
)
def test_transient_fault_is_absorbed_and_the_api_is_repaired_as_without_it(
    world: World, ledger: str, faults: Faults, cli: Any, record: Record, operation: str, kind: str
) -> None:
    # Given the scene, and AWS answering the first attempts of every `operation` call with the fault
    scene = build_scene(world)
    attempts = 1 if kind == LANDED else 2  # the first attempt throttled, the second a 5xx
    faults.inject(operation, kind, attempts)

    # When the API is remediated
    result = remediate(cli, *stage_flags(operation))
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    record(case(kind, operation, f"first {attempts} attempt(s) of each call"), result.json["outcome"], lost)

    # Then the fault really happened, botocore's retries absorbed it, and the result is the fault-free one
    assert faults.injected[operation] >= attempts, faults.calls
    assert (result.code, result.json["outcome"]) == (0, "repaired")
    assert after == scene.expected
    assert lost == 0
    # And each applied change is in the ledger exactly once
    assert recorded_repairs(ledger, scene.petstore.api_id) == [AUTHORIZER_ARN, LIVE_ARN]


# ---------------------------------------------------------------------------- persistent faults


@pytest.mark.parametrize("operation", list(REMEDIATE_OPERATIONS))
def test_persistent_fault_fails_clearly_loses_nothing_and_a_rerun_converges(
    world: World,
    ledger: str,
    faults: Faults,
    cli: Any,
    record: Record,
    capsys: pytest.CaptureFixture[str],
    operation: str,
) -> None:
    # Given the scene, and AWS answering every attempt of every `operation` call with throttling or a 5xx
    scene = build_scene(world)
    kind = MIXED
    faults.inject(operation, kind, None)

    # When the API is remediated
    failed = remediate(cli, *stage_flags(operation))
    during = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, during, scene.calls)

    # Then the run stops with an error naming the operation (GetApis too: an API named by name may be an
    # HTTP or WebSocket API, and a name both kinds share is ambiguous, so the lookup fails closed)
    assert faults.injected[operation] >= 1, faults.calls
    if operation == "PutItem":  # the changes are made but cannot be recorded: reported, not hidden
        outcome = "failed (exit 1), changes reported unrecorded"
        assert (failed.code, failed.json["outcome"]) == (1, "failed")
        assert "not recorded in the audit ledger" in failed.json["error"]
        assert {c["functionArn"] for c in failed.json["changes"]} == {
            function_arn("pets"),
            AUTHORIZER_ARN,
        }
    else:
        outcome = "failed (exit 1)"
        assert (failed.code, failed.json["outcome"]) == (1, "failed")
        assert operation in failed.json["error"]
    assert lost == 0

    # When the fault clears and the API is remediated again
    faults.clear()
    rerun = remediate(cli, *stage_flags(operation))
    after = snapshot(*FUNCTIONS)
    lost += lost_in(scene.baseline, after, scene.calls)
    record(case(kind, operation, "every attempt"), f"{outcome}; re-run {rerun.json['outcome']}", lost)

    # Then it converges to the fault-free policy, still without losing anything
    assert rerun.code == 0
    assert after == scene.expected
    assert lost == 0
    if operation != "PutItem":
        assert recorded_repairs(ledger, scene.petstore.api_id) == [AUTHORIZER_ARN, LIVE_ARN]


def test_api_named_by_id_is_repaired_when_the_v2_listing_keeps_failing(
    world: World, ledger: str, faults: Faults, cli: Any
) -> None:
    # Given the scene, and GetApis failing on every attempt
    scene = build_scene(world)
    faults.inject("GetApis", MIXED, None)
    # When the REST API is remediated by its id (no name to disambiguate across kinds)
    run = cli("remediate", "--api", scene.petstore.api_id, "--stage", "prod", "--local", "--format", "json")
    # Then it is repaired; only the stale-grant check (which needs every API id) is skipped
    assert faults.injected["GetApis"] >= 1, faults.calls
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert snapshot(*FUNCTIONS) == scene.expected


# ------------------------------------------------------------------------- the detector's calls


def dead_letter_count(env: SimpleNamespace) -> int:
    attributes = env.sqs.get_queue_attributes(
        QueueUrl=env.queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


DETECTOR_FAULTS = [
    (op, kind, attempts)
    for op in ("StartExecution", "SendMessage")
    for kind, attempts in ((MIXED, 2), (LANDED, 1), (MIXED, None))
]


@pytest.mark.parametrize(
    ("operation", "kind", "attempts"),
    DETECTOR_FAULTS,
    ids=[f"{o}-{k.split()[0].strip(',')}-{a or 'all'}" for o, k, a in DETECTOR_FAULTS],
)
def test_detector_absorbs_transient_faults_and_fails_the_invocation_on_persistent_ones(
    world: World,
    detector_env: SimpleNamespace,
    faults: Faults,
    lambda_context: Any,
    record: Record,
    operation: str,
    kind: str,
    attempts: int | None,
) -> None:
    from permheal.errors import AwsCallError
    from permheal.handlers.detect import lambda_handler

    # Given a failure payload (StartExecution) or an undecodable one (SendMessage to the dead letters)
    event = (
        retarget(load_event("logs-integration-failure-info.json"), "a1b2c3d4e5", "prod")
        if operation == "StartExecution"
        else {"awslogs": {"data": "not base64 at all"}}
    )
    faults.inject(operation, kind, attempts)

    # When the detector handles it
    try:
        lambda_handler(event, lambda_context)
        raised = None
    except AwsCallError as exc:
        raised = exc
    started = len(detector_env.sfn.list_executions(stateMachineArn=detector_env.machine)["executions"])
    kept = dead_letter_count(detector_env)
    outcome = (
        "invocation failed (Lambda retries, then its on-failure destination)"
        if raised
        else f"{started} execution started"
        if operation == "StartExecution"
        else f"dead-lettered ({kept} message{'s' * (kept != 1)})"
    )
    record(case(kind, operation, "every attempt" if attempts is None else f"first {attempts}"), outcome, 0)

    # Then the fault was injected; transient ones are absorbed, persistent ones fail the invocation loudly
    assert faults.injected[operation] >= 1
    if attempts is None:
        assert raised is not None and operation in str(raised)
    else:
        assert raised is None
        if operation == "StartExecution":
            assert started == 1  # exactly one execution, even when a start's answer was lost
        else:
            assert kept >= 1  # kept for a person (twice if the answer was lost)


# ---------------------------------------------------------------------- the deployed workflow


def manual(**fields: Any) -> dict[str, Any]:
    return {"source": "manual", "apiName": "petstore", "stage": "prod", **fields}


def test_transient_throttling_of_every_call_inside_the_deployed_workflow_is_absorbed(
    world: World, stack: Any, faults: Faults, record: Record
) -> None:
    # Given the scene behind the deployed stack, and the first attempt of every permheal AWS call throttled
    scene = build_scene(world)
    faults.inject("*", "throttling", 1)

    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    output = json.loads(execution.get("output") or "{}")
    record(
        "fault: throttling on every call in the deployed workflow (first attempt)",
        output.get("outcome"),
        lost,
    )

    # Then it repaired as without faults, and recorded both changes with the execution's ARN
    assert sum(faults.injected.values()) >= 10, faults.injected
    assert (execution["status"], output["outcome"]) == ("SUCCEEDED", "repaired")
    assert after == scene.expected
    assert lost == 0
    entries = Ledger(stack_ledger_table(world)).history(api_id=scene.petstore.api_id)
    assert {e.execution_arn for e in entries} == {execution["executionArn"]}
    assert sorted(e.function_key for e in entries) == [AUTHORIZER_ARN, LIVE_ARN]


@pytest.mark.parametrize("operation", ["GetPolicy", "PutItem"])
def test_persistent_fault_inside_the_deployed_workflow_fails_the_execution_and_says_why(
    world: World, stack: Any, faults: Faults, instant_sfn_retries: list[float], record: Record, operation: str
) -> None:
    # Given the scene behind the deployed stack, and every attempt of `operation` failing
    scene = build_scene(world)
    faults.inject(operation, "5xx", None)

    # When the workflow runs (its Retry steps included)
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    result = json.loads(execution.get("cause") or "{}")
    record(
        case("5xx", operation, "every attempt, deployed workflow"),
        f"execution {execution['status']} {execution.get('error')}",
        lost,
    )

    # Then the execution failed with the result saying what went wrong; nothing was lost
    assert (execution["status"], execution.get("error")) == ("FAILED", "RemediationFailed")
    assert result["outcome"] == "failed"
    assert lost == 0
    if operation == "GetPolicy":
        assert operation in result["error"]
        assert after == scene.baseline
    else:  # the changes were made: the result lists them and says they are not in the ledger
        assert "not recorded in the audit ledger" in result["error"]
        assert {c["functionArn"] for c in result["changes"]} == {function_arn("pets"), AUTHORIZER_ARN}
        assert after == scene.expected


def test_sns_publish_failing_still_records_the_change_and_fails_the_execution(
    world: World, stack: Any, instant_sfn_retries: list[float], record: Record
) -> None:
    # Given the scene behind the deployed stack, and the notification topic deleted
    scene = build_scene(world)
    world.client("sns").delete_topic(TopicArn=stack.topic_arn)

    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    record("fault: sns:Publish failing (topic deleted), deployed workflow", execution.get("error", ""), lost)

    # Then the repair happened, the execution reports the failed notification with the result as cause
    assert (execution["status"], execution.get("error")) == ("FAILED", "NotificationFailed")
    assert json.loads(execution["cause"])["outcome"] == "repaired"
    assert instant_sfn_retries  # the publish was retried before giving up
    assert after == scene.expected
    assert lost == 0
    # And both changes are in the ledger with the execution's ARN
    entries = Ledger(stack_ledger_table(world)).history(api_id=scene.petstore.api_id)
    assert sorted((e.kind, e.function_key) for e in entries) == [
        ("repair", AUTHORIZER_ARN),
        ("repair", LIVE_ARN),
    ]
    assert {e.execution_arn for e in entries} == {execution["executionArn"]}


# ------------------------------------------------------------------------- concurrent writers


def other_writer() -> Any:
    """A separate client, as another tool or person would use."""
    return boto3.client("lambda", region_name=REGION)


def writer_grant(client: Any, sid: str) -> None:
    client.add_permission(
        FunctionName="pets",
        Qualifier="live",
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=APIGW,
        SourceArn=execute_api("otherapi", f"*/GET/{sid}"),
    )


def after_each_read_of_live(monkeypatch: pytest.MonkeyPatch, act: Callable[[int], bool]) -> None:
    """Call `act(n)` after permheal's n-th read of pets:live (before it plans); False stops."""
    original = LambdaPolicies.read
    reads = 0
    active = True

    def read(self: LambdaPolicies, function: FunctionRef) -> Policy:
        nonlocal reads, active
        policy = original(self, function)
        if active and (function.name, function.qualifier) == ("pets", "live"):
            reads += 1
            active = act(reads)
        return policy

    monkeypatch.setattr(LambdaPolicies, "read", read)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """permheal's jittered wait between lost races, made instant."""
    monkeypatch.setattr(repair_step, "random", SimpleNamespace(uniform=lambda low, high: 0.0))


def test_precondition_failed_from_a_real_concurrent_writer_is_replanned_without_loss(
    world: World, ledger: str, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given the scene, and another writer adding a grant right after permheal's first read of pets:live
    scene = build_scene(world)
    writer = other_writer()
    after_each_read_of_live(monkeypatch, lambda n: writer_grant(writer, "racer") or False)

    # When the API is remediated
    result = remediate(cli, "--stage", "prod")
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    record("race: PreconditionFailed, writer adds a grant mid-repair", result.json["outcome"], lost)

    # Then permheal's stale removal was refused by Lambda, re-planned, and both changes landed
    assert (result.code, result.json["outcome"]) == (0, "repaired")
    assert "racer" in by_sid(after[("pets", "live")])
    assert [s for s in after[("pets", "live")] if s["Sid"] != "racer"] == scene.expected[("pets", "live")]
    assert lost == 0


def test_writer_winning_every_race_makes_permheal_give_up_without_loss(
    world: World, ledger: str, cli: Any, monkeypatch: pytest.MonkeyPatch, no_backoff: None, record: Record
) -> None:
    # Given a writer that changes pets:live after every read permheal makes of it
    scene = build_scene(world)
    writer = other_writer()
    after_each_read_of_live(monkeypatch, lambda n: writer_grant(writer, f"racer-{n}") or True)

    # When the API is remediated
    result = remediate(cli, "--stage", "prod")
    during = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, during, scene.calls)

    # Then permheal gave up after its bounded retries, keeping every statement the writer added
    assert (result.code, result.json["outcome"]) == (1, "failed")
    racers = [s for s in by_sid(during[("pets", "live")]) if s.startswith("racer-")]
    assert len(racers) >= 5
    assert lost == 0

    # When the writer stops and permheal runs again
    monkeypatch.undo()
    rerun = remediate(cli, "--stage", "prod")
    after = snapshot(*FUNCTIONS)
    lost += lost_in(scene.baseline, after, scene.calls)
    record("race: writer wins every race", f"gave up (failed, exit 1); re-run {rerun.json['outcome']}", lost)

    # Then it converges, and the writer's statements are all still there
    assert rerun.json["outcome"] == "repaired"
    assert set(racers) <= set(by_sid(after[("pets", "live")]))
    assert lost == 0


def test_threaded_concurrent_writer_and_permheal_never_lose_each_others_statements(
    world: World, ledger: str, cli: Any, no_backoff: None, record: Record
) -> None:
    # Given a writer thread adding 20 grants to pets:live as fast as Lambda lets it
    scene = build_scene(world)
    writer = other_writer()
    stop = threading.Event()

    def write() -> None:
        for index in range(20):
            if stop.is_set():
                return
            writer_grant(writer, f"thread-{index}")

    thread = threading.Thread(target=write)
    thread.start()

    # When permheal remediates twice meanwhile
    try:
        results = [remediate(cli, "--stage", "prod") for _ in range(2)]
    finally:
        thread.join(timeout=30)
        stop.set()
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    outcomes = "/".join(r.json["outcome"] for r in results)
    record("race: writer thread adding 20 grants during 2 repairs", outcomes, lost)

    # Then every statement of both writers is there once, and the API's calls are allowed
    live = [s["Sid"] for s in after[("pets", "live")]]
    assert sorted(s for s in live if s.startswith("thread-")) == sorted(f"thread-{i}" for i in range(20))
    assert len(live) == len(set(live))
    assert all(
        (r.code, r.json["outcome"]) in ((0, "repaired"), (0, "no_change"), (1, "failed")) for r in results
    )
    if any(r.code == 0 for r in results):
        assert after[("pets-authorizer", None)] == scene.expected[("pets-authorizer", None)]
    assert lost == 0


# --------------------------------------------------------------------------- crash mid-plan


class Crash(BaseException):
    """The process dies: nothing in permheal may catch this."""


def crash_scene(world: World) -> Scene:
    """pets:live: a duplicate (removed first), no grant for GET /pets/{petId} (added), two narrow
    grants the new one covers (removed after the add): one plan of four writes."""
    petstore = build_petstore(world)
    world.allow("petstore")
    api = petstore.api_id
    world.grant("pets", execute_api(api, "*/POST/pets"), sid="dup-a", qualifier="live")
    world.grant("pets", execute_api(api, "*/POST/pets"), sid="dup-b", qualifier="live")
    world.grant("pets", execute_api(api, "prod/GET/pets/1"), sid="narrow-1", qualifier="live")
    world.grant("pets", execute_api(api, "prod/GET/pets/2"), sid="narrow-2", qualifier="live")
    world.grant("pets-authorizer", petstore.authorizer_arn(), sid="authorizer")
    baseline = snapshot(*FUNCTIONS)
    pattern = execute_api(api, "*/GET/pets/*")
    grant = invoke_statement(permheal_sid(pattern, "live"), LIVE_ARN, pattern)
    expected = {
        ("pets", "live"): [by_sid(baseline[("pets", "live")])["dup-a"], grant],
        ("pets-authorizer", None): baseline[("pets-authorizer", None)],
    }
    calls = {
        ("pets", "live"): [petstore.method_arn()],
        ("pets-authorizer", None): [petstore.authorizer_arn()],
    }
    return Scene(petstore, baseline, calls, expected)


def crash_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> list[str]:
    """Let `writes` policy writes through, then crash on the next one, before it reaches Lambda."""
    done: list[str] = []
    for name in ("add", "remove"):
        original = getattr(LambdaPolicies, name)

        def write(self: LambdaPolicies, *args: Any, _original: Any = original, _name: str = name) -> None:
            if len(done) >= writes:
                raise Crash(f"crashed before {_name} #{len(done) + 1}")
            _original(self, *args)
            done.append(_name)

        monkeypatch.setattr(LambdaPolicies, name, write)
    return done


def sorted_statements(snap: Snapshot) -> dict[Any, list[Any]]:
    return {fn: sorted(statements, key=lambda s: str(s["Sid"])) for fn, statements in snap.items()}


@pytest.mark.parametrize("writes", [None, 1, 2, 3])
def test_crash_between_two_writes_of_one_plan_loses_nothing_and_a_rerun_converges(
    world: World, ledger: str, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record, writes: int | None
) -> None:
    # Given pets:live needing four writes, and the process crashing after `writes` of them
    scene = crash_scene(world)
    lost = 0
    if writes is not None:
        done = crash_after(monkeypatch, writes)
        # When the API is remediated and the crash happens
        with pytest.raises(Crash):
            remediate(cli, "--stage", "prod")
        # Then the writes made so far left every call allowed
        assert len(done) == writes
        lost += lost_in(scene.baseline, snapshot(*FUNCTIONS), scene.calls)
        assert lost == 0
        monkeypatch.undo()

    # When it is remediated (again)
    result = remediate(cli, "--stage", "prod")
    after = snapshot(*FUNCTIONS)
    lost += lost_in(scene.baseline, after, scene.calls)
    how = "uninterrupted" if writes is None else f"after write {writes} of 4, then re-run"
    record(f"crash: mid-plan crash {how}", result.json["outcome"], lost)

    # Then it converges to the policy an uninterrupted run leaves
    assert (result.code, result.json["outcome"]) == (0, "repaired")
    assert sorted_statements(after) == sorted_statements(scene.expected)
    assert lost == 0


# ------------------------------------------------------------------------------ the allowlist


def put_parameter(world: World, kind: str, value: str) -> None:
    world.client("ssm").put_parameter(Name="/permheal/allowed-apis", Type=kind, Value=value, Overwrite=True)


ALLOWLISTS: dict[str, Callable[[World], None]] = {
    "missing": lambda w: w.client("ssm").delete_parameter(Name="/permheal/allowed-apis"),
    "String holding a JSON list": lambda w: put_parameter(w, "String", '["petstore"]'),
    "String with ; separators": lambda w: put_parameter(w, "String", "petstore;orders"),
    "String with a glob": lambda w: put_parameter(w, "String", "pet*"),
    "String with another case": lambda w: put_parameter(w, "String", "PetStore"),
    "String of control characters": lambda w: put_parameter(w, "String", "\t\x0b\x0c"),
    "StringList of blanks": lambda w: put_parameter(w, "StringList", " , ,"),
    "SecureString": lambda w: put_parameter(w, "SecureString", "petstore"),
}


@pytest.mark.parametrize("variant", list(ALLOWLISTS))
def test_missing_or_malformed_allowlist_refuses_and_changes_nothing(
    world: World, ledger: str, cli: Any, record: Record, variant: str
) -> None:
    # Given the scene with the allowlist parameter missing or malformed
    scene = build_scene(world)
    ALLOWLISTS[variant](world)

    # When the API is remediated
    result = remediate(cli, "--stage", "prod")
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    record(f"allowlist: {variant}", result.json["outcome"], lost)

    # Then it fails closed: refused, nothing changed, the refusal recorded
    assert (result.code, result.json["outcome"]) == (1, "refused")
    assert after == scene.baseline
    assert lost == 0
    (entry,) = Ledger(ledger).history(api_id=scene.petstore.api_id)
    assert (entry.kind, entry.detail) == ("refusal", "API is not in the allowlist")


def test_unreadable_allowlist_fails_closed(
    world: World, ledger: str, faults: Faults, cli: Any, record: Record, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the scene, and SSM denying GetParameter
    scene = build_scene(world)
    faults.inject("GetParameter", "AccessDeniedException", None)

    # When the API is remediated
    result = remediate(cli, "--stage", "prod")
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    record("allowlist: unreadable (AccessDenied)", f"error (exit {result.code})", lost)

    # Then it stops with the reason on one line (access denied while reading: exit 2), nothing changed
    err = capsys.readouterr().err
    assert (result.code, result.out) == (2, "")
    assert err.count("\n") == 1 and "AccessDeniedException" in err and "GetParameter" in err
    assert after == scene.baseline
    assert lost == 0


def test_allowlist_missing_in_the_deployed_workflow_refuses_and_records_it(
    world: World, stack: Any, record: Record
) -> None:
    # Given the scene behind the deployed stack, and the allowlist parameter deleted
    scene = build_scene(world)
    world.client("ssm").delete_parameter(Name="/permheal/allowed-apis")

    # When the workflow runs
    execution = run(world.client("stepfunctions"), stack.state_machine_arn, manual())
    after = snapshot(*FUNCTIONS)
    lost = lost_in(scene.baseline, after, scene.calls)
    output = json.loads(execution.get("output") or "{}")
    record("allowlist: missing, deployed workflow", output.get("outcome", execution["status"]), lost)

    # Then it refused, changed nothing and recorded the refusal with the execution's ARN
    assert (execution["status"], output["outcome"]) == ("SUCCEEDED", "refused")
    assert after == scene.baseline
    assert lost == 0
    (entry,) = Ledger(stack_ledger_table(world)).history(api_id=scene.petstore.api_id)
    assert (entry.kind, entry.execution_arn) == ("refusal", execution["executionArn"])
