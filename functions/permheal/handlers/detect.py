"""Detector: CloudWatch Logs subscription → one remediation execution per incident.

Undecodable payloads go to the dead-letter queue with a metric and the invocation succeeds (no
crash loop); a StartExecution that still fails after retries fails the invocation, so Lambda's
async retries and on-failure destination keep the event. Nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.adapters.deadletter import DeadLetters
from permheal.adapters.workflow import Workflow
from permheal.config import DetectorSettings
from permheal.detection import decode, detect
from permheal.errors import ParseError
from permheal.observability import logger, metrics, traced


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = DetectorSettings.from_env()
    return handle(
        event,
        Workflow(settings.state_machine_arn),
        DeadLetters(settings.dead_letter_queue_url),
        settings.incident_window_seconds,
    )


def handle(event: Any, workflow: Workflow, dead_letters: DeadLetters, window: int) -> dict[str, Any]:
    try:
        detection = detect(decode(event), window)
    except ParseError as exc:
        logger.error("undecodable subscription payload", extra={"reason": str(exc)})
        metrics.add_metric(name="UndecodablePayloads", unit=MetricUnit.Count, value=1)
        dead_letters.send(str(exc), event)
        return {"started": [], "suppressed": 0, "rejected": str(exc)}
    for role in detection.role_failures:
        logger.warning("API Gateway cannot assume integration role; not fixable here", extra={"role": role})
    metrics.add_metric(name="RoleFailures", unit=MetricUnit.Count, value=len(detection.role_failures))
    metrics.add_metric(name="FailureLines", unit=MetricUnit.Count, value=detection.failure_lines)
    metrics.add_metric(name="IncidentsDetected", unit=MetricUnit.Count, value=len(detection.incidents))
    started: list[str] = []
    suppressed = 0
    for incident in detection.incidents:
        arn = workflow.start_once(incident.execution_name, incident.execution_input())
        if arn is None:
            suppressed += 1
        else:
            started.append(arn)
            logger.info("remediation started", extra={"execution": arn, "api": incident.api_id})
    metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=len(started))
    metrics.add_metric(name="ExecutionsSuppressed", unit=MetricUnit.Count, value=suppressed)
    return {
        "started": started,
        "suppressed": suppressed,
        "incidents": len(detection.incidents),
        "roleFailures": list(detection.role_failures),
    }
