"""The HTTP API part of `permheal demo`: the same loop for an API Gateway v2 HTTP API.

The HTTP API writes access-log lines only (no execution log). When the detector recognises them,
the subscription starts the workflow as for REST; otherwise the demo starts it as on-call would
(`{"apiName": ...}`), and says which happened. The repair itself is the deployed workflow either way.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from permheal_local.builder import function_arn, integration_uri
from permheal_local.simulator_v2 import ApiGatewayV2Simulator, log_group_of

if TYPE_CHECKING:
    from permheal_local.demo import Timeline

HTTP_API_NAME = "petstore-http"
HTTP_STAGE = "$default"
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","apiId":"$context.apiId","stage":"$context.stage",'
    '"routeKey":"$context.routeKey","status":"$context.status",'
    '"integrationErrorMessage":"$context.integrationErrorMessage","authorizerError":"$context.authorizer.error"}'
)
HTTP_REQUESTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("GET", "/pets/42", {"Authorization": "Bearer demo-token"}),
    ("PUT", "/cart/7", {}),
)


def build_http_api(local: Any, function: str, alias: str, authorizer_function: str) -> tuple[str, str]:
    """`GET /pets/{id}` (REQUEST authorizer) and `ANY /{proxy+}` -> `function:${stageVariables.alias}`."""
    world = local.world
    v2 = world.client("apigatewayv2")
    api_id = str(v2.create_api(Name=HTTP_API_NAME, ProtocolType="HTTP")["ApiId"])
    target = v2.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=function_arn(function, "${stageVariables.alias}"),
        PayloadFormatVersion="2.0",
    )["IntegrationId"]
    authorizer = v2.create_authorizer(
        ApiId=api_id,
        AuthorizerType="REQUEST",
        Name="demo-authorizer",
        IdentitySource=["$request.header.Authorization"],
        AuthorizerUri=integration_uri(function_arn(authorizer_function)),
        AuthorizerPayloadFormatVersion="2.0",
    )["AuthorizerId"]
    v2.create_route(
        ApiId=api_id,
        RouteKey="GET /pets/{id}",
        Target=f"integrations/{target}",
        AuthorizationType="CUSTOM",
        AuthorizerId=authorizer,
    )
    v2.create_route(ApiId=api_id, RouteKey="ANY /{proxy+}", Target=f"integrations/{target}")
    group = f"/aws/vendedlogs/apigateway/{HTTP_API_NAME}"
    v2.create_stage(
        ApiId=api_id,
        StageName=HTTP_STAGE,
        AutoDeploy=True,
        StageVariables={"alias": alias},
        AccessLogSettings={
            "DestinationArn": f"arn:aws:logs:{world.region}:{local.account}:log-group:{group}",
            "Format": ACCESS_LOG_FORMAT,
        },
    )
    return api_id, str(authorizer)


def heal_http_api(
    timeline: Timeline,
    local: Any,
    allowed: tuple[str, ...],
    function: str,
    alias: str,
    authorizer_function: str,
) -> dict[str, Any]:
    """Break, detect (or start), repair and re-check an HTTP API; the outcome for the demo's JSON."""
    from permheal_local.demo import _follow_execution

    world = local.world
    api_id, authorizer_id = build_http_api(local, function, alias, authorizer_function)
    world.allow(*allowed, HTTP_API_NAME)
    timeline.emit(
        "http_api",
        f"Built HTTP API {HTTP_API_NAME} ({api_id}), stage {HTTP_STAGE} with alias={alias}, allowlisted",
        [
            f"GET /pets/{{id}} -> {function}:${{stageVariables.alias}}, REQUEST authorizer {authorizer_id} "
            f"-> {authorizer_function}",
            f"ANY /{{proxy+}}  -> {function}:${{stageVariables.alias}}",
        ],
        apiId=api_id,
        stage=HTTP_STAGE,
    )
    simulator = ApiGatewayV2Simulator(world, account=local.account)
    before = _send(timeline, simulator, api_id, "before")
    stage = world.client("apigatewayv2").get_stage(ApiId=api_id, StageName=HTTP_STAGE)
    group = log_group_of(stage["AccessLogSettings"]["DestinationArn"])
    timeline.emit(
        "access_logs",
        f"API Gateway wrote {len(before)} access-log line(s) to {group}",
        [line for record in before for line in record["logLines"]],
    )
    execution_arn = _detect(timeline, local)
    if execution_arn is None:  # the detector does not read HTTP access logs (yet): start as on-call
        started = world.client("stepfunctions").start_execution(
            stateMachineArn=local.stack.state_machine_arn,
            name=f"demo-http-{time.monotonic_ns()}",
            input=json.dumps({"source": "manual", "apiName": HTTP_API_NAME}),
        )
        execution_arn = started["executionArn"]
        timeline.emit(
            "manual_start",
            f'Started the workflow for {HTTP_API_NAME} as on-call would ({{"apiName": "{HTTP_API_NAME}"}})',
            executionArn=execution_arn,
        )
    result = _follow_execution(timeline, world, execution_arn)
    after = _send(timeline, simulator, api_id, "after")
    healed = all(record["status"] == 200 for record in after)
    return {
        "healed": healed,
        "apiId": api_id,
        "stage": HTTP_STAGE,
        "executionArn": execution_arn,
        "remediation": result,
        "requests": [
            {"request": b["request"], "before": b["status"], "after": a["status"]}
            for b, a in zip(before, after, strict=True)
        ],
    }


def _detect(timeline: Timeline, local: Any) -> str | None:
    """Deliver what the subscription matches to the detector; the execution it started, if any."""
    deliveries = local.flush_logs()
    started = [
        arn
        for delivery in deliveries
        if not delivery.error and isinstance(delivery.result, dict)
        for arn in delivery.result.get("started", [])
    ]
    timeline.emit(
        "http_detection",
        f"Subscription delivered {sum(len(d.messages) for d in deliveries)} access-log line(s) to "
        f"{local.detector}: started {len(started)} execution(s)",
        started=started,
    )
    return started[0] if started else None


def _send(
    timeline: Timeline, simulator: ApiGatewayV2Simulator, api_id: str, phase: str
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for method, path, headers in HTTP_REQUESTS:
        response = simulator.request(api_id, HTTP_STAGE, method, path, headers)
        label = f"{method} {path}"
        record: dict[str, Any] = {
            "phase": phase,
            "request": label,
            "route": response.route,
            "status": response.status,
            "body": response.body,
            "requestId": response.request_id,
            "logLines": list(response.log_lines),
        }
        records.append(record)
        verdict = "ok" if response.ok else "FAILED"
        timeline.emit(
            "http_request",
            f"{label:<22} -> {response.status} {json.dumps(response.body)}  [{verdict}]",
            **{k: v for k, v in record.items() if k != "logLines"},
        )
    return records
