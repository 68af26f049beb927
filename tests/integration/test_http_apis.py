"""HTTP and WebSocket APIs end to end: `permheal scan` / `remediate --local` against moto, judged by
the v2 simulator (route selection, authorizer, integration) and the independent oracle.
"""

from __future__ import annotations

from typing import Any

import pytest

from permheal_local.builder import ACCOUNT, World, function_arn
from tests.integration.support_v2 import (
    CLF_FORMAT,
    ROLE,
    execute_api,
    http_api,
    integration,
    jwt_authorizer,
    pets_http_api,
    request_authorizer,
    route,
    simulator,
    stage,
    websocket_api,
)


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def findings(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in result["findings"] if f["kind"] == kind]


def statements(world: World, function: str, qualifier: str | None = None) -> list[dict[str, Any]]:
    return world.statements(function, qualifier)


# ------------------------------------------------------------------------------------ HTTP routes


def test_http_routes_on_the_default_stage_fail_then_heal(world: World, cli: Any) -> None:
    # Given an HTTP API ($default stage) whose functions grant API Gateway nothing
    api_id = pets_http_api(world)
    sim = simulator(world)
    before = [
        sim.request(api_id, "$default", "GET", "/pets/42"),
        sim.request(api_id, "$default", "POST", "/a/b"),
    ]
    assert [(r.status, r.body, r.route) for r in before] == [
        (500, {"message": "Internal Server Error"}, "GET /pets/{id}"),
        (500, {"message": "Internal Server Error"}, "ANY /{proxy+}"),
    ]
    # When remediated by name
    run = remediate(cli, "shop")
    # Then both routes work, each function granted its own route in method scope
    assert run.code == 0, run.out
    result = run.json
    assert result["outcome"] == "repaired"
    after = [
        sim.request(api_id, "$default", "GET", "/pets/42"),
        sim.request(api_id, "$default", "POST", "/a/b"),
    ]
    assert [r.status for r in after] == [200, 200]
    added = {
        c["functionArn"].rsplit(":", 1)[-1]: [a["sourceArn"] for a in c["added"]] for c in result["changes"]
    }
    assert added == {
        "pets": [execute_api(api_id, "*/GET/pets/*")],
        "catchall": [execute_api(api_id, "*/*/*")],
    }
    missing = findings(result, "missing_permission")
    assert {(f["apiType"], f["routeKey"], f["method"], f["resourcePath"]) for f in missing} == {
        ("HTTP", "GET /pets/{id}", "GET", "/pets/{id}"),
        ("HTTP", "ANY /{proxy+}", "ANY", "/{proxy+}"),
    }
    # And a second run changes nothing
    assert remediate(cli, api_id).json["outcome"] == "no_change"


def test_default_route_is_granted_its_own_source_arn(world: World, cli: Any) -> None:
    # Given an HTTP API whose only route is `$default`, on a named stage
    world.function("fallback")
    api_id = http_api(world, "fallback-api")
    route(world, api_id, "$default", integration(world, api_id, function_arn("fallback"), path_form=True))
    stage(world, api_id, "prod")
    world.allow("*")
    assert simulator(world).request(api_id, "prod", "GET", "/anything").status == 500
    # When scanned, then remediated
    scanned = cli("scan", "--api", api_id, "--format", "json")
    run = remediate(cli, api_id)
    # Then the finding names the $default route as design.md says, and the grant is `{api}/*/$default`
    missing = findings(scanned.json, "missing_permission")
    assert [(f["routeKey"], f["method"], f["resourcePath"], f["sourceArn"]) for f in missing] == [
        ("$default", "ANY", "$default", execute_api(api_id, "prod/$default"))
    ]
    assert [a["sourceArn"] for a in run.json["changes"][0]["added"]] == [execute_api(api_id, "*/$default")]
    assert simulator(world).request(api_id, "prod", "DELETE", "/x/y").status == 200


