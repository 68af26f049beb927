"""The domain's data: targets API Gateway invokes, findings, planned and applied changes, results.

Everything here crosses process boundaries (Step Functions state, CLI JSON, SNS), so each type
round-trips through `to_dict` / `from_dict` with the camelCase keys of the design contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from permheal.arns import ApiRef, FunctionRef, wildcard_path
from permheal.errors import ParseError
from permheal.limits import clip


class Scope(StrEnum):
    """How wide an added grant is (design.md, "Scope")."""

    METHOD = "method"
    STAGE = "stage"
    API = "api"


@dataclass(frozen=True)
class RestApi:
    """An API of any kind (the name predates HTTP and WebSocket APIs).

    Here rather than in adapters/apigateway: the wire types carry it, and importing an adapter
    would load the whole API Gateway client code into every step (a cold-start cost).
    """

    api_id: str
    name: str
    api_type: str = "REST"
    """REST, HTTP or WEBSOCKET."""


class TargetKind(StrEnum):
    INTEGRATION = "integration"
    AUTHORIZER = "authorizer"


@dataclass(frozen=True)
class Target:
    """One Lambda invocation API Gateway makes for an API/stage: an integration or an authorizer."""

    kind: TargetKind
    api: ApiRef
    stage: str
    function: FunctionRef
    method: str | None = None
    resource_path: str | None = None
    authorizer_id: str | None = None
    api_type: str = "REST"
    """REST, HTTP or WEBSOCKET (design.md, "API kinds")."""
    route_key: str | None = None
    """The v2 route (`GET /pets/{id}`, `$default`, `$connect`); None for REST and authorizers."""

    @property
    def whole_route(self) -> bool:
        """A v2 route whose source ARN ends in its route key: a WebSocket route, or `$default`.

        An HTTP `$default` route keeps method `ANY` and resource path `$default` (design.md)."""
        return self.route_key is not None and (self.api_type == "WEBSOCKET" or self.route_key == "$default")

    @property
    def source_arn(self) -> str:
        """The exact source ARN API Gateway presents, used to evaluate the policy."""
        if self.kind is TargetKind.AUTHORIZER:
            return self.api.authorizer_arn(str(self.authorizer_id))
        if self.whole_route:
            return f"{self.api.prefix}/{self.stage}/{self.route_key}"
        return self.api.method_arn(self.stage, str(self.method), str(self.resource_path))

    def grant_pattern(self, scope: Scope) -> str:
        """The narrowest SourceArn pattern the scope allows that still lets this call through."""
        if self.kind is TargetKind.AUTHORIZER:
            return self.source_arn
        if self.whole_route:
            # A route key is one segment after the stage: `{api}/*/*/*` would not match it.
            if scope is Scope.API:
                return f"{self.api.prefix}/*/*"
            return f"{self.api.prefix}/{self.stage if scope is Scope.STAGE else '*'}/{self.route_key}"
        if scope is Scope.API:
            return f"{self.api.prefix}/*/*/*"
        method = "*" if self.method == "ANY" else str(self.method)
        stage = self.stage if scope is Scope.STAGE else "*"
        return f"{self.api.prefix}/{stage}/{method}{wildcard_path(str(self.resource_path))}"

    def site(self) -> dict[str, Any]:
        """Where in the API this call happens; the API and function are carried by its group.

        REST sites leave out `apiType`/`routeKey` (REST is the default): the workflow state of a
        large REST API stays the size it was."""
        site: dict[str, Any] = {
            "kind": self.kind.value,
            "stage": self.stage,
            "method": self.method,
            "resourcePath": self.resource_path,
            "authorizerId": self.authorizer_id,
        }
        if self.api_type != "REST":
            site.update(apiType=self.api_type, routeKey=self.route_key)
        return site

    @classmethod
    def at_site(cls, api: ApiRef, function: FunctionRef, site: dict[str, Any]) -> Target:
        try:
            return cls(
                kind=TargetKind(site["kind"]),
                api=api,
                stage=site["stage"],
                function=function,
                method=site.get("method"),
                resource_path=site.get("resourcePath"),
                authorizer_id=site.get("authorizerId"),
                api_type=str(site.get("apiType") or "REST"),
                route_key=site.get("routeKey"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ParseError(f"malformed target: {exc!r}") from exc


class FindingKind(StrEnum):
    MISSING_PERMISSION = "missing_permission"
    DUPLICATE_STATEMENT = "duplicate_statement"
    REDUNDANT_STATEMENT = "redundant_statement"
    STALE_STATEMENT = "stale_statement"
    POLICY_NEAR_LIMIT = "policy_near_limit"
    LOGGING_DISABLED = "logging_disabled"
    INTEGRATION_ROLE = "integration_role"
    CROSS_ACCOUNT_FUNCTION = "cross_account_function"
    MISSING_FUNCTION = "missing_function"
    UNDEPLOYED_CHANGE = "undeployed_change"
    """The working copy invokes a function no stage serves yet (edited without redeploying)."""
    ACCESS_LOG_MISSING_ERROR = "access_log_missing_error"
    """An HTTP API stage whose access log cannot show a permission failure (design.md, "API kinds")."""


@dataclass(frozen=True)
class Finding:
    """Something permheal found and reports (design.md finding kinds); it may or may not fix it."""

    kind: FindingKind
    api_id: str | None = None
    api_name: str | None = None
    stage: str | None = None
    method: str | None = None
    resource_path: str | None = None
    authorizer_id: str | None = None
    function_arn: str | None = None
    qualifier: str | None = None
    source_arn: str | None = None
    sid: str | None = None
    detail: str = ""
    api_type: str | None = None
    route_key: str | None = None

    @classmethod
    def for_target(cls, kind: FindingKind, target: Target, api_name: str | None, **extra: Any) -> Finding:
        return cls(
            kind=kind,
            api_id=target.api.api_id,
            api_name=api_name,
            stage=target.stage,
            method=target.method,
            resource_path=target.resource_path,
            authorizer_id=target.authorizer_id,
            function_arn=target.function.unqualified_arn,
            qualifier=target.function.qualifier,
            source_arn=target.source_arn,
            api_type=target.api_type,
            route_key=target.route_key,
            **extra,
        )

    def to_dict(self) -> dict[str, Any]:
        return {_camel(f.name): _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        try:
            values: dict[str, Any] = {f.name: data.get(_camel(f.name)) for f in fields(cls)}
            values["kind"] = FindingKind(data["kind"])
            values["detail"] = data.get("detail") or ""
            return cls(**values)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # AttributeError: not a dict
            raise ParseError(f"malformed finding: {exc!r}") from exc


@dataclass(frozen=True)
class AddedStatement:
    """A statement permheal added to a function's policy."""

    sid: str
    source_arn: str


