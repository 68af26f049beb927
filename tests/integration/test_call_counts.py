"""AWS calls `permheal remediate --local` makes: constant in the API's size, one policy read per function.

Calls are counted on the clients the adapters create, through botocore's event hooks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from permheal.adapters import account, apigateway, lambda_policy
from permheal_local.builder import World, function_arn

# Integrations: alias, version and unqualified function; authorizers: plain functions.
INTEGRATIONS = (("svc-a", "live"), ("svc-b", "1"), ("svc-c", None))
AUTHORIZERS = (("auth-a", "TOKEN"), ("auth-b", "REQUEST"), ("auth-c", "TOKEN"))
METHODS = ("GET", "POST", "DELETE")
CONTROL_PLANE = (
    "GetRestApi",
    "GetRestApis",
    "GetStage",
    "GetStages",
    "GetResources",
    "GetAuthorizers",
    "GetExport",  # what a stage serves: one per stage
)


class CallLog:
    """Every AWS call made through a client permheal's adapters create: (service, operation, params)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def wrap(self, create: Callable[..., Any]) -> Callable[..., Any]:
        def counting_client(service: str, region: str | None = None) -> Any:
            client = create(service, region)
            # Clients are cached per process: one recorder per client, however often it is handed out.
            client.meta.events.register(
                "before-parameter-build", self._recorder(service), unique_id=f"call-log-{id(self)}-{service}"
            )
            return client

        return counting_client

    def _recorder(self, service: str) -> Callable[..., None]:
        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            self.calls.append((service, model.name, dict(params)))

        return record

    def count(self, service: str) -> Counter[str]:
        return Counter(operation for svc, operation, _ in self.calls if svc == service)

    def policy_reads(self) -> Counter[tuple[str, str | None]]:
        return Counter(
            (params["FunctionName"].rsplit(":", 1)[-1], params.get("Qualifier"))
            for svc, operation, params in self.calls
            if (svc, operation) == ("lambda", "GetPolicy")
        )

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    log = CallLog()
    for module in (apigateway, lambda_policy, account):
        monkeypatch.setattr(module, "client", log.wrap(module.client))
    return log


@pytest.fixture(autouse=True)
def _api_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    # One grant per function keeps even the 300-method API under the policy size limit.
    monkeypatch.setenv("PERMHEAL_SCOPE", "api")


def build_functions(world: World) -> list[str]:
    """The integration and authorizer functions every API below shares."""
    for name, qualifier in INTEGRATIONS:
        if qualifier == "live":
            world.function(name, alias="live")
        else:
            world.function(name, versions=1)
    for name, _ in AUTHORIZERS:
        world.function(name)
    return [function_arn(name, qualifier) for name, qualifier in INTEGRATIONS]


def build_api(world: World, name: str, resources: int) -> str:
    """`resources` × GET/POST/DELETE spread over the three integrations; GETs use the authorizers."""
    integrations = [function_arn(n, q) for n, q in INTEGRATIONS]
    api = world.rest_api(name)
    authorizers = [world.authorizer(api, fn, function_arn(fn), kind=kind) for fn, kind in AUTHORIZERS]
    for index in range(resources):
        for offset, method in enumerate(METHODS):
            world.method(
                api,
                f"/items-{index:03d}/{{id}}",
                method,
                integrations[(index + offset) % len(integrations)],
                authorizer_id=authorizers[index % len(authorizers)] if method == "GET" else None,
            )
    world.deploy(api, "prod")
    world.allow("*")
    return api


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def test_api_gateway_calls_do_not_grow_with_the_number_of_methods(
    world: World, cli: Any, calls: CallLog
) -> None:
    # Given an API with 30 methods and one with 300, over the same functions and authorizers
    build_functions(world)
    build_api(world, "small", resources=10)
    build_api(world, "large", resources=100)

    # When each is resolved and remediated
    small = remediate(cli, "small")
    small_calls = calls.count("apigateway")
    calls.clear()
    large = remediate(cli, "large")
    large_calls = calls.count("apigateway")

    # Then both are repaired with exactly the same API Gateway calls, each control-plane read at most once
    assert (small.json["outcome"], large.json["outcome"]) == ("repaired", "repaired")
    assert small_calls == large_calls
    assert set(large_calls) <= set(CONTROL_PLANE), large_calls
    assert all(count == 1 for count in large_calls.values()), large_calls


def test_each_stage_costs_one_export_and_nothing_else_grows(world: World, cli: Any, calls: CallLog) -> None:
    # Given a 300-method API deployed to three stages
    build_functions(world)
    api = build_api(world, "large", resources=100)
    world.deploy(api, "dev")
    world.deploy(api, "beta")

    # When it is remediated (every stage)
    run = remediate(cli, "large", "--dry-run")

    # Then each stage's served definition is read once, every other control-plane read once
    assert run.json["outcome"] == "dry_run"
    counts = calls.count("apigateway")
    assert counts.pop("GetExport") == 3, counts
    assert all(count == 1 for count in counts.values()), counts
    exported = sorted(params["stageName"] for svc, op, params in calls.calls if op == "GetExport")
    assert exported == ["beta", "dev", "prod"]


def test_dry_run_reads_each_function_policy_exactly_once(world: World, cli: Any, calls: CallLog) -> None:
    # Given a 300-method API invoking 3 function+qualifiers and 3 authorizer functions
    build_functions(world)
    build_api(world, "large", resources=100)

    # When it is remediated as a dry run
    run = remediate(cli, "large", "--dry-run")

    # Then each distinct function+qualifier's policy was read once, and nothing was written
    assert run.json["outcome"] == "dry_run"
    expected = {*INTEGRATIONS, *((name, None) for name, _ in AUTHORIZERS)}
    assert calls.policy_reads() == Counter(dict.fromkeys(expected, 1))
    assert not {"AddPermission", "RemovePermission"} & set(calls.count("lambda"))


def test_repair_writes_one_statement_per_function_and_re_reads_after_each_write(
    world: World, cli: Any, calls: CallLog
) -> None:
    # Given a 30-method API whose six functions have no permission (API scope: one grant each)
    build_functions(world)
    build_api(world, "small", resources=10)

    # When it is remediated
    run = remediate(cli, "small")

    # Then six AddPermission calls, no removal, and each policy read before and after its write
    assert run.json["outcome"] == "repaired"
    writes = calls.count("lambda")
    assert (writes["AddPermission"], writes["RemovePermission"]) == (6, 0)
    assert set(calls.policy_reads().values()) == {2}
