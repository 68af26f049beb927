"""Read-only audit of every REST API (or the named ones): what `permheal scan` reports.

A scan's findings for an API are exactly what remediating that API would touch (missing grants it
would add, its own duplicate/covered/stale grants on the functions it calls), plus read-only facts
(logging off, integration roles, other accounts, missing functions). So each API's calls are planned
on their own, with only that API's grants removable, as `remediate` does; an account-wide scan is
the union over all APIs. A dead grant of an API on a function+qualifier that API does not call is
touched by no remediation, and is not reported.

At account scale the scan is bound by Lambda's GetPolicy quota (15/s per account and region): 2,000
function+qualifier policies take over two minutes however it is done. So API definitions and
policies are read in parallel by two small thread pools, each call paced by the account's
`Adapters.pacer`: a function's policy is requested as soon as the first API calling it has been
read, so GetPolicy runs at its quota from the first seconds while the API Gateway reads (under their
own, smaller quota) go on beside it. Each (function, API) pair is planned as soon as both are read;
a policy is kept only while unread APIs might still call its function, a definition never beyond
its targets. The findings are assembled at the end in the order a sequential scan gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from queue import SimpleQueue
from typing import Any

from permheal.adapters.account import Identity
from permheal.adapters.apigateway import ApiGateway
from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.adapters.ports import Adapters
from permheal.arns import ApiRef, FunctionRef
from permheal.errors import NotFoundError
from permheal.models import Finding, FindingKind, RestApi, Target
from permheal.planner import PlanOptions, plan_repair
from permheal.policy import Policy
from permheal.workflow.outcome import with_api_type
from permheal.workflow.repair import merge_findings
from permheal.workflow.resolve import api_targets, function_order

API_READERS = 4
"""Threads reading API definitions: 3-5 sequential calls per API at 50-300 ms each keep the API
Gateway quota (10 calls/s) busy with 2-3 of them; more only queue at the pacer."""
POLICY_READERS = 4
"""Threads reading policies: GetPolicy at ~100 ms needs 2 in flight to reach 15/s."""


def scan(adapters: Adapters, apis: Sequence[str], stage: str | None, options: PlanOptions) -> list[Finding]:
    """Findings for the APIs, reading each distinct function+qualifier's policy once."""
    gateway = adapters.gateway
    chosen = _unique([gateway.find_api(a) for a in apis] if apis else gateway.list_apis())
    identity = adapters.identity()
    names = {api.api_id: api.name for api in chosen}
    types = {api.api_id: api.api_type for api in chosen}
    run = _Run(adapters, names, replace(options, existing_api_ids=gateway.all_api_ids()), len(chosen))
    if any(api.api_type != "REST" for api in chosen):
        _ = gateway.v2  # built once, before the readers share it
    api_pool = ThreadPoolExecutor(API_READERS, "permheal-scan-api")
    policy_pool = ThreadPoolExecutor(POLICY_READERS, "permheal-scan-policy")
    finished: SimpleQueue[Future[Any]] = SimpleQueue()  # each read as it ends, whichever pool it ran in
    try:
        api_reads: dict[Future[ApiRead], int] = {}
        for index, api in enumerate(chosen):
            read = api_pool.submit(_read_api, gateway, api, stage, bool(apis), identity)
            read.add_done_callback(finished.put)
            api_reads[read] = index
        policy_reads: dict[Future[PolicyRead], FunctionRef] = {}
        while api_reads or policy_reads:
            future = finished.get()
            if future in api_reads:
                for function in run.api_read(api_reads.pop(future), future.result()):
                    read_policy = policy_pool.submit(_read_policy, run.policies, function)
                    read_policy.add_done_callback(finished.put)
                    policy_reads[read_policy] = function
            else:
                function = policy_reads.pop(future)
                run.policy_read(function, future.result())
    finally:
        api_pool.shutdown(cancel_futures=True)
        policy_pool.shutdown(cancel_futures=True)
    # Two APIs calling one function both see its stale grants and its size: report each once.
    return [with_api_type(f, types) for f in merge_findings(run.findings())]


def _unique(apis: Sequence[RestApi]) -> list[RestApi]:
    """Each API once, in the order given (an API named twice is scanned once)."""
    return list({api.api_id: api for api in reversed(apis)}.values())[::-1]


