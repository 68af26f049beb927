"""The alert as chat shows it: AWS Chatbot (Amazon Q Developer in chat) custom-notification JSON.

One SNS topic serves email and chat: the workflow publishes with `MessageStructure=json`, `default`
= the human summary + JSON result (email, SQS, Lambda subscribers) and `https` = this payload,
which is what Chatbot's HTTPS subscription receives and renders in Slack or Microsoft Teams.
A title short enough for a phone's lock screen; the description in chat markdown with what broke,
what changed and the revert command; next steps start with the `permheal explain` of a failing
call. Bounded: the description is cut (and counted) to CHAT_DESCRIPTION_LIMIT characters and
the whole payload to CHAT_BUDGET bytes as it travels (a JSON string inside the SNS JSON).
"""

from __future__ import annotations

import json
from typing import Any

from permheal.limits import CHAT_BUDGET, CHAT_DESCRIPTION_LIMIT, clip, fit
from permheal.models import Finding, FindingKind, Outcome, RemediationResult

TITLE_LIMIT = 80
"""Characters: what a phone's notification shows of a chat message before cutting it."""
KEYWORD_LIMIT = 64
_ICONS = {
    Outcome.REPAIRED: ":white_check_mark:",
    Outcome.NO_CHANGE: ":information_source:",
    Outcome.DRY_RUN: ":memo:",
    Outcome.REFUSED: ":no_entry:",
    Outcome.FAILED: ":x:",
    Outcome.FLAPPING: ":repeat:",
}
NOT_FIXED = {
    # What a person must look at: the email summary words each; chat lists them under "Needs a person".
    FindingKind.INTEGRATION_ROLE: "invoked through an IAM role (resource policy not used)",
    FindingKind.CROSS_ACCOUNT_FUNCTION: "function in another account (not edited)",
    FindingKind.MISSING_FUNCTION: "function does not exist",
    FindingKind.STALE_STATEMENT: "grant for a deleted API",
    FindingKind.POLICY_NEAR_LIMIT: "policy close to the 20 KB limit",
    FindingKind.LOGGING_DISABLED: "execution logging off (failures cannot be detected)",
}


def escaped_size(value: Any) -> int:
    """Bytes of `value` as a JSON string inside another JSON document, every non-ASCII escaped.

    The worst case of how Step Functions and SNS may encode it, so the budget holds whatever they do.
    """
    return len(json.dumps(json.dumps(value, separators=(",", ":"))))


def explain_command(finding: Finding, fallback_stage: str | None) -> str | None:
    """`permheal explain …` for a failing call named by a finding, or None when it names none."""
    stage = finding.stage or fallback_stage
    if not finding.api_id or not stage:
        return None
    where = f"--api {finding.api_id} --stage {stage}"
    if finding.authorizer_id:
        return f"permheal explain {where} --authorizer {finding.authorizer_id}"
    if finding.route_key:  # HTTP and WebSocket routes: `GET /pets/{id}`, `$default`, `$connect`
        return f'permheal explain {where} --route "{finding.route_key}"'
    if finding.method and finding.resource_path:
        return f'permheal explain {where} --route "{finding.method} {finding.resource_path}"'
    return None


def subject(result: RemediationResult, limit: int, prefix: str = "") -> str:
    """`permheal <outcome>: <api name>/<stage> (<n> change(s))` cut to `limit` characters."""
    where = f"{result.api_name or result.api_id or 'unknown API'}/{result.stage or '*'}"
    count = result.change_count
    changes = f"{count} change{'' if count == 1 else 's'}"
    text = f"{prefix}permheal {result.outcome.value}: {where} ({changes})"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(result: RemediationResult) -> str:
    return subject(result, TITLE_LIMIT, f"{_ICONS[result.outcome]} ")


def payload(result: RemediationResult, execution_arn: str | None, console: str | None) -> dict[str, Any]:
    """The custom notification, lists cut until it fits CHAT_BUDGET (as escaped) and the description limit."""

    def render(kept: int) -> dict[str, Any]:
        return _payload(result, execution_arn, console, kept)

    most = max(
        [len(result.findings), len(result.changes), *(len(c.added) + len(c.removed) for c in result.changes)]
    )
    return fit(render, CHAT_BUDGET, most, size=escaped_size)


