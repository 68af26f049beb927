"""Proactive trigger: a CloudTrail deploy event (EventBridge rule) → one debounced run per allowlisted API.

Rejected events (malformed, forged, another account or region, failed calls) are counted and
dropped: the invocation succeeds, so nothing retries them. The allowlist is read before anything
starts: an API outside it costs this invocation and nothing more. A StartExecution that fails
fails the invocation, so Lambda's async retries keep the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from permheal.adapters.account import Allowlist
from permheal.adapters.workflow import Workflow
from permheal.config import ProactiveSettings
from permheal.errors import ConfigError
from permheal.observability import logger, metrics, traced
from permheal.proactive import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    FunctionChange,
    Rejected,
    Window,
    execution_input,
    parse_event,
)

MAX_SCAN_APIS = 20
"""The fallback when the routes index has no entry for a function: at most this many allowlisted APIs read."""


@dataclass(frozen=True)
class TriggerDeps:
    """What the trigger reads and starts; the handler builds the real ones."""

    partition: str
    account: str
    region: str
    workflow: Workflow
    allowlist: Callable[[], Allowlist]
    api_name: Callable[[str], str | None]
    """The API's name (REST or v2), None when no such API exists."""
    routes: Callable[[str], frozenset[str] | None]
    """The routes index: API ids invoking a function (unqualified ARN), None = not indexed."""
    scan: Callable[[FunctionChange, Allowlist], frozenset[str]]
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    own_roles: frozenset[str] = frozenset()
    """permheal's own roles: their calls (the repair's RemovePermission) start nothing."""


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, real_deps(context))


def handle(event: Any, deps: TriggerDeps) -> dict[str, Any]:
    try:
        change = parse_event(event, account=deps.account, region=deps.region, own_roles=deps.own_roles)
    except Rejected as exc:
        logger.warning("CloudTrail event dropped", extra={"reason": exc.reason, "detail": str(exc)})
        metrics.add_metric(name="ProactiveEventsDropped", unit=MetricUnit.Count, value=1)
        return {"started": [], "suppressed": 0, "dropped": exc.reason}
    allowlist = deps.allowlist()
    if change.api_id is not None:
        candidates, indexed = frozenset({change.api_id}), False
    else:
        assert change.function is not None  # parse_event returns one or the other
        key = change.function.key(deps.partition, deps.region, deps.account)
        found = deps.routes(key) if allowlist.entries else frozenset()
        indexed = True
        if found is None:
            metrics.add_metric(name="ProactiveIndexMisses", unit=MetricUnit.Count, value=1)
            found = deps.scan(change.function, allowlist)
        candidates = found
    apis = [api for api in sorted(candidates) if _allowed(api, allowlist, deps, verify=indexed)]
    refused = len(candidates) - len(apis)
    metrics.add_metric(name="ProactiveNotAllowlisted", unit=MetricUnit.Count, value=refused)
    started: list[str] = []
    suppressed = 0
    window = Window.of(change.trigger, deps.window_seconds, deps.grace_seconds)
    for api in apis:
        arn = deps.workflow.start_once(
            window.execution_name(api), execution_input(api, change.trigger, window)
        )
        if arn is None:
            suppressed += 1
        else:
            started.append(arn)
            logger.info("proactive remediation started", extra={"execution": arn, "api": api})
    metrics.add_metric(name="ProactiveExecutionsStarted", unit=MetricUnit.Count, value=len(started))
    metrics.add_metric(name="ProactiveExecutionsSuppressed", unit=MetricUnit.Count, value=suppressed)
    return {"started": started, "suppressed": suppressed, "apis": apis, "notAllowlisted": refused}


def _allowed(api_id: str, allowlist: Allowlist, deps: TriggerDeps, *, verify: bool) -> bool:
    """Allowlisted by id (no call) or by name (one lookup); `verify` also drops APIs since deleted."""
    if not allowlist.entries:
        return False
    if not verify and ("*" in allowlist.entries or api_id in allowlist.entries):
        return True
    name = deps.api_name(api_id)
    return name is not None and allowlist.allows(api_id, name)


def real_deps(context: Any) -> TriggerDeps:
    from permheal.adapters.account import read_allowlist
    from permheal.adapters.apigateway import ApiGateway
    from permheal.adapters.ledger import Ledger
    from permheal.adapters.names import api_name

    settings = ProactiveSettings.from_env()
    parts = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    if len(parts) < 5 or not parts[4].isdigit():
        raise ConfigError("cannot tell this function's account from its ARN")
    partition, region, account = parts[1], parts[3], parts[4]
    gateway = ApiGateway()
    ledger = Ledger(settings.ledger_table)
    return TriggerDeps(
        partition=partition,
        account=account,
        region=region,
        workflow=Workflow(settings.state_machine_arn),
        allowlist=lambda: read_allowlist(settings.allowlist_param),
        api_name=lambda api_id: api_name(api_id, region),
        routes=ledger.apis_invoking,
        scan=lambda function, allowlist: scan_for_function(gateway, function, allowlist, partition, account),
        window_seconds=settings.window_seconds,
        grace_seconds=settings.grace_seconds,
        own_roles=settings.own_role_arns,
    )


def scan_for_function(
    gateway: Any, function: FunctionChange, allowlist: Allowlist, partition: str, account: str
) -> frozenset[str]:
    """The bounded fallback: which allowlisted APIs (at most MAX_SCAN_APIS, any kind) invoke the function."""
    from permheal.adapters.account import Identity
    from permheal.errors import PermhealError
    from permheal.workflow.resolve import api_targets

    if not allowlist.entries:
        return frozenset()
    apis = [api for api in gateway.list_apis() if allowlist.allows(api.api_id, api.name)]
    found: set[str] = set()
    for api in sorted(apis, key=lambda a: a.api_id)[:MAX_SCAN_APIS]:
        try:
            targets, _ = api_targets(gateway.definition(api), Identity(partition, account), gateway.region)
        except PermhealError as exc:  # deleted meanwhile, unreadable: the others still count
            logger.warning("API not scanned", extra={"api": api.api_id, "reason": str(exc)})
            continue
        if any(t.function.name == function.name and t.function.account == account for t in targets):
            found.add(api.api_id)
    if len(apis) > MAX_SCAN_APIS:
        logger.warning("scan cut", extra={"allowlisted": len(apis), "scanned": MAX_SCAN_APIS})
    return frozenset(found)
