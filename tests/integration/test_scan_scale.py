"""The parallel, paced scan: the same findings as a sequential scan, whatever AWS's throttling does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from botocore.retries import standard

from benchmarks.scale import build_account
from permheal.adapters.apigateway import RestApi
from permheal.adapters.ports import Adapters
from permheal.errors import NotFoundError
from permheal.models import Finding, FindingKind, Target
from permheal.pacing import Pacer
from permheal.planner import PlanOptions, plan_repair
from permheal.workflow.outcome import with_api_type
from permheal.workflow.repair import merge_findings
from permheal.workflow.resolve import api_targets, group_by_function
from permheal.workflow.scan import _by_api, scan
from permheal_local.aws_model import FakeClock, aws_model
from permheal_local.builder import World, execute_api, function_arn, integration_uri
from tests.integration.test_call_counts import CallLog


def sequential_scan(
    adapters: Adapters, apis: Sequence[str], stage: str | None, options: PlanOptions
) -> list[Finding]:
    """The scan as it was before it read in parallel (commit 89f18b0), kept as the reference."""
    gateway = adapters.gateway
    chosen: list[RestApi] = [gateway.find_api(a) for a in apis] if apis else gateway.list_apis()
    identity = adapters.identity()
    findings: list[Finding] = []
    targets: list[Target] = []
    for api in chosen:
        try:
            definition = gateway.definition(api, stage)
        except NotFoundError:
            if stage is None or not apis:
                continue
            raise
        found, api_findings = api_targets(definition, identity, gateway.region)
        targets.extend(found)
        findings.extend(api_findings)
    names = {api.api_id: api.name for api in chosen}
    types = {api.api_id: api.api_type for api in chosen}
    options = replace(options, existing_api_ids=gateway.all_api_ids())
    for group in group_by_function(targets):
        try:
            policy = adapters.policies.read(group.function)
        except NotFoundError as exc:
            findings.extend(
                Finding.for_target(FindingKind.MISSING_FUNCTION, t, names.get(t.api.api_id), detail=str(exc))
                for t in group.targets
            )
            continue
        for caller, calls in _by_api(group.targets):
            plan = plan_repair(
                group.function, policy, calls, replace(options, removable_apis=frozenset({caller})), names
            )
            findings.extend(plan.findings)
    return [with_api_type(f, types) for f in merge_findings(findings)]


def mixed_account(world: World) -> list[str]:
    """APIs sharing functions, a missing function, stale and duplicate grants, two stages, an HTTP API."""
    world.function("orders", alias="live")
    world.function("pets")
    world.function("auth")
    apis = []
    for index in range(6):
        api = world.rest_api(f"svc-{index}")
        world.method(api, "/orders", "GET", function_arn("orders", "live"))
        world.method(api, "/pets", "POST", function_arn("pets"))
        if index % 2:
            world.method(api, "/ghost", "GET", function_arn("ghost"))  # no such function
        if index % 3 == 0:
            authorizer = world.authorizer(api, "auth", function_arn("auth"))
            world.method(api, "/secure", "GET", function_arn("pets"), authorizer_id=authorizer)
        world.deploy(api, "prod", logging_level=None if index == 4 else "INFO")
        if index == 1:
            world.deploy(api, "dev")
        apis.append(api)
    world.grant("orders", execute_api(apis[0], "*/GET/orders"), sid="o-0", qualifier="live")
    world.grant("orders", execute_api(apis[0], "prod/GET/orders"), sid="o-0-dup", qualifier="live")
    world.grant("pets", execute_api(apis[2], "*/POST/pets"), sid="p-2")
    world.grant("pets", execute_api("gone000000", "*/POST/pets"), sid="p-stale")  # an API that is gone
    build_account(world, 5, 12)  # REST and HTTP APIs, granted, duplicated and missing
    world.allow("*")
    return apis


def both_scans(world: World, apis: Sequence[str] = (), stage: str | None = None) -> tuple[Any, Any]:
    options = PlanOptions()
    sequential = sequential_scan(Adapters.default(), apis, stage, options)
    parallel = scan(Adapters.default(pacer=Pacer(sleep=lambda _: None)), apis, stage, options)
    return sequential, parallel


def test_the_parallel_scan_reports_exactly_what_the_sequential_scan_reported(world: World) -> None:
    # Given an account with findings of many kinds over shared functions
    mixed_account(world)

    # When it is scanned both ways
    sequential, parallel = both_scans(world)

    # Then the findings are the same, in the same order (and there are findings of several kinds)
    assert parallel == sequential
    assert len({f.kind for f in parallel}) >= 5, {f.kind for f in parallel}


def test_the_parallel_scan_of_named_apis_and_one_stage_matches_too(world: World) -> None:
    # Given the same account
    apis = mixed_account(world)

    # When named APIs (one twice) are scanned on one stage, both ways
    named = [apis[3], apis[1], apis[0], apis[1]]
    sequential, parallel = both_scans(world, named, "prod")

    # Then the findings are the same
    assert parallel == sequential
    assert parallel


def test_a_named_api_without_the_stage_fails_as_before(world: World) -> None:
    apis = mixed_account(world)
    with pytest.raises(NotFoundError, match="no stage 'dev'"):
        scan(Adapters.default(), [apis[0]], "dev", PlanOptions())


def test_the_scan_is_deterministic_across_runs(world: World) -> None:
    mixed_account(world)
    runs = [
        scan(Adapters.default(pacer=Pacer(sleep=lambda _: None)), [], None, PlanOptions()) for _ in range(3)
    ]
    assert runs[0] == runs[1] == runs[2]


# --------------------------------------------------------------------------------- under the AWS model


def test_a_larger_account_scans_under_the_aws_models_quotas_with_the_findings_of_plain_moto(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account of 40 APIs over 200 function+qualifier policies, and its findings in plain moto
    build_account(world, 40, 200)
    expected = scan(Adapters.default(pacer=Pacer(sleep=lambda _: None)), [], None, PlanOptions())
    # (botocore's backoff and the model's time are both the fake clock's: the test does not sleep)
    clock = FakeClock()
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)

    # When it is scanned with AWS's quotas modelled, paced as the CLI paces, then not paced at all
    with aws_model(seed=1, clock=clock, latency=False, cold_starts=False) as model:
        paced = scan(
            Adapters.default(pacer=Pacer(clock=clock.now, sleep=clock.sleep)), [], None, PlanOptions()
        )
        paced_stats = model.stats()
        model.reset_counters()
        clock.advance(60)  # the buckets refill
        unpaced = scan(Adapters.default(pacer=Pacer(quotas={}, sleep=clock.sleep)), [], None, PlanOptions())
        unpaced_stats = model.stats()

    # Then both scans report what plain moto reported, every policy read
    assert paced == expected
    assert unpaced == expected
    assert paced_stats["calls"]["lambda:GetPolicy"] >= 200
    # And unpaced, AWS throttled the scan, which waited and retried instead of failing
    assert sum(unpaced_stats["throttles"].values()) > 0
    assert sum(paced_stats["throttles"].values()) < sum(unpaced_stats["throttles"].values())


# ------------------------------------------------------------------- API Gateway calls per API


@pytest.fixture
def call_log(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    """Every call the API Gateway adapters (REST and v2) make."""
    from permheal.adapters import apigateway, apigatewayv2

    log = CallLog()
    for module in (apigateway, apigatewayv2):
        monkeypatch.setattr(module, "client", log.wrap(module.client))
    return log


def authorizer_reads(world: World, calls: CallLog, *, authorized: bool) -> Counter[str]:
    """GetAuthorizers calls of a scan of one REST and one HTTP API, behind an authorizer or not."""
    world.function("pets")
    world.function("auth")
    api = world.rest_api("rest")
    authorizer = world.authorizer(api, "auth", function_arn("auth")) if authorized else None
    world.method(api, "/pets", "GET", function_arn("pets"), authorizer_id=authorizer)
    world.deploy(api, "prod")
    v2 = world.client("apigatewayv2")
    http = v2.create_api(Name="http", ProtocolType="HTTP")["ApiId"]
    integration = v2.create_integration(
        ApiId=http,
        IntegrationType="AWS_PROXY",
        IntegrationUri=function_arn("pets"),
        PayloadFormatVersion="2.0",
    )["IntegrationId"]
    secured: dict[str, str] = {}
    if authorized:
        secured = {"AuthorizationType": "CUSTOM"}
        secured["AuthorizerId"] = v2.create_authorizer(
            ApiId=http,
            AuthorizerType="REQUEST",
            Name="auth",
            IdentitySource=["$request.header.Authorization"],
            AuthorizerUri=integration_uri(function_arn("auth")),
            AuthorizerPayloadFormatVersion="2.0",
        )["AuthorizerId"]
    v2.create_route(ApiId=http, RouteKey="GET /pets", Target=f"integrations/{integration}", **secured)
    v2.create_stage(ApiId=http, StageName="$default", AutoDeploy=True)
    world.allow("*")
    findings = scan(Adapters.default(), [], None, PlanOptions())
    assert findings  # the scan ran and reported the missing grants
    return Counter(f"{svc}:{op}" for svc, op, _ in calls.calls if op == "GetAuthorizers")


def test_apis_without_authorizers_are_read_without_get_authorizers(world: World, call_log: CallLog) -> None:
    # API Gateway allows 10 management calls a second per account: a call not needed is not made
    assert authorizer_reads(world, call_log, authorized=False) == Counter()


def test_apis_behind_authorizers_read_them_once_each(world: World, call_log: CallLog) -> None:
    reads = authorizer_reads(world, call_log, authorized=True)
    assert reads == Counter({"apigateway:GetAuthorizers": 1, "apigatewayv2:GetAuthorizers": 1})
