"""The API Gateway simulator and the Local AWS log delivery.

The simulator must decide like API Gateway (exact qualifier, source ARN with the resource template,
ANY, authorizer ARNs, integration roles) and write execution logs the detector understands; the
delivery must apply the template's subscription filter and hand the detector a real payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from permheal.detection import SUBSCRIPTION_FILTER_PATTERN, decode, detect
from permheal.targets import Hint
from permheal_local import faithful_apigateway, faithful_lambda
from permheal_local.aws import (
    MOTO_CONFIG,
    FilterPattern,
    Subscription,
    awslogs_event,
    local_aws,
    subscription_from_template,
)
from permheal_local.builder import ACCOUNT, REGION, World, execute_api, function_arn
from permheal_local.simulator import ApiGatewaySimulator, log_group_name, match_resource
from permheal_local.stack import TEMPLATE, LocalStack
from permheal_local.template import load_template
from tests.conftest import CLIENTS

ROLE = f"arn:aws:iam::{ACCOUNT}:role/apigw-invokes-lambda"
ALIAS_TARGET = function_arn("pets", "${stageVariables.alias}")


@pytest.fixture(scope="module")
def moto_session() -> Iterator[None]:
    """One moto session for the module (cheaper than one per test); each test resets it."""
    from moto import mock_aws

    faithful_lambda.install()
    faithful_apigateway.install()
    with mock_aws(config=MOTO_CONFIG):
        yield


@pytest.fixture
def world(moto_session: None) -> World:
    """An empty account for each test, through tests/conftest.py's shared clients."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    return World(clients=CLIENTS)


# --- routing ------------------------------------------------------------------------------------------

RESOURCES = [
    "/",
    "/pets",
    "/pets/{petId}",
    "/pets/{petId}/photos",
    "/pets/mine",
    "/{proxy+}",
    "/files/{path+}",
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ("/", {})),
        ("/pets", ("/pets", {})),
        ("/pets/", ("/pets", {})),
        ("/pets/mine", ("/pets/mine", {})),  # a literal beats {petId}
        ("/pets/42", ("/pets/{petId}", {"petId": "42"})),
        ("/pets/42?verbose=1", ("/pets/{petId}", {"petId": "42"})),
        ("/pets/42/photos", ("/pets/{petId}/photos", {"petId": "42"})),
        ("/pets/42/toys", ("/{proxy+}", {"proxy": "pets/42/toys"})),  # nothing deeper: the greedy root
        ("/files/a/b/c.txt", ("/files/{path+}", {"path": "a/b/c.txt"})),
        ("/orders", ("/{proxy+}", {"proxy": "orders"})),
    ],
)
def test_a_path_selects_the_resource_api_gateway_would(
    path: str, expected: tuple[str, dict[str, str]]
) -> None:
    assert match_resource(RESOURCES, path) == expected


def test_without_a_greedy_resource_an_unknown_path_matches_nothing() -> None:
    assert match_resource(["/", "/pets", "/pets/{petId}"], "/pets/42/photos") is None
    assert match_resource(["/", "/files/{path+}"], "/files") is None  # a greedy segment needs one segment


# --- allow / deny decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[World], tuple[str, dict[str, Any]]]
    """Builds the setup; returns the API id and the request (stage, method, path, headers)."""
    status: int
    body: dict[str, Any]


def alias_api(world: World, path: str = "/pets", method: str = "GET", *stages: str, **options: Any) -> str:
    world.function("pets", alias="live")
    api = world.rest_api("pets")
    world.method(api, path, method, ALIAS_TARGET, **options)
    for stage in stages or ("prod",):
        world.deploy(api, stage, {"alias": "live"})
    return api


def request(stage: str = "prod", method: str = "GET", path: str = "/pets", **headers: str) -> dict[str, Any]:
    return {"stage": stage, "method": method, "path": path, "headers": headers}


def alias_grant(world: World, source: str) -> tuple[str, dict[str, Any]]:
    api = alias_api(world)
    world.grant("pets", execute_api(api, source), sid="grant", qualifier="live")
    return api, request()


def unqualified_grant_only(world: World) -> tuple[str, dict[str, Any]]:
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="grant")
    return api, request()


def stage_scoped(grant_stage: str, request_stage: str) -> Callable[[World], tuple[str, dict[str, Any]]]:
    def build(world: World) -> tuple[str, dict[str, Any]]:
        api = alias_api(world, "/pets", "GET", "prod", "beta")
        world.grant("pets", execute_api(api, f"{grant_stage}/GET/pets"), sid="grant", qualifier="live")
        return api, request(request_stage)

    return build