def _payload(
    result: RemediationResult, execution_arn: str | None, console: str | None, kept: int
) -> dict[str, Any]:
    api = result.api_id or "unknown"
    stage = result.stage or "*"
    explains = [
        c
        for f in result.findings
        if f.kind is FindingKind.MISSING_PERMISSION
        if (c := explain_command(f, result.stage))
    ]
    next_steps = [f"Why: `{command}`" for command in dict.fromkeys(explains[:kept][:3])]
    if any(c.changed for c in result.changes) and result.outcome is not Outcome.DRY_RUN:
        next_steps.append(f"Revert: `permheal history --api {api}`, then `permheal revert CHANGE_ID`")
    if result.outcome is Outcome.FLAPPING:
        next_steps.append("Find what keeps removing the grant, then `permheal clear-flap FUNCTION`")
    if result.outcome is Outcome.REFUSED:
        next_steps.append("Add the API to the allowlist parameter if permheal should repair it")
    if console:
        next_steps.append(f"Execution: {console}")
    description = clip(_description(result, kept), CHAT_DESCRIPTION_LIMIT) or ""
    functions = sorted({c.function_arn + (f":{c.qualifier}" if c.qualifier else "") for c in result.changes})
    data: dict[str, Any] = {
        "version": "1.0",
        "source": "custom",
        "id": (execution_arn or f"permheal-{api}-{stage}")[-256:],
        "content": {
            "textType": "client-markdown",
            "title": title(result),
            "description": description,
            "nextSteps": next_steps,
            "keywords": [
                k[:KEYWORD_LIMIT]
                for k in dict.fromkeys(["permheal", result.outcome.value, result.api_name or api, stage])
                if k
            ],
        },
        "metadata": {
            "threadId": f"permheal-{api}-{stage}"[:256],
            "summary": title(result),
            "eventType": f"permheal.{result.outcome.value}",
            "relatedResources": ([execution_arn] if execution_arn else []) + functions[:kept],
            "additionalContext": {
                "apiId": api,
                "stage": stage,
                "outcome": result.outcome.value,
                "changes": str(result.change_count),
            },
        },
    }
    return data


def _description(result: RemediationResult, kept: int) -> str:
    lines = [_headline(result)]
    failing = [f for f in result.findings if f.kind is FindingKind.MISSING_PERMISSION]
    if failing:
        lines += ["", "*What broke*"]
        lines += [f"• `{where(f)}` → `{label(f.function_arn, f.qualifier)}`" for f in failing[:kept]]
        lines += _more(len(failing) - len(failing[:kept]))
    changes = [c for c in result.changes if c.changed]
    if changes:
        verb = "Would change" if result.outcome is Outcome.DRY_RUN else "Changed"
        lines += ["", f"*{verb}*"]
        for change in changes[:kept]:
            name = label(change.function_arn, change.qualifier)
            added, removed = (
                len(change.added) + change.added_omitted,
                len(change.removed) + change.removed_omitted,
            )
            lines.append(
                f"• `{name}`: +{added} −{removed}, policy {change.policy_bytes_before} → "
                f"{change.policy_bytes_after} bytes"
            )
            qualifier = f" --qualifier {change.qualifier}" if change.qualifier else ""
            for statement in change.added[: min(kept, 2)]:
                lines.append(
                    f"  undo: `aws lambda remove-permission --function-name {change.function_arn}{qualifier}"
                    f" --statement-id {statement.sid}`"
                )
        lines += _more(len(changes) - len(changes[:kept]))
    person = [f for f in result.findings if f.kind in NOT_FIXED]
    if person:
        lines += ["", "*Needs a person*"]
        lines += [
            f"• {f.kind.value}: `{label(f.function_arn, f.qualifier) if f.function_arn else f.sid or '-'}`"
            for f in person[:kept]
        ]
        lines += _more(len(person) - len(person[:kept]))
    return "\n".join(lines)


def _headline(result: RemediationResult) -> str:
    name, api_id = result.api_name or result.api_id or "?", result.api_id or "?"
    api = f"*{name}* (`{api_id}`) stage `{result.stage or 'all'}`"
    error = clip(result.error, 300)
    return {
        Outcome.REPAIRED: f"Repaired API Gateway's permission to invoke Lambda for {api}.",
        Outcome.NO_CHANGE: f"Nothing to change for {api}.",
        Outcome.DRY_RUN: f"Dry run for {api}: nothing was changed.",
        Outcome.REFUSED: f"Refused to touch {api}: {error or 'not allowlisted'}.",
        Outcome.FAILED: f"Could not repair {api}: {error or 'unknown error'}.",
        Outcome.FLAPPING: f"Stopped repairing {api} (flap breaker): {error or 'flapping'}.",
    }[result.outcome]


def _more(count: int) -> list[str]:
    return [f"• … and {count} more (`permheal history`)"] if count > 0 else []


def where(finding: Finding) -> str:
    if finding.authorizer_id:
        return f"authorizer {finding.authorizer_id}"
    if finding.route_key:
        return f"route {finding.route_key}"
    return f"{finding.method} {finding.resource_path}"


def label(arn: str | None, qualifier: str | None) -> str:
    name = (arn or "?").rsplit(":", 1)[-1]
    return f"{name}:{qualifier}" if qualifier else name