ApiRead = tuple[list[Target], list[Finding]] | None
PolicyRead = Policy | NotFoundError


def _read_api(
    gateway: ApiGateway, api: RestApi, stage: str | None, named: bool, identity: Identity
) -> ApiRead:
    """The API's targets and its own findings; None for an unnamed API without the stage asked for."""
    try:
        definition = gateway.definition(api, stage)
    except NotFoundError:
        if stage is None or not named:
            return None  # an API without that stage is not a finding when scanning the account
        raise
    return api_targets(definition, identity, gateway.region)


def _read_policy(policies: LambdaPolicies, function: FunctionRef) -> PolicyRead:
    try:
        return policies.read(function)
    except NotFoundError as exc:
        return exc


@dataclass
class _Run:
    """What the scan has read so far, planned pair by pair; only the main thread touches it."""

    adapters: Adapters
    names: dict[str, str]
    options: PlanOptions
    apis_left: int
    api_findings: dict[int, list[Finding]] = field(default_factory=dict)
    waiting: dict[FunctionRef, dict[int, list[Target]]] = field(default_factory=dict)
    """Targets of an API already read on a function whose policy is not read yet."""
    kept: dict[FunctionRef, PolicyRead] = field(default_factory=dict)
    """Policies read while some API is still unread (it may call the same function)."""
    planned: dict[FunctionRef, dict[ApiRef, tuple[Finding, ...]]] = field(default_factory=dict)
    missing: dict[FunctionRef, dict[int, list[Finding]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.policies = self.adapters.policies  # built once, before the readers share it

    def api_read(self, index: int, read: ApiRead) -> list[FunctionRef]:
        """Plan what can be; the functions whose policies nobody asked for yet."""
        self.apis_left -= 1
        if read is None:
            return []
        targets, findings = read
        self.api_findings[index] = findings
        by_function: dict[FunctionRef, list[Target]] = {}
        for target in targets:
            by_function.setdefault(target.function, []).append(target)
        new = []
        for function, calls in by_function.items():
            if function in self.kept:
                self._plan(function, index, calls, self.kept[function])
                continue
            if function not in self.waiting and function not in self.planned and function not in self.missing:
                new.append(function)
            self.waiting.setdefault(function, {})[index] = calls
        if self.apis_left == 0:
            self.kept.clear()  # no API left to call these functions: nothing will need them again
        return new

    def policy_read(self, function: FunctionRef, policy: PolicyRead) -> None:
        for index, calls in self.waiting.pop(function, {}).items():
            self._plan(function, index, calls, policy)
        if self.apis_left:
            self.kept[function] = policy

    def _plan(self, function: FunctionRef, index: int, calls: list[Target], policy: PolicyRead) -> None:
        if isinstance(policy, NotFoundError):
            self.missing.setdefault(function, {})[index] = [
                Finding.for_target(
                    FindingKind.MISSING_FUNCTION, t, self.names.get(t.api.api_id), detail=str(policy)
                )
                for t in calls
            ]
            return
        plans = self.planned.setdefault(function, {})
        for caller, its_calls in _by_api(calls):
            options = replace(self.options, removable_apis=frozenset({caller}))
            plans[caller] = plan_repair(function, policy, its_calls, options, self.names).findings

    def findings(self) -> list[Finding]:
        """In a sequential scan's order: each API's own findings, then per function in order, per caller."""
        findings = [f for index in sorted(self.api_findings) for f in self.api_findings[index]]
        for function in sorted({*self.planned, *self.missing}, key=function_order):
            by_index = self.missing.get(function, {})
            findings.extend(f for index in sorted(by_index) for f in by_index[index])
            by_caller = self.planned.get(function, {})
            findings.extend(f for caller in sorted(by_caller, key=_caller_order) for f in by_caller[caller])
        return findings


def _caller_order(api: ApiRef) -> tuple[str, str]:
    return api.api_id, api.prefix


def _by_api(targets: Sequence[Target]) -> list[tuple[ApiRef, list[Target]]]:
    """The targets of one function group, split by the API that makes the calls (in a stable order)."""
    calls: dict[ApiRef, list[Target]] = {}
    for target in targets:
        calls.setdefault(target.api, []).append(target)
    return sorted(calls.items(), key=lambda item: _caller_order(item[0]))
