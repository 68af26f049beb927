"""Turn an API's control-plane definition into the Lambda calls API Gateway makes, and narrow by hints.

Pure: input is what GetStage/GetResources/GetAuthorizers return. Log text is only ever used to
choose among targets found here, never to create one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permheal.arns import (
    ApiRef,
    FunctionRef,
    parse_function,
    parse_integration_uri,
    resolve_integration_function,
)
from permheal.errors import ParseError
from permheal.models import Finding, FindingKind, Target, TargetKind

LAMBDA_INTEGRATION_TYPES = ("AWS", "AWS_PROXY")
LAMBDA_AUTHORIZER_TYPES = ("TOKEN", "REQUEST")
LOGGED_LEVELS = ("INFO", "ERROR")


@dataclass(frozen=True)
class Hint:
    """What the log lines of one failing request say; untrusted, used only to narrow targets."""

    method: str | None = None
    resource_path: str | None = None
    authorizer_id: str | None = None
    function: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "method": self.method,
            "resourcePath": self.resource_path,
            "authorizerId": self.authorizer_id,
            "function": self.function,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hint:
        def text(key: str) -> str | None:
            value = data.get(key)
            return value[:1024] if isinstance(value, str) and value else None

        return cls(text("method"), text("resourcePath"), text("authorizerId"), text("function"))


@dataclass(frozen=True)
class StageTargets:
    targets: tuple[Target, ...]
    findings: tuple[Finding, ...]


def stage_targets(
    api: ApiRef,
    api_name: str,
    stage: str,
    variables: Mapping[str, str],
    logging_level: str | None,
    resources: Sequence[Mapping[str, Any]],
    authorizers: Sequence[Mapping[str, Any]],
) -> StageTargets:
    """Every Lambda integration and every Lambda authorizer a method of this stage uses."""
    targets: list[Target] = []
    findings: list[Finding] = []
    base = {"api_id": api.api_id, "api_name": api_name, "stage": stage}
    if (logging_level or "OFF").upper() not in LOGGED_LEVELS:
        findings.append(
            Finding(
                FindingKind.LOGGING_DISABLED,
                **base,
                detail="execution logging is off: permheal cannot detect failures on this stage",
            )
        )
    used_authorizers: set[str] = set()
    for resource in resources:
        path = str(resource.get("path", ""))
        for method, definition in sorted((resource.get("resourceMethods") or {}).items()):
            if definition.get("authorizationType") == "CUSTOM" and definition.get("authorizerId"):
                used_authorizers.add(str(definition["authorizerId"]))
            integration = definition.get("methodIntegration") or {}
            if integration.get("type") not in LAMBDA_INTEGRATION_TYPES:
                continue
            where = {**base, "method": method, "resource_path": path}
            function = _function(
                api, integration.get("uri"), integration.get("credentials"), variables, where, findings
            )
            if function is not None:
                targets.append(Target(TargetKind.INTEGRATION, api, stage, function, method, path))
    for authorizer in authorizers:
        authorizer_id = str(authorizer.get("id"))
        if authorizer.get("type") not in LAMBDA_AUTHORIZER_TYPES or authorizer_id not in used_authorizers:
            continue
        where = {**base, "authorizer_id": authorizer_id}
        function = _function(
            api,
            authorizer.get("authorizerUri"),
            authorizer.get("authorizerCredentials"),
            variables,
            where,
            findings,
        )
        if function is not None:
            targets.append(Target(TargetKind.AUTHORIZER, api, stage, function, authorizer_id=authorizer_id))
    return StageTargets(tuple(targets), tuple(findings))


def _function(
    api: ApiRef,
    uri: Any,
    credentials: Any,
    variables: Mapping[str, str],
    where: dict[str, Any],
    findings: list[Finding],
) -> FunctionRef | None:
    """The function a URI invokes, or None with a finding when permheal must not or cannot act."""
    parsed = parse_integration_uri(str(uri or ""))
    if parsed is None:
        return None
    try:
        function = resolve_integration_function(parsed, dict(variables), api.account)
    except ParseError as exc:
        findings.append(Finding(FindingKind.MISSING_FUNCTION, **where, detail=f"{uri}: {exc}"))
        return None
    identity = {**where, "function_arn": function.unqualified_arn, "qualifier": function.qualifier}
    if credentials:
        findings.append(
            Finding(
                FindingKind.INTEGRATION_ROLE,
                **identity,
                detail=f"invoked with role {credentials}: the resource policy is not used, not changed",
            )
        )
        return None
    if (function.account, function.region, function.partition) != (api.account, api.region, api.partition):
        findings.append(
            Finding(
                FindingKind.CROSS_ACCOUNT_FUNCTION,
                **identity,
                detail=f"function is in {function.account}/{function.region}; permheal only edits "
                f"functions in {api.account}/{api.region}",
            )
        )
        return None
    return function


def narrow(targets: Sequence[Target], hints: Iterable[Hint]) -> tuple[Target, ...]:
    """Targets the hints point at; all targets when there are no hints or none match.

    An authorizer failure hides the integrations behind it (API Gateway never reached them), so an
    authorizer hint does not narrow at all: repairing only the authorizer would leave the next
    failure suppressed in the same incident window. Falling back to every target is safe: each is
    a call the API really makes, and the planner grants only what is missing.
    """
    hints = list(hints)
    if any(hint.authorizer_id is not None for hint in hints):
        return tuple(targets)
    chosen: list[Target] = []
    for hint in hints:
        chosen.extend(t for t in targets if _matches(t, hint) and t not in chosen)
    return tuple(chosen) if chosen else tuple(targets)


def _matches(target: Target, hint: Hint) -> bool:
    if target.kind is not TargetKind.INTEGRATION:
        return False
    if hint.method is not None and target.method not in (hint.method.upper(), "ANY"):
        return False
    if hint.resource_path is not None and target.resource_path != hint.resource_path:
        return False
    if hint.function is not None:
        try:
            named = parse_function(hint.function, partition="aws", region="-", account="-")
        except ParseError:
            return True
        return named.name == target.function.name
    return hint.method is not None or hint.resource_path is not None
