"""`permheal remediate --local` end to end against moto with AWS-faithful Lambda policies.

Each test builds a small API with real boto3 calls, runs the real CLI and checks the policies
Lambda holds afterwards plus the JSON contract of design.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from permheal.policy import POLICY_SIZE_LIMIT, InvokeRequest, Policy, evaluate, policy_size
from permheal_local.builder import ACCOUNT, REGION, World, execute_api, function_arn

APIGW = "apigateway.amazonaws.com"
OTHER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/apigw-invokes-lambda"


# --- helpers ----------------------------------------------------------------------------------------


def source_arn(statement: dict[str, Any]) -> str | None:
    arn: str | None = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    return arn


def sources(world: World, function: str, qualifier: str | None = None) -> list[str | None]:
    return [source_arn(s) for s in world.statements(function, qualifier)]


def sids(world: World, function: str, qualifier: str | None = None) -> list[str]:
    return [s["Sid"] for s in world.statements(function, qualifier)]


def allows(world: World, function: str, qualifier: str | None, source: str) -> bool:
    """Whether the qualifier's policy, as Lambda holds it now, lets API Gateway call from `source`."""
    policy = Policy(tuple(world.statements(function, qualifier)))
    request = InvokeRequest(function_arn(function, qualifier), source, ACCOUNT)
    return evaluate(policy, request).allowed


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def kinds(result: dict[str, Any]) -> list[str]:
    return [f["kind"] for f in result["findings"]]


def api_with_method(
    world: World,
    function_text: str,
    *,
    name: str = "pets",
    path: str = "/pets",
    method: str = "GET",
    stages: tuple[str, ...] = ("prod",),
    variables: dict[str, str] | None = None,
    **method_options: Any,
) -> str:
    """One API, one Lambda method, deployed to `stages`, with every API allowlisted."""
    api = world.rest_api(name)
    world.method(api, path, method, function_text, **method_options)
    for stage in stages:
        world.deploy(api, stage, variables)
    world.allow("*")
    return api


def alias_api(world: World, **options: Any) -> str:
    """`pets:live` invoked through `${stageVariables.alias}`, the most common production setup."""
    world.function("pets", alias="live")
    return api_with_method(
        world, function_arn("pets", "${stageVariables.alias}"), variables={"alias": "live"}, **options
    )


def grant_live(world: World, sid: str, source: str) -> None:
    world.grant("pets", source, sid=sid, qualifier="live")


def only_change(result: dict[str, Any]) -> dict[str, Any]:
    assert len(result["changes"]) == 1, result["changes"]
    change: dict[str, Any] = result["changes"][0]
    return change


# --- which policy gets the grant -------------------------------------------------------------------


def test_alias_from_stage_variable_gets_grant_on_alias_policy_only(world: World, cli: Any) -> None:
    # Given GET /pets invokes pets:${stageVariables.alias} with alias=live, and no permission anywhere
    api = alias_api(world)

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the alias policy allows the prod call, and the unqualified function still has no policy
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert sources(world, "pets", "live") == [execute_api(api, "*/GET/pets")]
    assert world.statements("pets") == []
    assert allows(world, "pets", "live", execute_api(api, "prod/GET/pets"))
    change = only_change(run.json)
    assert (change["functionArn"], change["qualifier"]) == (function_arn("pets"), "live")
    assert change["added"] == [
        {"sid": sids(world, "pets", "live")[0], "sourceArn": execute_api(api, "*/GET/pets")}
    ]
    assert change["added"][0]["sid"].startswith("permheal-")
    finding = next(f for f in run.json["findings"] if f["kind"] == "missing_permission")
    assert (finding["qualifier"], finding["sourceArn"]) == ("live", execute_api(api, "prod/GET/pets"))


