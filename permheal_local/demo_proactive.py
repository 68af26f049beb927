"""`permheal demo`, part 2: a deploy breaks the healed API again and permheal heals it from the deploy
event (CloudTrail → EventBridge → the proactive trigger), before any request is sent: zero failures.

The deploy is two real calls through the World (PutIntegration, CreateDeployment); the local
CloudTrail turns each into the event AWS would send and delivers it to the deployed rule's target,
immediately (AWS: about 90 s at p99). The debounce shows: both events fall in one window, one run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from permheal_local.builder import World, function_arn, integration_uri
from permheal_local.cloudtrail import CloudTrail, started_by
from permheal_local.demo import (
    REQUESTS,
    STAGE,
    Petstore,
    Timeline,
    _follow_execution,
    _send,
)

NEW_FUNCTION = "orders"
# moto logs a caveat on every IsTimestamp Choice (it evaluates it correctly for our ISO timestamps).
_MOTO_IS_OPERATOR = "moto.stepfunctions.parser.asl.component.state.choice.comparison.operator.implementations"
PREFIX = "proactive_"


class _Prefixed(Timeline):
    """The demo's timeline, with this part's event kinds prefixed so both parts stay tellable apart."""

    def __init__(self, base: Timeline):
        self._base = base

    @property
    def elapsed_ms(self) -> int:
        return self._base.elapsed_ms

    def emit(self, event: str, text: str, details: Sequence[str] = (), **data: Any) -> None:
        self._base.emit(PREFIX + event, text, details, **data)

    def note(self, text: str = "") -> None:
        self._base.note(text)


def move_integration(world: World, api_id: str, path: str, http_method: str, function: str) -> None:
    """Point a REST method's Lambda proxy integration at another function (PutIntegration)."""
    apigw = world.client("apigateway")
    resource = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == path)
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource,
        httpMethod=http_method,
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri=integration_uri(function_arn(function), world.region),
    )


def run_proactive(base: Timeline, local: Any, petstore: Petstore) -> dict[str, Any]:
    """Break the API with a deployment, heal it from the deploy event; the summary for `--json`."""
    timeline = _Prefixed(base)
    logging.getLogger(_MOTO_IS_OPERATOR).setLevel(logging.ERROR)
    world: World = local.world
    timeline.note("")
    timeline.note("Part 2: a deployment breaks it again; permheal heals it from the deploy event.")
    world.function(NEW_FUNCTION)
    trail = CloudTrail.attach(world, settle=False)
    try:
        move_integration(world, petstore.api_id, "/{proxy+}", "ANY", NEW_FUNCTION)
        world.client("apigateway").create_deployment(restApiId=petstore.api_id, stageName=STAGE)
    finally:
        trail.detach()
    timeline.emit(
        "deploy",
        f"Deployed: ANY /{{proxy+}} -> {NEW_FUNCTION}, a function API Gateway has no permission to invoke",
        [f"calls: PutIntegration, CreateDeployment (stage {STAGE})"],
        function=NEW_FUNCTION,
    )
    started: list[str] = []
    for delivery in trail.deliveries:
        detail = delivery.event["detail"]
        result = delivery.result if isinstance(delivery.result, dict) else {}
        arns = started_by(delivery)
        started += arns
        verdict = (
            f"started {arns[0].rsplit(':', 1)[-1]}"
            if arns
            else f"suppressed (debounce: {result.get('suppressed', 0)})"
            if result.get("suppressed")
            else f"error {delivery.error}"
            if delivery.error
            else f"nothing to do ({result})"
        )
        timeline.emit(
            "cloudtrail",
            f"CloudTrail {detail['eventName']} -> rule {delivery.rule} -> "
            f"{delivery.target.rsplit(':', 1)[-1]}: {verdict}",
            eventName=detail["eventName"],
            rule=delivery.rule,
            result=result,
            error=delivery.error,
        )
    results = [_follow_execution(timeline, world, arn) for arn in started]
    after = _send(timeline, local.simulator(), petstore, "after-deploy")
    failed = sum(r["status"] != 200 for r in after)
    timeline.emit(
        "done",
        f"{'Healed before the first request' if not failed else 'NOT healed'}: "
        f"{len(after) - failed}/{len(REQUESTS)} requests succeed, {failed} failed during the deploy",
        failed=failed,
    )
    return {
        "healed": failed == 0 and bool(started),
        "failedRequests": failed,
        "executions": started,
        "events": [d.event["detail"]["eventName"] for d in trail.deliveries],
        "outcomes": [r.get("outcome") if r else None for r in results],
        "requests": [{"request": r["request"], "status": r["status"]} for r in after],
    }
