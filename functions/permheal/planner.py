"""Plan the repair of one function+qualifier's policy: what to add, what to remove, and whether it fits.

Pure: the caller reads the policy and lists the targets; applying the plan is an adapter's job.
Removals are split by when they are safe to apply: `remove_first` statements stay covered by a
statement that already exists, `remove_after_add` ones only by a statement this plan adds, so a
crash between two writes never leaves a call without a grant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from permheal.arnlike import arn_like
from permheal.arns import ApiRef, FunctionRef, execute_api_source
from permheal.models import (
    AddedStatement,
    Change,
    Finding,
    FindingKind,
    RemovedStatement,
    Scope,
    Target,
)
from permheal.policy import (
    POLICY_SIZE_LIMIT,
    Decision,
    Evaluation,
    GatewayGrant,
    InvokeRequest,
    Policy,
    evaluate,
    gateway_grants,
    invoke_statement,
)

NEAR_LIMIT_RATIO = 0.8


def permheal_sid(source_pattern: str, qualifier: str | None) -> str:
    """Deterministic statement id: re-running a repair finds its own statement instead of adding one."""
    digest = hashlib.sha256(f"{source_pattern}|{qualifier or ''}".encode()).hexdigest()
    return f"permheal-{digest[:16]}"


def _free_sid(source_pattern: str, qualifier: str | None, policy: Policy) -> str:
    """The deterministic Sid, suffixed when a statement that does not grant this call already holds it."""
    base = sid = permheal_sid(source_pattern, qualifier)
    taken = policy.sids()
    suffix = 1
    while sid in taken:
        sid = f"{base}-{suffix}"
        suffix += 1
    return sid


# permheal's own Sids (permheal_sid, and _free_sid's numbered siblings): never IaC-owned.
_PERMHEAL_SID = re.compile(r"permheal-[0-9a-f]{16}(?:-[0-9]+)?")
# CloudFormation names an AWS::Lambda::Permission statement `{stack}-{LogicalId}-{suffix}`.
_CLOUDFORMATION_SID = re.compile(r".+-[A-Za-z0-9]{12,13}")
# Terraform's generated statement_id (and statement_id_prefix): 18-digit UTC timestamp + 8 hex counter.
_TERRAFORM_SID = re.compile(r".*[0-9]{18}[0-9a-f]{8}")
# A (lowercase) UUID, as consoles and scripts generate: its last group would look like a CFN suffix.
_UUID_SID = re.compile(r"(?:.*-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def iac_owner(sid: str) -> str | None:
    """The infrastructure-as-code tool whose statement this probably is (by its Sid), else None.

    CloudFormation (so SAM, CDK and the Serverless Framework) gives an AWS::Lambda::Permission no
    way to choose its statement id: the resource's physical id is generated as
    `{stack-name}-{LogicalId}-{RANDOMSUFFIX}`, stack name and logical id truncated to fit, the suffix
    12-13 letters and digits (upper case in older stacks, mixed case in newer ones), e.g.
    `d1-PersonalizationFunctionGetResourcePermissionProd-HZ0LP3EH5RUG`,
    `dev-hello-scala-HelloLambdaHelloLambdaApiPermissionTest-Z7AJQCE7VA8O` (DescribeStackResources
    output in public repositories) or `nodejs-apig-functiongetEndpointPermissionProd-BWDBXMPLXE2F`
    (Lambda developer guide), and that physical id is the Sid. Terraform's generated ids end in an
    18-digit timestamp and an 8-hex-digit counter. Reading the Sid costs no AWS call and no
    CloudFormation permission; asking CloudFormation (DescribeStackResources per statement) would
    cost both and still miss stacks in other accounts.

    Being wrong must be safe, so the match is loose: anything ending in `-` and 12-13 letters or
    digits counts (a hand-written `pets-ApiPermission` too), and such a statement is only reported,
    never removed, unless PERMHEAL_DEDUPE_IAC allows it. Only permheal's own Sids and UUID-shaped
    ones (console and script style) are known not to be IaC-owned. A statement an IaC tool adds with
    an explicit, arbitrary Sid (Terraform `statement_id`) cannot be recognised.
    """
    if _PERMHEAL_SID.fullmatch(sid) or _UUID_SID.fullmatch(sid):
        return None
    if _TERRAFORM_SID.fullmatch(sid):
        return "Terraform"
    if _CLOUDFORMATION_SID.fullmatch(sid):
        return "CloudFormation"
    return None


@dataclass(frozen=True)
class PlanOptions:
    """The choices a repair plan follows (scope, pruning, consolidation)."""

    scope: Scope = Scope.METHOD
    prune_stale: bool = False
    consolidate: bool = False
    existing_api_ids: frozenset[str] | None = None
    """Every API id in the account/region; None when unknown (then nothing is called stale)."""
    removable_apis: frozenset[ApiRef] | None = None
    """Only duplicate/covered grants belonging to these APIs are removed (or reported); None = any.

    A grant belongs to an API only when its source-ARN pattern names that API's partition, region,
    account and id literally: the same id in another region or account is another API.
    """
    dedupe_iac: bool = False
    """Remove dead-weight statements an IaC stack owns (see iac_owner) instead of only reporting them."""


@dataclass(frozen=True)
class Plan:
    """What the repair of one function's policy will do, in order, and what it found."""

    function: FunctionRef
    policy: Policy
    add: tuple[dict[str, object], ...] = ()
    remove_first: tuple[RemovedStatement, ...] = ()
    remove_after_add: tuple[RemovedStatement, ...] = ()
    findings: tuple[Finding, ...] = ()
    bytes_after: int = 0
    refusal: str | None = None

    @property
    def removals(self) -> tuple[RemovedStatement, ...]:
        return self.remove_first + self.remove_after_add

    @property
    def empty(self) -> bool:
        return not (self.add or self.removals)

    def change(self) -> Change:
        return Change(
            function_arn=self.function.unqualified_arn,
            qualifier=self.function.qualifier,
            added=tuple(
                AddedStatement(str(s["Sid"]), str(s["Condition"]["ArnLike"]["AWS:SourceArn"]))  # type: ignore[index]
                for s in self.add
            ),
            removed=self.removals,
            policy_bytes_before=self.policy.size_bytes,
            policy_bytes_after=self.bytes_after,
        )