def test_alias_through_a_stage_variable_is_granted_on_the_alias_only(world: World, cli: Any) -> None:
    # Given an integration invoking `pets:${stageVariables.alias}` (plain Lambda ARN form), alias live
    world.function("pets", alias="live")
    api_id = http_api(world, "aliased")
    route(
        world,
        api_id,
        "GET /pets",
        integration(world, api_id, function_arn("pets", "${stageVariables.alias}")),
    )
    stage(world, api_id, "prod", {"alias": "live"})
    world.allow("*")
    # When remediated
    run = remediate(cli, api_id)
    # Then the grant is on the alias, the unqualified function is untouched, and the call works
    assert [(c["qualifier"], len(c["added"])) for c in run.json["changes"]] == [("live", 1)]
    assert statements(world, "pets") == []
    assert simulator(world).request(api_id, "prod", "GET", "/pets").status == 200


def test_request_authorizer_is_granted_and_jwt_authorizer_ignored(world: World, cli: Any) -> None:
    # Given one route behind a REQUEST Lambda authorizer and one behind a JWT authorizer
    for name in ("pets", "auth"):
        world.function(name)
    api_id = http_api(world, "guarded")
    target = integration(world, api_id, function_arn("pets"))
    route(
        world,
        api_id,
        "GET /pets",
        target,
        authorizer_id=request_authorizer(world, api_id, function_arn("auth")),
    )
    route(world, api_id, "GET /me", target, authorizer_id=jwt_authorizer(world, api_id), authorization="JWT")
    stage(world, api_id)
    world.allow("*")
    sim = simulator(world)
    token = {"Authorization": "t"}
    failing = sim.request(api_id, "$default", "GET", "/pets", token)
    assert failing.status == 500 and "authorizer" in failing.log_lines[0]
    # When remediated
    result = remediate(cli, api_id).json
    # Then the authorizer got `{api}/authorizers/{id}` and nothing was added for the JWT authorizer
    auth_change = [c for c in result["changes"] if c["functionArn"].endswith(":auth")]
    assert len(auth_change) == 1
    assert auth_change[0]["added"][0]["sourceArn"].startswith(execute_api(api_id, "authorizers/"))
    authorizers = {f["authorizerId"] for f in result["findings"] if f["authorizerId"]}
    assert len(authorizers) == 1
    assert [
        r.status for r in (sim.request(api_id, "$default", "GET", p, token) for p in ("/pets", "/me"))
    ] == [
        200,
        200,
    ]


def test_integration_with_credentials_is_reported_not_granted(world: World, cli: Any) -> None:
    # Given an integration that invokes its function through an IAM role
    world.function("pets")
    api_id = http_api(world, "roled")
    route(world, api_id, "GET /pets", integration(world, api_id, function_arn("pets"), credentials=ROLE))
    stage(world, api_id)
    world.allow("*")
    # When remediated
    result = remediate(cli, api_id).json
    # Then nothing was granted, and the integration role is reported
    assert result["changes"] == []
    assert [(f["routeKey"], f["apiType"]) for f in findings(result, "integration_role")] == [
        ("GET /pets", "HTTP")
    ]
    assert statements(world, "pets") == []


# ------------------------------------------------------------------------------------- WebSocket


