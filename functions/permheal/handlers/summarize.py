"""Step "Summarize for on-call": the result, the SNS subject and the human-readable message.

Its output replaces the workflow state (every part within its budget, permheal.limits), so what
follows never carries the repairs and the summary together.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.config import SummarySettings
from permheal.notify import notification
from permheal.observability import logger, metrics, tracer
from permheal.workflow.outcome import result_from_state


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = result_from_state(event.get("state"))
    metrics.add_metric(name=f"Outcome_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    return notification(result, event.get("executionArn"), SummarySettings.from_env().region).to_dict()