def plan_repair(
    function: FunctionRef,
    policy: Policy,
    targets: Sequence[Target],
    options: PlanOptions,
    api_names: dict[str, str] | None = None,
) -> Plan:
    """Plan the smallest change that lets every target call `function` and drops dead weight."""
    plan = _plan(function, policy, targets, options, options.scope, api_names or {})
    if plan.refusal and options.consolidate and options.scope is not Scope.API:
        consolidated = _plan(function, policy, targets, options, Scope.API, api_names or {})
        if not consolidated.refusal:
            return consolidated
    return plan


def _plan(
    function: FunctionRef,
    policy: Policy,
    targets: Sequence[Target],
    options: PlanOptions,
    scope: Scope,
    api_names: dict[str, str],
) -> Plan:
    findings: list[Finding] = []
    patterns: list[str] = []
    for target in targets:
        judged = verdict(policy, function, target)
        if judged.allowed:
            continue
        name = api_names.get(target.api.api_id)
        if judged.decision is Decision.DENY:
            # The finding's sid names the (first) statement that denies: that is what must be edited.
            detail = f"denied by statement(s) {', '.join(judged.sids)}; permheal never edits Deny statements"
            findings.append(
                Finding.for_target(
                    FindingKind.MISSING_PERMISSION, target, name, sid=judged.sids[0], detail=detail
                )
            )
            continue
        pattern = target.grant_pattern(scope)
        if not arn_like(pattern, target.source_arn):  # a scope bug must never grant the wrong thing
            raise AssertionError(f"grant {pattern} does not match {target.source_arn}")
        sid = _free_sid(pattern, function.qualifier, policy)
        findings.append(
            Finding.for_target(
                FindingKind.MISSING_PERMISSION,
                target,
                name,
                sid=sid,
                detail=f"API Gateway may not invoke {function.label}; grant {pattern}",
            )
        )
        if pattern not in patterns:
            patterns.append(pattern)

    new_grants = [
        GatewayGrant(_free_sid(p, function.qualifier, policy), p, None, len(policy.statements) + i)
        for i, p in enumerate(patterns)
    ]
    # A new grant covered by another new one (e.g. after consolidation) is not worth a statement.
    new_grants = [g for g in new_grants if not any(o is not g and _strictly_covers(o, g) for o in new_grants)]
    existing = gateway_grants(policy, function.arn)
    remove_first, remove_after, dedupe_findings = _dead_weight(
        function, existing, new_grants, policy, options
    )
    findings.extend(dedupe_findings)

    add = tuple(invoke_statement(g.sid, function.arn, str(g.source_pattern)) for g in new_grants)
    removed_sids = {r.sid for r in remove_first + remove_after}
    bytes_after = policy.with_changes(add, removed_sids).size_bytes
    # Statements only the new grants cover go after the adds, so the adds must fit before them.
    peak_bytes = policy.with_changes(add, {r.sid for r in remove_first}).size_bytes
    refusal = None
    if peak_bytes > POLICY_SIZE_LIMIT:
        refusal = (
            f"policy of {function.label} would be {peak_bytes} bytes during the repair, "
            f"over the {POLICY_SIZE_LIMIT}-byte limit"
        )
    size = policy.size_bytes if refusal else bytes_after
    if size > POLICY_SIZE_LIMIT * NEAR_LIMIT_RATIO:
        findings.append(
            Finding(
                FindingKind.POLICY_NEAR_LIMIT,
                function_arn=function.unqualified_arn,
                qualifier=function.qualifier,
                detail=f"policy is {size} of {POLICY_SIZE_LIMIT} bytes" + (f"; {refusal}" if refusal else ""),
            )
        )
    if refusal:
        return Plan(
            function,
            policy,
            findings=tuple(findings),
            bytes_after=policy.size_bytes,
            refusal=refusal,
        )
    return Plan(
        function,
        policy,
        add=add,
        remove_first=tuple(remove_first),
        remove_after_add=tuple(remove_after),
        findings=tuple(findings),
        bytes_after=bytes_after,
    )