def old_api_id(world: World) -> tuple[str, dict[str, Any]]:
    api = alias_api(world)
    world.grant("pets", execute_api("0ldap1d000", "*/GET/pets"), sid="grant", qualifier="live")
    return api, request()


def path_parameter(source: str) -> Callable[[World], tuple[str, dict[str, Any]]]:
    def build(world: World) -> tuple[str, dict[str, Any]]:
        api = alias_api(world, "/pets/{petId}", "GET")
        world.grant("pets", execute_api(api, source), sid="grant", qualifier="live")
        return api, request(path="/pets/42")

    return build


def any_method(source: str) -> Callable[[World], tuple[str, dict[str, Any]]]:
    def build(world: World) -> tuple[str, dict[str, Any]]:
        api = alias_api(world, "/{proxy+}", "ANY")
        world.grant("pets", execute_api(api, source), sid="grant", qualifier="live")
        return api, request(method="POST", path="/orders/7")

    return build


def with_authorizer(authorizer_source: str | None) -> Callable[[World], tuple[str, dict[str, Any]]]:
    """GET /pets behind a TOKEN authorizer; the integration itself is granted."""

    def build(world: World) -> tuple[str, dict[str, Any]]:
        world.function("auth")
        world.function("pets", alias="live")
        api = world.rest_api("pets")
        authorizer = world.authorizer(api, "token", function_arn("auth"))
        world.method(api, "/pets", "GET", ALIAS_TARGET, authorizer_id=authorizer)
        world.deploy(api, "prod", {"alias": "live"})
        world.grant("pets", execute_api(api, "*/GET/pets"), sid="grant", qualifier="live")
        if authorizer_source is not None:
            source = authorizer_source.format(authorizer=authorizer)
            world.grant("auth", execute_api(api, source), sid="auth-grant")
        return api, request(Authorization="Bearer t")

    return build


def integration_role(world: World) -> tuple[str, dict[str, Any]]:
    return alias_api(world, credentials=ROLE), request()


def no_route(world: World) -> tuple[str, dict[str, Any]]:
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/*/*"), sid="grant", qualifier="live")
    return api, request(path="/owners")


def method_not_defined(world: World) -> tuple[str, dict[str, Any]]:
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/*/*"), sid="grant", qualifier="live")
    return api, request(method="DELETE")


def missing_identity(world: World) -> tuple[str, dict[str, Any]]:
    api, _ = with_authorizer("authorizers/{authorizer}")(world)
    return api, request()  # no Authorization header: the authorizer is never called


OK = {"ok": True}
DENIED = {"message": "Internal server error"}
AUTHORIZER_DENIED = {"message": None}
NO_ROUTE = {"message": "Missing Authentication Token"}

CASES = {
    "alias grant for the method": Case(lambda w: alias_grant(w, "*/GET/pets"), 200, OK),
    "grant on the unqualified function only": Case(unqualified_grant_only, 500, DENIED),
    "stage-scoped grant, other stage": Case(stage_scoped("beta", "prod"), 500, DENIED),
    "stage-scoped grant, same stage": Case(stage_scoped("beta", "beta"), 200, OK),
    "grant for an old API id": Case(old_api_id, 500, DENIED),
    "wildcard grant for the whole API": Case(lambda w: alias_grant(w, "*/*/*"), 200, OK),
    "wildcard grant for another method": Case(lambda w: alias_grant(w, "*/POST/pets"), 500, DENIED),
    "path-parameter grant with *": Case(path_parameter("*/GET/pets/*"), 200, OK),
    "grant for the resource template": Case(path_parameter("prod/GET/pets/{petId}"), 200, OK),
    "grant for the concrete path": Case(path_parameter("prod/GET/pets/42"), 500, DENIED),
    "ANY method, grant for any method": Case(any_method("*/*/*"), 200, OK),
    "ANY method, grant naming ANY": Case(any_method("prod/ANY/*"), 200, OK),
    "ANY method, grant for the verb sent": Case(any_method("prod/POST/*"), 500, DENIED),
    "authorizer granted its ARN": Case(with_authorizer("authorizers/{authorizer}"), 200, OK),
    "authorizer without a grant": Case(with_authorizer(None), 500, AUTHORIZER_DENIED),
    "authorizer granted a stage ARN": Case(
        with_authorizer("prod/authorizers/{authorizer}"), 500, AUTHORIZER_DENIED
    ),
    "integration role, no grant": Case(integration_role, 200, OK),
    "no route": Case(no_route, 403, NO_ROUTE),
    "method not defined on the resource": Case(method_not_defined, 403, NO_ROUTE),
    "authorizer identity missing": Case(missing_identity, 401, {"message": "Unauthorized"}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_simulator_decides_like_api_gateway(world: World, case: Case) -> None:
    # Given
    api, call = case.build(world)

    # When
    response = ApiGatewaySimulator(world).request(api, **call)

    # Then
    assert (response.status, response.body) == (case.status, case.body)


def test_an_unknown_stage_is_forbidden_and_an_unknown_api_not_found(world: World) -> None:
    api = alias_api(world)
    simulator = ApiGatewaySimulator(world)

    assert simulator.request(api, "staging", "GET", "/pets").status == 403
    assert simulator.request("nosuchapi1", "prod", "GET", "/pets").status == 404


def test_the_simulator_also_takes_plain_clients_and_an_account(world: World) -> None:
    api = alias_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="grant", qualifier="live")
    clients = {service: world.client(service) for service in ("apigateway", "lambda", "logs")}

    response = ApiGatewaySimulator(clients, account=ACCOUNT).request(api, "prod", "GET", "/pets")

    assert (response.status, response.route) == (200, "GET /pets")


# --- what a stage serves -------------------------------------------------------------------------------


def sent_to(response: Any) -> str:
    """The function ARN of the `Sending request to` line (what the data plane invoked)."""
    line = next(line for line in response.log_lines if "Sending request to " in line)
    return line.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]


def test_an_integration_edited_without_redeploying_keeps_invoking_the_deployed_function(world: World) -> None:
    # Given GET /pets deployed invoking `old`, then edited to `new` without a deployment
    world.function("old")
    world.function("new")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("old"))
    world.deploy(api, "prod")
    world.method(api, "/pets", "GET", function_arn("new"))
    world.method(api, "/added", "GET", function_arn("new"))
    simulator = ApiGatewaySimulator(world)
    # Then the stage still invokes `old`, and a method added since is not served
    assert sent_to(simulator.request(api, "prod", "GET", "/pets")) == function_arn("old")
    assert simulator.request(api, "prod", "GET", "/added").body == {"message": "Missing Authentication Token"}
    # And once deployed, the stage invokes `new`
    world.deploy(api, "prod")
    assert sent_to(simulator.request(api, "prod", "GET", "/pets")) == function_arn("new")


def test_stages_on_different_deployments_invoke_different_functions(world: World) -> None:
    world.function("old")
    world.function("new")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", function_arn("old"))
    world.deploy(api, "prod")
    world.method(api, "/pets", "GET", function_arn("new"))
    world.deploy(api, "dev")
    simulator = ApiGatewaySimulator(world)
    assert sent_to(simulator.request(api, "prod", "GET", "/pets")) == function_arn("old")
    assert sent_to(simulator.request(api, "dev", "GET", "/pets")) == function_arn("new")


def test_a_canary_request_runs_the_canary_deployment_with_its_overrides(world: World) -> None:
    # Given prod on alias live; a canary deployed with a new method and alias=canary
    api = alias_api(world)
    world.method(api, "/new", "GET", ALIAS_TARGET)
    world.deploy_canary(api, "prod", {"alias": "canary"}, percent=5.0)
    simulator = ApiGatewaySimulator(world)
    # Then plain requests run the stage's deployment and variables, canary requests the canary's
    assert sent_to(simulator.request(api, "prod", "GET", "/pets")) == function_arn("pets", "live")
    assert simulator.request(api, "prod", "GET", "/new").status == 403
    canary = simulator.request(api, "prod", "GET", "/new", canary=True)
    assert sent_to(canary) == function_arn("pets", "canary")
    # And its lines go to the stage's group and to the canary group
    for group in (log_group_name(api, "prod"), log_group_name(api, "prod/Canary")):
        events = world.client("logs").filter_log_events(logGroupName=group)["events"]
        assert any(canary.request_id in event["message"] for event in events), group


def test_a_canary_request_to_a_stage_without_canary_is_a_plain_request(world: World) -> None:
    api = alias_api(world)
    response = ApiGatewaySimulator(world).request(api, "prod", "GET", "/pets", canary=True)
    assert sent_to(response) == function_arn("pets", "live")
    groups = world.client("logs").describe_log_groups()["logGroups"]
    assert [g["logGroupName"] for g in groups] == [log_group_name(api, "prod")]


# --- execution logs -----------------------------------------------------------------------------------


def logged(world: World, api: str, stage: str = "prod") -> list[dict[str, Any]]:
    pages = (
        world.client("logs")
        .get_paginator("filter_log_events")
        .paginate(logGroupName=log_group_name(api, stage))
    )
    return [event for page in pages for event in page["events"]]


def test_a_denied_integration_writes_the_info_lines_to_the_stage_log_group(world: World) -> None:
    # Given
    api = alias_api(world, "/pets/{petId}", "GET")

    # When
    response = ApiGatewaySimulator(world).request(api, "prod", "GET", "/pets/42")

    # Then
    rid = response.request_id
    lambda_api = f"https://lambda.{REGION}.amazonaws.com/2015-03-31/functions"
    invoked = f"{lambda_api}/{function_arn('pets', 'live')}/invocations"
    assert list(response.log_lines) == [
        f"({rid}) Starting execution for request: {rid}",
        f"({rid}) HTTP Method: GET, Resource Path: /pets/{{petId}}",
        f"({rid}) Endpoint request URI: {invoked}",
        f"({rid}) Sending request to {invoked}",
        f"({rid}) Execution failed due to configuration error: Invalid permissions on Lambda function",
        f"({rid}) Method completed with status: 500",
    ]
    events = logged(world, api)
    assert [e["message"] for e in events] == list(response.log_lines)
    assert re.fullmatch(r"[0-9a-f]{32}", events[0]["logStreamName"])


def test_error_level_logs_only_the_failure_and_off_logs_nothing(world: World) -> None:
    world.function("pets", alias="live")
    api = world.rest_api("pets")
    world.method(api, "/pets", "GET", ALIAS_TARGET)
    world.deploy(api, "prod", {"alias": "live"}, logging_level="ERROR")
    world.deploy(api, "quiet", {"alias": "live"}, logging_level=None)
    simulator = ApiGatewaySimulator(world)

    error_level = simulator.request(api, "prod", "GET", "/pets")
    off = simulator.request(api, "quiet", "GET", "/pets")

    rid = error_level.request_id
    assert error_level.log_lines == (
        f"({rid}) Execution failed due to configuration error: Invalid permissions on Lambda function",
    )
    assert (off.status, off.log_lines) == (500, ())


def payload_of(world: World, api: str, pattern: FilterPattern | None = None) -> dict[str, Any]:
    """What a subscription with `pattern` (None: everything) would deliver for the stage's logs."""
    events = [e for e in logged(world, api) if pattern is None or pattern.matches(e["message"])]
    records = [{"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]} for e in events]
    return awslogs_event(ACCOUNT, log_group_name(api, "prod"), events[0]["logStreamName"], ["f"], records)


def test_integration_failure_lines_parse_back_into_one_incident_with_method_hints(world: World) -> None:
    # Given two failing requests to the same method
    api = alias_api(world, "/pets/{petId}", "GET")
    simulator = ApiGatewaySimulator(world)
    simulator.request(api, "prod", "GET", "/pets/42")
    simulator.request(api, "prod", "GET", "/pets/43")

    # When
    detection = detect(decode(payload_of(world, api)))

    # Then
    assert detection.failure_lines == 2
    (incident,) = detection.incidents
    assert (incident.api_id, incident.stage, incident.failures) == (api, "prod", 2)
    assert incident.hints == (Hint("GET", "/pets/{petId}", None, function_arn("pets", "live")),)


def test_authorizer_failure_lines_parse_back_into_an_authorizer_hint(world: World) -> None:
    # Given
    api, call = with_authorizer(None)(world)
    authorizer = world.client("apigateway").get_authorizers(restApiId=api)["items"][0]["id"]
    ApiGatewaySimulator(world).request(api, **call)

    # When
    detection = detect(decode(payload_of(world, api)))

    # Then
    (incident,) = detection.incidents
    assert (incident.api_id, incident.stage) == (api, "prod")
    assert incident.hints == (Hint(authorizer_id=authorizer, function=function_arn("auth")),)


def test_lines_filtered_by_the_subscription_still_make_an_incident_without_hints(world: World) -> None:
    api = alias_api(world, "/pets/{petId}", "GET")
    ApiGatewaySimulator(world).request(api, "prod", "GET", "/pets/42")

    detection = detect(
        decode(payload_of(world, api, FilterPattern.parse('"Invalid permissions on Lambda function"')))
    )

    (incident,) = detection.incidents
    assert (incident.api_id, incident.stage, incident.hints) == (api, "prod", ())


# --- filter patterns and the template's subscription --------------------------------------------------

FAILURE = "(r1) Execution failed due to configuration error: Invalid permissions on Lambda function"


@pytest.mark.parametrize(
    ("pattern", "message", "matches"),
    [
        ('"Invalid permissions on Lambda function"', FAILURE, True),
        ('"invalid permissions on lambda function"', FAILURE, False),  # case-sensitive
        ('"Invalid permissions on Lambda"', FAILURE, True),
        ('"permissions Lambda"', FAILURE, False),  # a phrase is contiguous
        ("Invalid Lambda", FAILURE, True),  # plain terms: all of them, anywhere
        ("Invalid Kinesis", FAILURE, False),
        ('Execution "on Lambda function"', FAILURE, True),
        (r'"say \"hi\""', 'they say "hi" here', True),
        ("", "anything at all", True),
        ("?ERROR ?WARN", "a WARN here", True),  # `?` alternatives: any one of them
        ("?ERROR ?WARN", "an INFO line", False),
        ('?"on Lambda function" ?"call the integration"', FAILURE, True),
        ('?"on Lambda function" ?"call the integration"', "on Lambda", False),
        ('?"Lambda function" ?Kinesis', "Kinesis only", True),
    ],
)
def test_filter_patterns_match_like_cloudwatch_logs(pattern: str, message: str, matches: bool) -> None:
    assert FilterPattern.parse(pattern).matches(message) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.level = "ERROR" }',
        "[ip, user]",
        "?ERROR WARN",  # a mix of `?` and required terms is not documented: refused
        "ERROR ?WARN",
        "? ERROR",
        "-DEBUG",
        '"open',
        '?"open',
    ],
)
def test_filter_pattern_syntax_that_is_not_implemented_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        FilterPattern.parse(pattern)


