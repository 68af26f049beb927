"""Step "Repair the function's policy": one function+qualifier, read → plan → apply one write → re-read.

`repair_group` is one Map iteration (allowlist and account re-checked, flap breaker, ledger);
`repair` is the write loop itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from permheal.adapters.account import Identity
from permheal.adapters.lambda_policy import LambdaPolicies, PolicyTooLarge, StaleRevision
from permheal.adapters.ledger import EntryKind, LedgerEntry, function_key
from permheal.adapters.ports import Adapters
from permheal.arns import ApiRef, FunctionRef
from permheal.config import Settings
from permheal.errors import AwsCallError, ConflictError, NotFoundError
from permheal.models import AddedStatement, Change, Finding, FindingKind, RemovedStatement, RestApi
from permheal.parallel import Outcome, run_all
from permheal.planner import Plan, PlanOptions, allows, plan_repair, policy_after, verdict
from permheal.policy import Decision, Policy
from permheal.workflow.audit import flap_guard, record
from permheal.workflow.state import FunctionGroup, RepairContext, RepairResult


def repair(
    adapters: Adapters,
    group: FunctionGroup,
    options: PlanOptions,
    *,
    dry_run: bool,
    max_attempts: int = 5,
    api_names: dict[str, str] | None = None,
    guard: Callable[[FunctionRef, frozenset[str]], str | None] | None = None,
    first_read: Outcome[Policy] | None = None,
) -> RepairResult:
    """Read, plan, apply one step, re-read: until the plan is empty, then verify by evaluation.

    Applying one write per fresh read means a lost race or a crash never acts on a stale plan,
    and deterministic Sids make every re-run converge instead of piling up statements.
    `first_read` is the first GetPolicy when the caller already made it (alongside other reads).
    """
    function = group.function
    try:
        policy = first_read.get() if first_read is not None else adapters.policies.read(function)
    except NotFoundError as exc:
        return _missing_function(group, str(exc))
    first_plan = plan_repair(function, policy, group.targets, options, api_names)
    before = policy
    if dry_run or first_plan.refusal or first_plan.empty:
        return _unapplied(first_plan, group)
    planned = frozenset(str(s["Sid"]) for s in first_plan.add)
    flapping = guard(function, planned) if planned and guard else None
    if flapping:
        return replace(_unapplied(first_plan, group), refusal=flapping, flapping=True)

    added: dict[str, AddedStatement] = {}
    removed: dict[str, RemovedStatement] = {}
    plan, conflicts = first_plan, 0
    for _ in range(4 * (len(first_plan.add) + len(first_plan.removals)) + max_attempts):
        if plan.empty or plan.refusal:
            break
        step = _next_step(plan)
        try:
            _apply_step(adapters.policies, plan, step)
        except (StaleRevision, PolicyTooLarge) as exc:
            # A write whose answer was lost (5xx) lands, then the SDK's retry conflicts with it:
            # count it if the re-read shows it, so the change and the ledger still list it. (A
            # statement another writer removed first is then listed as removed too: it is gone.)
            conflicts += 1
            if conflicts >= max_attempts:
                raise ConflictError(f"gave up on {function.arn} after {conflicts} lost races: {exc}") from exc
            adapters.sleep(random.uniform(0.05, 0.2) * 2**conflicts)
            policy = adapters.policies.read(function)
            if _landed(step, policy):
                _count(step, added, removed)
        else:
            _count(step, added, removed)
            policy = adapters.policies.read(function)
        plan = plan_repair(function, policy, group.targets, options, api_names)
    change = Change(
        function.unqualified_arn,
        function.qualifier,
        tuple(added.values()),
        tuple(removed.values()),
        before.size_bytes,
        policy.size_bytes,
    )
    return _verified(change, plan, before, policy, group, first_plan.findings)


Step = tuple[str, dict[str, Any], AddedStatement | RemovedStatement]
"""("add", statement, what it adds) or ("remove", {}, what it removes)."""


def _next_step(plan: Plan) -> Step:
    """The next safe write of a fresh plan: removals still covered first, then adds, then the rest."""
    if plan.remove_first:
        return "remove", {}, plan.remove_first[0]
    if plan.add:
        return "add", dict(plan.add[0]), plan.change().added[0]
    return "remove", {}, plan.remove_after_add[0]


def _apply_step(policies: LambdaPolicies, plan: Plan, step: Step) -> None:
    action, statement, what = step
    if action == "add":
        policies.add(plan.function, statement, plan.policy.revision_id)
    else:
        policies.remove(plan.function, what.sid, plan.policy.revision_id)


def _landed(step: Step, policy: Policy) -> bool:
    """Whether a write that reported a conflict is nonetheless in the policy as re-read."""
    action, statement, what = step
    if action == "add":
        return any(dict(s) == statement for s in policy.statements)
    return what.sid not in policy.sids()


def _count(step: Step, added: dict[str, AddedStatement], removed: dict[str, RemovedStatement]) -> None:
    what = step[2]
    if isinstance(what, AddedStatement):
        added[what.sid] = what
    else:
        removed[what.sid] = what


def _verified(
    change: Change,
    plan: Plan,
    before: Policy,
    after: Policy,
    group: FunctionGroup,
    found: Sequence[Finding] = (),
) -> RepairResult:
    """Findings are what the first read showed (what broke), plus what only the last read shows."""
    failing = [t for t in group.targets if not allows(after, group.function, t)]
    findings = merge_findings(found, plan.findings)
    return RepairResult(
        change,
        findings,
        verified=not failing,
        refusal=plan.refusal,
        error=None if plan.refusal else _still_failing(after, group),
        policy_before=before.document(),
        policy_after=after.document(),
    )


def _still_failing(after: Policy, group: FunctionGroup) -> str | None:
    """Why calls are still not allowed once the plan is (or would be) applied; None when all are.

    A call a Deny statement blocks (or a statement permheal cannot read that may deny) names the
    statement: permheal never edits it, so the run must fail and say what a human has to change.
    A refusal is reported as such instead, by the caller.
    """
    reasons: list[str] = []
    for target in group.targets:
        judged = verdict(after, group.function, target)
        if judged.allowed:
            continue
        if judged.decision is Decision.DENY:
            reasons.append(f"{target.source_arn} denied by statement(s) {', '.join(judged.sids)}")
        else:
            reasons.append(target.source_arn)
    if not reasons:
        return None
    return f"{group.function.label}: still not allowed after repair: " + "; ".join(reasons)


def merge_findings(*lists: Sequence[Finding]) -> tuple[Finding, ...]:
    """One finding per subject: a later read restating an earlier finding only changes its detail."""
    merged: dict[Finding, Finding] = {}
    for finding in (f for findings in lists for f in findings):
        merged.setdefault(replace(finding, detail=""), finding)
    return tuple(merged.values())


def _unapplied(plan: Plan, group: FunctionGroup) -> RepairResult:
    """A plan not carried out (dry run, nothing to do, or refused): report it as it would land."""
    after = plan.policy if plan.refusal else policy_after(plan)
    failing = [t for t in group.targets if not allows(after, group.function, t)]
    return RepairResult(
        plan.change(),
        plan.findings,
        verified=not failing,
        refusal=plan.refusal,
        error=None if plan.refusal else _still_failing(after, group),
        policy_before=plan.policy.document(),
        policy_after=after.document(),
    )


def _missing_function(group: FunctionGroup, detail: str) -> RepairResult:
    function = group.function
    findings = tuple(
        Finding.for_target(FindingKind.MISSING_FUNCTION, t, None, detail=detail) for t in group.targets
    )
    change = Change(function.unqualified_arn, function.qualifier)
    return RepairResult(change, findings, verified=False, error=detail)


def settings_options(settings: Settings) -> PlanOptions:
    """The planning choices the deployment's settings make (what `scan` needs to match remediate)."""
    return PlanOptions(
        scope=settings.scope,
        prune_stale=settings.prune_stale,
        consolidate=settings.consolidate,
        dedupe_iac=settings.dedupe_iac,
    )


