"""What on-call reads: an SNS subject that says what happened, a human summary, then the JSON result.

Bounded by design (permheal.limits): long lists are cut with a count and a pointer to the audit
ledger, which holds every change in full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from permheal.chat import NOT_FIXED as _NOT_FIXED
from permheal.chat import escaped_size, explain_command, payload
from permheal.chat import label as _label
from permheal.chat import subject as _subject
from permheal.chat import where as _where
from permheal.limits import (
    CAUSE_BUDGET,
    CHAT_BUDGET,
    ERROR_TEXT_LIMIT,
    MESSAGE_BUDGET,
    RESULT_BUDGET,
    clip,
    fit,
)
from permheal.models import Change, Finding, FindingKind, Outcome, RemediationResult

SUBJECT_LIMIT = 100


@dataclass(frozen=True)
class Notification:
    """The summary step's output, which replaces the workflow state: every part within its budget."""

    subject: str
    message: str
    outcome: str
    api_id: str
    result: dict[str, Any]
    cause: str = ""
    chat: str = ""
    """The AWS Chatbot custom notification (JSON text), published as the message's `https` part."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "message": self.message,
            "outcome": self.outcome,
            "apiId": self.api_id,
            "result": self.result,
            "cause": self.cause,
            "chat": self.chat,
        }


def notification(result: RemediationResult, execution_arn: str | None, region: str) -> Notification:
    """Subject, message (≤ MESSAGE_BUDGET), the result as output (≤ RESULT_BUDGET) and as Fail cause."""
    return Notification(
        subject(result),
        message(result, execution_arn, region),
        result.outcome.value,
        result.api_id or "unknown",
        bounded(result, RESULT_BUDGET),
        json.dumps(bounded(result, CAUSE_BUDGET), ensure_ascii=False, separators=(",", ":")),
        json.dumps(
            payload(result, execution_arn, console_link(execution_arn, region) if execution_arn else None),
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    )


def bounded(result: RemediationResult, budget: int) -> dict[str, Any]:
    """The JSON result within `budget` bytes: lists cut, counted, never the JSON itself."""
    return fit(lambda kept: _json(result, kept), budget, _longest(result))


def _json(result: RemediationResult, kept: int) -> dict[str, Any]:
    return result.to_dict(kept, statements=False, error_limit=ERROR_TEXT_LIMIT)


def _longest(result: RemediationResult) -> int:
    lengths = [len(result.changes), len(result.findings)]
    lengths += [max(len(c.added), len(c.removed)) for c in result.changes]
    return max(lengths)


def subject(result: RemediationResult) -> str:
    """`permheal <outcome>: <api name>/<stage> (<n> change(s))`, cut to SNS's 100 characters."""
    return _subject(result, SUBJECT_LIMIT)


def message(
    result: RemediationResult,
    execution_arn: str | None,
    region: str,
    budget: int = MESSAGE_BUDGET - CHAT_BUDGET,
) -> str:
    """The human summary, then the JSON result; lists cut (and counted) to stay within `budget` bytes.

    Measured as the escaped JSON string the structured SNS message carries it in (`default`).
    """

    def render(kept: int) -> str:
        lines = summary(result, execution_arn, region, kept)
        document = json.dumps(_json(result, kept), indent=2, sort_keys=True)
        return "\n".join([*lines, "", "Result (JSON):", document])

    text: str = fit(render, budget, _longest(result), size=escaped_size)
    return text


