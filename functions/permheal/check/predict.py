"""Predict, from one CloudFormation template, the Lambda calls API Gateway will make and whether
the template's own `AWS::Lambda::Permission`s allow them.

The calls are the runtime's `Target`s (same source ARNs, same grant patterns) and every grant is
evaluated with `permheal.policy.evaluate`, so what `check` predicts is what `scan` and the repair
workflow will see after deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from permheal import openapi
from permheal.arnlike import is_arn_pattern
from permheal.arns import (
    ApiRef,
    FunctionRef,
    parse_function,
    parse_integration_uri,
    substitute_stage_variables,
)
from permheal.check import intrinsics as ix
from permheal.check.loader import Document, include_local, load, local_file
from permheal.check.model import CheckFinding, CheckKind
from permheal.errors import ParseError
from permheal.models import Scope, Target, TargetKind
from permheal.planner import NEAR_LIMIT_RATIO
from permheal.policy import POLICY_SIZE_LIMIT, InvokeRequest, Policy, evaluate, policy_size

LAMBDA_INTEGRATIONS = ("AWS", "AWS_PROXY")
TEST_INVOKE_STAGE = "test-invoke-stage"
_CUSTOM = ("CUSTOM", "COGNITO_USER_POOLS")
CANARY = " (canary)"


@dataclass(frozen=True)
class Site:
    """Where a call happens, for the finding: resource that defines it and the contract fields."""

    resource: str
    api: str
    api_type: str
    method: str | None = None
    resource_path: str | None = None
    route_key: str | None = None
    authorizer: str | None = None
    authorizer_logical: str | None = None
    """For an authorizer: its id (a stand-in, or unknown for one defined in an OpenAPI body)."""
    guarded_by: str | None = None
    """For a method or route: the id of the authorizer in front of it, if any."""


@dataclass(frozen=True)
class Call:
    """One Lambda invocation on one stage; `problem` says why it cannot be known before deploy."""

    site: Site
    stage: str
    target: Target | None
    problem: str | None = None


@dataclass(frozen=True)
class Grant:
    logical_id: str
    function: FunctionRef | None
    statement: Mapping[str, Any]
    source: str | None
    problem: str | None = None


@dataclass
class _Api:
    logical_id: str
    api_type: str
    sites: list[tuple[Site, str | None, str | None]] = field(default_factory=list)
    """(site, integration or authorizer URI, credentials)"""
    stages: dict[str, dict[str, str]] = field(default_factory=dict)
    opaque: str | None = None
    """Why the API's methods cannot be read before deploy (its body is in S3)."""


def check_template(doc: Document, template: Mapping[str, Any]) -> list[CheckFinding]:
    """Every finding for one (already SAM-transformed) template."""
    resolver, calls, grants = predict(doc, template)
    return _judge(doc, resolver, calls, grants)


def predict(doc: Document, template: Mapping[str, Any]) -> tuple[ix.Resolver, list[Call], list[Grant]]:
    """The calls API Gateway will make and the grants the template holds (before any verdict)."""
    resolver = ix.Resolver(template)
    apis = _rest_apis(resolver, doc.path.parent) + _http_apis(resolver, doc.path.parent)
    calls = [call for api in apis for call in _calls(api, resolver)]
    return resolver, calls, _grants(resolver)


# --- what API Gateway will call -----------------------------------------------------------------


def _api_ref(resolver: ix.Resolver, logical_id: str) -> ApiRef:
    return ApiRef(ix.PARTITION, ix.REGION, ix.ACCOUNT, resolver.api_id(logical_id))


def _owned_by(resolver: ix.Resolver, kind: str, key: str, api_logical: str) -> list[ix.Resource]:
    api_id = resolver.api_id(api_logical)
    return [
        r
        for r in resolver.resources.values()
        if r.type == kind and resolver.text(r.properties.get(key)) == api_id
    ]


def _body(resolver: ix.Resolver, properties: Mapping[str, Any], base: Path) -> Any:
    """The OpenAPI body: inline, a local file, or None (an S3 location only deploy can read)."""
    if "Body" in properties or "DefinitionBody" in properties:
        return resolver.value(include_local(properties.get("Body", properties.get("DefinitionBody")), base))
    location = properties.get("BodyS3Location")
    if isinstance(location, Mapping):
        return None
    path = local_file(resolver.text(location), base) if isinstance(location, str) else None
    return resolver.value(include_local(load(path).data, path.parent)) if path else None


