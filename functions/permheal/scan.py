"""Read-only audit of every REST API (or the named ones): what `permheal scan` reports."""

from __future__ import annotations

from collections.abc import Sequence

from permheal.adapters.apigateway import RestApi
from permheal.engine import Adapters, api_targets, group_by_function
from permheal.errors import NotFoundError
from permheal.models import Finding, FindingKind, Target
from permheal.planner import PlanOptions, plan_repair


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
    existing = gateway.all_api_ids()
    options = PlanOptions(options.scope, options.prune_stale, options.consolidate, existing, None)
    for group in group_by_function(targets):
        try:
            policy = adapters.policies.read(group.function)
        except NotFoundError as exc:
            findings.extend(
                Finding.for_target(FindingKind.MISSING_FUNCTION, t, names.get(t.api.api_id), detail=str(exc))
                for t in group.targets
            )
            continue
        findings.extend(plan_repair(group.function, policy, group.targets, options, names).findings)
    return findings