def plan_options(settings: Settings, context: RepairContext, api: ApiRef) -> PlanOptions:
    """How to plan a repair of `api`: only grants belonging to it (same partition, region, account
    and id) are ever removed."""
    return replace(
        settings_options(settings),
        existing_api_ids=context.existing_api_ids,
        removable_apis=frozenset({api}),
    )


def repair_group(
    adapters: Adapters, context: RepairContext, group: FunctionGroup, settings: Settings
) -> RepairResult:
    """One Map iteration: re-check the allowlist and the account, then repair one function+qualifier.

    The allowlist, the policy and the flap breaker's ledger entries are read at once (one round trip
    instead of three), and taken in the order the checks use them: a refusal or a failure surfaces
    as it would have sequentially. The policy is only read once the function is known to belong to
    this account and API; the ledger only when a repair would be written (not a dry run).
    """
    api = context.api
    # Resolve decided with the same formula; a deployment switched to dry-run since then wins.
    dry_run = settings.dry_run(context.dry_run)
    policies, ledger = adapters.policies, adapters.ledger  # built here, before reads run in threads
    key = function_key(group.function)
    window = timedelta(hours=settings.flap_window_hours)

    def account_then_reads() -> tuple[Outcome[Policy] | None, Outcome[list[LedgerEntry]] | None]:
        if not _belongs(group, api, adapters.identity()):
            return None, None
        ledger_reads = [] if ledger is None or dry_run else [lambda: ledger.recent_repairs(key, window)]
        policy, *repairs = run_all(lambda: policies.read(group.function), *ledger_reads)
        return policy, repairs[0] if repairs else None

    allowed, checked = run_all(lambda: adapters.allowlist(settings.allowlist_param), account_then_reads)
    if not allowed.get().allows(api.api_id, api.name):
        return _not_repaired(group, f"API {api.name} ({api.api_id}) is no longer in the allowlist")
    policy_read, repairs_read = checked.get()
    if policy_read is None:
        return _not_repaired(group, "targets must belong to the resolved API and to this account")
    result = repair(
        adapters,
        group,
        plan_options(settings, context, group.targets[0].api),
        dry_run=dry_run,
        max_attempts=settings.max_write_attempts,
        api_names={api.api_id: api.name},
        guard=flap_guard(ledger, settings, repairs_read),
        first_read=policy_read,
    )
    key = function_key(group.function)
    if result.flapping:
        record(adapters.ledger, context, EntryKind.FLAPPING, key, detail=str(result.refusal))
    elif result.refusal and not dry_run:
        record(adapters.ledger, context, EntryKind.REFUSAL, key, detail=result.refusal)
    elif result.change.changed and not dry_run:
        try:
            record(adapters.ledger, context, EntryKind.REPAIR, key, result=result)
        except AwsCallError as exc:
            # Raising would make the workflow retry a repair that is already done, and the retry,
            # finding nothing to change, would report success: the change would go unrecorded.
            return replace(
                result,
                error=f"{group.function.label} was changed but the change was not recorded in the audit "
                f"ledger ({exc}); the result lists it",
            )
    return result


def _belongs(group: FunctionGroup, api: RestApi, identity: Identity) -> bool:
    """Whether every target is the resolved API's and the function is in this account."""
    same_api = all(t.api.api_id == api.api_id for t in group.targets)
    return group.function.account == identity.account and same_api


def _not_repaired(group: FunctionGroup, reason: str) -> RepairResult:
    change = Change(group.function.unqualified_arn, group.function.qualifier)
    return RepairResult(change, verified=False, refusal=reason)