STACK = LocalStack("permheal", "arn:sm", "arn:topic", "https://q", {"DetectorFunction": "permheal-detect"})


def test_the_account_policy_of_the_template_is_the_default_subscription() -> None:
    subscription = subscription_from_template(load_template(TEMPLATE), STACK)

    assert subscription.name == "permheal-permission-failures"
    assert subscription.pattern == FilterPattern.parse(SUBSCRIPTION_FILTER_PATTERN)
    assert subscription.pattern.any_term
    assert "Invalid permissions on Lambda function" in subscription.pattern.terms
    assert subscription.destination == "permheal-detect"
    assert subscription.covers("API-Gateway-Execution-Logs_abc123/prod")
    assert not subscription.covers("/aws/lambda/permheal-detect")  # never its own logs


def test_log_groups_mode_subscribes_only_the_listed_groups() -> None:
    parameters = {
        "SubscriptionMode": "log-groups",
        "ExecutionLogGroups": "API-Gateway-Execution-Logs_a1/prod",
    }

    subscription = subscription_from_template(load_template(TEMPLATE), STACK, parameters)

    assert subscription == Subscription(
        "permheal-permission-failures",
        FilterPattern.parse(SUBSCRIPTION_FILTER_PATTERN),
        "permheal-detect",
        frozenset({"API-Gateway-Execution-Logs_a1/prod"}),
    )


# --- delivery to the deployed detector ----------------------------------------------------------------


@pytest.mark.usefixtures("world")  # empties the module's moto first; local_aws nests inside it
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_flush_delivers_only_matching_new_lines_and_the_detector_starts_one_execution() -> None:
    with local_aws(handler_env={"POWERTOOLS_LOG_LEVEL": "WARNING"}) as local:
        # Given two failing requests and one allowed one
        world = local.world
        world.function("pets", alias="live")
        api = world.rest_api("pets")
        world.method(api, "/pets", "GET", ALIAS_TARGET)
        world.method(api, "/pets/{petId}", "GET", ALIAS_TARGET)
        world.deploy(api, "prod", {"alias": "live"})
        world.grant("pets", execute_api(api, "*/GET/pets"), sid="list", qualifier="live")
        simulator = local.simulator()
        responses = [simulator.request(api, "prod", "GET", path) for path in ("/pets", "/pets/1", "/pets/2")]

        # When
        deliveries = local.flush_logs()

        # Then
        assert [r.status for r in responses] == [200, 500, 500]
        (delivery,) = deliveries
        assert delivery.error is None
        assert delivery.log_group == log_group_name(api, "prod")
        assert [m.split(") ", 1)[1] for m in delivery.messages] == [
            "Execution failed due to configuration error: Invalid permissions on Lambda function"
        ] * 2
        batch = decode(delivery.payload)
        assert (batch.log_group, batch.message_type, len(batch.events)) == (
            delivery.log_group,
            "DATA_MESSAGE",
            2,
        )
        assert delivery.result["incidents"] == 1
        (execution,) = delivery.result["started"]
        executions = world.client("stepfunctions").list_executions(
            stateMachineArn=local.stack.state_machine_arn
        )
        assert [e["executionArn"] for e in executions["executions"]] == [execution]
        assert local.flush_logs() == []  # nothing new: nothing delivered twice
