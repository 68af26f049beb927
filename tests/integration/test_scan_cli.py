"""`permheal scan --format json` against moto: the findings contract, exit codes and filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from permheal_local.builder import ACCOUNT, World, execute_api, function_arn

CONTRACT_KEYS = {
    "apiType",  # design.md, "API kinds"
    "routeKey",
    "kind",
    "apiId",
    "apiName",
    "stage",
    "method",
    "resourcePath",
    "authorizerId",
    "functionArn",
    "qualifier",
    "sourceArn",
    "sid",
    "detail",
}


# --- helpers ----------------------------------------------------------------------------------------


def scan(cli: Any, *flags: str) -> Any:
    return cli("scan", "--format", "json", *flags)


def findings_of(run: Any, kind: str) -> list[dict[str, Any]]:
    return [f for f in run.json["findings"] if f["kind"] == kind]


def alias_api(
    world: World,
    name: str = "pets",
    *,
    stages: tuple[str, ...] = ("prod",),
    function: str = "pets",
    granted: bool = False,
    logging_level: str | None = "INFO",
    **method_options: Any,
) -> str:
    """GET /pets invoking `function`:${stageVariables.alias} (alias live), optionally already granted."""
    world.function(function, alias="live")
    api = world.rest_api(name)
    world.method(api, "/pets", "GET", function_arn(function, "${stageVariables.alias}"), **method_options)
    for stage in stages:
        world.deploy(api, stage, {"alias": "live"}, logging_level=logging_level)
    if granted:
        world.grant(function, execute_api(api, "*/GET/pets"), sid="pets-get", qualifier="live")
    world.allow("*")
    return api


# --- contract and exit codes ------------------------------------------------------------------------


def test_scan_of_a_healthy_account_exits_0_with_no_findings(world: World, cli: Any) -> None:
    # Given an API whose alias already allows its only method, with logging on
    alias_api(world, granted=True)

    # When the account is scanned
    run = scan(cli)

    # Then there is nothing to report
    assert (run.code, run.json) == (0, {"findings": []})


def test_scan_with_findings_exits_1_and_every_finding_has_every_contract_key(world: World, cli: Any) -> None:
    # Given an API with a missing grant, a duplicate pair, logging off and an integration role
    api = alias_api(world, logging_level=None)
    world.grant("pets", execute_api(api, "dev/GET/pets"), sid="dup-1", qualifier="live")
    world.grant("pets", execute_api(api, "dev/GET/pets"), sid="dup-2", qualifier="live")
    world.method(api, "/roles", "GET", function_arn("pets"), credentials=f"arn:aws:iam::{ACCOUNT}:role/r")
    world.deploy(api, "prod", {"alias": "live"}, logging_level=None)

    # When the account is scanned
    run = scan(cli)

    # Then exit 1, the document has only "findings", and each finding has exactly the contract keys
    assert run.code == 1
    assert set(run.json) == {"findings"}
    assert {f["kind"] for f in run.json["findings"]} >= {
        "missing_permission",
        "duplicate_statement",
        "logging_disabled",
        "integration_role",
    }
    for finding in run.json["findings"]:
        assert set(finding) == CONTRACT_KEYS, finding


def test_scan_does_not_change_any_policy(world: World, cli: Any) -> None:
    # Given a missing grant and a duplicate pair on the alias
    api = alias_api(world)
    world.grant("pets", execute_api(api, "dev/GET/pets"), sid="dup-1", qualifier="live")
    world.grant("pets", execute_api(api, "dev/GET/pets"), sid="dup-2", qualifier="live")
    before = world.statements("pets", "live")

    # When the account is scanned
    scan(cli)

    # Then the policy is exactly as it was
    assert world.statements("pets", "live") == before
    assert world.statements("pets") == []


def test_scan_is_clean_after_remediate(world: World, cli: Any) -> None:
    # Given a missing grant that scan reports
    alias_api(world)
    assert scan(cli).code == 1

    # When the API is remediated
    assert cli("remediate", "--api", "pets", "--local", "--format", "json").code == 0

    # Then a second scan finds nothing
    assert (scan(cli).code, scan(cli).json) == (0, {"findings": []})


def test_scan_of_unknown_api_is_a_usage_error(
    world: World, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no API called "nope"
    alias_api(world, granted=True)

    # When it is scanned
    run = scan(cli, "--api", "nope")

    # Then exit 2 and a message on stderr
    assert run.code == 2
    assert "nope" in capsys.readouterr().err


# --- what each finding kind looks like --------------------------------------------------------------


def missing_on_alias(world: World) -> dict[str, Any]:
    api = alias_api(world)
    return {
        "kind": "missing_permission",
        "apiId": api,
        "apiName": "pets",
        "stage": "prod",
        "method": "GET",
        "resourcePath": "/pets",
        "functionArn": function_arn("pets"),
        "qualifier": "live",
        "sourceArn": execute_api(api, "prod/GET/pets"),
    }


def missing_on_authorizer(world: World) -> dict[str, Any]:
    api = alias_api(world, granted=True)
    world.function("auth")
    authorizer = world.authorizer(api, "auth", function_arn("auth"), kind="REQUEST")
    world.method(api, "/secure", "GET", None, authorizer_id=authorizer)
    world.deploy(api, "prod", {"alias": "live"})
    return {
        "kind": "missing_permission",
        "apiId": api,
        "stage": "prod",
        "authorizerId": authorizer,
        "functionArn": function_arn("auth"),
        "qualifier": None,
        "sourceArn": execute_api(api, f"authorizers/{authorizer}"),
    }


def duplicate_grant(world: World) -> dict[str, Any]:
    api = alias_api(world, granted=True)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="console-copy", qualifier="live")
    return {"kind": "duplicate_statement", "apiId": api, "sid": "console-copy", "qualifier": "live"}


def redundant_grant(world: World) -> dict[str, Any]:
    api = alias_api(world, granted=True)
    world.grant("pets", execute_api(api, "prod/GET/pets"), sid="narrow", qualifier="live")
    return {"kind": "redundant_statement", "apiId": api, "sid": "narrow", "detail": "covered by pets-get"}


def stale_grant(world: World) -> dict[str, Any]:
    alias_api(world, granted=True)
    old = world.rest_api("deleted")
    world.grant("pets", execute_api(old, "*/GET/pets"), sid="old-api", qualifier="live")
    world.client("apigateway").delete_rest_api(restApiId=old)
    return {
        "kind": "stale_statement",
        "apiId": old,
        "sid": "old-api",
        "sourceArn": execute_api(old, "*/GET/pets"),
    }


def near_limit(world: World) -> dict[str, Any]:
    api = alias_api(world, granted=True)
    for index in range(60):  # ~17.6 KB: above 80 % of 20 KB, each grant for a path of the API
        world.grant(
            "pets", execute_api(api, f"*/GET/pets/{index:03d}"), sid=f"fill-{index:03d}", qualifier="live"
        )
    return {"kind": "policy_near_limit", "functionArn": function_arn("pets"), "qualifier": "live"}


def logging_off(world: World) -> dict[str, Any]:
    api = alias_api(world, granted=True, logging_level=None)
    return {"kind": "logging_disabled", "apiId": api, "stage": "prod"}


def integration_role(world: World) -> dict[str, Any]:
    api = alias_api(world, credentials=f"arn:aws:iam::{ACCOUNT}:role/apigw")
    return {"kind": "integration_role", "apiId": api, "method": "GET", "qualifier": "live"}


def cross_account(world: World) -> dict[str, Any]:
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", "arn:aws:lambda:us-east-1:210987654321:function:x")
    world.deploy(api, "prod")
    return {
        "kind": "cross_account_function",
        "apiId": api,
        "functionArn": "arn:aws:lambda:us-east-1:210987654321:function:x",
    }


def missing_function(world: World) -> dict[str, Any]:
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("ghost"))
    world.deploy(api, "prod")
    return {"kind": "missing_function", "apiId": api, "functionArn": function_arn("ghost"), "method": "GET"}


@pytest.mark.parametrize(
    "scenario",
    [
        missing_on_alias,
        missing_on_authorizer,
        duplicate_grant,
        redundant_grant,
        stale_grant,
        near_limit,
        logging_off,
        integration_role,
        cross_account,
        missing_function,
    ],
)
def test_scan_reports_the_finding_each_problem_causes(
    world: World, cli: Any, scenario: Callable[[World], dict[str, Any]]
) -> None:
    # Given an account with exactly one kind of problem
    expected = scenario(world)

    # When the account is scanned
    run = scan(cli)

    # Then exit 1 and exactly one finding of that kind, with the identifying fields filled in
    assert run.code == 1
    found = findings_of(run, expected["kind"])
    assert len(found) == 1, run.json
    assert {key: found[0][key] for key in expected} == expected


# --- filters ----------------------------------------------------------------------------------------


def two_broken_apis(world: World) -> tuple[str, str]:
    pets = alias_api(world, "pets")
    orders = alias_api(world, "orders", function="orders")
    return pets, orders


@pytest.mark.parametrize("by", ["name", "id"])
def test_scan_api_filter_reports_only_that_api(world: World, cli: Any, by: str) -> None:
    # Given two APIs with missing grants
    pets, _ = two_broken_apis(world)

    # When only pets is scanned, by name or by id
    run = scan(cli, "--api", "pets" if by == "name" else pets)

    # Then every finding is about pets
    assert run.code == 1
    assert {f["apiId"] for f in run.json["findings"]} == {pets}


def test_scan_api_filter_is_repeatable(world: World, cli: Any) -> None:
    # Given two APIs with missing grants and a healthy third one
    pets, orders = two_broken_apis(world)
    alias_api(world, "users", function="users", granted=True)

    # When two of them are named
    run = scan(cli, "--api", "pets", "--api", orders)

    # Then both are reported
    assert {f["apiId"] for f in run.json["findings"]} == {pets, orders}


def test_scan_stage_filter_reports_only_that_stage(world: World, cli: Any) -> None:
    # Given one API deployed to dev and prod, with no grant for either
    alias_api(world, stages=("dev", "prod"))
    assert {f["stage"] for f in scan(cli).json["findings"]} == {"dev", "prod"}

    # When only prod is scanned
    run = scan(cli, "--stage", "prod")

    # Then only prod's calls are reported
    assert run.code == 1
    assert [(f["kind"], f["stage"]) for f in run.json["findings"]] == [("missing_permission", "prod")]


def test_scan_stage_filter_skips_apis_without_that_stage(world: World, cli: Any) -> None:
    # Given pets on prod and orders only on dev, both missing grants
    alias_api(world, "pets")
    orders = alias_api(world, "orders", function="orders", stages=("dev",))

    # When the account is scanned for stage dev
    run = scan(cli, "--stage", "dev")

    # Then only orders is reported; pets, having no dev stage, is skipped
    assert {(f["apiId"], f["stage"]) for f in run.json["findings"]} == {(orders, "dev")}
