"""What on-call reads: an SNS subject that says what happened, a human summary, then the JSON result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from permheal.models import Change, Finding, FindingKind, Outcome, RemediationResult

SUBJECT_LIMIT = 100
_NOT_FIXED = {
    FindingKind.INTEGRATION_ROLE: "invoked through an IAM role (resource policy not used)",
    FindingKind.CROSS_ACCOUNT_FUNCTION: "function in another account (not edited)",
    FindingKind.MISSING_FUNCTION: "function does not exist",
    FindingKind.STALE_STATEMENT: "grant for a deleted API",
    FindingKind.POLICY_NEAR_LIMIT: "policy close to the 20 KB limit",
    FindingKind.LOGGING_DISABLED: "execution logging off (failures cannot be detected)",
}


@dataclass(frozen=True)
class Notification:
    subject: str
    message: str
    outcome: str
    api_id: str
    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "message": self.message,
            "outcome": self.outcome,
            "apiId": self.api_id,
            "result": self.result,
        }


def notification(result: RemediationResult, execution_arn: str | None, region: str) -> Notification:
    return Notification(
        subject(result),
        message(result, execution_arn, region),
        result.outcome.value,
        result.api_id or "unknown",
        result.to_dict(),
    )


def subject(result: RemediationResult) -> str:
    """`permheal <outcome>: <api name>/<stage> (<n> change(s))`, cut to SNS's 100 characters."""
    count = sum(len(c.added) + len(c.removed) for c in result.changes)
    where = f"{result.api_name or result.api_id or 'unknown API'}/{result.stage or '*'}"
    text = f"permheal {result.outcome.value}: {where} ({count} change{'' if count == 1 else 's'})"
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "…"


def message(result: RemediationResult, execution_arn: str | None, region: str) -> str:
    lines = [_headline(result), ""]
    failing = [f for f in result.findings if f.kind is FindingKind.MISSING_PERMISSION]
    if failing:
        lines.append("What broke:")
        lines.extend(f"  - {_where(f)} -> {_label(f.function_arn, f.qualifier)}" for f in failing)
        lines.append("")
    for change in result.changes:
        lines.extend(_change_lines(change, result.outcome))
    other = [f for f in result.findings if f.kind in _NOT_FIXED]
    if other:
        lines.append("Not changed, needs a person:")
        lines.extend(f"  - {_NOT_FIXED[f.kind]}: {_subject_of(f)} {f.detail}".rstrip() for f in other)
        lines.append("")
    if any(c.changed for c in result.changes) and result.outcome is not Outcome.DRY_RUN:
        lines.append(
            "How to revert: run the inverse commands above, or `permheal history` / `permheal revert`."
        )
    if execution_arn:
        lines.append(f"Execution: {console_link(execution_arn, region)}")
    lines += ["", "Result (JSON):", json.dumps(result.to_dict(), indent=2, sort_keys=True)]
    return "\n".join(lines)


def _headline(result: RemediationResult) -> str:
    api = f"{result.api_name or '?'} ({result.api_id or '?'}) stage {result.stage or 'all stages'}"
    return {
        Outcome.REPAIRED: f"permheal repaired API Gateway's permission to invoke Lambda for {api}.",
        Outcome.NO_CHANGE: f"permheal found nothing to change for {api}.",
        Outcome.DRY_RUN: f"Dry run: permheal would change these policies for {api}; nothing was changed.",
        Outcome.REFUSED: f"permheal refused to touch {api}: {result.error or 'not allowlisted'}.",
        Outcome.FAILED: f"permheal could not repair {api}: {result.error or 'unknown error'}.",
        Outcome.FLAPPING: f"permheal stopped repairing {api} (flap breaker): {result.error or 'flapping'}.",
    }[result.outcome]


def _change_lines(change: Change, outcome: Outcome) -> list[str]:
    label = _label(change.function_arn, change.qualifier)
    verb = "would change" if outcome is Outcome.DRY_RUN else "changed"
    lines = [f"{label} {verb}: policy {change.policy_bytes_before} -> {change.policy_bytes_after} bytes"]
    qualifier = f" --qualifier {change.qualifier}" if change.qualifier else ""
    for added in change.added:
        lines.append(f"  + added {added.sid} for {added.source_arn}")
        lines.append(
            f"    revert: aws lambda remove-permission --function-name {change.function_arn}{qualifier}"
            f" --statement-id {added.sid}"
        )
    for removed in change.removed:
        lines.append(f"  - removed {removed.sid} ({removed.reason})")
        if removed.source_arn:
            lines.append(
                f"    revert: aws lambda add-permission --function-name {change.function_arn}{qualifier}"
                f" --statement-id {removed.sid} --action lambda:InvokeFunction"
                f" --principal apigateway.amazonaws.com --source-arn '{removed.source_arn}'"
            )
    lines.append("")
    return lines


def _where(finding: Finding) -> str:
    if finding.authorizer_id:
        return f"authorizer {finding.authorizer_id}"
    return f"{finding.method} {finding.resource_path}"


def _subject_of(finding: Finding) -> str:
    return _label(finding.function_arn, finding.qualifier) if finding.function_arn else finding.sid or ""


def _label(arn: str | None, qualifier: str | None) -> str:
    name = (arn or "?").rsplit(":", 1)[-1]
    return f"{name}:{qualifier}" if qualifier else name


def console_link(execution_arn: str, region: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )
