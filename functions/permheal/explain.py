"""`permheal explain`: why one call of an API stage is allowed or denied, step by step.

Pure: the caller passes what the stage serves (its deployment's export, variables and canary) and a
`read_policy` function; nothing here calls AWS. Each statement is judged by `policy.trace`, the
same code `policy.evaluate` uses, so the explanation and the engine's verdict cannot disagree.
The fix is the grant permheal itself would add (`Target.grant_pattern`, `planner.permheal_sid`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from permheal.apiv2 import HTTP, LAMBDA_AUTHORIZER_TYPE, V2Route, V2Spec, V2Stage, stage_uri
from permheal.arns import (
    ApiRef,
    FunctionRef,
    parse_integration_uri,
    resolve_integration_function,
)
from permheal.errors import AwsCallError, NotFoundError, ParseError
from permheal.models import Scope, Target, TargetKind
from permheal.openapi import ApiSpec, Authorizer, Canary, Integration, Method
from permheal.planner import permheal_sid
from permheal.policy import (
    APIGATEWAY_PRINCIPAL,
    INVOKE_ACTION,
    Decision,
    InvokeRequest,
    Policy,
    StatementTrace,
    evaluate,
    trace,
)
from permheal.targets import LAMBDA_AUTHORIZER_TYPES, LAMBDA_INTEGRATION_TYPES

PolicyReader = Callable[[FunctionRef], Policy]


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    NOT_CHECKED = "not_checked"
    """Lambda does not check the resource policy (an integration role) or it could not be read."""
    NOT_LAMBDA = "not_lambda"
    """The call invokes no Lambda function: no invoke permission is involved."""

    @property
    def exit_code(self) -> int:
        return 0 if self in (Verdict.ALLOWED, Verdict.NOT_LAMBDA) else 1


@dataclass(frozen=True)
class Call:
    """The call asked about: a route (`GET /pets/{id}`) or an authorizer id."""

    route: str | None = None
    authorizer_id: str | None = None

    @property
    def label(self) -> str:
        return self.route if self.route is not None else f"authorizer {self.authorizer_id}"

    def method_and_path(self) -> tuple[str, str]:
        method, _, path = (self.route or "").strip().partition(" ")
        if not method or not path.startswith("/"):
            raise ParseError(f"route {self.route!r} is not METHOD /path (like 'GET /pets/{{id}}')")
        return method.upper(), path.strip()


@dataclass(frozen=True)
class StageView:
    """What one stage serves: its deployment, variables and canary (adapters.apigateway.Stage)."""

    name: str
    deployment_id: str | None
    variables: Mapping[str, str]
    served: ApiSpec
    canary: Canary | None = None


@dataclass(frozen=True)
class Step:
    step: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"step": self.step, "detail": self.detail}


@dataclass(frozen=True)
class Fix:
    """The exact grant that lets the call through, as a CLI command and a CloudFormation resource."""

    note: str
    sid: str | None = None
    source_arn: str | None = None
    cli: str | None = None
    cloudformation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "note": self.note,
            "sid": self.sid,
            "sourceArn": self.source_arn,
            "cli": self.cli,
            "cloudformation": self.cloudformation,
        }


@dataclass(frozen=True)
class TrafficPath:
    """One share of the stage's traffic (the stage's deployment, or its canary) and its verdict."""

    traffic: str
    percent: float
    verdict: Verdict
    steps: tuple[Step, ...]
    statements: tuple[StatementTrace, ...] = ()
    function: FunctionRef | None = None
    source_arn: str | None = None
    fix: Fix | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "traffic": self.traffic,
            "percent": self.percent,
            "verdict": self.verdict.value,
            "functionArn": self.function.unqualified_arn if self.function else None,
            "qualifier": self.function.qualifier if self.function else None,
            "sourceArn": self.source_arn,
            "steps": [s.to_dict() for s in self.steps],
            "statements": [s.to_dict() for s in self.statements],
            "fix": self.fix.to_dict() if self.fix else None,
        }


@dataclass(frozen=True)
class Explanation:
    api: ApiRef
    api_name: str
    stage: str
    call: Call
    paths: tuple[TrafficPath, ...]
    api_type: str = "REST"

    @property
    def verdict(self) -> Verdict:
        """The worst path wins: a call denied for the canary's share is denied."""
        order = (Verdict.DENIED, Verdict.NOT_CHECKED, Verdict.ALLOWED, Verdict.NOT_LAMBDA)
        verdicts = {p.verdict for p in self.paths}
        return next((v for v in order if v in verdicts), Verdict.NOT_LAMBDA)

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiId": self.api.api_id,
            "apiName": self.api_name,
            "apiType": self.api_type,
            "stage": self.stage,
            "route": self.call.route,
            "authorizerId": self.call.authorizer_id,
            "verdict": self.verdict.value,
            "paths": [p.to_dict() for p in self.paths],
        }


@dataclass(frozen=True)
class _Invocation:
    """What the call invokes, found in the served definition: an integration or an authorizer."""

    kind: TargetKind
    where: str
    type: str
    uri: str | None
    credentials: str | None
    method: str | None = None
    path: str | None = None
    notes: tuple[str, ...] = field(default=())
    authorizer_id: str | None = None
    api_type: str = "REST"
    route_key: str | None = None


def explain_call(
    api: ApiRef,
    api_name: str,
    stage: StageView,
    call: Call,
    read_policy: PolicyReader,
    scope: Scope = Scope.METHOD,
    working_copy: ApiSpec | None = None,
) -> Explanation:
    """Trace the call through the stage (and its canary): one path per share of traffic."""
    invocation = _find(stage.served, call, working_copy)
    shares: list[tuple[str, float, Mapping[str, str], str]] = []
    canary = stage.canary
    deployment = f"{stage.name} serves deployment {stage.deployment_id or '?'}"
    if canary is None:
        shares.append(("stage", 100.0, stage.variables, f"{deployment}; no canary"))
    else:
        share = canary.percent_traffic
        shares.append(
            ("stage", 100.0 - share, stage.variables, f"{deployment} to {100 - share:g}% of requests")
        )
        overrides = ", ".join(f"{k}={v}" for k, v in sorted(canary.variable_overrides.items())) or "none"
        caveat = (
            ""
            if canary.deployment_id in (None, stage.deployment_id)
            else f" (canary deployment {canary.deployment_id}: AWS exports only the stage's deployment, "
            "shown here with the canary's overrides)"
        )
        shares.append(
            (
                "canary",
                share,
                {**stage.variables, **canary.variable_overrides},
                f"canary gets {share:g}% of requests with stage-variable overrides {overrides}{caveat}",
            )
        )
    paths = tuple(
        _path(api, stage.name, invocation, traffic, percent, variables, first, read_policy, scope)
        for traffic, percent, variables, first in shares
    )
    return Explanation(api, api_name, stage.name, call, paths)


def explain_v2_call(
    api: ApiRef,
    api_name: str,
    spec: V2Spec,
    stage: V2Stage,
    call: Call,
    read_policy: PolicyReader,
    scope: Scope = Scope.METHOD,
) -> Explanation:
    """An HTTP or WebSocket API's route or authorizer, traced the same way (v2 has no canary)."""
    invocation = _find_v2(spec, call)
    deploy = (
        "auto-deploy" if stage.auto_deploy else f"deployment {stage.deployment_id or '?'}, auto-deploy off"
    )
    first = f"{stage.name} ({deploy}) serves the API's current routes"
    if not stage.auto_deploy:
        first += " (a change made since its last deployment is not live yet)"
    path = _path(api, stage.name, invocation, "stage", 100.0, stage.variables, first, read_policy, scope)
    return Explanation(api, api_name, stage.name, call, (path,), api_type=spec.protocol)


def _find_v2(spec: V2Spec, call: Call) -> _Invocation:
    if call.authorizer_id is not None:
        authorizer = spec.authorizers.get(call.authorizer_id)
        users = [r for r in spec.routes if r.authorizer_id == call.authorizer_id]
        if authorizer is None or not users:
            raise NotFoundError(f"no route of the API uses authorizer {call.authorizer_id}")
        return _Invocation(
            TargetKind.AUTHORIZER,
            f"authorizer {authorizer.name} ({authorizer.authorizer_id}, used by {users[0].route_key})",
            authorizer.type,
            authorizer.uri,
            authorizer.credentials,
            authorizer_id=authorizer.authorizer_id,
            api_type=spec.protocol,
        )
    key = str(call.route).strip()
    routes = {r.route_key: r for r in spec.routes}
    candidates = [key]
    if spec.protocol == HTTP and " " in key:
        candidates += [f"ANY {key.partition(' ')[2]}", "$default"]
    elif spec.protocol != HTTP:
        candidates.append("$default")
    route = next((routes[k] for k in candidates if k in routes), None)
    if route is None:
        known = ", ".join(sorted(routes)[:10]) or "nothing"
        raise NotFoundError(f"the API has no route {key} (it has {known})")
    return _v2_invocation(
        spec, route, () if route.route_key == key else (f"the request is served by {route.route_key}",)
    )