def test_websocket_routes_are_granted_per_route_key(world: World, cli: Any) -> None:
    # Given a WebSocket API: $connect behind a REQUEST authorizer, $default, and a custom route
    for name in ("ws", "ws-auth"):
        world.function(name)
    api_id = websocket_api(world)
    target = integration(world, api_id, function_arn("ws"), path_form=True)
    authorizer = request_authorizer(world, api_id, function_arn("ws-auth"))
    route(world, api_id, "$connect", target, authorizer_id=authorizer)
    route(world, api_id, "$default", target)
    route(world, api_id, "sendMessage", target)
    stage(world, api_id, "prod", log_format=None, logging_level="INFO")
    world.allow("*")
    sim = simulator(world)
    assert sim.connect(api_id, "prod", {"Authorization": "t"}).status == 500
    # When scanned and remediated
    scanned = cli("scan", "--api", "chat", "--format", "json").json
    result = remediate(cli, "chat").json
    # Then each route key got `{api}/*/{routeKey}`, WebSocket findings carry no method or path
    missing = [f for f in findings(scanned, "missing_permission") if f["routeKey"]]
    assert {(f["apiType"], f["routeKey"], f["method"], f["resourcePath"]) for f in missing} == {
        ("WEBSOCKET", key, None, None) for key in ("$connect", "$default", "sendMessage")
    }
    ws_change = next(c for c in result["changes"] if c["functionArn"].endswith(":ws"))
    assert sorted(a["sourceArn"] for a in ws_change["added"]) == sorted(
        execute_api(api_id, f"*/{key}") for key in ("$connect", "$default", "sendMessage")
    )
    assert sim.connect(api_id, "prod", {"Authorization": "t"}).status == 200
    assert sim.send(api_id, "prod", {"action": "sendMessage"}).status == 200
    assert sim.send(api_id, "prod", {"action": "other"}).route == "$default"
    assert sim.send(api_id, "prod", "plain text").status == 200


# ---------------------------------------------------------------------------- kinds side by side


def test_function_shared_by_a_rest_and_an_http_api_gets_each_apis_grants_only(world: World, cli: Any) -> None:
    # Given one function behind a REST API and an HTTP API, each with a duplicate grant of its own
    world.function("shared")
    rest_id = world.rest_api("legacy")
    world.method(rest_id, "/items", "GET", function_arn("shared"))
    world.deploy(rest_id, "prod")
    api_id = http_api(world, "modern")
    route(world, api_id, "GET /items", integration(world, api_id, function_arn("shared")))
    stage(world, api_id)
    world.allow("*")
    for sid, owner in (("rest-a", rest_id), ("rest-b", rest_id), ("http-a", api_id), ("http-b", api_id)):
        world.grant("shared", execute_api(owner, "*/GET/items"), sid=sid)
    # When only the HTTP API is remediated
    result = remediate(cli, "modern").json
    # Then only its own duplicate went; the REST API's grants are left as they are
    removed = [r["sid"] for c in result["changes"] for r in c["removed"]]
    assert len(removed) == 1 and removed[0].startswith("http-")
    duplicates = [f for f in result["findings"] if f["kind"] == "duplicate_statement"]
    assert [(f["apiId"], f["apiType"]) for f in duplicates] == [(api_id, "HTTP")]
    remaining = {s["Sid"] for s in statements(world, "shared")}
    assert {"rest-a", "rest-b"} <= remaining
    assert simulator(world).request(api_id, "$default", "GET", "/items").status == 200


def test_a_name_shared_by_a_rest_and_an_http_api_is_ambiguous(
    world: World, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a REST API and an HTTP API with the same name
    rest_id = world.rest_api("twin")
    api_id = http_api(world, "twin")
    world.allow("*")
    # When remediated by that name
    run = remediate(cli, "twin")
    # Then it is a usage error naming both ids, and scan says the same
    assert run.code == 2
    error = capsys.readouterr().err
    assert f"{rest_id} (REST)" in error and f"{api_id} (HTTP)" in error
    assert cli("scan", "--api", "twin").code == 2


def test_http_api_outside_the_allowlist_is_refused(world: World, cli: Any) -> None:
    # Given an HTTP API that is not allowlisted
    api_id = pets_http_api(world)
    world.allow("someone-else")
    # When remediated
    run = remediate(cli, api_id)
    # Then it is refused and nothing changed
    assert run.code == 1
    assert run.json["outcome"] == "refused"
    assert statements(world, "pets") == [] and statements(world, "catchall") == []


# ------------------------------------------------------------------------------------ access logs


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        (None, "access logging is off"),
        (
            '{"requestId":"$context.requestId"}',
            '"integrationErrorMessage":"$context.integrationErrorMessage"',
        ),
        ("$context.requestId $context.status", "append to the format: $context.integrationErrorMessage"),
    ],
)
def test_stage_whose_access_log_cannot_show_the_failure_is_reported(
    world: World, cli: Any, log_format: str | None, expected: str
) -> None:
    # Given an HTTP API stage with no access log, or a format without the integration error
    world.function("pets")
    api_id = http_api(world, "quiet")
    route(world, api_id, "GET /pets", integration(world, api_id, function_arn("pets")))
    stage(world, api_id, log_format=log_format)
    # When scanned
    result = cli("scan", "--api", api_id, "--format", "json").json
    # Then access_log_missing_error says exactly what to add
    [finding] = findings(result, "access_log_missing_error")
    assert (finding["apiId"], finding["stage"], finding["apiType"]) == (api_id, "$default", "HTTP")
    assert expected in finding["detail"]