def _rest_apis(resolver: ix.Resolver, base: Path) -> list[_Api]:
    apis = []
    for resource in resolver.resources.values():
        if resource.type != "AWS::ApiGateway::RestApi":
            continue
        name = resource.logical_id
        api = _Api(name, "REST")
        body = _body(resolver, resource.properties, base)
        if isinstance(body, Mapping) and isinstance(body.get("paths"), Mapping):
            _add_spec(api, openapi.from_export(body, ()), name, resolver)
        elif "BodyS3Location" in resource.properties:
            api.opaque = "its OpenAPI definition is in S3 (BodyS3Location); pass the local file to check it"
        authorizers = {
            resolver.authorizer_id(a.logical_id): a
            for a in _owned_by(resolver, "AWS::ApiGateway::Authorizer", "RestApiId", name)
        }
        paths = _resource_paths(resolver, name)
        methods = _owned_by(resolver, "AWS::ApiGateway::Method", "RestApiId", name)
        for method in methods:
            props = method.properties
            verb = (resolver.text(props.get("HttpMethod")) or "").upper()
            path = paths.get(resolver.text(props.get("ResourceId")) or "", ix.unknown("resource path"))
            raw = props.get("Integration")
            integration: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            uri = resolver.text(integration.get("Uri"))
            kind = (resolver.text(integration.get("Type")) or "").upper()
            if kind in LAMBDA_INTEGRATIONS and _maybe_lambda(uri):
                custom = (resolver.text(props.get("AuthorizationType")) or "").upper() in _CUSTOM
                guard = resolver.text(props.get("AuthorizerId")) if custom else None
                api.sites.append(
                    (
                        Site(method.logical_id, name, "REST", verb, path, guarded_by=guard),
                        uri,
                        resolver.text(integration.get("Credentials")),
                    )
                )
        used = {resolver.text(m.properties.get("AuthorizerId")) for m in methods}
        _add_authorizers(api, resolver, authorizers, used, ("Type", "AuthorizerUri", "AuthorizerCredentials"))
        _add_stages(api, resolver, "AWS::ApiGateway::Stage", "RestApiId", "Variables")
        for deployment in _owned_by(resolver, "AWS::ApiGateway::Deployment", "RestApiId", name):
            stage_name = resolver.text(deployment.properties.get("StageName"))
            if stage_name:
                description = deployment.properties.get("StageDescription")
                variables = description.get("Variables") if isinstance(description, Mapping) else None
                api.stages.setdefault(stage_name, _strings(resolver, variables))
                _add_canary(api, resolver, stage_name, deployment.properties.get("DeploymentCanarySettings"))
        apis.append(api)
    return apis


def _add_authorizers(
    api: _Api,
    resolver: ix.Resolver,
    authorizers: Mapping[str, ix.Resource],
    used: set[str | None],
    keys: tuple[str, str, str],
) -> None:
    """Lambda authorizers (TOKEN/REQUEST) some method or route uses; unused ones are never invoked."""
    type_key, uri_key, credentials_key = keys
    for authorizer_id, authorizer in authorizers.items():
        props = authorizer.properties
        if authorizer_id not in used or (resolver.text(props.get(type_key)) or "").upper() not in (
            "TOKEN",
            "REQUEST",
        ):
            continue
        site = Site(
            authorizer.logical_id,
            api.logical_id,
            api.api_type,
            authorizer=authorizer.logical_id,
            authorizer_logical=authorizer_id,
        )
        api.sites.append((site, resolver.text(props.get(uri_key)), resolver.text(props.get(credentials_key))))


def _add_stages(api: _Api, resolver: ix.Resolver, kind: str, api_key: str, variables_key: str) -> None:
    for stage in _owned_by(resolver, kind, api_key, api.logical_id):
        name = resolver.text(stage.properties.get("StageName")) or ix.unknown("stage name")
        api.stages[name] = _strings(resolver, stage.properties.get(variables_key))
        _add_canary(api, resolver, name, stage.properties.get("CanarySetting"))


def _add_canary(api: _Api, resolver: ix.Resolver, stage: str, settings: Any) -> None:
    """A canary's requests run with its stage-variable overrides on top of the stage's variables."""
    if isinstance(settings, Mapping) and settings:
        overrides = _strings(resolver, settings.get("StageVariableOverrides"))
        api.stages[stage + CANARY] = {**api.stages.get(stage, {}), **overrides}