def _v2_invocation(spec: V2Spec, route: V2Route, notes: tuple[str, ...]) -> _Invocation:
    integration = spec.integrations.get(route.integration_id or "")
    method, path = route.method_and_path(spec.protocol)
    return _Invocation(
        TargetKind.INTEGRATION,
        f"route {route.route_key}",
        integration.type if integration else "NONE",
        integration.uri if integration else None,
        integration.credentials if integration else None,
        method,
        path,
        notes,
        api_type=spec.protocol,
        route_key=route.route_key,
    )


def _find(served: ApiSpec, call: Call, working_copy: ApiSpec | None) -> _Invocation:
    if call.authorizer_id is not None:
        for method in served.methods:
            authorizer = method.authorizer
            if authorizer is not None and authorizer.authorizer_id == call.authorizer_id:
                return _authorizer(authorizer, method)
        raise NotFoundError(
            f"no method the stage serves uses authorizer {call.authorizer_id}"
            + _elsewhere(
                working_copy,
                lambda m: bool(m.authorizer and m.authorizer.authorizer_id == call.authorizer_id),
            )
        )
    verb, path = call.method_and_path()
    matches = [m for m in served.methods if m.path == path and m.method in (verb, "ANY")]
    matches.sort(key=lambda m: m.method == "ANY")  # an exact method wins over ANY, as API Gateway routes
    if not matches:
        served_routes = ", ".join(sorted(f"{m.method} {m.path}" for m in served.methods)[:10]) or "nothing"
        raise NotFoundError(
            f"the stage serves no {verb} {path} (it serves {served_routes})"
            + _elsewhere(working_copy, lambda m: m.path == path and m.method in (verb, "ANY"))
        )
    chosen = matches[0]
    integration = chosen.integration or Integration("NONE")
    notes = (f"the request is served by {chosen.method} {chosen.path}",) if chosen.method != verb else ()
    return _Invocation(
        TargetKind.INTEGRATION,
        f"{chosen.method} {chosen.path}",
        integration.type,
        integration.uri,
        integration.credentials,
        chosen.method,
        chosen.path,
        notes,
    )


def _authorizer(authorizer: Authorizer, method: Method) -> _Invocation:
    return _Invocation(
        TargetKind.AUTHORIZER,
        f"authorizer {authorizer.name} ({authorizer.authorizer_id}, used by {method.method} {method.path})",
        authorizer.type,
        authorizer.uri,
        authorizer.credentials,
        authorizer_id=authorizer.authorizer_id,
    )


def _elsewhere(working_copy: ApiSpec | None, wanted: Callable[[Method], bool]) -> str:
    if working_copy is not None and any(wanted(m) for m in working_copy.methods):
        return "; the undeployed working copy has it: deploy the API to this stage"
    return ""


