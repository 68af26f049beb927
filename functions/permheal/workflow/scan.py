"""Read-only audit of every REST API (or the named ones): what `permheal scan` reports.

A scan's findings for an API are exactly what remediating that API would touch (missing grants it
would add, its own duplicate/covered/stale grants on the functions it calls), plus read-only facts
(logging off, integration roles, other accounts, missing functions). So each API's calls are planned
on their own, with only that API's grants removable, as `remediate` does; an account-wide scan is
the union over all APIs. A dead grant of an API on a function+qualifier that API does not call is
touched by no remediation, and is not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from permheal.adapters.ports import Adapters
from permheal.arns import ApiRef
from permheal.errors import NotFoundError
from permheal.models import Finding, FindingKind, RestApi, Target
from permheal.planner import PlanOptions, plan_repair
from permheal.workflow.outcome import with_api_type
from permheal.workflow.repair import merge_findings
from permheal.workflow.resolve import api_targets, group_by_function


def scan(adapters: Adapters, apis: Sequence[str], stage: str | None, options: PlanOptions) -> list[Finding]:
    """Findings for the APIs, reading each distinct function+qualifier's policy once."""
    gateway = adapters.gateway
    chosen: list[RestApi] = [gateway.find_api(a) for a in apis] if apis else gateway.list_apis()
    identity = adapters.identity()
    findings: list[Finding] = []
    targets: list[Target] = []
    for api in chosen:
        try:
            definition = gateway.definition(api, stage)
        except NotFoundError:
            if stage is None or not apis:
                continue  # an API without that stage is not a finding when scanning the account
            raise
        found, api_findings = api_targets(definition, identity, gateway.region)
        targets.extend(found)
        findings.extend(api_findings)
    names = {api.api_id: api.name for api in chosen}
    types = {api.api_id: api.api_type for api in chosen}
    options = replace(options, existing_api_ids=gateway.all_api_ids())
    for group in group_by_function(targets):
        try:
            policy = adapters.policies.read(group.function)
        except NotFoundError as exc:
            findings.extend(
                Finding.for_target(FindingKind.MISSING_FUNCTION, t, names.get(t.api.api_id), detail=str(exc))
                for t in group.targets
            )
            continue
        for caller, calls in _by_api(group.targets):
            plan = plan_repair(
                group.function, policy, calls, replace(options, removable_apis=frozenset({caller})), names
            )
            findings.extend(plan.findings)
    # Two APIs calling one function both see its stale grants and its size: report each once.
    return [with_api_type(f, types) for f in merge_findings(findings)]


def _by_api(targets: Sequence[Target]) -> list[tuple[ApiRef, list[Target]]]:
    """The targets of one function group, split by the API that makes the calls (in a stable order)."""
    calls: dict[ApiRef, list[Target]] = {}
    for target in targets:
        calls.setdefault(target.api, []).append(target)
    return sorted(calls.items(), key=lambda item: (item[0].api_id, item[0].prefix))