def _strings(resolver: ix.Resolver, node: Any) -> dict[str, str]:
    value = resolver.value(node) if node is not None else {}
    if not isinstance(value, Mapping):
        return {}
    return {str(k): resolver.text(v) or "" for k, v in value.items()}


def _resource_paths(resolver: ix.Resolver, api_logical: str) -> dict[str, str]:
    """Resource id stand-in -> full path, following ParentId up to the root resource."""
    root = resolver.get_att(api_logical, "RootResourceId")
    resources = _owned_by(resolver, "AWS::ApiGateway::Resource", "RestApiId", api_logical)
    by_id = {str(resolver.ref(r.logical_id)): r for r in resources}
    paths: dict[str, str] = {str(root): "/"}

    def path_of(resource_id: str, depth: int = 0) -> str:
        if resource_id in paths:
            return paths[resource_id]
        resource = by_id.get(resource_id)
        if resource is None or depth > 64:
            return ix.unknown("resource path")
        parent = path_of(resolver.text(resource.properties.get("ParentId")) or "", depth + 1)
        part = resolver.text(resource.properties.get("PathPart")) or ""
        paths[resource_id] = parent.rstrip("/") + "/" + part
        return paths[resource_id]

    for resource_id in by_id:
        path_of(resource_id)
    return paths


def _add_spec(api: _Api, spec: openapi.ApiSpec, resource: str, resolver: ix.Resolver) -> None:
    """Methods and authorizers of an OpenAPI body (SAM's APIs, `Body`, `DefinitionBody`)."""
    seen: set[str] = set()
    for method in spec.methods:
        http = api.api_type == "HTTP"
        if len(method.path) > 1 and method.path.endswith("/"):  # API Gateway drops it on import
            method = replace(method, path=method.path.rstrip("/"))
        default = method.path in ("/$default", "$default")
        route_key = ("$default" if default else f"{method.method} {method.path}") if http else None
        verb, path = ("ANY", "$default") if route_key == "$default" else (method.method, method.path)
        integration = method.integration
        lambda_type = integration is not None and integration.type in LAMBDA_INTEGRATIONS
        if (
            integration is not None
            and _maybe_lambda(integration.uri)
            and (lambda_type or _is_function(integration.uri))
        ):
            guard = ix.unknown(f"id of authorizer {method.authorizer.name}") if method.authorizer else None
            site = Site(resource, api.logical_id, api.api_type, verb, path, route_key, guarded_by=guard)
            api.sites.append((site, integration.uri, integration.credentials))
        authorizer = method.authorizer
        if authorizer is not None and authorizer.uri and authorizer.name not in seen:
            seen.add(authorizer.name)
            if authorizer.type in ("TOKEN", "REQUEST") or http:
                # The id API Gateway assigns at import; nothing in the template can name it.
                site = Site(
                    resource,
                    api.logical_id,
                    api.api_type,
                    authorizer=authorizer.name,
                    authorizer_logical=ix.unknown(f"id of authorizer {authorizer.name}"),
                )
                api.sites.append((site, authorizer.uri, authorizer.credentials))


def _maybe_lambda(uri: str | None) -> bool:
    """An AWS integration calls Lambda unless its URI plainly names something else (S3, SQS, https)."""
    return uri is None or ix.is_unknown(uri) or _is_function(uri) or "${stageVariables." in uri


def _is_function(uri: str | None) -> bool:
    return bool(uri) and (":lambda:path/" in str(uri) or ":function:" in str(uri))


