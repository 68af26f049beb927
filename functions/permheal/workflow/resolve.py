"""Step "Resolve targets": what the API invokes, per the control plane, and whether it is allowlisted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from permheal.adapters.account import Identity
from permheal.adapters.apigateway import ApiDefinition
from permheal.adapters.apigatewayv2 import V2Definition
from permheal.adapters.ledger import EntryKind
from permheal.adapters.ports import Adapters
from permheal.apiv2 import v2_targets
from permheal.arns import ApiRef, FunctionRef
from permheal.config import Settings
from permheal.models import Finding, Target
from permheal.parallel import run_all
from permheal.targets import narrow, stage_targets, undeployed_changes
from permheal.workflow.audit import record
from permheal.workflow.state import ExecutionInput, FunctionGroup, Resolution


def resolve(
    adapters: Adapters, request: ExecutionInput, settings: Settings, execution_arn: str = ""
) -> Resolution:
    """Find what the API really invokes, per the control plane, narrowed by the log hints."""
    if request.access_log_group is not None:
        request = locate_access_log_stage(adapters, request, request.access_log_group)
    gateway = adapters.gateway  # built here: its clients are made before any call runs in a thread
    # The API and the allowlist are independent reads: one round trip instead of two.
    found, allowlist = run_all(
        lambda: gateway.find_api(request.api), lambda: adapters.allowlist(settings.allowlist_param)
    )
    api = found.get()
    refusal = Resolution(
        api,
        request.stage,
        allowed=False,
        dry_run=settings.dry_run(request.dry_run),
        source=request.source,
        execution_arn=execution_arn,
    )
    if not allowlist.get().allows(api.api_id, api.name):
        record(adapters.ledger, refusal.context, EntryKind.REFUSAL, "", detail="API is not in the allowlist")
        return refusal
    identity = adapters.identity()
    # What the API invokes and which API ids exist (to tell stale grants) are independent too.
    described, existing = run_all(lambda: gateway.definition(api, request.stage), gateway.all_api_ids)
    targets, findings = api_targets(described.get(), identity, gateway.region)
    return replace(
        refusal,
        allowed=True,
        groups=group_by_function(narrow(targets, request.hints)),
        findings=tuple(findings),
        existing_api_ids=existing.get(),
    )


def locate_access_log_stage(adapters: Adapters, request: ExecutionInput, log_group: str) -> ExecutionInput:
    """The API and stage whose access log the incident came from, per the control plane.

    The line's API id and stage (untrusted) only narrow the stages writing to that log group.
    """
    found = adapters.access_logs.locate(log_group, request.api.strip() or None, request.stage)
    return replace(request, api=found.api_id, stage=found.stage, by_id=True)


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
    return tuple(FunctionGroup(fn, tuple(groups[fn])) for fn in sorted(groups, key=function_order))


def function_order(function: FunctionRef) -> tuple[str, str, str, str, bool, str]:
    """A total order over function+qualifier (None = unqualified first)."""
    f = function
    return (f.partition, f.region, f.account, f.name, f.qualifier is not None, f.qualifier or "")
