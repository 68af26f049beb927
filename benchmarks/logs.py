"""Realistic API Gateway (REST) execution-log traffic for the benchmarks.

The lines follow what API Gateway writes at INFO level for a Lambda proxy integration, with and
without a TOKEN authorizer (aws-facts.md, events/*.json): about 17 lines per successful request,
10 more when an authorizer runs. A failing request stops after "Sending request to" with the
permission failure, as on AWS.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from permheal_local.aws import awslogs_event
from permheal_local.builder import ACCOUNT, REGION

FAILURE = "Execution failed due to configuration error: Invalid permissions on Lambda function"
_LAMBDA = f"https://lambda.{REGION}.amazonaws.com/2015-03-31/functions/{{arn}}/invocations"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """The resource template, e.g. /pets/{petId}."""
    function_arn: str
    authorizer_id: str | None = None
    authorizer_arn: str | None = None

    def concrete(self, rng: random.Random) -> str:
        return "/".join(str(rng.randint(1, 99_999)) if p.startswith("{") else p for p in self.path.split("/"))


def default_routes(api_id: str = "a1b2c3d4e5") -> tuple[Route, ...]:
    """A small petstore-like API: four functions (alias, version, plain) and one TOKEN authorizer."""

    def fn(name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn

    auth = ("x7y8z9", fn("pets-authorizer"))
    return (
        Route("GET", "/pets", fn("pets", "live")),
        Route("GET", "/pets/{petId}", fn("pets", "live"), *auth),
        Route("POST", "/pets", fn("pets", "live"), *auth),
        Route("DELETE", "/pets/{petId}", fn("pets-admin", "3"), *auth),
        Route("GET", "/orders/{orderId}", fn("orders")),
        Route("PUT", "/orders/{orderId}/items/{itemId}", fn("orders")),
    )


def request_lines(
    rid: str,
    route: Route,
    rng: random.Random,
    *,
    failing: bool = False,
    stage: str = "prod",
    api_id: str = "a1b2c3d4e5",
) -> list[str]:
    """The execution-log lines of one request, each prefixed with `(request id)`."""
    path = route.concrete(rng)
    extended = uuid.UUID(int=rng.getrandbits(128)).hex[:16] + "="
    lines = [f"Extended Request Id: {extended}"]
    if route.authorizer_id and route.authorizer_arn:
        uri = _LAMBDA.format(arn=route.authorizer_arn)
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{route.method}{path}"
        lines += [
            f"Starting authorizer: {route.authorizer_id} for request: {rid}",
            "Incoming identity: ***" + "oken",
            f"Endpoint request URI: {uri}",
            "Endpoint request headers: {x-amzn-lambda-integration-tag=" + rid + ", Authorization=*****"
            "***************************, X-Amz-Date=20251121T100000Z, x-amzn-apigateway-api-id="
            + api_id
            + ", Accept=application/json, User-Agent=AmazonAPIGateway_"
            + api_id
            + ", X-Amz-Security-Token=IQoJb3JpZ2luX2VjEK7//////////wEaCXVzLWVhc3QtMSJHMEUCIQ [TRUNCATED]}",
            'Endpoint request body after transformations: {"type":"TOKEN","methodArn":"'
            + method_arn
            + '","authorizationToken":"****"}',
            f"Sending request to {uri}",
            "Authorizer result body before parsing: {"
            '"principalId":"user","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":'
            f'"execute-api:Invoke","Effect":"Allow","Resource":"{method_arn}"}}]}}}}',
            "Using valid authorizer policy for principal: user",
            "Successfully completed authorizer execution",
        ]
    uri = _LAMBDA.format(arn=route.function_arn)
    lines += [
        f"Verifying Usage Plan for request: {rid}. API Key:  API Stage: {api_id}/{stage}",
        f"API Key  authorized because method '{route.method} {route.path}' does not require API Key. "
        "Request will not contribute to throttle or quota limits",
        f"Usage Plan check succeeded for API Key  and API Stage {api_id}/{stage}",
        f"Starting execution for request: {rid}",
        f"HTTP Method: {route.method}, Resource Path: {route.path}",
        "Method request path: {" + ", ".join(f"p{i}={rng.randint(1, 999)}" for i in range(2)) + "}",
        "Method request query string: {}",
        "Method request headers: {Accept=application/json, Host="
        + api_id
        + f".execute-api.{REGION}.amazonaws.com, User-Agent=curl/8.5.0, X-Amzn-Trace-Id=Root=1-"
        + uuid.UUID(int=rng.getrandbits(128)).hex[:24]
        + ", X-Forwarded-For=203.0.113.7, X-Forwarded-Port=443, X-Forwarded-Proto=https}",
        "Method request body before transformations: ",
        f"Endpoint request URI: {uri}",
        "Endpoint request headers: {X-Amz-Date=20251121T100000Z, x-amzn-apigateway-api-id="
        + api_id
        + ", Accept=application/json, User-Agent=AmazonAPIGateway_"
        + api_id
        + f", Host=lambda.{REGION}.amazonaws.com, X-Amz-Content-Sha256=e3b0c44298fc1c149afb}}",
        'Endpoint request body after transformations: {"resource":"'
        + route.path
        + '","path":"'
        + path
        + '","httpMethod":"'
        + route.method
        + '","headers":{"Accept":"application/json"} [TRUNCATED]',
        f"Sending request to {uri}",
    ]
    if failing:
        lines += [FAILURE, "Method completed with status: 500"]
    else:
        body = json.dumps({"id": rng.randint(1, 99_999), "name": "rex", "tags": ["a", "b"]})
        lines += [
            f"Received response. Status: 200, Integration latency: {rng.randint(8, 400)} ms",
            "Endpoint response headers: {Date=Fri, 21 Nov 2025 10:00:00 GMT, Content-Type="
            "application/json, Content-Length=52, Connection=keep-alive, x-amzn-RequestId="
            + str(uuid.UUID(int=rng.getrandbits(128)))
            + ", X-Amz-Executed-Version=7}",
            "Endpoint response body before transformations: " + json.dumps({"statusCode": 200, "body": body}),
            f"Method response body after transformations: {body}",
            "Method response headers: {Content-Type=application/json, X-Amzn-Trace-Id=Root=1-"
            + uuid.UUID(int=rng.getrandbits(128)).hex[:24]
            + "}",
            "Successfully completed execution",
            "Method completed with status: 200",
        ]
    return [f"({rid}) {line}" for line in lines]


@dataclass(frozen=True)
class Traffic:
    """Interleaved lines of many requests, as they land in one log stream."""

    events: tuple[tuple[int, str], ...]
    requests: int
    failing_requests: int
    failure_lines: int
    message_bytes: int


def mixed_traffic(
    target_bytes: int,
    failure_rate: float,
    seed: int = 7,
    start_ms: int = 1_763_719_200_000,
    routes: Sequence[Route] | None = None,
) -> Traffic:
    """About `target_bytes` of message text; `failure_rate` of the requests fail with the permission error.

    Requests overlap a little (up to four in flight), so lines of different requests interleave.
    """
    rng = random.Random(seed)
    routes = tuple(routes or default_routes())
    events: list[tuple[int, str]] = []
    size = requests = failing = 0
    in_flight: list[Iterator[str]] = []
    every = max(1, round(1 / failure_rate)) if failure_rate > 0 else 0
    clock = start_ms
    while size < target_bytes or in_flight:
        if size < target_bytes and len(in_flight) < 4:
            requests += 1
            fails = bool(every) and requests % every == every // 2
            failing += fails
            rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            in_flight.append(iter(request_lines(rid, rng.choice(routes), rng, failing=fails)))
        stream = rng.choice(in_flight)
        line = next(stream, None)
        if line is None:
            in_flight.remove(stream)
            continue
        clock += rng.randint(0, 2)
        events.append((clock, line))
        size += len(line.encode())
    failure_lines = sum(1 for _, line in events if FAILURE in line)
    return Traffic(tuple(events), requests, failing, failure_lines, size)


def payload(log_group: str, events: Sequence[tuple[int, str]], stream: str = "0f0e0d0c") -> dict[str, Any]:
    """The awslogs event CloudWatch Logs would hand the detector for these events."""
    return awslogs_event(
        ACCOUNT,
        log_group,
        stream,
        ["permheal-permission-failures"],
        [{"id": str(i), "timestamp": ts, "message": message} for i, (ts, message) in enumerate(events)],
    )
