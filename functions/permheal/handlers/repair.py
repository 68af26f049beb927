"""Step "Repair the function's policy": one function+qualifier, read → plan → apply → verify.

Also step "Report the function's failure": given the error that ended an iteration (`failure`),
the same function returns a failed result for that iteration's function, so one function failing
never hides what the others changed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.config import Settings
from permheal.errors import ParseError
from permheal.handlers import adapters_for
from permheal.observability import logger, metrics, traced
from permheal.workflow.outcome import error_text
from permheal.workflow.repair import repair_group
from permheal.workflow.state import FunctionGroup, RepairContext, RepairResult


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ParseError("repair input must be an object")
    group = FunctionGroup.from_dict(event.get("group"))
    run = RepairContext.from_dict(event.get("resolution"))
    if "failure" in event:
        metrics.add_metric(name="RepairsFailed", unit=MetricUnit.Count, value=1)
        return RepairResult.failed(group.function, error_text(event["failure"])).to_dict(run.repair_budget)
    settings = Settings.from_env()
    result = repair_group(adapters_for(context, settings), run, group, settings)
    # The full change, removed statements included: the workflow's copy leaves their bodies out.
    logger.info("repaired", extra={"change": result.change.to_dict(), "verified": result.verified})
    metrics.add_metric(name="StatementsAdded", unit=MetricUnit.Count, value=len(result.change.added))
    metrics.add_metric(name="StatementsRemoved", unit=MetricUnit.Count, value=len(result.change.removed))
    return result.to_dict(run.repair_budget)
