"""The remediation steps, shared by the Step Functions handlers, the CLI and the local AWS.

Each step takes its adapters explicitly; `Adapters.default()` builds real ones lazily.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from permheal.adapters.access_logs import AccessLogStages
from permheal.adapters.account import Allowlist, Identity, caller_identity, read_allowlist
from permheal.adapters.apigateway import ApiDefinition, ApiGateway, RestApi
from permheal.adapters.apigatewayv2 import V2Definition
from permheal.adapters.lambda_policy import LambdaPolicies, PolicyTooLarge, StaleRevision
from permheal.adapters.ledger import EntryKind, Ledger, function_key
from permheal.apiv2 import v2_targets
from permheal.arns import ApiRef, FunctionRef
from permheal.audit import flap_guard, record
from permheal.config import Settings
from permheal.errors import AwsCallError, ConflictError, NotFoundError, ParseError
from permheal.limits import (
    MAX_GROUPS,
    REPAIRS_BUDGET,
    REQUEST_BUDGET,
    RESOLUTION_BUDGET,
    TooLargeError,
    clip,
    fit,
    json_size,
    repair_budget,
)
from permheal.models import (
    AddedStatement,
    Change,
    Finding,
    FindingKind,
    Outcome,
    RemediationResult,
    RemovedStatement,
    Target,
)
from permheal.planner import Plan, PlanOptions, allows, plan_repair, policy_after, verdict
from permheal.policy import Decision, Policy
from permheal.targets import Hint, narrow, stage_targets, undeployed_changes


@dataclass
class Adapters:
    gateway: ApiGateway
    policies: LambdaPolicies
    identity: Callable[[], Identity]
    allowlist: Callable[[str], Allowlist]
    sleep: Callable[[float], None] = time.sleep
    ledger: Ledger | None = None
    access_logs: AccessLogStages | None = None
    """v2 stages by access-log destination; made on first use (only access-log incidents need it)."""

    @classmethod
    def default(cls, ledger_table: str | None = None) -> Adapters:
        ledger = Ledger(ledger_table) if ledger_table else None
        return cls(ApiGateway(), LambdaPolicies(), caller_identity, read_allowlist, ledger=ledger)


MAX_STATE_FINDINGS = 50


def capped(findings: Sequence[Finding], limit: int = MAX_STATE_FINDINGS) -> list[dict[str, Any]]:
    """Findings for the workflow state: at most `limit`, and never more than MAX_STATE_FINDINGS."""
    return [f.to_dict() for f in findings[: min(limit, MAX_STATE_FINDINGS)]]


def _with_omitted(data: dict[str, Any], key: str, count: int) -> dict[str, Any]:
    """`data` plus `key: count` when something was left out (a complete copy looks as before)."""
    if count:
        data[key] = count
    return data


def _omitted_count(data: dict[str, Any], key: str) -> int:
    count = int(data.get(key) or 0)
    if count < 0:
        raise ValueError(f"{key} must not be negative")
    return count


@dataclass(frozen=True)
class ResolveRequest:
    """Workflow input: an API by id or name, an optional stage, optional log hints.

    An access-log incident (`"logType": "access"`) names its log group and, when the line's format
    has them, an API id and stage: the stage whose access log that group is gets resolved first.
    """

    api: str
    stage: str | None = None
    hints: tuple[Hint, ...] = ()
    dry_run: bool = False
    source: str = "manual"
    access_log_group: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> ResolveRequest:
        if not isinstance(event, dict):
            raise ParseError("execution input must be a JSON object")
        if json_size(event) > REQUEST_BUDGET:  # the state carries the input to the end (limits.py)
            raise ParseError(f"execution input must be at most {REQUEST_BUDGET} bytes of JSON")
        api = event.get("apiId") or event.get("apiName")
        access_log_group = event.get("logGroup") if event.get("logType") == "access" else None
        if event.get("logType") == "access":
            if not isinstance(access_log_group, str) or not 0 < len(access_log_group) <= 512:
                raise ParseError('an access-log input needs "logGroup" (a log group name)')
            api = api or ""  # the stage whose access log this group is names the API (resolve)
        if not isinstance(api, str) or len(api) > 1024 or (access_log_group is None and not api.strip()):
            raise ParseError('execution input needs "apiId" or "apiName" (a non-empty string)')
        stage = event.get("stage")
        if stage is not None and (not isinstance(stage, str) or not stage.strip() or len(stage) > 128):
            raise ParseError('"stage" must be a non-empty string when given')
        hints = event.get("hints") or []
        if not isinstance(hints, list) or not all(isinstance(h, dict) for h in hints):
            raise ParseError('"hints" must be a list of objects')
        dry_run = event.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise ParseError('"dryRun" must be true or false')
        return cls(
            api.strip(),
            stage,
            tuple(Hint.from_dict(h) for h in hints[:100]),
            dry_run,
            str(event.get("source") or "manual")[:64],
            access_log_group,
        )


@dataclass(frozen=True)
class FunctionGroup:
    """One function+qualifier and every target of the API that invokes it."""

    function: FunctionRef
    targets: tuple[Target, ...]

    def to_dict(self) -> dict[str, Any]:
        """The Map's item. Targets go as a table (`sites`: columns once, one row per target), half
        the bytes of a list of objects, so a 1,000-method API fits its share of the state."""
        api = self.targets[0].api
        sites = [t.site() for t in self.targets]
        columns = list(dict.fromkeys(key for site in sites for key in site))
        return {
            "functionArn": self.function.arn,
            "function": asdict(self.function),
            "api": asdict(api),
            "sites": {"columns": columns, "rows": [[site.get(c) for c in columns] for site in sites]},
        }

    @classmethod
    def from_dict(cls, data: Any) -> FunctionGroup:
        """Also reads `targets` as a list of objects: an execution started before an update carries it."""
        try:
            sites = _sites(data)
            function = FunctionRef(**data["function"])
            api = ApiRef(**data["api"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed function group: {exc!r}") from exc
        if not sites:
            raise ParseError("a function group needs a non-empty list of targets")
        return cls(function, tuple(Target.at_site(api, function, site) for site in sites))


def _sites(data: dict[str, Any]) -> list[Any]:
    if "sites" not in data:
        targets = data["targets"]
        if not isinstance(targets, list):
            raise TypeError("targets must be a list")
        return targets
    columns, rows = data["sites"]["columns"], data["sites"]["rows"]
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise TypeError("sites must have a list of columns and a list of rows")
    if not all(isinstance(row, list) and len(row) == len(columns) for row in rows):
        raise ValueError("every row of sites must have one value per column")
    return [dict(zip(columns, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class Resolution:
    api: RestApi
    stage: str | None
    allowed: bool
    groups: tuple[FunctionGroup, ...] = ()
    findings: tuple[Finding, ...] = ()
    existing_api_ids: frozenset[str] | None = None
    dry_run: bool = False
    source: str = "manual"
    execution_arn: str = ""
    findings_omitted: int = 0
    repair_budget: int = REPAIRS_BUDGET
    """Bytes one repair result may take in the workflow state (set by `to_dict` from the groups)."""

    def to_dict(self) -> dict[str, Any]:
        """Workflow state within RESOLUTION_BUDGET: `groups` feed the Map, `context` goes to every repair.

        Groups are the work to do and are never cut: an API with more than one execution can carry is
        refused (TooLargeError) before anything changes. Findings are cut to what fits, counted.
        """
        groups = [g.to_dict() for g in self.groups]
        if len(groups) > MAX_GROUPS:
            raise self._too_large(f"{len(groups)} function+qualifier targets (at most {MAX_GROUPS})")
        context = {
            "apiId": self.api.api_id,
            "apiName": self.api.name,
            "apiType": self.api.api_type,
            "stage": self.stage,
            "dryRun": self.dry_run,
            "existingApiIds": None if self.existing_api_ids is None else sorted(self.existing_api_ids),
            "source": self.source,
            "executionArn": self.execution_arn,
            "repairBudget": repair_budget(len(groups)),
        }

        def render(kept: int) -> dict[str, Any]:
            findings = capped(self.findings, kept)
            data = {"allowed": self.allowed, "groups": groups, "findings": findings, "context": context}
            return _with_omitted(
                data, "findingsOmitted", self.findings_omitted + len(self.findings) - len(findings)
            )

        try:
            return fit(render, RESOLUTION_BUDGET, min(len(self.findings), MAX_STATE_FINDINGS))
        except TooLargeError:
            raise self._too_large(
                f"{json_size(groups)} bytes of targets (at most {RESOLUTION_BUDGET})"
            ) from None

    def _too_large(self, what: str) -> TooLargeError:
        return TooLargeError(
            f"API {self.api.name} ({self.api.api_id}) has {what} for one workflow execution: "
            "remediate it one stage at a time (`--stage`), or in process with `permheal remediate --local`"
        )

    @classmethod
    def from_dict(cls, data: Any) -> Resolution:
        try:
            context = data["context"]
            existing = context.get("existingApiIds")
            return cls(
                RestApi(
                    context["apiId"], context.get("apiName") or "", str(context.get("apiType") or "REST")
                ),
                context.get("stage"),
                bool(data["allowed"]),
                tuple(FunctionGroup.from_dict(g) for g in data.get("groups", [])),
                tuple(Finding.from_dict(f) for f in data.get("findings", [])),
                None if existing is None else frozenset(existing),
                bool(context.get("dryRun")),
                str(context.get("source") or "manual"),
                str(context.get("executionArn") or ""),
                _omitted_count(data, "findingsOmitted"),
                min(REPAIRS_BUDGET, int(context.get("repairBudget") or REPAIRS_BUDGET)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed resolution: {exc!r}") from exc


def resolve(
    adapters: Adapters, request: ResolveRequest, settings: Settings, execution_arn: str = ""
) -> Resolution:
    """Find what the API really invokes, per the control plane, narrowed by the log hints."""
    if request.access_log_group is not None:
        request = locate_access_log_stage(adapters, request, request.access_log_group)
    api = adapters.gateway.find_api(request.api)
    refusal = Resolution(
        api,
        request.stage,
        allowed=False,
        dry_run=settings.dry_run(request.dry_run),
        source=request.source,
        execution_arn=execution_arn,
    )
    if not adapters.allowlist(settings.allowlist_param).allows(api.api_id, api.name):
        record(adapters.ledger, refusal, EntryKind.REFUSAL, "", detail="API is not in the allowlist")
        return refusal
    identity = adapters.identity()
    definition = adapters.gateway.definition(api, request.stage)
    targets, findings = api_targets(definition, identity, adapters.gateway.region)
    return replace(
        refusal,
        allowed=True,
        groups=group_by_function(narrow(targets, request.hints)),
        findings=tuple(findings),
        existing_api_ids=adapters.gateway.all_api_ids(),
    )


def locate_access_log_stage(adapters: Adapters, request: ResolveRequest, log_group: str) -> ResolveRequest:
    """The API and stage whose access log the incident came from, per the control plane.

    The line's API id and stage (untrusted) only narrow the stages writing to that log group.
    """
    if adapters.access_logs is None:
        adapters.access_logs = AccessLogStages(region=adapters.gateway.region)
    found = adapters.access_logs.locate(log_group, request.api.strip() or None, request.stage)
    return replace(request, api=found.api_id, stage=found.stage)


def api_targets(
    definition: ApiDefinition | V2Definition, identity: Identity, region: str
) -> tuple[list[Target], list[Finding]]:
    """What every stage (and its canary) serves; working-copy targets no stage serves are reported."""
    if isinstance(definition, V2Definition):
        v2_ref = ApiRef(identity.partition, region, identity.account, definition.api_id)
        return v2_targets(v2_ref, definition.name, definition.spec, definition.stages)
    targets, findings = _rest_targets(definition, identity, region)
    return targets, [f if f.api_type else replace(f, api_type="REST") for f in findings]


def _rest_targets(
    definition: ApiDefinition, identity: Identity, region: str
) -> tuple[list[Target], list[Finding]]:
    ref = ApiRef(identity.partition, region, identity.account, definition.api.api_id)
    targets: list[Target] = []
    findings: list[Finding] = []
    for stage in definition.stages:
        found = stage_targets(
            ref,
            definition.api.name,
            stage.name,
            stage.variables,
            stage.logging_level,
            stage.served,
            stage.canary,
        )
        targets.extend(found.targets)
        findings.extend(found.findings)
    findings.extend(
        undeployed_changes(
            ref,
            definition.api.name,
            definition.working_copy,
            [stage.served for stage in definition.stages],
            [stage.variables for stage in definition.stages],
            definition.stage_filter,
            [
                stage.name
                for stage in definition.stages
                if stage.canary is not None and stage.canary.deployment_id not in (None, stage.deployment_id)
            ],
        )
    )
    return targets, findings


def group_by_function(targets: Sequence[Target]) -> tuple[FunctionGroup, ...]:
    """One group per function+qualifier, in a stable order.

    The unqualified function sorts before its aliases and versions: FunctionRef's own ordering
    would compare None with a str when one function is invoked both ways (a TypeError).
    """
    groups: dict[FunctionRef, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.function, []).append(target)
    return tuple(FunctionGroup(fn, tuple(groups[fn])) for fn in sorted(groups, key=_function_order))


def _function_order(function: FunctionRef) -> tuple[str, str, str, str, bool, str]:
    """A total order over function+qualifier (None = unqualified first)."""
    f = function
    return (f.partition, f.region, f.account, f.name, f.qualifier is not None, f.qualifier or "")


@dataclass(frozen=True)
class RepairResult:
    """What repairing one function+qualifier did, and whether every target can now call it."""

    change: Change
    findings: tuple[Finding, ...] = ()
    verified: bool = True
    refusal: str | None = None
    error: str | None = None
    flapping: bool = False
    policy_before: dict[str, Any] = field(default_factory=dict)
    policy_after: dict[str, Any] = field(default_factory=dict)
    findings_omitted: int = 0

    @classmethod
    def failed(cls, function: FunctionRef, error: str) -> RepairResult:
        """A Map iteration that failed for good: its function, named in the error, changed nothing known."""
        change = Change(function.unqualified_arn, function.qualifier)
        return cls(change, verified=False, error=f"{function.label}: {error}")

    def to_dict(self, budget: int = REPAIRS_BUDGET) -> dict[str, Any]:
        """One Map iteration's result within `budget` bytes (its share of REPAIRS_BUDGET).

        Removed statements' bodies are left out and long lists cut, counted: the audit ledger holds
        the whole change (and the repair's log line, should the ledger write have failed).
        """
        text_limit = max(64, budget // 4)

        def render(kept: int) -> dict[str, Any]:
            findings = capped(self.findings, kept)
            data = {
                "change": self.change.to_dict(kept, statements=False),
                "findings": findings,
                "verified": self.verified,
                "refusal": clip(self.refusal, text_limit),
                "error": clip(self.error, text_limit),
                "flapping": self.flapping,
            }
            return _with_omitted(
                data, "findingsOmitted", self.findings_omitted + len(self.findings) - len(findings)
            )

        change = self.change
        return fit(render, budget, max(len(change.added), len(change.removed), len(self.findings)))

    @classmethod
    def from_dict(cls, data: Any) -> RepairResult:
        try:
            if "failedFunction" in data:  # the ASL's last resort: the function and the error's name
                function = FunctionRef(**data["failedFunction"])
                return cls.failed(function, f"{data['error']} (details in the execution history)")
            return cls(
                Change.from_dict(data["change"]),
                tuple(Finding.from_dict(f) for f in data.get("findings", [])),
                bool(data.get("verified", False)),
                data.get("refusal"),
                data.get("error"),
                bool(data.get("flapping", False)),
                findings_omitted=_omitted_count(data, "findingsOmitted"),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed repair result: {exc!r}") from exc


def repair(
    adapters: Adapters,
    group: FunctionGroup,
    options: PlanOptions,
    *,
    dry_run: bool,
    max_attempts: int = 5,
    api_names: dict[str, str] | None = None,
    flap_guard: Callable[[FunctionRef, frozenset[str]], str | None] | None = None,
) -> RepairResult:
    """Read, plan, apply one step, re-read: until the plan is empty, then verify by evaluation.

    Applying one write per fresh read means a lost race or a crash never acts on a stale plan,
    and deterministic Sids make every re-run converge instead of piling up statements.
    """
    function = group.function
    try:
        policy = adapters.policies.read(function)
    except NotFoundError as exc:
        return _missing_function(group, str(exc))
    first_plan = plan_repair(function, policy, group.targets, options, api_names)
    before = policy
    if dry_run or first_plan.refusal or first_plan.empty:
        return _unapplied(first_plan, group)
    planned = frozenset(str(s["Sid"]) for s in first_plan.add)
    flapping = flap_guard(function, planned) if planned and flap_guard else None
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


def plan_options(settings: Settings, resolution: Resolution, api: ApiRef) -> PlanOptions:
    """How to plan a repair of `api`: only grants belonging to it (same partition, region, account
    and id) are ever removed."""
    return replace(
        settings_options(settings),
        existing_api_ids=resolution.existing_api_ids,
        removable_apis=frozenset({api}),
    )


def repair_group(
    adapters: Adapters, resolution: Resolution, group: FunctionGroup, settings: Settings
) -> RepairResult:
    """One Map iteration: re-check the allowlist and the account, then repair one function+qualifier."""
    api = resolution.api
    if not adapters.allowlist(settings.allowlist_param).allows(api.api_id, api.name):
        return _not_repaired(group, f"API {api.name} ({api.api_id}) is no longer in the allowlist")
    identity = adapters.identity()
    if group.function.account != identity.account or any(t.api.api_id != api.api_id for t in group.targets):
        return _not_repaired(group, "targets must belong to the resolved API and to this account")
    result = repair(
        adapters,
        group,
        plan_options(settings, resolution, group.targets[0].api),
        dry_run=resolution.dry_run or settings.dry_run(),
        max_attempts=settings.max_write_attempts,
        api_names={api.api_id: api.name},
        flap_guard=flap_guard(adapters.ledger, settings),
    )
    key = function_key(group.function)
    if result.flapping:
        record(adapters.ledger, resolution, EntryKind.FLAPPING, key, detail=str(result.refusal))
    elif result.refusal and not resolution.dry_run:
        record(adapters.ledger, resolution, EntryKind.REFUSAL, key, detail=result.refusal)
    elif result.change.changed and not (resolution.dry_run or settings.dry_run()):
        try:
            record(adapters.ledger, resolution, EntryKind.REPAIR, key, result=result)
        except AwsCallError as exc:
            # Raising would make the workflow retry a repair that is already done, and the retry,
            # finding nothing to change, would report success: the change would go unrecorded.
            return replace(
                result,
                error=f"{group.function.label} was changed but the change was not recorded in the audit "
                f"ledger ({exc}); the result lists it",
            )
    return result


def _not_repaired(group: FunctionGroup, reason: str) -> RepairResult:
    change = Change(group.function.unqualified_arn, group.function.qualifier)
    return RepairResult(change, verified=False, refusal=reason)


def summarize(resolution: Resolution, repairs: Sequence[RepairResult]) -> RemediationResult:
    """One result for the whole API: the outcome on-call reads first, then every change and finding.

    Any repair with an error or a refusal makes the run `failed`, a dry run too: a dry run whose
    plan would leave a call failing (denied, refused for size, function missing) predicts a failure
    that needs a human, so it exits 1 like the real run would, and its error says why.
    """
    changes = tuple(r.change for r in repairs if r.change.changed)
    types = {resolution.api.api_id: resolution.api.api_type}
    findings = tuple(
        with_api_type(f, types) for f in resolution.findings + tuple(f for r in repairs for f in r.findings)
    )
    problems = [r.error or r.refusal for r in repairs if (r.error or r.refusal) and not r.flapping]
    flapping = [r.refusal for r in repairs if r.flapping]
    if problems:
        outcome, error = Outcome.FAILED, "; ".join(str(p) for p in problems + flapping)
    elif flapping:
        outcome, error = Outcome.FLAPPING, "; ".join(str(p) for p in flapping)
    elif resolution.dry_run:
        outcome, error = Outcome.DRY_RUN, None
    else:
        outcome, error = (Outcome.REPAIRED if changes else Outcome.NO_CHANGE), None
    return RemediationResult(
        outcome, resolution.api.api_id, resolution.stage, resolution.api.name, changes, findings, error
    )


def with_api_type(finding: Finding, types: dict[str, str]) -> Finding:
    """The finding with its API's kind when it names a known API (grant findings come without one)."""
    if finding.api_type or finding.api_id not in types:
        return finding
    return replace(finding, api_type=types[str(finding.api_id)])


def refused(resolution: Resolution) -> RemediationResult:
    return RemediationResult(
        Outcome.REFUSED,
        resolution.api.api_id,
        resolution.stage,
        resolution.api.name,
        error=f"API {resolution.api.name} ({resolution.api.api_id}) is not in the allowlist; nothing changed",
    )


def remediate(adapters: Adapters, request: ResolveRequest, settings: Settings) -> RemediationResult:
    """The whole workflow in one process: what `permheal remediate --local` runs."""
    resolution = resolve(adapters, request, settings)
    if not resolution.allowed:
        return refused(resolution)
    repairs = [repair_group(adapters, resolution, group, settings) for group in resolution.groups]
    return summarize(resolution, repairs)


def result_from_state(state: Any) -> RemediationResult:
    """The remediation result from the workflow's state, on the success and on the failure path."""
    if not isinstance(state, dict):
        raise ParseError("workflow state must be an object")
    if "error" in state:
        return _crashed(state)
    resolution = Resolution.from_dict(state.get("resolution"))
    if not resolution.allowed:
        return refused(resolution)
    raw_repairs = state.get("repairs") or []
    if not isinstance(raw_repairs, list):
        raise ParseError("workflow state: repairs must be a list")
    repairs = [RepairResult.from_dict(r) for r in raw_repairs]
    result = summarize(resolution, repairs)
    omitted = resolution.findings_omitted + sum(r.findings_omitted for r in repairs)
    return replace(result, findings_omitted=result.findings_omitted + omitted)


def _crashed(state: dict[str, Any]) -> RemediationResult:
    """A step failed as a whole: name the API as resolved (or as requested) and say where changes are."""
    error = error_text(state["error"])
    with contextlib.suppress(ParseError):
        resolution = Resolution.from_dict(state.get("resolution"))
        api = resolution.api
        if resolution.allowed and resolution.groups:
            error += f" (functions may have been changed before that: `permheal history --api {api.api_id}`)"
        return RemediationResult(Outcome.FAILED, api.api_id, resolution.stage, api.name or None, error=error)
    request = state.get("request")
    if not isinstance(request, dict):
        request = {}
    api_text = request.get("apiId") or request.get("apiName")
    stage = request.get("stage")
    return RemediationResult(
        Outcome.FAILED, str(api_text) if api_text else None, str(stage) if stage else None, error=error
    )


def error_text(error: Any) -> str:
    """`Error: message` from a Step Functions Catch, unwrapping a Lambda error payload."""
    if not isinstance(error, dict):
        return clip(str(error), 2000) or ""
    name, cause = str(error.get("Error", "Error")), error.get("Cause", "")
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)
    return clip(f"{name}: {cause}", 2000) or ""