def _http_apis(resolver: ix.Resolver, base: Path) -> list[_Api]:
    apis = []
    for resource in resolver.resources.values():
        if resource.type != "AWS::ApiGatewayV2::Api":
            continue
        props = resource.properties
        if (resolver.text(props.get("ProtocolType")) or "HTTP").upper() != "HTTP":
            continue  # WebSocket APIs are not predicted yet
        name = resource.logical_id
        api = _Api(name, "HTTP")
        body = _body(resolver, props, base)
        if isinstance(body, Mapping) and isinstance(body.get("paths"), Mapping):
            _add_spec(api, openapi.from_export(body, ()), name, resolver)
        elif "BodyS3Location" in props:
            api.opaque = "its OpenAPI definition is in S3 (BodyS3Location); pass the local file to check it"
        target = resolver.text(props.get("Target"))
        if target:  # quick create: a $default route and a $default stage
            api.sites.append(
                (
                    Site(name, name, "HTTP", "ANY", "$default", "$default"),
                    target,
                    resolver.text(props.get("CredentialsArn")),
                )
            )
            api.stages["$default"] = {}
        integrations = {
            str(resolver.ref(i.logical_id)): i
            for i in _owned_by(resolver, "AWS::ApiGatewayV2::Integration", "ApiId", name)
        }
        authorizers = {
            str(resolver.ref(a.logical_id)): a
            for a in _owned_by(resolver, "AWS::ApiGatewayV2::Authorizer", "ApiId", name)
        }
        routes = _owned_by(resolver, "AWS::ApiGatewayV2::Route", "ApiId", name)
        for route in routes:
            key = resolver.text(route.properties.get("RouteKey")) or ix.unknown("route key")
            verb, _, path = key.partition(" ")
            verb, path = ("ANY", "$default") if key == "$default" else (verb, path)
            integration = integrations.get(
                (resolver.text(route.properties.get("Target")) or "").removeprefix("integrations/")
            )
            if integration is not None:
                iprops = integration.properties
                uri = resolver.text(iprops.get("IntegrationUri"))
                if (
                    resolver.text(iprops.get("IntegrationType")) or ""
                ).upper() == "AWS_PROXY" and _is_function(uri):
                    api.sites.append(
                        (
                            Site(route.logical_id, name, "HTTP", verb, path, key),
                            uri,
                            resolver.text(iprops.get("CredentialsArn")),
                        )
                    )
        used = {resolver.text(r.properties.get("AuthorizerId")) for r in routes}
        keys = ("AuthorizerType", "AuthorizerUri", "AuthorizerCredentialsArn")
        _add_authorizers(api, resolver, authorizers, used, keys)
        _add_stages(api, resolver, "AWS::ApiGatewayV2::Stage", "ApiId", "StageVariables")
        apis.append(api)
    return apis


def _calls(api: _Api, resolver: ix.Resolver) -> Iterable[Call]:
    ref = _api_ref(resolver, api.logical_id)
    if api.opaque:
        yield Call(
            Site(api.logical_id, api.logical_id, api.api_type),
            "*",
            None,
            f"API {api.logical_id}: {api.opaque}",
        )
    for site, uri, credentials in api.sites:
        if credentials:
            continue  # invoked with an IAM role: the resource policy is not consulted
        for shown, variables in sorted(api.stages.items()):
            stage = shown.removesuffix(CANARY)  # a canary's calls carry its stage's name
            function, problem = _function(uri, variables, shown)
            if function is None:
                yield Call(site, shown, None, problem)
                continue
            if site.authorizer is not None:
                target = Target(
                    TargetKind.AUTHORIZER, ref, stage, function, authorizer_id=site.authorizer_logical
                )
            elif site.route_key == "$default":  # HTTP $default route: {api}/{stage}/$default
                target = Target(TargetKind.INTEGRATION, ref, stage, function, "$default", "")
            else:
                target = Target(TargetKind.INTEGRATION, ref, stage, function, site.method, site.resource_path)
            yield Call(site, shown, target)


def _unknowns(text: str) -> str | None:
    reasons = ix.unknown_reasons(text)
    return "; ".join(reasons) + " (known only at deploy)" if reasons else None


def _function(
    uri: str | None, variables: Mapping[str, str], stage: str
) -> tuple[FunctionRef | None, str | None]:
    """The function+qualifier a URI invokes on a stage, or why that cannot be known yet."""
    if not uri or ix.is_unknown(uri):
        return None, f"the integration URI is {_unknowns(uri or '~missing~')}"
    # Response streaming (2021-11-15) invokes the same function: its grant is the same.
    parsed = parse_integration_uri(uri.replace("/response-streaming-invocations", "/invocations"))
    text = parsed.function_text if parsed else uri
    if parsed and parsed.stage_variables:
        missing = [v for v in parsed.stage_variables if v not in variables]
        if missing:
            return None, (
                f"the function is chosen only by stage variable(s) {', '.join(missing)}, which stage "
                f"{stage} does not set in this template"
            )
        text = substitute_stage_variables(text, dict(variables))
    if ix.is_unknown(text):
        return None, f"the function is {_unknowns(text)}"
    try:
        return parse_function(text, partition=ix.PARTITION, region=ix.REGION, account=ix.ACCOUNT), None
    except ParseError as exc:
        if "${" in uri:
            return None, f"{exc}: a ${{...}} outside Fn::Sub is not substituted by CloudFormation"
        return None, str(exc)