def _path(
    api: ApiRef,
    stage: str,
    invocation: _Invocation,
    traffic: str,
    percent: float,
    variables: Mapping[str, str],
    first: str,
    read_policy: PolicyReader,
    scope: Scope,
) -> TrafficPath:
    steps = [Step("stage", first)]
    label = "authorizer" if invocation.kind is TargetKind.AUTHORIZER else "route"
    steps.append(
        Step(
            label,
            f"{invocation.where}: {invocation.type} {label if label == 'authorizer' else 'integration'}",
        )
    )
    steps.extend(Step("note", note) for note in invocation.notes)
    path = TrafficPath(traffic, percent, Verdict.NOT_LAMBDA, ())
    lambda_types = (
        (LAMBDA_AUTHORIZER_TYPES if invocation.api_type == "REST" else (LAMBDA_AUTHORIZER_TYPE,))
        if invocation.kind is TargetKind.AUTHORIZER
        else LAMBDA_INTEGRATION_TYPES
    )
    uri = invocation.uri
    if invocation.type in lambda_types and uri and uri.startswith("${stageVariables."):
        steps.append(Step("integration URI", uri))
        try:
            uri = stage_uri(uri, variables)
        except ParseError as exc:
            steps.append(Step("verdict", f"denied: the URI names no function on this stage ({exc})"))
            fix = Fix(f"define the stage variable on stage {stage}, or fix the integration URI")
            return replace(path, verdict=Verdict.DENIED, steps=tuple(steps), fix=fix)
        invocation = replace(invocation, uri=uri)
    parsed = parse_integration_uri(uri or "") if invocation.type in lambda_types else None
    if parsed is None:
        steps.append(
            Step("verdict", "not_lambda: this call invokes no Lambda function, no invoke permission applies")
        )
        return replace(path, steps=tuple(steps))
    steps.append(Step("integration URI", str(invocation.uri)))
    used = parsed.stage_variables
    shown = ", ".join(
        f"${{stageVariables.{n}}} = {variables[n]!r}"
        if n in variables
        else f"${{stageVariables.{n}}} is NOT DEFINED"
        for n in used
    )
    steps.append(Step("stage variables", shown or "none used"))
    try:
        function = resolve_integration_function(parsed, dict(variables), api.account)
    except ParseError as exc:
        steps.append(
            Step(
                "verdict", f"denied: the URI names no function on this stage ({exc}); API Gateway answers 500"
            )
        )
        fix = Fix(f"define the stage variable on stage {stage} (or its canary overrides), or fix the URI")
        return replace(path, verdict=Verdict.DENIED, steps=tuple(steps), fix=fix)
    target = Target(
        invocation.kind,
        api,
        stage,
        function,
        invocation.method,
        invocation.path,
        invocation.authorizer_id,
        api_type=invocation.api_type,
        route_key=invocation.route_key,
    )
    steps.append(
        Step(
            "function",
            f"{function.arn} ({f'qualifier {function.qualifier}' if function.qualifier else 'unqualified'})",
        )
    )
    path = replace(path, function=function, source_arn=target.source_arn)
    if invocation.credentials:
        steps.append(
            Step(
                "credentials",
                f"API Gateway invokes with role {invocation.credentials}: Lambda checks the role's IAM "
                "policy, not the function's resource policy",
            )
        )
        steps.append(
            Step(
                "verdict",
                f"not_checked: permheal does not evaluate IAM roles; it must trust {APIGATEWAY_PRINCIPAL}"
                f" (sts:AssumeRole) and allow {INVOKE_ACTION} on {function.arn}",
            )
        )
        fix = Fix(
            f"give role {invocation.credentials} a trust policy for {APIGATEWAY_PRINCIPAL} and "
            f"{INVOKE_ACTION} on {function.arn}, or remove the credentials to use the resource policy"
        )
        return replace(path, verdict=Verdict.NOT_CHECKED, steps=tuple(steps), fix=fix)
    steps.append(Step("credentials", "none: Lambda checks the function's resource policy"))
    if (function.account, function.region, function.partition) != (api.account, api.region, api.partition):
        steps.append(
            Step(
                "note",
                f"the function is in {function.account}/{function.region}, the API in "
                f"{api.account}/{api.region}: permheal never edits it",
            )
        )
    steps.append(Step("source ARN", target.source_arn))
    try:
        policy = read_policy(function)
    except NotFoundError as exc:
        steps.append(Step("verdict", f"denied: the function does not exist ({exc})"))
        return replace(
            path,
            verdict=Verdict.DENIED,
            steps=tuple(steps),
            fix=Fix(f"create {function.arn} or point the integration at an existing function"),
        )
    except AwsCallError as exc:
        steps.append(Step("verdict", f"not_checked: the policy could not be read ({exc})"))
        return replace(path, verdict=Verdict.NOT_CHECKED, steps=tuple(steps))
    request = InvokeRequest(function.arn, target.source_arn, api.account)
    statements = trace(policy, request)
    steps.append(
        Step(
            "resource policy",
            f"{len(policy.statements)} statement(s), {policy.size_bytes} bytes on {function.arn}",
        )
    )
    evaluation = evaluate(policy, request)
    path = replace(path, statements=statements)
    if evaluation.decision is Decision.ALLOW:
        steps.append(Step("verdict", f"allowed by {', '.join(evaluation.sids)}"))
        return replace(path, verdict=Verdict.ALLOWED, steps=tuple(steps))
    if evaluation.decision is Decision.DENY:
        sids = ", ".join(evaluation.sids)
        steps.append(Step("verdict", f"denied by Deny statement(s) {sids}; permheal never edits them"))
        fix = Fix(
            f"statement(s) {sids} deny this call: remove or narrow them if that is not intended "
            f"(aws lambda remove-permission --function-name {function.unqualified_arn}"
            f"{_qualifier(function)} --statement-id SID)"
        )
        return replace(path, verdict=Verdict.DENIED, steps=tuple(steps), fix=fix)
    steps.append(
        Step(
            "verdict",
            "denied: no statement allows this call (the log says 'Invalid permissions on Lambda function')",
        )
    )
    steps.extend(_other_qualifier(function, target.source_arn, api.account, read_policy))
    return replace(path, verdict=Verdict.DENIED, steps=tuple(steps), fix=grant_fix(target, scope))