def summary(
    result: RemediationResult, execution_arn: str | None, region: str, kept: int | None = None
) -> list[str]:
    """What on-call reads first; each list shows `kept` entries and says how many more the ledger has."""
    history = f"`permheal history --api {result.api_id}`" if result.api_id else "`permheal history`"
    lines = [_headline(result), ""]
    failing = [f for f in result.findings if f.kind is FindingKind.MISSING_PERMISSION]
    if failing:
        lines.append("What broke:")
        for finding in failing[:kept]:
            lines.append(f"  - {_where(finding)} -> {_label(finding.function_arn, finding.qualifier)}")
            if command := explain_command(finding, result.stage):
                lines.append(f"    run `{command}` to see why")
        lines.extend(_more(len(failing) - len(failing[:kept]), "", history))
        lines.append("")
    for change in result.changes[:kept]:
        lines.extend(_change_lines(change, result.outcome, kept, history))
    shown = result.changes[:kept]
    lines.extend(
        _more(len(result.changes) - len(shown) + result.changes_omitted, " function(s) changed", history)
    )
    other = [f for f in result.findings if f.kind in _NOT_FIXED]
    if other:
        lines.append("Not changed, needs a person:")
        lines.extend(f"  - {_NOT_FIXED[f.kind]}: {_subject_of(f)} {f.detail}".rstrip() for f in other[:kept])
        lines.extend(_more(len(other) - len(other[:kept]), "", history))
        lines.append("")
    if any(c.changed for c in result.changes) and result.outcome is not Outcome.DRY_RUN:
        lines.append(
            "How to revert: run the inverse commands above, or undo a whole change with "
            "`permheal revert CHANGE_ID`."
        )
        lines.append(
            f"Every change, with the statements removed and the policies before and after, is in the "
            f"audit ledger: {history}."
        )
    if execution_arn:
        lines.append(f"Execution: {console_link(execution_arn, region)}")
    return lines


def _more(count: int, what: str, history: str) -> list[str]:
    return [f"  … and {count} more{what} ({history} lists them all)"] if count > 0 else []


def _headline(result: RemediationResult) -> str:
    api = f"{result.api_name or '?'} ({result.api_id or '?'}) stage {result.stage or 'all stages'}"
    error = clip(result.error, ERROR_TEXT_LIMIT)
    return {
        Outcome.REPAIRED: f"permheal repaired API Gateway's permission to invoke Lambda for {api}.",
        Outcome.NO_CHANGE: f"permheal found nothing to change for {api}.",
        Outcome.DRY_RUN: f"Dry run: permheal would change these policies for {api}; nothing was changed.",
        Outcome.REFUSED: f"permheal refused to touch {api}: {error or 'not allowlisted'}.",
        Outcome.FAILED: f"permheal could not repair {api}: {error or 'unknown error'}.",
        Outcome.FLAPPING: f"permheal stopped repairing {api} (flap breaker): {error or 'flapping'}.",
    }[result.outcome]


def _change_lines(change: Change, outcome: Outcome, kept: int | None, history: str) -> list[str]:
    label = _label(change.function_arn, change.qualifier)
    verb = "would change" if outcome is Outcome.DRY_RUN else "changed"
    lines = [f"{label} {verb}: policy {change.policy_bytes_before} -> {change.policy_bytes_after} bytes"]
    qualifier = f" --qualifier {change.qualifier}" if change.qualifier else ""
    for added in change.added[:kept]:
        lines.append(f"  + added {added.sid} for {added.source_arn}")
        lines.append(
            f"    revert: aws lambda remove-permission --function-name {change.function_arn}{qualifier}"
            f" --statement-id {added.sid}"
        )
    lines.extend(
        _more(len(change.added) - len(change.added[:kept]) + change.added_omitted, " added", history)
    )
    for removed in change.removed[:kept]:
        lines.append(f"  - removed {removed.sid} ({removed.reason})")
        if removed.source_arn:
            lines.append(
                f"    revert: aws lambda add-permission --function-name {change.function_arn}{qualifier}"
                f" --statement-id {removed.sid} --action lambda:InvokeFunction"
                f" --principal apigateway.amazonaws.com --source-arn '{removed.source_arn}'"
            )
    lines.extend(
        _more(len(change.removed) - len(change.removed[:kept]) + change.removed_omitted, " removed", history)
    )
    lines.append("")
    return lines


def _subject_of(finding: Finding) -> str:
    return _label(finding.function_arn, finding.qualifier) if finding.function_arn else finding.sid or ""


def console_link(execution_arn: str, region: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )
