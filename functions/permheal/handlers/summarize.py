"""Step "Summarize for on-call": the result, the SNS subject and the human-readable message.

Its output replaces the workflow state (every part within its budget, permheal.limits), so what
follows never carries the repairs and the summary together. With SecurityHubFindings=true it also
records what permheal cannot fix as Security Hub findings (never at the notification's expense).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.config import SummarySettings
from permheal.errors import ParseError, PermhealError
from permheal.heal_time import time_to_heal
from permheal.models import RemediationResult
from permheal.notify import notification
from permheal.observability import logger, metrics, traced
from permheal.workflow.outcome import result_from_state
from permheal.workflow.state import Resolution


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = result_from_state(event.get("state"))
    metrics.add_metric(name=f"Outcome_{result.outcome.value}", unit=MetricUnit.Count, value=1)
    state = event.get("state")
    healed = time_to_heal(
        state.get("request") if isinstance(state, dict) else None, result.outcome, datetime.now(UTC)
    )
    if healed is not None:
        metrics.add_metric(name="TimeToHeal", unit=MetricUnit.Seconds, value=healed)
    settings = SummarySettings.from_env()
    if settings.security_hub:
        security_hub(result, state, context, settings.region)
    return notification(result, event.get("executionArn"), settings.region).to_dict()


def security_hub(result: RemediationResult, state: Any, context: Any, region: str) -> None:
    """Findings for what permheal cannot fix; a Security Hub failure never stops the notification."""
    from permheal.adapters.securityhub import SecurityHub, record_findings
    from permheal.hub_findings import Where

    parts = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    if len(parts) < 5 or not parts[4].isdigit():
        logger.error("no account in the function's ARN: Security Hub findings not recorded")
        return
    try:
        examined = [g.function.arn for g in Resolution.from_dict(state.get("resolution")).groups]
    except (ParseError, AttributeError):
        examined = []  # nothing resolved: only whole-API findings can be resolved
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        count = record_findings(SecurityHub(), result, Where(parts[1], region, parts[4]), examined, now)
    except PermhealError as exc:
        logger.error("Security Hub findings not recorded", extra={"reason": str(exc)})
        metrics.add_metric(name="SecurityHubErrors", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="SecurityHubFindingsImported", unit=MetricUnit.Count, value=count)
