"""Step "Resolve targets": what the API invokes, per the control plane, and whether it is allowlisted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.config import Settings
from permheal.handlers import adapters_for
from permheal.observability import logger, metrics, tracer
from permheal.workflow.resolve import resolve
from permheal.workflow.state import ExecutionInput


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    payload = event if isinstance(event, dict) else {}
    request = ExecutionInput.from_event(payload.get("request"))
    settings = Settings.from_env()
    execution_arn = str(payload.get("executionArn") or "")
    resolution = resolve(adapters_for(context, settings), request, settings, execution_arn)
    metrics.add_metric(
        name="Refusals" if not resolution.allowed else "FunctionsResolved",
        unit=MetricUnit.Count,
        value=1 if not resolution.allowed else len(resolution.groups),
    )
    return resolution.to_dict()