@dataclass(frozen=True)
class RemovedStatement:
    """A statement permheal removed, and why; its body is kept for the revert."""

    sid: str
    source_arn: str | None
    reason: str
    statement: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Change:
    """What was (or, in a dry run, would be) done to one function+qualifier's policy.

    `added_omitted`/`removed_omitted` count entries a size-bounded copy left out (the audit ledger
    has them all).
    """

    function_arn: str
    qualifier: str | None
    added: tuple[AddedStatement, ...] = ()
    removed: tuple[RemovedStatement, ...] = ()
    policy_bytes_before: int = 0
    policy_bytes_after: int = 0
    added_omitted: int = 0
    removed_omitted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.added_omitted or self.removed_omitted)

    @property
    def count(self) -> int:
        """Statements added and removed, the omitted ones included."""
        return len(self.added) + len(self.removed) + self.added_omitted + self.removed_omitted

    def to_dict(self, limit: int | None = None, *, statements: bool = True) -> dict[str, Any]:
        """The contract's change; `limit` keeps that many entries per list, counting the rest.

        `statements=False` leaves out removed statements' bodies (the workflow's copy: the audit
        ledger keeps them).
        """
        added, removed = self.added[:limit], self.removed[:limit]
        data: dict[str, Any] = {
            "functionArn": self.function_arn,
            "qualifier": self.qualifier,
            "added": [{"sid": a.sid, "sourceArn": a.source_arn} for a in added],
            "removed": [_removed(r, statements) for r in removed],
            "policyBytesBefore": self.policy_bytes_before,
            "policyBytesAfter": self.policy_bytes_after,
        }
        _omitted(data, "addedOmitted", self.added_omitted + len(self.added) - len(added))
        _omitted(data, "removedOmitted", self.removed_omitted + len(self.removed) - len(removed))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        try:
            return cls(
                function_arn=data["functionArn"],
                qualifier=data.get("qualifier"),
                added=tuple(AddedStatement(a["sid"], a["sourceArn"]) for a in data.get("added", [])),
                removed=tuple(
                    RemovedStatement(r["sid"], r.get("sourceArn"), r["reason"], r.get("statement") or {})
                    for r in data.get("removed", [])
                ),
                policy_bytes_before=int(data.get("policyBytesBefore", 0)),
                policy_bytes_after=int(data.get("policyBytesAfter", 0)),
                added_omitted=_count(data, "addedOmitted"),
                removed_omitted=_count(data, "removedOmitted"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParseError(f"malformed change: {exc!r}") from exc


def _removed(removed: RemovedStatement, statements: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"sid": removed.sid, "sourceArn": removed.source_arn, "reason": removed.reason}
    if statements and removed.statement:
        data["statement"] = removed.statement
    return data


def _omitted(data: dict[str, Any], key: str, count: int) -> None:
    """Add `key: count` only when something was left out: complete results look as before."""
    if count:
        data[key] = count


def _count(data: dict[str, Any], key: str) -> int:
    count = int(data.get(key) or 0)
    if count < 0:
        raise ValueError(f"{key} must not be negative")
    return count


class Outcome(StrEnum):
    REPAIRED = "repaired"
    NO_CHANGE = "no_change"
    DRY_RUN = "dry_run"
    REFUSED = "refused"
    FAILED = "failed"
    FLAPPING = "flapping"

    @property
    def succeeded(self) -> bool:
        return self in (Outcome.REPAIRED, Outcome.NO_CHANGE, Outcome.DRY_RUN)


@dataclass(frozen=True)
class RemediationResult:
    """The contract result of one remediation (design.md, `permheal remediate` JSON).

    `changes_omitted`/`findings_omitted` count entries a size-bounded copy left out.
    """

    outcome: Outcome
    api_id: str | None
    stage: str | None
    api_name: str | None = None
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    changes_omitted: int = 0
    findings_omitted: int = 0

    def to_dict(
        self, limit: int | None = None, *, statements: bool = True, error_limit: int | None = None
    ) -> dict[str, Any]:
        """The result; `limit` keeps that many entries per list (changes, their statements, findings)."""
        changes, findings = self.changes[:limit], self.findings[:limit]
        data: dict[str, Any] = {
            "outcome": self.outcome.value,
            "apiId": self.api_id,
            "apiName": self.api_name,
            "stage": self.stage,
            "changes": [c.to_dict(limit, statements=statements) for c in changes],
            "findings": [f.to_dict() for f in findings],
        }
        _omitted(data, "changesOmitted", self.changes_omitted + len(self.changes) - len(changes))
        _omitted(data, "findingsOmitted", self.findings_omitted + len(self.findings) - len(findings))
        if self.error:
            data["error"] = self.error if error_limit is None else clip(self.error, error_limit)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemediationResult:
        try:
            return cls(
                outcome=Outcome(data["outcome"]),
                api_id=data.get("apiId"),
                stage=data.get("stage"),
                api_name=data.get("apiName"),
                changes=tuple(Change.from_dict(c) for c in data.get("changes", [])),
                findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
                error=data.get("error"),
                changes_omitted=_count(data, "changesOmitted"),
                findings_omitted=_count(data, "findingsOmitted"),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParseError(f"malformed result: {exc!r}") from exc

    @property
    def change_count(self) -> int:
        """Statements added and removed over every change (omitted changes unknown, not counted)."""
        return sum(c.count for c in self.changes)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


@dataclass(frozen=True)
class Trigger:
    """What caused a run: the four CloudTrail fields the contract carries in `trigger`.

    Here rather than in permheal.proactive: every step reads it, only the trigger parses events.
    """

    event_source: str
    event_name: str
    event_time: str
    event_id: str

    def to_dict(self) -> dict[str, str]:
        return {
            "eventSource": self.event_source,
            "eventName": self.event_name,
            "eventTime": self.event_time,
            "eventID": self.event_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Trigger:
        """An execution input's `trigger`: the four fields, each a short string."""
        keys = ("eventSource", "eventName", "eventTime", "eventID")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
            raise ParseError('"trigger" must be an object of strings ' + ", ".join(keys))
        if any(len(data[k]) > 128 for k in keys):
            raise ParseError('"trigger" fields must be at most 128 characters')
        return cls(*(data[k] for k in keys))

    @property
    def epoch(self) -> int:
        return int(datetime.fromisoformat(self.event_time.replace("Z", "+00:00")).timestamp())
