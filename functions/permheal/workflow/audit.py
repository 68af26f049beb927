"""The audit trail around a repair: ledger entries, and the flap breaker that reads them back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from permheal.adapters.ledger import Ledger, LedgerEntry, function_key
from permheal.arns import FunctionRef
from permheal.config import Settings
from permheal.parallel import Outcome
from permheal.workflow.state import RepairContext, RepairResult


def flap_guard(
    ledger: Ledger | None, settings: Settings, recent: Outcome[list[LedgerEntry]] | None = None
) -> Callable[[FunctionRef, frozenset[str]], str | None] | None:
    """Stop re-adding a grant something keeps removing (usually IaC drift) until an operator clears it.

    `recent` is the function's recent repairs when the caller read them already (alongside other
    reads); its failure, if any, is raised here, where the guard would have read them.
    """
    if ledger is None:
        return None

    def guard(function: FunctionRef, planned_sids: frozenset[str]) -> str | None:
        # Flapping = re-adding a grant permheal already added: other APIs' first repairs don't count.
        window = timedelta(hours=settings.flap_window_hours)
        entries = recent.get() if recent else ledger.recent_repairs(function_key(function), window)
        repairs = [entry for entry in entries if planned_sids & {added["sid"] for added in entry.added}]
        if len(repairs) < settings.flap_threshold:
            return None
        when = ", ".join(f"{r.at} ({r.change_id})" for r in repairs[-settings.flap_threshold :])
        return (
            f"{function.label} was repaired {len(repairs)} times in {settings.flap_window_hours} h ({when}); "
            f"something keeps removing its permission. Not repairing until cleared with "
            f"`permheal clear-flap {function.arn}`"
        )

    return guard


def record(
    ledger: Ledger | None,
    context: RepairContext,
    kind: str,
    key: str,
    *,
    result: RepairResult | None = None,
    detail: str = "",
) -> None:
    """Write the audit trail; a run without a ledger (CLI --local, tests) records nothing."""
    if ledger is None:
        return
    change = result.change if result else None
    ledger.record(
        LedgerEntry(
            kind=kind,
            api_id=context.api.api_id,
            function_key=key,
            execution_arn=context.execution_arn,
            trigger=context.source,
            api_name=context.api.name,
            stage=context.stage or "",
            added=tuple({"sid": a.sid, "sourceArn": a.source_arn} for a in change.added) if change else (),
            removed=tuple(
                {"sid": r.sid, "sourceArn": r.source_arn, "reason": r.reason, "statement": r.statement}
                for r in change.removed
            )
            if change
            else (),
            policy_before=result.policy_before if result else {},
            policy_after=result.policy_after if result else {},
            detail=detail,
        )
    )