# --- what the template grants -------------------------------------------------------------------


def _grants(resolver: ix.Resolver) -> list[Grant]:
    grants = []
    for resource in resolver.resources.values():
        if resource.type != "AWS::Lambda::Permission":
            continue
        props = resource.properties
        text = resolver.function_text(props.get("FunctionName"))
        principal = resolver.text(props.get("Principal")) or ""
        source = resolver.text(props.get("SourceArn"))
        account = resolver.text(props.get("SourceAccount"))
        function = None
        problem = _unknowns(text)
        if problem is None:
            try:
                function = parse_function(text, partition=ix.PARTITION, region=ix.REGION, account=ix.ACCOUNT)
            except ParseError as exc:
                problem = str(exc)
        condition: dict[str, Any] = {}
        if source:
            condition["ArnLike"] = {"AWS:SourceArn": source}
        if account:
            condition["StringEquals"] = {"AWS:SourceAccount": account}
        statement = {
            # CloudFormation names each statement {stack}-{logical id}-{random}: counts for the size.
            "Sid": f"{ix.STACK}-{resource.logical_id}-{ix.stand_in(resource.logical_id, 12)}",
            "Effect": "Allow",
            "Principal": "*"
            if principal == "*"
            else {"Service" if principal.endswith(".amazonaws.com") else "AWS": principal},
            "Action": resolver.text(props.get("Action")) or "",
            "Resource": function.arn if function else text,
            **({"Condition": condition} if condition else {}),
        }
        grants.append(
            Grant(resource.logical_id, function, statement, source, problem or _unknowns(source or ""))
        )
    return grants


# --- the verdict --------------------------------------------------------------------------------


def _allows(grants: Iterable[Grant], target: Target) -> bool:
    policy = Policy(tuple(g.statement for g in grants))
    return evaluate(policy, InvokeRequest(target.function.arn, target.source_arn, ix.ACCOUNT)).allowed


def _judge(
    doc: Document, resolver: ix.Resolver, calls: list[Call], grants: list[Grant]
) -> list[CheckFinding]:
    from permheal.check.fix import consolidated_fix, grant_fix

    labels = _function_labels(resolver)
    by_arn: dict[str, list[Grant]] = {}
    for grant in grants:
        if grant.function is not None:
            by_arn.setdefault(grant.function.arn, []).append(grant)
    live = {g.logical_id for g in grants for c in calls if c.target and _allows([g], c.target)}
    findings: list[CheckFinding] = []
    show = _display(resolver)

    def finding(call: Call, kind: CheckKind, detail: str, fix: str | None = None) -> CheckFinding:
        function = call.target.function if call.target else None
        return CheckFinding(
            kind=kind,
            file=str(doc.path),
            line=doc.line_of(call.site.resource),
            api=call.site.api,
            api_type=call.site.api_type,
            stage=call.stage,
            method=call.site.method,
            resource_path=call.site.resource_path,
            route_key=call.site.route_key,
            authorizer=call.site.authorizer,
            function=show(labels.get(function.unqualified_arn, function.unqualified_arn))
            if function
            else None,
            qualifier=function.qualifier if function else None,
            detail=show(detail),
            fix=fix,
        )

    for call in calls:
        target = call.target
        if target is None or call.problem:
            findings.append(finding(call, CheckKind.UNRESOLVED, call.problem or "unknown function"))
            continue
        if _allows(by_arn.get(target.function.arn, []), target):
            continue
        kind, detail, culprit = _why(call, target, grants, by_arn, live, labels)
        unknown_source = _unknowns(target.source_arn)
        if unknown_source and kind is CheckKind.WRONG_SOURCE_ARN:
            kind, detail = CheckKind.UNRESOLVED, f"{culprit} names the source {unknown_source}"
        # A grant that can never match anything is replaced, when it is written in this file.
        dead = [culprit] if kind is CheckKind.WRONG_SOURCE_ARN and culprit in doc.lines else []
        fix = grant_fix(doc, resolver, target, call.site, dead) if kind is not CheckKind.UNRESOLVED else None
        findings.append(finding(call, kind, detail, fix))
    findings.extend(_size_findings(doc, resolver, calls, by_arn, labels, consolidated_fix))
    return findings


