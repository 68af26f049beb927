"""Undo one recorded change exactly: remove the grants it added, re-add the ones it removed.

Refuses, changing nothing, when the policy has since moved in a way that conflicts: a Sid the
change added now holds a different statement, or a Sid it removed is back with other content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from permheal.adapters.lambda_policy import LambdaPolicies, StaleRevision
from permheal.adapters.ledger import EntryKind, Ledger, LedgerEntry
from permheal.arns import parse_function
from permheal.errors import ConflictError, ParseError
from permheal.policy import Policy, gateway_grant, invoke_statement


@dataclass(frozen=True)
class RevertResult:
    change_id: str
    reverted: bool
    removed: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    revert_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "changeId": self.change_id,
            "reverted": self.reverted,
            "removed": list(self.removed),
            "restored": list(self.restored),
            "conflicts": list(self.conflicts),
            "revertId": self.revert_id,
        }


@dataclass(frozen=True)
class RevertPlan:
    remove: tuple[str, ...]
    restore: tuple[Mapping[str, Any], ...]
    conflicts: tuple[str, ...]


def plan_revert(entry: LedgerEntry, policy: Policy, resource_arn: str) -> RevertPlan:
    """Pure: what undoing `entry` takes against the policy as it is now."""
    current = {s.get("Sid"): s for s in policy.statements if isinstance(s.get("Sid"), str)}
    remove: list[str] = []
    restore: list[Mapping[str, Any]] = []
    conflicts: list[str] = []
    for added in entry.added:
        sid, source = added["sid"], added["sourceArn"]
        statement = current.get(sid)
        if statement is None:
            continue
        grant = gateway_grant(statement, 0, resource_arn)
        if grant is None or grant.source_pattern != source:
            conflicts.append(f"{sid} now holds a different statement than the one this change added")
        else:
            remove.append(sid)
    for removed in entry.removed:
        sid, original = removed["sid"], removed.get("statement") or {}
        statement = current.get(sid)
        if statement is not None:
            if dict(statement) != original:
                conflicts.append(f"{sid} was re-created with different content since this change removed it")
            continue
        grant = gateway_grant(original, 0, resource_arn)
        if grant is None or grant.source_pattern is None or grant.source_account is not None:
            conflicts.append(f"{sid} cannot be re-created exactly with AddPermission")
        else:
            restore.append(invoke_statement(sid, resource_arn, grant.source_pattern))
    return RevertPlan(tuple(remove), tuple(restore), tuple(conflicts))


def revert(policies: LambdaPolicies, ledger: Ledger, change_id: str, *, attempts: int = 5) -> RevertResult:
    entry = ledger.get(change_id)
    if entry.kind not in (EntryKind.REPAIR, EntryKind.REVERT):
        raise ParseError(f"{change_id} is a {entry.kind} entry: only applied changes can be reverted")
    function = parse_function(entry.function_key, partition="aws", region="-", account="-")
    for _ in range(attempts):
        policy = before = policies.read(function)
        plan = plan_revert(entry, policy, function.arn)
        if plan.conflicts:
            return RevertResult(change_id, False, conflicts=plan.conflicts)
        try:
            # Restore first: a crash in between leaves more access, never less than before the change.
            for statement in plan.restore:
                policies.add(function, dict(statement), policy.revision_id)
                policy = policies.read(function)
            for sid in plan.remove:
                policies.remove(function, sid, policy.revision_id)
                policy = policies.read(function)
        except StaleRevision:
            continue
        recorded = ledger.record(
            LedgerEntry(
                kind=EntryKind.REVERT,
                api_id=entry.api_id,
                function_key=entry.function_key,
                trigger="manual",
                api_name=entry.api_name,
                stage=entry.stage,
                added=tuple({"sid": s["Sid"], "sourceArn": _source(s)} for s in plan.restore),
                removed=tuple(
                    {
                        "sid": a["sid"],
                        "sourceArn": a["sourceArn"],
                        "reason": f"revert of {change_id}",
                        "statement": dict(_statement(entry, a["sid"])),
                    }
                    for a in entry.added
                    if a["sid"] in plan.remove
                ),
                policy_before=before.document(),
                policy_after=policy.document(),
                detail=f"revert of {change_id}",
                revert_of=change_id,
            )
        )
        return RevertResult(
            change_id,
            True,
            plan.remove,
            tuple(str(s["Sid"]) for s in plan.restore),
            revert_id=recorded.change_id,
        )
    raise ConflictError(f"policy of {function.arn} kept changing; revert of {change_id} not applied")


def _source(statement: Mapping[str, Any]) -> str:
    return str(statement["Condition"]["ArnLike"]["AWS:SourceArn"])


def _statement(entry: LedgerEntry, sid: str) -> Mapping[str, Any]:
    after = entry.policy_after.get("Statement", []) if entry.policy_after else []
    return next((s for s in after if s.get("Sid") == sid), {})
