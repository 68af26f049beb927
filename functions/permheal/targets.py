"""Turn what each stage serves into the Lambda calls API Gateway makes, and narrow by hints.

Pure: input is each stage's served definition (its deployment, `permheal.openapi`), its variables
and canary. Log text is only ever used to choose among targets found here, never to create one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from permheal.arns import (
    ApiRef,
    FunctionRef,
    IntegrationUri,
    parse_function,
    parse_integration_uri,
    resolve_integration_function,
)
from permheal.errors import ParseError
from permheal.models import Finding, FindingKind, Target, TargetKind

if TYPE_CHECKING:  # annotations only: the detector imports Hint without the OpenAPI reader
    from permheal.openapi import ApiSpec, Authorizer, Canary

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
    route_key: str | None = None
    """An API Gateway v2 route key (`$connect`, `GET /pets/{id}`, `$default`) from an access or
    WebSocket execution log line; HTTP route keys also set method and resource_path."""

    def to_dict(self) -> dict[str, str | None]:
        data = {
            "method": self.method,
            "resourcePath": self.resource_path,
            "authorizerId": self.authorizer_id,
            "function": self.function,
        }
        if self.route_key is not None:  # additive: REST hints keep their shape
            data["routeKey"] = self.route_key
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Hint:
        def text(key: str) -> str | None:
            value = data.get(key)
            return value[:1024] if isinstance(value, str) and value else None

        return cls(
            text("method"), text("resourcePath"), text("authorizerId"), text("function"), text("routeKey")
        )


@dataclass(frozen=True)
class StageTargets:
    """What one stage invokes, and what is wrong with it."""

    targets: tuple[Target, ...]
    findings: tuple[Finding, ...]


def stage_targets(
    api: ApiRef,
    api_name: str,
    stage: str,
    variables: Mapping[str, str],
    logging_level: str | None,
    served: ApiSpec,
    canary: Canary | None = None,
) -> StageTargets:
    """Every Lambda integration and Lambda authorizer the stage serves, and its canary's.

    `served` is the stage's deployment (its export). The canary's requests use the canary's
    deployment with its stage-variable overrides; AWS exports a stage's own deployment only, so the
    canary's targets are the stage's deployment with the overrides applied: exact when the canary
    runs the stage's deployment (a canary made for a variable change, e.g. a new alias), and a
    limit otherwise (a method changed only in the canary's deployment is not seen).
    """
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
    findings.extend(
        Finding(FindingKind.UNDEPLOYED_CHANGE, **base, detail=problem) for problem in served.problems
    )
    targets = _spec_targets(api, base, served, variables, findings)
    if canary is not None:
        overridden = {**variables, **canary.variable_overrides}
        targets += _spec_targets(api, base, served, overridden, findings)
    return StageTargets(_unique(targets), _unique(findings))


def _spec_targets(
    api: ApiRef,
    base: Mapping[str, Any],
    spec: ApiSpec,
    variables: Mapping[str, str],
    findings: list[Finding],
) -> list[Target]:
    stage = str(base["stage"])
    targets: list[Target] = []
    used: dict[str, Authorizer] = {}
    for method in spec.methods:
        authorizer = method.authorizer
        if authorizer is not None and authorizer.authorizer_id is not None:
            used.setdefault(authorizer.authorizer_id, authorizer)
        integration = method.integration
        if integration is None or integration.type not in LAMBDA_INTEGRATION_TYPES:
            continue
        where = {**base, "method": method.method, "resource_path": method.path}
        function = _function(api, integration.uri, integration.credentials, variables, where, findings)
        if function is not None:
            targets.append(Target(TargetKind.INTEGRATION, api, stage, function, method.method, method.path))
    for authorizer_id, authorizer in used.items():
        if authorizer.type not in LAMBDA_AUTHORIZER_TYPES:
            continue
        where = {**base, "authorizer_id": authorizer_id}
        function = _function(api, authorizer.uri, authorizer.credentials, variables, where, findings)
        if function is not None:
            targets.append(Target(TargetKind.AUTHORIZER, api, stage, function, authorizer_id=authorizer_id))
    return targets


_T = TypeVar("_T")


def _unique(items: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def undeployed_changes(
    api: ApiRef,
    api_name: str,
    working_copy: ApiSpec,
    served: Sequence[ApiSpec],
    stage_variables: Sequence[Mapping[str, str]],
    stage: str | None = None,
    unexported_canaries: Sequence[str] = (),
) -> tuple[Finding, ...]:
    """Lambda targets of the working copy that no stage serves: reported, never granted.

    An integration or authorizer edited (or added) without redeploying invokes nothing yet;
    granting it would open a function no call reaches while the live calls keep their old target.
    `stage` names the one stage compared when only one was read. An API without stages serves
    nothing at all: it has no undeployed *change*, so nothing is reported. `unexported_canaries`
    names stages whose canary runs another deployment than the stage: AWS exports no deployment
    by id, so such a change may be live for the canary's traffic; the finding says so (still not
    granted: permheal cannot see what that deployment invokes).
    """
    if not served:
        return ()
    deployed_methods = {(m.method, m.path, m.integration) for spec in served for m in spec.methods}
    deployed_authorizers = {
        (a.authorizer_id, a.type, a.uri, a.credentials)
        for spec in served
        for m in spec.methods
        if (a := m.authorizer) is not None
    }
    where = f"stage {stage}" if stage else "any stage"
    if unexported_canaries:
        where += (
            f"; the canary of {', '.join(unexported_canaries)} runs a deployment AWS does not export: "
            "if it holds this change, canary requests invoke it (promote the canary or redeploy)"
        )
    findings: list[Finding] = []
    seen: set[str] = set()
    for method in working_copy.methods:
        integration = method.integration
        if (
            integration is not None
            and integration.type in LAMBDA_INTEGRATION_TYPES
            and (method.method, method.path, integration) not in deployed_methods
            and (uri := _lambda_uri(integration.uri)) is not None
        ):
            findings.append(
                _undeployed(
                    api,
                    api_name,
                    stage,
                    uri,
                    stage_variables,
                    f"{method.method} {method.path}",
                    where,
                    method=method.method,
                    resource_path=method.path,
                )
            )
        authorizer = method.authorizer
        if (
            authorizer is not None
            and authorizer.type in LAMBDA_AUTHORIZER_TYPES
            and authorizer.authorizer_id not in seen
            and (authorizer.authorizer_id, authorizer.type, authorizer.uri, authorizer.credentials)
            not in deployed_authorizers
            and (uri := _lambda_uri(authorizer.uri)) is not None
        ):
            seen.add(str(authorizer.authorizer_id))
            findings.append(
                _undeployed(
                    api,
                    api_name,
                    stage,
                    uri,
                    stage_variables,
                    f"authorizer {authorizer.name} ({authorizer.authorizer_id})",
                    where,
                    authorizer_id=authorizer.authorizer_id,
                )
            )
    return tuple(findings)


def _lambda_uri(uri: str | None) -> IntegrationUri | None:
    try:
        return parse_integration_uri(uri or "")
    except ParseError:
        return None


def _undeployed(
    api: ApiRef,
    api_name: str,
    stage: str | None,
    uri: IntegrationUri,
    stage_variables: Sequence[Mapping[str, str]],
    subject: str,
    served_by: str,
    **where: Any,
) -> Finding:
    """The finding names the function when every stage's variables resolve the URI to the same one."""
    functions: set[FunctionRef] = set()
    for variables in stage_variables or [{}]:
        try:
            functions.add(resolve_integration_function(uri, dict(variables), api.account))
        except ParseError:
            continue
    function = next(iter(functions)) if len(functions) == 1 else None
    return Finding(
        FindingKind.UNDEPLOYED_CHANGE,
        api_id=api.api_id,
        api_name=api_name,
        stage=stage,
        function_arn=function.unqualified_arn if function else None,
        qualifier=function.qualifier if function else None,
        detail=f"{subject}: the undeployed working copy invokes {uri.function_text}, which is not deployed "
        f"to {served_by}; not granted until deployed",
        **where,
    )


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
    routed = hint.route_key is not None and target.route_key is not None
    if routed and target.route_key != hint.route_key:
        return False  # a v2 line names the exact route it took (`$connect`, `GET /pets/{id}`)
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
    return hint.method is not None or hint.resource_path is not None or routed