def test_version_qualifier_gets_grant_on_version_policy(world: World, cli: Any) -> None:
    # Given GET /pets invokes version 1 of pets
    world.function("pets", versions=1)
    api = api_with_method(world, function_arn("pets", "1"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then version 1's policy holds the grant, the unqualified policy does not
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets", "1") == [execute_api(api, "*/GET/pets")]
    assert world.statements("pets") == []


def test_unqualified_function_gets_grant_on_function_policy(world: World, cli: Any) -> None:
    # Given GET /pets invokes the unqualified function (an alias exists but is not used)
    world.function("pets", alias="live")
    api = api_with_method(world, function_arn("pets"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the function's own policy holds the grant, the alias is untouched
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets") == [execute_api(api, "*/GET/pets")]
    assert world.statements("pets", "live") == []
    assert only_change(run.json)["qualifier"] is None


def test_function_named_by_stage_variable_gets_grant(world: World, cli: Any) -> None:
    # Given the integration invokes function:${stageVariables.fn}, and prod sets fn=pets-prod
    world.function("pets-prod")
    world.function("pets-dev")
    api = api_with_method(
        world,
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:${{stageVariables.fn}}",
        variables={"fn": "pets-prod"},
    )

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then only the function the stage variable names gets a grant
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets-prod") == [execute_api(api, "*/GET/pets")]
    assert world.statements("pets-dev") == []


def test_undefined_stage_variable_is_reported_as_missing_function(world: World, cli: Any) -> None:
    # Given the integration uses ${stageVariables.alias} but the stage does not define it
    world.function("pets", alias="live")
    api_with_method(world, function_arn("pets", "${stageVariables.alias}"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then nothing is guessed: a missing_function finding names the variable, nothing changes
    assert run.json["outcome"] == "no_change"
    finding = next(f for f in run.json["findings"] if f["kind"] == "missing_function")
    assert "alias" in finding["detail"]
    assert world.statements("pets") == world.statements("pets", "live") == []


@pytest.mark.parametrize("kind", ["TOKEN", "REQUEST"])
def test_lambda_authorizer_without_permission_gets_authorizer_grant(
    world: World, cli: Any, kind: str
) -> None:
    # Given GET /pets is protected by a Lambda authorizer whose function has no permission
    world.function("pets")
    world.function("auth")
    api = world.rest_api("pets")
    authorizer = world.authorizer(api, "auth", function_arn("auth"), kind=kind)
    world.method(api, "/pets", "GET", function_arn("pets"), authorizer_id=authorizer)
    world.deploy(api, "prod")
    world.allow("*")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the authorizer function is granted exactly its authorizer source ARN (no stage)
    assert run.json["outcome"] == "repaired"
    assert sources(world, "auth") == [execute_api(api, f"authorizers/{authorizer}")]
    assert sources(world, "pets") == [execute_api(api, "*/GET/pets")]
    finding = next(f for f in run.json["findings"] if f["authorizerId"] == authorizer)
    assert finding["kind"] == "missing_permission"


# --- scope of the added grant ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "granted", "invoked"),
    [
        ("/pets/{petId}", "GET", "*/GET/pets/*", "prod/GET/pets/{petId}"),
        ("/{proxy+}", "GET", "*/GET/*", "prod/GET/{proxy+}"),
        ("/pets", "ANY", "*/*/pets", "prod/ANY/pets"),
        ("/pets/{proxy+}", "ANY", "*/*/pets/*", "prod/ANY/pets/{proxy+}"),
    ],
)
def test_method_scope_wildcards_path_parameters_and_any(
    world: World, cli: Any, path: str, method: str, granted: str, invoked: str
) -> None:
    # Given a method on a templated path (or ANY) without permission
    world.function("pets")
    api = api_with_method(world, function_arn("pets"), path=path, method=method)

    # When the API is remediated with the default (method) scope
    run = remediate(cli, "pets")

    # Then the grant is SAM-style: any stage, path parameters and ANY as `*`, and the call is allowed
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets") == [execute_api(api, granted)]
    assert allows(world, "pets", None, execute_api(api, invoked))


def test_stage_scope_grants_only_the_invoked_stage(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_SCOPE=stage and GET /pets/{petId} on stage prod
    monkeypatch.setenv("PERMHEAL_SCOPE", "stage")
    world.function("pets")
    api = api_with_method(world, function_arn("pets"), path="/pets/{petId}")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the grant names prod only
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets") == [execute_api(api, "prod/GET/pets/*")]
    assert not allows(world, "pets", None, execute_api(api, "dev/GET/pets/{petId}"))


def test_api_scope_grants_every_method_of_the_api(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_SCOPE=api and two methods invoking the same function
    monkeypatch.setenv("PERMHEAL_SCOPE", "api")
    world.function("pets")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("pets"))
    world.method(api, "/pets/{petId}", "DELETE", function_arn("pets"))
    world.deploy(api, "prod")
    world.allow("*")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then one API-wide statement covers both
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets") == [execute_api(api, "*/*/*")]


# --- existing grants that do not count ---------------------------------------------------------------


def test_grant_for_another_stage_is_replaced_by_method_scope_grant(world: World, cli: Any) -> None:
    # Given stages dev and prod, and a grant for dev only
    api = alias_api(world, stages=("dev", "prod"))
    grant_live(world, "dev-only", execute_api(api, "dev/GET/pets"))

    # When prod is remediated
    run = remediate(cli, "pets", "--stage", "prod")

    # Then the any-stage grant is added and the dev grant it now covers is removed after it
    assert run.json["outcome"] == "repaired"
    added = execute_api(api, "*/GET/pets")
    assert sources(world, "pets", "live") == [added]
    change = only_change(run.json)
    assert [r["sid"] for r in change["removed"]] == ["dev-only"]
    assert change["removed"][0]["reason"] == f"covered by {change['added'][0]['sid']}"
    assert allows(world, "pets", "live", execute_api(api, "prod/GET/pets"))
    assert allows(world, "pets", "live", execute_api(api, "dev/GET/pets"))


def recreated_api(world: World) -> tuple[str, str]:
    """An API deleted and created again under the same name; the alias still grants the old id."""
    world.function("pets", alias="live")
    old = world.rest_api("pets")
    grant_live(world, "old-api", execute_api(old, "*/GET/pets"))
    world.client("apigateway").delete_rest_api(restApiId=old)
    new = api_with_method(world, function_arn("pets", "live"))
    return old, new


def test_grant_for_deleted_api_is_reported_stale_and_kept(world: World, cli: Any) -> None:
    # Given the alias only grants the API id the API had before it was recreated
    old, new = recreated_api(world)

    # When the new API is remediated
    run = remediate(cli, "pets")

    # Then the new id is granted, and the old grant is reported stale but kept
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets", "live") == [execute_api(old, "*/GET/pets"), execute_api(new, "*/GET/pets")]
    stale = [f for f in run.json["findings"] if f["kind"] == "stale_statement"]
    assert [(f["sid"], f["apiId"]) for f in stale] == [("old-api", old)]
    assert only_change(run.json)["removed"] == []


def test_grant_for_deleted_api_is_removed_when_prune_stale(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_PRUNE_STALE=true and a grant for the API's old id
    monkeypatch.setenv("PERMHEAL_PRUNE_STALE", "true")
    old, new = recreated_api(world)

    # When the new API is remediated
    run = remediate(cli, "pets")

    # Then the stale grant is gone and the new one is in place
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets", "live") == [execute_api(new, "*/GET/pets")]
    removed = only_change(run.json)["removed"]
    assert [(r["sid"], r["sourceArn"]) for r in removed] == [("old-api", execute_api(old, "*/GET/pets"))]
    assert old in removed[0]["reason"]


def test_grant_on_unqualified_function_does_not_count_for_alias(world: World, cli: Any) -> None:
    # Given the unqualified function allows the API, but the integration invokes the alias
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="unqualified")
    before = world.statements("pets")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the alias gets its own grant and the unqualified statement is left exactly as it was
    assert run.json["outcome"] == "repaired"
    assert sources(world, "pets", "live") == [execute_api(api, "*/GET/pets")]
    assert world.statements("pets") == before


# --- dead weight ----------------------------------------------------------------------------------


def test_console_duplicates_are_reduced_to_the_first(world: World, cli: Any) -> None:
    # Given the console added the same grant three times under different Sids
    api = alias_api(world)
    for sid in ("console-1", "console-2", "console-3"):
        grant_live(world, sid, execute_api(api, "*/GET/pets"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then only the first remains, the others are removed as its duplicates
    assert run.json["outcome"] == "repaired"
    assert sids(world, "pets", "live") == ["console-1"]
    change = only_change(run.json)
    assert change["added"] == []
    assert [(r["sid"], r["reason"]) for r in change["removed"]] == [
        ("console-2", "duplicate of console-1"),
        ("console-3", "duplicate of console-1"),
    ]
    assert sorted(f["sid"] for f in run.json["findings"] if f["kind"] == "duplicate_statement") == [
        "console-2",
        "console-3",
    ]


def test_narrow_grant_covered_by_api_wide_grant_is_removed(world: World, cli: Any) -> None:
    # Given an API-wide grant and a narrower one for GET /pets
    api = alias_api(world)
    grant_live(world, "wide", execute_api(api, "*/*/*"))
    grant_live(world, "narrow", execute_api(api, "prod/GET/pets"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the narrow grant is removed and the call is still allowed by the wide one
    assert run.json["outcome"] == "repaired"
    assert sids(world, "pets", "live") == ["wide"]
    assert only_change(run.json)["removed"][0]["reason"] == "covered by wide"
    assert allows(world, "pets", "live", execute_api(api, "prod/GET/pets"))


def foreign_statements(api: str, other: str) -> dict[str, list[dict[str, Any]]]:
    """AddPermission requests for statements permheal must never remove, by the reason why."""
    invoke = {"Action": "lambda:InvokeFunction", "Principal": APIGW}
    return {
        "s3-principal": [
            {
                "Action": "lambda:InvokeFunction",
                "Principal": "s3.amazonaws.com",
                "SourceArn": "arn:aws:s3:::pets",
            }
        ],
        "account-principal": [{"Action": "lambda:InvokeFunction", "Principal": OTHER_ACCOUNT}],
        "other-action": [
            {**invoke, "Action": "lambda:GetFunction", "SourceArn": execute_api(api, "*/GET/pets")}
        ],
        "org-condition": [
            {**invoke, "SourceArn": execute_api(api, "*/GET/pets"), "PrincipalOrgID": "o-a1b2c3d4e5"}
        ],
        "source-account-only": [{**invoke, "SourceAccount": ACCOUNT}],
        "other-api-duplicates": [
            {**invoke, "SourceArn": execute_api(other, "*/GET/pets")},
            {**invoke, "SourceArn": execute_api(other, "*/GET/pets")},
        ],
        "other-api-covered": [
            {**invoke, "SourceArn": execute_api(other, "*/*/*")},
            {**invoke, "SourceArn": execute_api(other, "prod/GET/pets")},
        ],
    }


@pytest.mark.parametrize("case", list(foreign_statements("a", "b")))
def test_statements_permheal_does_not_own_are_never_removed(world: World, cli: Any, case: str) -> None:
    # Given the alias policy holds statements for other principals, actions, conditions or APIs
    api = alias_api(world)
    other = world.rest_api("other")
    for index, request in enumerate(foreign_statements(api, other)[case]):
        world.client("lambda").add_permission(
            FunctionName="pets", Qualifier="live", StatementId=f"{case}-{index}", **request
        )
    before = world.statements("pets", "live")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then every one of them is still there, unchanged, and the API's call is allowed
    assert run.code == 0
    after = world.statements("pets", "live")
    assert [s for s in after if s["Sid"].startswith(case)] == before
    assert all(r["sid"].startswith("permheal-") for c in run.json["changes"] for r in c["removed"])
    assert allows(world, "pets", "live", execute_api(api, "prod/GET/pets"))


# --- what permheal reports instead of changing ---------------------------------------------------------


def test_integration_with_credentials_role_is_reported_and_left_alone(world: World, cli: Any) -> None:
    # Given the integration invokes pets:live through an IAM role
    alias_api(world, credentials=ROLE)

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then it is reported, and no policy is touched
    assert (run.code, run.json["outcome"], run.json["changes"]) == (0, "no_change", [])
    finding = next(f for f in run.json["findings"] if f["kind"] == "integration_role")
    assert (finding["functionArn"], finding["qualifier"]) == (function_arn("pets"), "live")
    assert world.statements("pets", "live") == world.statements("pets") == []


def test_function_in_another_account_is_reported_and_left_alone(world: World, cli: Any) -> None:
    # Given the integration invokes a function in another account (and a same-named one exists here)
    world.function("x")
    api_with_method(world, function_arn("x", account=OTHER_ACCOUNT))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then it is reported and nothing is changed
    assert (run.code, run.json["outcome"], run.json["changes"]) == (0, "no_change", [])
    finding = next(f for f in run.json["findings"] if f["kind"] == "cross_account_function")
    assert finding["functionArn"] == f"arn:aws:lambda:{REGION}:{OTHER_ACCOUNT}:function:x"
    assert world.statements("x") == []


def test_integration_to_missing_function_is_reported_and_fails(world: World, cli: Any) -> None:
    # Given GET /pets invokes a function that does not exist
    api_with_method(world, function_arn("ghost"))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the run fails with a missing_function finding for that method
    assert (run.code, run.json["outcome"], run.json["changes"]) == (1, "failed", [])
    finding = next(f for f in run.json["findings"] if f["kind"] == "missing_function")
    assert (finding["functionArn"], finding["method"], finding["resourcePath"]) == (
        function_arn("ghost"),
        "GET",
        "/pets",
    )


# --- the 20 KB limit ---------------------------------------------------------------------------------


def fill_alias_policy(world: World, sources_for: Any, target_bytes: int = 20_300) -> list[dict[str, Any]]:
    """Add grants `sources_for(i)` to pets:live until the policy is at least `target_bytes` big."""
    statements: list[dict[str, Any]] = []
    index = 0
    while policy_size(statements) < target_bytes:
        grant_live(world, f"fill-{index:03d}", sources_for(index))
        statements = world.statements("pets", "live")
        index += 1
    assert policy_size(statements) <= POLICY_SIZE_LIMIT
    return statements


def other_apis_source(world: World) -> Any:
    others = [world.rest_api(f"other-{n}") for n in range(3)]
    return lambda i: execute_api(others[i % 3], f"*/GET/resource-{i:03d}")


def test_repair_that_would_exceed_policy_limit_is_refused(world: World, cli: Any) -> None:
    # Given the alias policy is ~20.3 KB of grants for other, existing APIs
    alias_api(world)
    before = fill_alias_policy(world, other_apis_source(world))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then it fails with a refusal naming the limit, reports the near-full policy, and changes nothing
    assert (run.code, run.json["outcome"], run.json["changes"]) == (1, "failed", [])
    assert f"{POLICY_SIZE_LIMIT}-byte limit" in run.json["error"]
    assert "policy_near_limit" in kinds(run.json)
    assert world.statements("pets", "live") == before


def test_consolidation_cannot_make_room_among_other_apis_grants(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_CONSOLIDATE=true and an alias policy full of other APIs' grants
    monkeypatch.setenv("PERMHEAL_CONSOLIDATE", "true")
    alias_api(world)
    before = fill_alias_policy(world, other_apis_source(world))

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then an API-wide grant does not fit either: still refused, nothing changed
    assert (run.code, run.json["outcome"]) == (1, "failed")
    assert f"{POLICY_SIZE_LIMIT}-byte limit" in run.json["error"]
    assert world.statements("pets", "live") == before


def many_methods_api(world: World, count: int) -> str:
    """pets:live behind `count` methods, none of them granted yet."""
    world.function("pets", alias="live")
    api = world.rest_api("pets")
    for index in range(count):
        world.method(api, f"/pets/kind-{index}", "GET", function_arn("pets", "live"))
    world.deploy(api, "prod")
    world.allow("*")
    return api


@pytest.mark.parametrize(("consolidate", "outcome"), [("false", "failed"), ("true", "repaired")])
def test_consolidation_turns_grants_that_do_not_fit_into_one_api_wide_grant(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch, consolidate: str, outcome: str
) -> None:
    # Given a ~19.8 KB alias policy: room for one more statement, not for four method grants
    monkeypatch.setenv("PERMHEAL_CONSOLIDATE", consolidate)
    api = many_methods_api(world, 4)
    before = fill_alias_policy(world, other_apis_source(world), target_bytes=19_800)

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then only with consolidation is one {api}/*/*/* grant added instead of four method grants
    assert run.json["outcome"] == outcome
    expected = [execute_api(api, "*/*/*")] if consolidate == "true" else []
    assert sources(world, "pets", "live") == [source_arn(s) for s in before] + expected
    assert allows(world, "pets", "live", execute_api(api, "prod/GET/pets/kind-3")) is (consolidate == "true")


def test_consolidation_never_removes_grants_before_their_replacement_exists(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given PERMHEAL_CONSOLIDATE=true and an alias policy full of this API's narrow grants for stage dev
    monkeypatch.setenv("PERMHEAL_CONSOLIDATE", "true")
    api = alias_api(world, stages=("dev", "prod"))
    before = fill_alias_policy(world, lambda i: execute_api(api, f"dev/GET/legacy-{i:03d}"))

    # When prod is remediated
    run = remediate(cli, "pets", "--stage", "prod")

    # Then the API-wide grant would only fit after removing grants it alone covers: refused instead,
    # since removing first could leave a dev call without a grant; nothing is changed
    assert (run.code, run.json["outcome"]) == (1, "failed")
    assert f"{POLICY_SIZE_LIMIT}-byte limit" in run.json["error"]
    assert world.statements("pets", "live") == before


# --- allowlist -------------------------------------------------------------------------------------


def test_api_outside_allowlist_is_refused_and_nothing_changes(world: World, cli: Any) -> None:
    # Given only API "other" is allowlisted
    alias_api(world)
    world.allow("other")

    # When pets is remediated
    run = remediate(cli, "pets")

    # Then the run is refused (exit 1) and no policy is written
    assert (run.code, run.json["outcome"], run.json["changes"]) == (1, "refused", [])
    assert "allowlist" in run.json["error"]
    assert world.statements("pets", "live") == []


def test_missing_allowlist_parameter_refuses_everything(world: World, cli: Any) -> None:
    # Given the allowlist parameter does not exist
    alias_api(world)
    world.client("ssm").delete_parameter(Name="/permheal/allowed-apis")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then permheal fails closed
    assert (run.code, run.json["outcome"]) == (1, "refused")
    assert world.statements("pets", "live") == []


@pytest.mark.parametrize("entry", ["*", "api-id", "pets"])
def test_allowlist_entry_allows_the_api(world: World, cli: Any, entry: str) -> None:
    # Given the allowlist holds `*`, the API's id or its name (next to an unrelated entry)
    api = alias_api(world)
    world.allow("unrelated", api if entry == "api-id" else entry)

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then it is repaired
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert sources(world, "pets", "live") == [execute_api(api, "*/GET/pets")]


# --- modes and usage ----------------------------------------------------------------------------------


def test_dry_run_flag_shows_plan_and_changes_nothing(world: World, cli: Any) -> None:
    # Given a missing grant and a console duplicate pair
    api = alias_api(world)
    grant_live(world, "console-1", execute_api(api, "prod/GET/other"))
    grant_live(world, "console-2", execute_api(api, "prod/GET/other"))
    before = world.statements("pets", "live")

    # When the API is remediated with --dry-run
    run = remediate(cli, "pets", "--dry-run")

    # Then the plan is reported as changes, but the policy is as it was
    assert (run.code, run.json["outcome"]) == (0, "dry_run")
    change = only_change(run.json)
    assert [a["sourceArn"] for a in change["added"]] == [execute_api(api, "*/GET/pets")]
    assert [r["sid"] for r in change["removed"]] == ["console-2"]
    assert change["policyBytesAfter"] > change["policyBytesBefore"]
    assert world.statements("pets", "live") == before


def test_dry_run_mode_setting_changes_nothing(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dry-run deployment
    monkeypatch.setenv("PERMHEAL_MODE", "dry-run")
    api = alias_api(world)

    # When the API is remediated without --dry-run
    run = remediate(cli, "pets")

    # Then it is still only a dry run
    assert (run.code, run.json["outcome"]) == (0, "dry_run")
    assert only_change(run.json)["added"][0]["sourceArn"] == execute_api(api, "*/GET/pets")
    assert world.statements("pets", "live") == []


def test_second_run_after_repair_changes_nothing(world: World, cli: Any) -> None:
    # Given an API that was just repaired
    alias_api(world)
    assert remediate(cli, "pets").json["outcome"] == "repaired"
    repaired = world.statements("pets", "live")

    # When it is remediated again
    run = remediate(cli, "pets")

    # Then there is nothing to do
    assert (run.code, run.json["outcome"], run.json["changes"]) == (0, "no_change", [])
    assert world.statements("pets", "live") == repaired


def test_remediate_by_api_id_works(world: World, cli: Any) -> None:
    # Given an API known by its id
    api = alias_api(world)

    # When it is remediated by id
    run = remediate(cli, api)

    # Then it is repaired and the result names it
    assert (run.json["outcome"], run.json["apiId"], run.json["apiName"]) == ("repaired", api, "pets")


def test_unknown_api_is_a_usage_error(world: World, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given no API called "nope"
    alias_api(world)

    # When it is remediated
    run = remediate(cli, "nope")

    # Then exit 2 with a message saying what was not found, and nothing on stdout
    assert (run.code, run.out) == (2, "")
    assert "no REST API, HTTP API or WebSocket API with id or name 'nope'" in capsys.readouterr().err


def test_ambiguous_api_name_is_a_usage_error_listing_ids(
    world: World, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two APIs both named "pets"
    first = alias_api(world)
    second = world.rest_api("pets")

    # When "pets" is remediated
    run = remediate(cli, "pets")

    # Then exit 2, the message lists both ids, and nothing is changed
    assert run.code == 2
    err = capsys.readouterr().err
    assert first in err and second in err
    assert world.statements("pets", "live") == []