def _why(
    call: Call,
    target: Target,
    grants: list[Grant],
    by_arn: Mapping[str, list[Grant]],
    live: set[str],
    labels: Mapping[str, str],
) -> tuple[CheckKind, str, str | None]:
    """Which kind of failure, why, and the grant that was meant to allow the call (if any)."""
    function = target.function
    invoked = labels.get(function.unqualified_arn, function.unqualified_arn)
    shown = f"{invoked}:{function.qualifier}" if function.qualifier else f"{invoked} (unqualified)"
    for grant in grants:
        other = grant.function
        if other is None or other.unqualified_arn != function.unqualified_arn or other.arn == function.arn:
            continue
        if _allows([grant], replace(target, function=other)):
            where = f"qualifier {other.qualifier}" if other.qualifier else "the unqualified function"
            detail = f"{grant.logical_id} grants {where}, but the call invokes {shown}"
            detail += ": each qualifier has its own policy"
            return CheckKind.WRONG_QUALIFIER, detail, grant.logical_id
    vague = [
        g
        for g in grants
        if g.problem and g.logical_id not in live and (g.function is None or g.function.arn == function.arn)
    ]
    if vague:
        detail = f"{vague[0].logical_id}: {vague[0].problem}; cannot tell whether it allows {shown}"
        return CheckKind.UNRESOLVED, detail, vague[0].logical_id
    for grant in by_arn.get(function.arn, []):
        source = grant.source or ""
        if f"/{TEST_INVOKE_STAGE}/" in source:
            continue  # console test grants (CDK adds them) are for calls no stage makes
        if grant.logical_id in live or not _names_api(source, target.api.api_id, call.site.api):
            continue
        detail = f"{grant.logical_id}: {_mismatch(source, target, call.site.api)}"
        return CheckKind.WRONG_SOURCE_ARN, detail, grant.logical_id
    if function.unqualified_arn not in labels and not any(
        g.function and g.function.unqualified_arn == function.unqualified_arn for g in grants
    ):
        detail = (
            f"{readable(function.arn)} is not defined in this template and nothing here grants it: "
            "its policy is managed elsewhere (another stack, the console, a script), so only deploy can tell"
        )
        return CheckKind.UNRESOLVED, detail, None
    detail = f"no AWS::Lambda::Permission lets API Gateway invoke {shown} for {readable(target.source_arn)}"
    return CheckKind.MISSING_PERMISSION, detail, None


def _display(resolver: ix.Resolver) -> Any:
    """Text for people: stand-in ids shown as the `${LogicalId}` they stand for, as in `!Sub`."""
    pairs = [
        (f"arn:{ix.PARTITION}:execute-api:{ix.REGION}:{ix.ACCOUNT}:", "arn:...:execute-api:...:"),
        (
            f"arn:{ix.PARTITION}:lambda:{ix.REGION}:{ix.ACCOUNT}:",
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:",
        ),
    ]
    for resource in resolver.resources.values():
        if resource.type in ("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"):
            pairs.append((resolver.api_id(resource.logical_id), f"${{{resource.logical_id}}}"))
        elif resource.type in ("AWS::ApiGateway::Authorizer", "AWS::ApiGatewayV2::Authorizer"):
            pairs.append(
                (
                    f"/authorizers/{resolver.authorizer_id(resource.logical_id)}",
                    f"/authorizers/${{{resource.logical_id}}}",
                )
            )
        elif resource.type == "AWS::Lambda::Function":
            name = resolver.function_name(resource.logical_id)
            if name.startswith(f"{ix.STACK}-{resource.logical_id[:8]}"):  # a stand-in, not a FunctionName
                pairs.append((f"function:{name}", f"function:${{{resource.logical_id}}}"))

    def show(text: str) -> str:
        for stand_in, shown in pairs:
            text = text.replace(stand_in, shown)
        return readable(text)

    return show


def readable(text: str) -> str:
    """An ARN with its deploy-time parts shown as `{what}` instead of the internal marker."""
    return re.sub(r"~([^~]*)~", r"{\1}", text)


def _names_api(source: str, api_id: str, api_logical: str) -> bool:
    if not is_arn_pattern(source):
        return False
    resource = source.split(":", 5)[5]
    name = resource.split("/", 1)[0]
    return name in (api_id, api_logical) or "*" in name or "?" in name


