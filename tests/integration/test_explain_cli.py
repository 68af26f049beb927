"""`permheal explain` against moto: every kind of cause traced, the verdict, the fix that works."""

from __future__ import annotations

from typing import Any

import pytest

from permheal.planner import permheal_sid
from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from tests.integration.support import Petstore, build_petstore

ROUTE = "GET /pets/{petId}"


def explain(cli: Any, api: str, *flags: str) -> Any:
    return cli("explain", "--api", api, "--stage", "prod", "--format", "json", *flags)


def statements(run: Any, path: int = 0) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run.json["paths"][path]["statements"]
    return result


def steps(run: Any, path: int = 0) -> dict[str, str]:
    return {s["step"]: s["detail"] for s in run.json["paths"][path]["steps"] if s["step"] != "note"}


def notes(run: Any, path: int = 0) -> list[str]:
    return [s["detail"] for s in run.json["paths"][path]["steps"] if s["step"] == "note"]


def apply_fix(world: World, fix: dict[str, Any], function: str, qualifier: str | None) -> None:
    world.grant(function, fix["sourceArn"], sid=fix["sid"], qualifier=qualifier)


def test_a_granted_route_is_allowed_by_the_matching_statement(world: World, cli: Any) -> None:
    # Given the petstore's route granted for every stage on the alias prod invokes
    pets = build_petstore(world)
    world.grant(
        "pets",
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{pets.api_id}/*/GET/pets/*",
        sid="ok",
        qualifier="live",
    )
    # When on-call asks why the call works
    run = explain(cli, "petstore", "--route", ROUTE)
    # Then it is allowed by that statement, traced through the stage variable to the alias
    assert run.code == 0, run.out
    assert run.json["verdict"] == "allowed"
    assert statements(run) == [
        {"sid": "ok", "effect": "Allow", "outcome": "allows", "reason": statements(run)[0]["reason"]}
    ]
    assert "holds for" in statements(run)[0]["reason"]
    assert steps(run)["stage variables"] == "${stageVariables.alias} = 'live'"
    assert run.json["paths"][0]["qualifier"] == "live"
    assert run.json["paths"][0]["fix"] is None


def test_a_grant_for_another_stage_names_the_failed_condition_and_its_fix_works(
    world: World, cli: Any
) -> None:
    # Given a grant for the dev stage only, while prod is called
    pets = build_petstore(world)
    dev = pets.method_arn("dev").replace("{petId}", "*")
    world.grant("pets", dev, sid="dev-only", qualifier="live")
    # When explained
    run = explain(cli, pets.api_id, "--route", ROUTE)
    # Then denied (exit 1), the statement's condition is named with the call's own source ARN
    assert run.code == 1
    assert run.json["verdict"] == "denied"
    [judged] = statements(run)
    assert judged["outcome"] == "no match"
    assert "fails" in judged["reason"] and pets.method_arn("prod") in judged["reason"]
    # And the fix is the grant permheal would add; applying it makes the same call allowed
    fix = run.json["paths"][0]["fix"]
    pattern = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{pets.api_id}/*/GET/pets/*"
    assert (fix["sourceArn"], fix["sid"]) == (pattern, permheal_sid(pattern, "live"))
    assert f"--qualifier live --statement-id {fix['sid']}" in fix["cli"]
    assert f"SourceArn: {pattern}" in fix["cloudformation"]
    apply_fix(world, fix, "pets", "live")
    assert explain(cli, pets.api_id, "--route", ROUTE).code == 0


def test_a_grant_on_the_unqualified_function_is_the_wrong_qualifier(world: World, cli: Any) -> None:
    # Given a grant on `pets` (unqualified) while the stage invokes pets:live
    pets = build_petstore(world)
    world.grant("pets", pets.method_arn("*"), sid="unqualified")
    # When explained
    run = explain(cli, "petstore", "--route", ROUTE)
    # Then denied, and the note says the grant sits on the wrong qualifier
    assert run.code == 1
    assert statements(run) == []
    assert any("wrong qualifier: unqualified" in n for n in notes(run)), notes(run)


def test_an_authorizer_is_traced_to_its_own_source_arn(world: World, cli: Any) -> None:
    # Given the petstore's TOKEN authorizer without a grant
    pets = build_petstore(world)
    # When explained by id
    run = explain(cli, "petstore", "--authorizer", pets.authorizer_id)
    # Then denied, with the authorizer's source ARN and a fix for exactly that ARN
    assert run.code == 1
    path = run.json["paths"][0]
    assert path["sourceArn"] == pets.authorizer_arn()
    assert path["functionArn"] == function_arn("pets-authorizer") and path["qualifier"] is None
    assert path["fix"]["sourceArn"] == pets.authorizer_arn()
    apply_fix(world, path["fix"], "pets-authorizer", None)
    assert explain(cli, "petstore", "--authorizer", pets.authorizer_id).json["verdict"] == "allowed"


def test_an_integration_role_is_not_checked_against_the_resource_policy(world: World, cli: Any) -> None:
    # Given a method invoked through an IAM role
    world.function("orders")
    api = world.rest_api("orders")
    world.method(api, "/orders", "POST", function_arn("orders"), credentials=world.execution_role())
    world.deploy(api, "prod")
    # When explained
    run = explain(cli, "orders", "--route", "POST /orders")
    # Then permheal says the role decides, not the policy, and exits 1 (not shown allowed)
    assert run.code == 1
    assert run.json["verdict"] == "not_checked"
    assert "role" in steps(run)["credentials"]


def test_a_canary_is_explained_as_its_own_share_of_traffic(world: World, cli: Any) -> None:
    # Given prod (alias live, granted) with a canary overriding the alias to beta (not granted)
    pets = build_petstore(world, stages={"prod": "live"})
    version = world.client("lambda").publish_version(FunctionName="pets")["Version"]
    world.client("lambda").create_alias(FunctionName="pets", Name="beta", FunctionVersion=version)
    world.grant("pets", pets.method_arn("prod"), sid="live-ok", qualifier="live")
    world.deploy_canary(pets.api_id, "prod", {"alias": "beta"}, percent=10.0)
    # When explained
    run = explain(cli, "petstore", "--route", ROUTE)
    # Then the stage's 90% are allowed, the canary's 10% on pets:beta denied: the call is denied
    verdicts = [(p["traffic"], p["percent"], p["qualifier"], p["verdict"]) for p in run.json["paths"]]
    assert verdicts == [("stage", 90.0, "live", "allowed"), ("canary", 10.0, "beta", "denied")]
    assert run.code == 1


def test_a_stage_variable_the_stage_does_not_define_is_denied(world: World, cli: Any) -> None:
    world.function("pets", alias="live")
    api = world.rest_api("vars")
    world.method(api, "/pets", "GET", function_arn("pets") + ":${stageVariables.alias}")
    world.deploy(api, "prod", {})
    run = explain(cli, "vars", "--route", "GET /pets")
    assert run.code == 1
    assert "NOT DEFINED" in steps(run)["stage variables"]


def test_a_mock_integration_needs_no_permission(world: World, cli: Any) -> None:
    api = world.rest_api("mock")
    world.method(api, "/health", "GET", None)
    world.deploy(api, "prod")
    run = explain(cli, "mock", "--route", "GET /health")
    assert (run.code, run.json["verdict"]) == (0, "not_lambda")


def test_a_route_the_stage_does_not_serve_is_one_line_and_exit_2(
    world: World, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    build_petstore(world)
    run = explain(cli, "petstore", "--route", "DELETE /pets/{petId}")
    err = capsys.readouterr().err
    assert run.code == 2 and run.out == ""
    assert err.count("\n") == 1 and "serves no DELETE /pets/{petId}" in err and "GET /pets/{petId}" in err


def test_the_table_shows_each_step_and_statement(world: World, cli: Any) -> None:
    pets: Petstore = build_petstore(world)
    world.grant("pets", pets.method_arn("dev"), sid="dev-only", qualifier="live")
    run = cli("explain", "--api", "petstore", "--stage", "prod", "--route", ROUTE)
    assert run.code == 1
    print(run.out)
    for text in (
        "DENIED",
        "stage variables",
        "dev-only",
        "no match",
        "aws lambda add-permission",
        "CloudFormation:",
    ):
        assert text in run.out