def verdict(policy: Policy, function: FunctionRef, target: Target) -> Evaluation:
    """How `policy` judges API Gateway's call for `target` to `function`, naming the deciding statements."""
    return evaluate(policy, InvokeRequest(function.arn, target.source_arn, target.api.account))


def allows(policy: Policy, function: FunctionRef, target: Target) -> bool:
    """Would API Gateway's call for `target` be allowed to invoke `function` under `policy`?"""
    return verdict(policy, function, target).allowed


def _strictly_covers(broad: GatewayGrant, narrow: GatewayGrant) -> bool:
    return broad.covers(narrow) and not narrow.covers(broad)


def _dead_weight(
    function: FunctionRef,
    existing: Sequence[GatewayGrant],
    new_grants: Sequence[GatewayGrant],
    policy: Policy,
    options: PlanOptions,
) -> tuple[list[RemovedStatement], list[RemovedStatement], list[Finding]]:
    """Duplicates, covered grants and (optionally) grants for deleted APIs among existing statements.

    Each removed grant names the grant that still covers it; equivalent grants keep the first one.
    """
    remove_first: list[RemovedStatement] = []
    remove_after: list[RemovedStatement] = []
    findings: list[Finding] = []
    # Among equivalent grants the one kept is the first a stack owns (removing it would drift the
    # stack), else the first one.
    keep_order = sorted(existing, key=lambda g: (_iac_kept(g, options) is None, g.position))
    rank = {g.position: index for index, g in enumerate(keep_order)}
    for grant in existing:
        dead = _why_dead(grant, function, existing, new_grants, options, rank)
        if dead is None:
            continue
        kind, reason, keeper = dead
        kept_stale = kind is FindingKind.STALE_STATEMENT and not options.prune_stale
        owner = None if kept_stale else _iac_kept(grant, options)
        if owner is not None:
            reason += (
                f"; its Sid is one {owner} generates, so a stack owns it: reported, not removed "
                "(PERMHEAL_DEDUPE_IAC=true removes it)"
            )
        findings.append(_grant_finding(kind, function, grant, reason))
        if kept_stale or owner is not None:
            continue
        removal = RemovedStatement(
            grant.sid, grant.source_pattern, reason, dict(policy.statements[grant.position])
        )
        (remove_after if keeper in new_grants else remove_first).append(removal)
    return remove_first, remove_after, findings