def _mismatch(source: str, target: Target, api_logical: str) -> str:
    resource = source.split(":", 5)[5]
    name, _, rest = resource.partition("/")
    actual = readable(target.source_arn)
    if name == api_logical:
        return (
            f"SourceArn names the logical id {api_logical} where the API id belongs "
            f"(write ${{{api_logical}}} in !Sub); it never matches {actual}"
        )
    if (
        target.kind is TargetKind.AUTHORIZER
        and not rest.startswith("authorizers/")
        and not rest.startswith("*")
    ):
        return (
            f"SourceArn {source} is shaped for methods; an authorizer is invoked with {actual} "
            "(.../authorizers/{id}), which it never matches"
        )
    if target.kind is TargetKind.AUTHORIZER and rest.count("/") >= 2 and rest.startswith("*"):
        return (
            f"SourceArn {source} needs three path segments and never matches the authorizer source {actual}"
        )
    stage = rest.split("/", 1)[0]
    if target.kind is TargetKind.INTEGRATION and "*" not in stage and stage != target.stage and stage:
        return f"SourceArn is for stage {stage}; the call comes from stage {target.stage} ({actual})"
    if source.endswith("/") and not actual.endswith("/"):
        return f"SourceArn {source} ends with a slash and never matches {actual}"
    return f"SourceArn {source} never matches {actual}"


def _function_labels(resolver: ix.Resolver) -> dict[str, str]:
    return {
        ix.function_arn(resolver.function_name(r.logical_id)): r.logical_id
        for r in resolver.resources.values()
        if r.type == "AWS::Lambda::Function"
    }


def _size_findings(
    doc: Document,
    resolver: ix.Resolver,
    calls: list[Call],
    by_arn: Mapping[str, list[Grant]],
    labels: Mapping[str, str],
    consolidated_fix: Any,
) -> list[CheckFinding]:
    findings = []
    for arn, grants in sorted(by_arn.items()):
        size = policy_size([g.statement for g in grants])
        if size <= POLICY_SIZE_LIMIT * NEAR_LIMIT_RATIO:
            continue
        function = grants[0].function
        assert function is not None  # grouped by function ARN
        label = labels.get(function.unqualified_arn, function.unqualified_arn)
        targets = [c.target for c in calls if c.target and c.target.function.arn == arn]
        fix, replaced = consolidated_fix(doc, resolver, function, targets, grants)
        qualified = f":{function.qualifier}" if function.qualifier else ""
        findings.append(
            CheckFinding(
                kind=CheckKind.POLICY_SIZE_RISK,
                file=str(doc.path),
                line=doc.line_of(label if label in resolver.resources else grants[0].logical_id),
                function=label,
                qualifier=function.qualifier,
                detail=(
                    f"{len(grants)} statements on {label}{qualified} "
                    f"make a policy of about {size} bytes (limit {POLICY_SIZE_LIMIT}, warning above "
                    f"{int(NEAR_LIMIT_RATIO * 100)}%): the next grant or deploy can fail with "
                    f"PolicyLengthExceededException; one API-wide grant replaces {len(replaced)}"
                ),
                fix=fix,
            )
        )
    return findings


def scoped(target: Target) -> str:
    """The SourceArn pattern a fix grants: the runtime's default (method) scope."""
    return target.grant_pattern(Scope.METHOD)


def check_openapi(doc: Document, document: Mapping[str, Any]) -> list[CheckFinding]:
    """A bare OpenAPI file: its grants live in some template, so only what the file alone
    decides is checked: every Lambda integration and authorizer must name a function."""
    resolver = ix.Resolver({})
    api = _Api(
        "OpenApi", "HTTP" if "x-amazon-apigateway-cors" in document or _payload_v2(document) else "REST"
    )
    _add_spec(api, openapi.from_export(document, ()), "", resolver)
    findings = []
    for site, uri, credentials in api.sites:
        if credentials or uri is None:
            continue  # a role invokes it, or the URI is an intrinsic: a fragment its template checks
        function, problem = _function(uri, {}, "(any)")
        if function is None:
            findings.append(
                CheckFinding(
                    kind=CheckKind.UNRESOLVED,
                    file=str(doc.path),
                    line=1,
                    api=None,
                    api_type=site.api_type,
                    method=site.method,
                    resource_path=site.resource_path,
                    route_key=site.route_key,
                    authorizer=site.authorizer,
                    detail=str(problem),
                )
            )
    return findings


def _payload_v2(document: Mapping[str, Any]) -> bool:
    return '"payloadFormatVersion"' in json.dumps(document, default=str)