def _qualifier(function: FunctionRef) -> str:
    return f" --qualifier {function.qualifier}" if function.qualifier else ""


def _other_qualifier(
    function: FunctionRef, source_arn: str, account: str, read_policy: PolicyReader
) -> list[Step]:
    """A grant on the unqualified function does not let API Gateway invoke an alias: say so."""
    if function.qualifier is None:
        return []
    unqualified = replace(function, qualifier=None)
    try:
        policy = read_policy(unqualified)
    except (NotFoundError, AwsCallError):
        return []
    evaluation = evaluate(policy, InvokeRequest(unqualified.arn, source_arn, account))
    if not evaluation.allowed:
        return []
    return [
        Step(
            "note",
            f"wrong qualifier: {', '.join(evaluation.sids)} on the unqualified function would allow it, "
            f"but API Gateway invokes {function.arn}, whose own policy is checked",
        )
    ]


def grant_fix(target: Target, scope: Scope) -> Fix:
    """The grant permheal adds for this call, with the Sid it would use."""
    function = target.function
    pattern = target.grant_pattern(scope)
    sid = permheal_sid(pattern, function.qualifier)
    cli = (
        f"aws lambda add-permission --function-name {function.unqualified_arn}{_qualifier(function)}"
        f" --statement-id {sid} --action {INVOKE_ACTION} --principal {APIGATEWAY_PRINCIPAL}"
        f" --source-arn '{pattern}'"
    )
    logical = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", function.label) if part)
    cloudformation = "\n".join(
        [
            f"{logical}InvokePermission:",
            "  Type: AWS::Lambda::Permission",
            "  Properties:",
            f"    FunctionName: {function.arn}",
            f"    Action: {INVOKE_ACTION}",
            f"    Principal: {APIGATEWAY_PRINCIPAL}",
            f"    SourceArn: {pattern}",
        ]
    )
    return Fix(f"grant {scope.value} scope: {pattern}", sid, pattern, cli, cloudformation)


def render(explanation: Explanation) -> str:
    """The table format: numbered steps per share of traffic, each statement with its reason."""
    e = explanation
    lines = [
        f"permheal explain: {e.api_name} ({e.api.api_id}) stage {e.stage}, {e.call.label} -> "
        f"{e.verdict.value.upper()}"
    ]
    for path in e.paths:
        lines += ["", f"{path.traffic} traffic ({path.percent:g}%): {path.verdict.value}"]
        width = max(len(s.step) for s in path.steps)
        for number, step in enumerate(path.steps, start=1):
            lines.append(f"  {number:>2}. {step.step.ljust(width)}  {step.detail}")
            if step.step == "resource policy":
                lines.extend(_statement_lines(path.statements, width))
        if path.fix is not None:
            lines.extend(_fix_lines(path.fix, len(path.steps) + 1, width))
    return "\n".join(lines) + "\n"


def _statement_lines(statements: Sequence[StatementTrace], width: int) -> list[str]:
    indent = " " * (width + 8)
    if not statements:
        return [f"{indent}(no statements)"]
    sid_width = max(len(s.sid) for s in statements)
    return [
        f"{indent}- {s.sid.ljust(sid_width)}  {s.effect:<5}  {s.outcome:<14}  {s.reason}" for s in statements
    ]


def _fix_lines(fix: Fix, number: int, width: int) -> list[str]:
    indent = " " * (width + 8)
    lines = [f"  {number:>2}. {'fix'.ljust(width)}  {fix.note}"]
    if fix.cli:
        lines.append(f"{indent}{fix.cli}")
    if fix.cloudformation:
        lines.append(f"{indent}CloudFormation:")
        lines.extend(f"{indent}  {line}" for line in fix.cloudformation.splitlines())
    return lines