def test_clf_format_with_the_integration_error_is_enough_and_the_line_shows_the_failure(
    world: World, cli: Any
) -> None:
    # Given an HTTP API stage logging in CLF with $context.integrationErrorMessage (no authorizer)
    world.function("pets")
    api_id = http_api(world, "clf")
    route(world, api_id, "GET /pets", integration(world, api_id, function_arn("pets")))
    stage(world, api_id, log_format=CLF_FORMAT)
    # When scanned, and a request fails
    result = cli("scan", "--api", api_id, "--format", "json").json
    response = simulator(world).request(api_id, "$default", "GET", "/pets")
    # Then the format is not reported, and the access-log line carries the failure
    assert findings(result, "access_log_missing_error") == []
    [line] = response.log_lines
    assert '"GET GET /pets HTTP/1.1" 500' in line
    assert line.endswith(
        "doesn't have permissions to call the integration. Check the permissions and try again."
    )
    events = world.client("logs").filter_log_events(logGroupName=f"/aws/vendedlogs/{api_id}/$default")[
        "events"
    ]
    assert [e["message"] for e in events] == [line]


def test_scan_without_api_covers_every_kind(world: World, cli: Any) -> None:
    # Given a REST API, an HTTP API and a WebSocket API, each missing its grant
    world.function("fn")
    rest_id = world.rest_api("r")
    world.method(rest_id, "/x", "GET", function_arn("fn"))
    world.deploy(rest_id, "prod")
    http_id = http_api(world, "h")
    route(world, http_id, "GET /x", integration(world, http_id, function_arn("fn")))
    stage(world, http_id)
    ws_id = websocket_api(world, "w")
    route(world, ws_id, "$default", integration(world, ws_id, function_arn("fn")))
    stage(world, ws_id, "prod", log_format=None)
    # When the account is scanned
    result = cli("scan", "--format", "json").json
    # Then each API's missing grant is reported with its kind
    missing = {(f["apiId"], f["apiType"]) for f in findings(result, "missing_permission")}
    assert missing == {(rest_id, "REST"), (http_id, "HTTP"), (ws_id, "WEBSOCKET")}
    assert ACCOUNT in findings(result, "missing_permission")[0]["sourceArn"]


def test_grants_of_a_live_http_api_are_not_stale_and_of_a_deleted_one_are(world: World, cli: Any) -> None:
    # Given a REST API's function that also holds a grant for an HTTP API
    world.function("fn")
    rest_id = world.rest_api("r")
    world.method(rest_id, "/x", "GET", function_arn("fn"))
    world.deploy(rest_id, "prod")
    http_id = http_api(world, "h")
    world.grant("fn", execute_api(rest_id, "*/GET/x"), sid="rest")
    world.grant("fn", execute_api(http_id, "*/GET/x"), sid="http")
    # When the REST API is scanned while the HTTP API exists, and after it is deleted
    live = cli("scan", "--api", rest_id, "--format", "json").json
    world.client("apigatewayv2").delete_api(ApiId=http_id)
    gone = cli("scan", "--api", rest_id, "--format", "json").json
    # Then its grant is stale only once the HTTP API is gone
    assert findings(live, "stale_statement") == []
    assert [f["sid"] for f in findings(gone, "stale_statement")] == ["http"]