def _why_dead(
    grant: GatewayGrant,
    function: FunctionRef,
    existing: Sequence[GatewayGrant],
    new_grants: Sequence[GatewayGrant],
    options: PlanOptions,
    rank: dict[int, int],
) -> tuple[FindingKind, str, GatewayGrant | None] | None:
    """Why a grant is dead weight, and which grant keeps its calls allowed; None if it is needed.

    Staleness comes first: a duplicate of a grant for a deleted API is itself for that API, and is
    reported (and pruned) as such rather than kept or removed on the strength of its twin. Of
    equivalent grants, the one with the lowest `rank` is kept and the others are duplicates of it.
    """
    stale = _stale_api(grant, function, options.existing_api_ids)
    if stale is not None:
        return FindingKind.STALE_STATEMENT, f"API {stale} no longer exists", None
    if not _removable(grant, options.removable_apis):
        return None
    twin = next(
        (
            o
            for o in existing
            if rank[o.position] < rank[grant.position] and o.covers(grant) and grant.covers(o)
        ),
        None,
    )
    if twin is not None:
        return FindingKind.DUPLICATE_STATEMENT, f"duplicate of {twin.sid}", twin
    wider = next((o for o in [*existing, *new_grants] if _strictly_covers(o, grant)), None)
    if wider is not None:
        return FindingKind.REDUNDANT_STATEMENT, f"covered by {wider.sid}", wider
    return None


def _iac_kept(grant: GatewayGrant, options: PlanOptions) -> str | None:
    """The IaC tool owning a grant permheal must leave in place, or None when it may remove it."""
    return None if options.dedupe_iac else iac_owner(grant.sid)


def _grant_finding(kind: FindingKind, function: FunctionRef, grant: GatewayGrant, detail: str) -> Finding:
    source = execute_api_source(grant.source_pattern) if grant.source_pattern else None
    return Finding(
        kind,
        api_id=source.api_id if source else None,
        function_arn=function.unqualified_arn,
        qualifier=function.qualifier,
        source_arn=grant.source_pattern,
        sid=grant.sid,
        detail=detail,
    )


def _removable(grant: GatewayGrant, apis: frozenset[ApiRef] | None) -> bool:
    """Does the grant belong to one of `apis`: partition, region, account and id named literally?

    ApiRef parts hold no wildcards, so a pattern starting with `{prefix}/` can only match calls from
    that API; `*` or `?` anywhere before the slash (any region, any API) makes it nobody's.
    """
    if apis is None:
        return True
    pattern = grant.source_pattern
    return pattern is not None and any(pattern.startswith(f"{api.prefix}/") for api in apis)


def _stale_api(
    grant: GatewayGrant, function: FunctionRef, existing_api_ids: Collection[str] | None
) -> str | None:
    """The API id a grant names when that API is gone from this account and region, else None."""
    if existing_api_ids is None or grant.source_pattern is None:
        return None
    source = execute_api_source(grant.source_pattern)
    if source is None or (source.account, source.region) != (function.account, function.region):
        return None
    return None if source.api_id in existing_api_ids else source.api_id


def policy_after(plan: Plan) -> Policy:
    """The policy as it will read once the plan is applied."""
    return plan.policy.with_changes(plan.add, {r.sid for r in plan.removals})
