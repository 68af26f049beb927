"""Step "Resolve targets": what the API invokes, per the control plane, and whether it is allowlisted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.adapters.ledger import Ledger
from permheal.config import Settings
from permheal.errors import AwsCallError
from permheal.handlers import adapters_for
from permheal.observability import logger, metrics, traced
from permheal.workflow.resolve import resolve
from permheal.workflow.state import ExecutionInput, Resolution


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    payload = event if isinstance(event, dict) else {}
    request = ExecutionInput.from_event(payload.get("request"))
    settings = Settings.from_env()
    execution_arn = str(payload.get("executionArn") or "")
    adapters = adapters_for(context, settings)
    resolution = resolve(adapters, request, settings, execution_arn)
    if resolution.allowed and adapters.ledger is not None:
        remember_routes(adapters.ledger, resolution)
    metrics.add_metric(
        name="Refusals" if not resolution.allowed else "FunctionsResolved",
        unit=MetricUnit.Count,
        value=1 if not resolution.allowed else len(resolution.groups),
    )
    return resolution.to_dict()


def remember_routes(ledger: Ledger, resolution: Resolution) -> None:
    """Refresh the proactive trigger's routes index; it is a shortcut, so a failure only logs."""
    functions = {group.function.unqualified_arn for group in resolution.groups}
    try:
        ledger.remember_routes(resolution.api.api_id, functions)
    except AwsCallError as exc:
        logger.warning("routes index not refreshed", extra={"reason": str(exc)})
