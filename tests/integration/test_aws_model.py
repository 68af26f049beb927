"""The AWS model (permheal_local.aws_model) itself: buckets, throttling answers, latency, cold starts.

Every test injects a FakeClock: nothing really sleeps and the figures are exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from permheal_local import aws_model
from permheal_local.aws_model import AwsModel, FakeClock, Quota

OTHER_ACCOUNT = "111111111111"
STANDARD = Config(retries={"mode": "standard", "total_max_attempts": 3})
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


def quiet_model(clock: FakeClock, **options: Any) -> AwsModel:
    """Quotas only: no latency (it would move the fake clock and refill the buckets)."""
    return AwsModel(clock=clock, latency=False, cold_starts=False, jitter=0, **options)


@pytest.fixture
def model(world: Any) -> Iterator[AwsModel]:
    clock = FakeClock()
    installed = quiet_model(clock)
    installed.install()
    try:
        yield installed
    finally:
        installed.uninstall()


def policy_function(world: Any, name: str = "fn") -> str:
    world.function(name)
    world.client("lambda").add_permission(
        FunctionName=name,
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )
    return name


def client(service: str, config: Config = NO_RETRY, region: str = "us-east-1", **credentials: str) -> Any:
    return boto3.client(service, region_name=region, config=config, **credentials)  # type: ignore[call-overload]


def credentials_in(account: str) -> dict[str, str]:
    """Credentials moto maps to `account` (an assumed role's keys carry its account)."""
    role = f"arn:aws:iam::{account}:role/bench"
    found = boto3.client("sts", region_name="us-east-1").assume_role(RoleArn=role, RoleSessionName="model")
    keys = found["Credentials"]
    return {
        "aws_access_key_id": keys["AccessKeyId"],
        "aws_secret_access_key": keys["SecretAccessKey"],
        "aws_session_token": keys["SessionToken"],
    }


def get_policies(lam: Any, name: str, count: int) -> int:
    """How many of `count` GetPolicy calls succeed before the first throttle."""
    for done in range(count):
        try:
            lam.get_policy(FunctionName=name)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "TooManyRequestsException"
            return done
    return count


# --- buckets (no moto) -------------------------------------------------------------------------------------


def test_lambda_get_policy_bucket_holds_its_burst_and_refills_at_15_per_second() -> None:
    clock = FakeClock()
    model = quiet_model(clock)
    take = [model.admit("lambda", "GetPolicy", "123456789012", "us-east-1") for _ in range(16)]
    assert take == [True] * 15 + [False]
    clock.advance(1 / 15)
    assert model.admit("lambda", "GetPolicy", "123456789012", "us-east-1")
    assert not model.admit("lambda", "GetPolicy", "123456789012", "us-east-1")
    clock.advance(60)  # refills to the burst, not beyond
    assert sum(model.admit("lambda", "GetPolicy", "123456789012", "us-east-1") for _ in range(20)) == 15
    assert model.stats()["throttles"] == {"lambda:GetPolicy": 7}


def test_add_and_remove_permission_share_the_lambda_control_plane_bucket_not_get_policy() -> None:
    model = quiet_model(FakeClock())
    assert model.quota_for("lambda", "AddPermission") == model.quota_for("lambda", "RemovePermission")
    for _ in range(10):
        assert model.admit("lambda", "AddPermission", "123456789012", "us-east-1")
    for _ in range(5):
        assert model.admit("lambda", "RemovePermission", "123456789012", "us-east-1")
    assert not model.admit("lambda", "AddPermission", "123456789012", "us-east-1")
    assert model.admit("lambda", "GetPolicy", "123456789012", "us-east-1")
    assert model.quota_for("lambda", "Invoke") == ()


def test_api_gateway_get_resources_draws_from_its_own_bucket_and_the_account_total() -> None:
    clock = FakeClock()
    model = quiet_model(clock)
    own, total = model.quota_for("apigateway", "GetResources")
    assert (own.rate, own.burst) == (2.5, 5)  # 5 requests every 2 seconds
    assert (total.rate, total.burst) == (10, 40)  # total operations
    assert [model.admit("apigateway", "GetResources", "1", "r") for _ in range(6)] == [True] * 5 + [False]
    # GetRestApis has no quota of its own: only the total's remaining 35 tokens.
    assert sum(model.admit("apigateway", "GetRestApis", "1", "r") for _ in range(50)) == 35
    clock.advance(0.4)  # +4 total tokens, +1 GetResources token
    assert model.admit("apigateway", "GetResources", "1", "r")
    assert sum(model.admit("apigateway", "GetRestApis", "1", "r") for _ in range(10)) == 3
    assert model.quota_for("apigatewayv2", "GetApis") == (total,)


def test_every_quota_names_its_source() -> None:
    for quotas in aws_model.QUOTAS.values():
        for quota in quotas:
            assert quota.source.startswith("https://docs.aws.amazon.com/"), quota
    for latency in [*aws_model.LATENCY.values(), aws_model.TRANSITION]:
        assert latency.source
    assert aws_model.COLD_START.source


# --- through moto ----------------------------------------------------------------------------------------


def test_throttled_get_policy_is_a_lambda_too_many_requests_exception(world: Any, model: AwsModel) -> None:
    name = policy_function(world)
    lam = client("lambda")
    assert get_policies(lam, name, 16) == 15
    with pytest.raises(ClientError) as raised:
        lam.get_policy(FunctionName=name)
    response = raised.value.response
    assert response["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert (response["Reason"], response["Type"]) == ("CallerRateLimitExceeded", "User")
    assert isinstance(raised.value, lam.exceptions.TooManyRequestsException)


def test_standard_retry_mode_retries_the_throttle(world: Any, model: AwsModel) -> None:
    name = policy_function(world)
    lam = client("lambda", STANDARD)
    assert get_policies(lam, name, 15) == 15
    with pytest.raises(ClientError) as raised:
        lam.get_policy(FunctionName=name)
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert model.stats()["throttles"] == {"lambda:GetPolicy": 3}


def test_standard_retry_succeeds_once_the_bucket_refills(world: Any) -> None:
    name = policy_function(world)
    clock = FakeClock()
    model = quiet_model(clock)
    lam = client("lambda", STANDARD)

    def backoff(response: Any = None, **_: Any) -> None:
        """Time passes between a throttled attempt and its retry, as it does on AWS."""
        if response is not None and response[1].get("Error", {}).get("Code") == "TooManyRequestsException":
            clock.advance(0.05)

    lam.meta.events.register("needs-retry.lambda.GetPolicy", backoff)
    model.install()
    try:
        assert get_policies(lam, name, 15) == 15
        lam.get_policy(FunctionName=name)  # throttled once or twice, then served
    finally:
        model.uninstall()
    assert model.stats()["throttles"] == {"lambda:GetPolicy": 2}  # 1/15 s to a token, 0.05 s per retry
    assert model.stats()["calls"] == {"lambda:GetPolicy": 18}


def test_api_gateway_throttle_has_api_gateways_shape(world: Any, model: AwsModel) -> None:
    apigw = client("apigateway")
    for _ in range(40):
        apigw.get_rest_apis()
    with pytest.raises(ClientError) as raised:
        apigw.get_rest_apis()
    response = raised.value.response
    assert response["Error"] == {"Code": "TooManyRequestsException", "Message": "Too Many Requests"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert isinstance(raised.value, apigw.exceptions.TooManyRequestsException)
    with pytest.raises(client("apigatewayv2").exceptions.TooManyRequestsException):
        client("apigatewayv2").get_apis()  # the same account-wide management total


def test_buckets_are_per_account_and_per_region(world: Any) -> None:
    places = [
        {"region": "us-east-1"},
        {"region": "us-east-1", **credentials_in(OTHER_ACCOUNT)},
        {"region": "us-west-2"},
    ]
    for place in places:
        make_policy_function(client("lambda", **place), client("iam", **place), "fn")
    model = quiet_model(FakeClock())
    model.install()
    try:
        assert [get_policies(client("lambda", **place), "fn", 20) for place in places] == [15, 15, 15]
    finally:
        model.uninstall()
    assert model.stats()["throttles"] == {"lambda:GetPolicy": 3}


def make_policy_function(lam: Any, iam: Any, name: str) -> None:
    """A function with a one-statement policy, in whatever account and region the clients talk to."""
    import io
    import zipfile

    try:
        role = iam.create_role(RoleName="model-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except ClientError:  # IAM is global: the role exists from another region
        role = iam.get_role(RoleName="model-role")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    lam.add_permission(
        FunctionName=name,
        StatementId="s",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )


def test_latency_is_applied_per_operation(world: Any) -> None:
    name = policy_function(world)
    clock = FakeClock()
    lam = client("lambda")
    with aws_model.aws_model(clock=clock, jitter=0, quotas=False, cold_starts=False) as model:
        lam.get_policy(FunctionName=name)
        assert clock.slept == pytest.approx(0.025)
        lam.remove_permission(FunctionName=name, StatementId="apigw")
        assert clock.slept == pytest.approx(0.085)
        client("sns").list_topics()
        assert clock.slept == pytest.approx(0.115)
    assert model.stats()["latency_ms"] == {
        "lambda:GetPolicy": 25.0,
        "lambda:RemovePermission": 60.0,
        "sns:ListTopics": 30.0,
    }


def test_jitter_is_seeded() -> None:
    def samples(seed: int) -> list[float]:
        clock = FakeClock()
        model = AwsModel(seed=seed, clock=clock, quotas=False, cold_starts=False)
        out = []
        for _ in range(5):
            before = clock.t
            model.delay("lambda", "GetPolicy")
            out.append(clock.t - before)
        return out

    assert samples(7) == samples(7)
    assert samples(7) != samples(8)
    assert len(set(samples(7))) == 5


def test_step_functions_states_pay_a_transition_each(world: Any) -> None:
    from permheal_local.aws import wait_until_stopped

    sfn = world.client("stepfunctions")
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}},
    }
    machine = sfn.create_state_machine(
        name="two", definition=json.dumps(definition), roleArn=world.execution_role()
    )["stateMachineArn"]
    clock = FakeClock()
    with aws_model.aws_model(clock=clock, jitter=0, quotas=False, cold_starts=False) as model:
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        assert wait_until_stopped(sfn, execution)["status"] == "SUCCEEDED"
    assert model.stats()["transitions"] == 2
    assert model.stats()["transition_ms"] == 40.0


def test_cold_start_once_per_function_then_warm(world: Any) -> None:
    from permheal_local import lambda_runtime

    handler = "permheal.handlers.summarize.lambda_handler"
    world.create_function("one", handler=handler)
    world.create_function("two", handler=handler)
    clock = FakeClock()
    lam = client("lambda")
    lambda_runtime.install()
    try:
        with aws_model.aws_model(
            clock=clock,
            latency=False,
            quotas=False,
            handler_cpu=False,
            import_ms={"permheal.handlers.summarize": 100.0},
        ) as model:
            for name in ("one", "one", "two", "one"):
                lam.invoke(FunctionName=name, Payload=b"{}")
            assert model.stats()["cold_starts"] == {"one": 1, "two": 1}
            assert model.stats()["warm_starts"] == {"one": 2}
            assert clock.slept == pytest.approx(2 * 0.250)  # (150 ms init + 100 ms import) each
            model.make_cold()
            lam.invoke(FunctionName="two", Payload=b"{}")
            assert model.stats()["cold_starts"] == {"one": 1, "two": 2}
    finally:
        lambda_runtime.uninstall()


def test_concurrent_invocations_each_need_an_environment() -> None:
    clock = FakeClock()
    model = AwsModel(clock=clock, latency=False, quotas=False, import_ms={"m": 50.0})
    assert model.start_invocation("f", "m").init_ms == 200.0
    assert model.start_invocation("f", "m").init_ms == 200.0  # the first is busy: a second environment
    model.end_invocation("f")
    model.end_invocation("f")
    assert model.start_invocation("f", "m").init_ms == 0.0
    assert model.start_invocation("f", "m").init_ms == 0.0
    assert model.stats()["cold_starts"] == {"f": 2}


def test_idle_environments_are_recycled_after_idle_seconds() -> None:
    clock = FakeClock()
    model = AwsModel(
        clock=clock,
        latency=False,
        quotas=False,
        import_ms={"m": 0.0},
        cold_start=aws_model.ColdStart(idle_seconds=600),
    )
    model.start_invocation("f", "m")
    model.end_invocation("f")
    clock.advance(599)
    assert model.start_invocation("f", "m").init_ms == 0.0
    model.end_invocation("f")
    clock.advance(601)
    assert model.start_invocation("f", "m").init_ms == 150.0


def test_a_missing_import_time_is_measured_once() -> None:
    measured: list[str] = []

    def measure(module: str) -> float:
        measured.append(module)
        return 10.0

    model = AwsModel(clock=FakeClock(), latency=False, quotas=False, measure=measure)
    for function in ("a", "b"):
        model.start_invocation(function, "permheal.handlers.detect")
    assert measured == ["permheal.handlers.detect"]
    assert model.stats()["init_ms"] == {"a": 160.0, "b": 160.0}


def test_model_off_leaves_moto_unchanged(world: Any) -> None:
    from moto.core.responses import BaseResponse
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    before = (BaseResponse.__dict__["call_action"], CommonStateField.__dict__["_eval_body"])
    name = policy_function(world)
    with aws_model.aws_model(clock=FakeClock(), latency=False, cold_starts=False) as model:
        assert aws_model.current() is model
        assert get_policies(client("lambda"), name, 20) == 15
    assert aws_model.current() is None
    assert (BaseResponse.__dict__["call_action"], CommonStateField.__dict__["_eval_body"]) == before
    assert get_policies(client("lambda"), name, 50) == 50


def test_a_quota_table_can_be_replaced(world: Any) -> None:
    name = policy_function(world)
    table = dict(aws_model.QUOTAS)
    table[("lambda", "GetPolicy")] = (Quota("lambda:GetPolicy", 1, 2, "test"),)
    with aws_model.aws_model(clock=FakeClock(), latency=False, quota_table=table):
        assert get_policies(client("lambda"), name, 5) == 2


def test_unmodelled_calls_neither_wait_nor_spend_quota(world: Any) -> None:
    name = policy_function(world)
    clock = FakeClock()
    with aws_model.aws_model(clock=clock, jitter=0, cold_starts=False) as model:
        with model.unmodelled():
            assert get_policies(client("lambda"), name, 30) == 30
        assert clock.slept == 0 and model.stats()["calls"] == {}
        client("lambda").get_policy(FunctionName=name)
    assert clock.slept == pytest.approx(0.025)
    assert model.stats()["calls"] == {"lambda:GetPolicy": 1}


def test_import_time_is_measured_in_a_fresh_interpreter() -> None:
    import subprocess

    assert aws_model.measure_import_ms("permheal.arnlike", repeats=1) > 0
    with pytest.raises(subprocess.CalledProcessError):  # it really imports, in another process
        aws_model.measure_import_ms("permheal.no_such_module", repeats=1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_incident_heals_through_the_model_with_one_cold_start_per_function() -> None:
    # Given the deployed stack, a broken API, and the model on (fake clock: nothing really sleeps)
    from permheal_local.aws import local_aws
    from permheal_local.demo import build_petstore

    imports = {f"permheal.handlers.{h}": 100.0 for h in ("detect", "resolve", "repair", "summarize")}
    with local_aws({"AllowedApis": "*"}, handler_env={"POWERTOOLS_LOG_LEVEL": "WARNING"}) as local:
        petstore = build_petstore(local.world)
        simulator = local.simulator()
        with aws_model.aws_model(clock=FakeClock(), import_ms=imports) as model:
            with model.unmodelled():
                failed = simulator.request(petstore.api_id, "prod", "POST", "/orders")

            # When its failure is delivered to the detector
            (delivery,) = local.flush_logs()
            assert local.settle(timeout=60)

        # Then the workflow ran through the model: healed, never throttled, each function cold once
        sfn = local.client("stepfunctions")
        execution = sfn.describe_execution(executionArn=delivery.result["started"][0])
        assert (failed.status, execution["status"]) == (500, "SUCCEEDED")
        assert simulator.request(petstore.api_id, "prod", "POST", "/orders").status == 200
        stats = model.stats()
        assert stats["throttles"] == {} and stats["transitions"] >= 5
        functions = local.stack.functions
        cold = {logical: stats["cold_starts"].get(name, 0) for logical, name in functions.items()}
        assert stats["calls"]["lambda:AddPermission"] >= 1 and stats["calls"]["sns:Publish"] == 1
    assert (cold["DetectorFunction"], cold["ResolveTargetsFunction"], cold["SummarizeFunction"]) == (1, 1, 1)
    assert cold["RepairPolicyFunction"] in (1, 2)  # two functions to repair: two environments if concurrent
    assert cold["ProactiveTriggerFunction"] == 0


def test_measure_imports_fills_only_what_is_missing() -> None:
    measured: list[str] = []
    model = AwsModel(clock=FakeClock(), import_ms={"known": 1.0}, measure=lambda m: measured.append(m) or 2.0)
    model.measure_imports(["known", "new", "new"])
    assert measured == ["new"] and model.import_ms == {"known": 1.0, "new": 2.0}
    AwsModel(clock=FakeClock(), cold_starts=False, measure=measured.append).measure_imports(["other"])
    assert measured == ["new"]


def test_handler_cpu_is_stretched_to_the_functions_memory_share() -> None:
    clock = FakeClock()
    model = AwsModel(clock=clock, latency=False, quotas=False, cold_starts=False)
    record = model.start_invocation("f", "m")
    assert model.slow_to_memory(record, 256, 0.010) == pytest.approx(0.010 * (1769 / 256 - 1))
    assert model.slow_to_memory(record, 3008, 0.010) == 0.0  # above one vCPU: no faster, no slower
    assert clock.slept == pytest.approx(0.010 * (1769 / 256 - 1))
    assert model.stats()["cpu_wait_ms"] == {"f": pytest.approx(10 * (1769 / 256 - 1), abs=0.1)}
    off = AwsModel(clock=clock, handler_cpu=False, cold_starts=False)
    assert off.slow_to_memory(off.start_invocation("f", "m"), 128, 1.0) == 0.0


def test_cpu_since_leaves_out_what_moto_spends_in_the_same_thread(world: Any) -> None:
    name = policy_function(world)
    lam = client("lambda")
    with aws_model.aws_model(clock=FakeClock(), jitter=0, quotas=False) as model:
        mark = model.cpu_mark()
        total = __import__("time").thread_time()
        for _ in range(30):
            lam.get_policy(FunctionName=name)
        total = __import__("time").thread_time() - total
        ours = model.cpu_since(mark)
    assert 0 <= ours < total  # the SDK's share only: moto's handling of 30 calls is left out


def test_cpu_since_counts_what_reads_made_at_once_spend_in_their_threads() -> None:
    # Given CPU work done only in the threads permheal.parallel makes (the caller's share is nil)
    import time

    from permheal import parallel

    spent: list[float] = []

    def spin() -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.02:
            pass
        spent.append(time.thread_time() - started)

    with aws_model.aws_model(clock=FakeClock(), jitter=0, quotas=False) as model:
        mark = model.cpu_mark()
        parallel.gather([lambda: None, spin, spin])
        ours = model.cpu_since(mark)
    # Then the handler is charged with (at least) what those threads spent
    assert len(spent) == 2 and ours >= sum(spent)
