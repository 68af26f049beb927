"""Deploy what `permheal check` predicted from a template into the local AWS (moto): REST and HTTP APIs.

Not CloudFormation: the template's REST APIs (methods, authorizers, stages) and HTTP APIs (routes,
Lambda proxy integrations, REQUEST authorizers, AutoDeploy stages, via `apigatewayv2`), functions,
aliases and `AWS::Lambda::Permission`s are created with boto3 from the prediction, with the real
ids moto assigns substituted for the stand-ins. The simulators then play API Gateway's data plane
(v1 for REST, v2 for HTTP), so a test can see the deployed API fail (or work) the way `check` said
it would. An HTTP route is deployed without its authorizer; each authorizer guards a route of its
own with no integration, so a failing request names exactly one missing grant.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from permheal.check import sam
from permheal.check.loader import load
from permheal.check.predict import Call, predict
from permheal_local.builder import World, integration_uri
from permheal_local.simulator import ApiGatewaySimulator
from permheal_local.simulator_v2 import ApiGatewayV2Simulator


@dataclass(frozen=True)
class Request:
    api_id: str
    stage: str
    method: str
    path: str
    call: Call
    api_type: str = "REST"


@dataclass
class Deployed:
    requests: list[Request] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    """Stand-in id -> id moto assigned."""

    def real(self, text: str) -> str:
        for stand_in, real in self.ids.items():
            text = text.replace(stand_in, real)
        return re.sub(r"~[^~]*~", "*", text)


def deploy(world: World, path: Path) -> Deployed:
    doc = load(path)
    template = sam.transform(doc.data, path.parent) if sam.is_sam(doc.data) else doc.data
    resolver, calls, grants = predict(doc, template)
    calls = [c for c in calls if c.target is not None and "canary" not in c.stage]
    http_calls = [c for c in calls if c.site.api_type == "HTTP"]
    calls = [c for c in calls if c.site.api_type == "REST"]
    lam = world.client("lambda")
    deployed = Deployed()
    functions: set[str] = set()
    qualifiers: set[tuple[str, str]] = set()
    for function in [c.target.function for c in calls + http_calls if c.target] + [
        g.function for g in grants if g.function
    ]:
        if function.name not in functions:
            with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
                lam.delete_function(FunctionName=function.name)  # a clean policy for each deploy
            world.create_function(function.name)
            functions.add(function.name)
        if function.qualifier and (function.name, function.qualifier) not in qualifiers:
            version = lam.publish_version(FunctionName=function.name)["Version"]
            lam.create_alias(FunctionName=function.name, Name=function.qualifier, FunctionVersion=version)
            qualifiers.add((function.name, function.qualifier))
    for api in sorted({c.site.api for c in calls}):
        deployed.ids[resolver.api_id(api)] = world.rest_api(api)
    for call in calls:  # authorizers first: methods refer to their ids
        assert call.target is not None
        if call.site.authorizer and call.site.authorizer_logical not in deployed.ids:
            api_id = deployed.ids[resolver.api_id(call.site.api)]
            real = world.authorizer(api_id, call.site.authorizer, call.target.function.arn)
            deployed.ids[str(call.site.authorizer_logical)] = real
    done: set[tuple[str, str, str]] = set()
    for call in calls:
        assert call.target is not None
        api_id = deployed.ids[resolver.api_id(call.site.api)]
        site = call.site
        if site.authorizer is None and (api_id, str(site.method), str(site.resource_path)) not in done:
            done.add((api_id, str(site.method), str(site.resource_path)))
            world.method(
                api_id,
                str(site.resource_path),
                str(site.method),
                call.target.function.arn,
                authorizer_id=deployed.ids.get(site.guarded_by or ""),
            )
    guarded = {c.site.guarded_by for c in calls}
    for index, call in enumerate(c for c in calls if c.site.authorizer):
        if call.site.authorizer_logical not in guarded:  # only MOCK methods use it: make one to call
            api_id = deployed.ids[resolver.api_id(call.site.api)]
            world.method(
                api_id,
                f"/guarded{index}",
                "GET",
                None,
                authorizer_id=deployed.ids[str(call.site.authorizer_logical)],
            )
            deployed.requests.append(Request(api_id, call.stage, "GET", f"/guarded{index}", call))
    for api_logical, stage in sorted({(c.site.api, c.stage) for c in calls}):
        world.deploy(deployed.ids[resolver.api_id(api_logical)], stage)
    _deploy_http(world, resolver, http_calls, deployed)
    for grant in grants:
        if grant.function is None:
            continue
        statement: dict[str, Any] = dict(grant.statement)
        source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        principal = statement["Principal"]
        lam.add_permission(
            FunctionName=grant.function.name,
            StatementId=grant.logical_id[:100],
            Action=statement["Action"],
            Principal=principal if isinstance(principal, str) else next(iter(principal.values())),
            **({"SourceArn": deployed.real(source)} if source else {}),
            **({"Qualifier": grant.function.qualifier} if grant.function.qualifier else {}),
        )
    for call in calls:
        if call.site.authorizer is None:
            method = "GET" if call.site.method == "ANY" else str(call.site.method)
            deployed.requests.append(
                Request(
                    deployed.ids[resolver.api_id(call.site.api)],
                    call.stage,
                    method,
                    _concrete(str(call.site.resource_path)),
                    call,
                )
            )
    return deployed


def _concrete(path: str) -> str:
    """A request path the route or resource `path` matches."""
    return re.sub(r"\{[^}]+\+\}", "a/b", re.sub(r"\{[^}+]+\}", "1", path))


def _deploy_http(world: World, resolver: Any, calls: list[Call], deployed: Deployed) -> None:
    """HTTP APIs: one Lambda proxy integration per route, one REQUEST authorizer per authorizer."""
    v2 = world.client("apigatewayv2")
    for api in sorted({c.site.api for c in calls}):
        deployed.ids[resolver.api_id(api)] = v2.create_api(Name=api, ProtocolType="HTTP")["ApiId"]
    routes: set[tuple[str, str]] = set()
    for index, call in enumerate(calls):
        assert call.target is not None
        site = call.site
        api_id = deployed.ids[resolver.api_id(site.api)]
        if site.authorizer:
            if site.authorizer_logical not in deployed.ids:
                deployed.ids[str(site.authorizer_logical)] = v2.create_authorizer(
                    ApiId=api_id,
                    AuthorizerType="REQUEST",
                    Name=site.authorizer,
                    IdentitySource=["$request.header.Authorization"],
                    AuthorizerUri=integration_uri(call.target.function.arn),
                    AuthorizerPayloadFormatVersion="2.0",
                )["AuthorizerId"]
            v2.create_route(  # no integration: only the authorizer is exercised
                ApiId=api_id,
                RouteKey=f"GET /guarded{index}",
                AuthorizationType="CUSTOM",
                AuthorizerId=deployed.ids[str(site.authorizer_logical)],
            )
            deployed.requests.append(Request(api_id, call.stage, "GET", f"/guarded{index}", call, "HTTP"))
            continue
        key = str(site.route_key)
        if (api_id, key) not in routes:
            routes.add((api_id, key))
            integration = v2.create_integration(
                ApiId=api_id,
                IntegrationType="AWS_PROXY",
                IntegrationUri=call.target.function.arn,
                PayloadFormatVersion="2.0",
            )["IntegrationId"]
            v2.create_route(ApiId=api_id, RouteKey=key, Target=f"integrations/{integration}")
        method = "GET" if site.method == "ANY" else str(site.method)
        path = "/anything" if key == "$default" else _concrete(str(site.resource_path))
        deployed.requests.append(Request(api_id, call.stage, method, path, call, "HTTP"))
    for api_logical, stage in sorted({(c.site.api, c.stage) for c in calls}):
        v2.create_stage(ApiId=deployed.ids[resolver.api_id(api_logical)], StageName=stage, AutoDeploy=True)


def send_all(world: World, deployed: Deployed) -> dict[Request, int]:
    simulators = {"REST": ApiGatewaySimulator(world), "HTTP": ApiGatewayV2Simulator(world)}
    return {
        request: simulators[request.api_type]
        .request(request.api_id, request.stage, request.method, request.path, {"Authorization": "allow"})
        .status
        for request in deployed.requests
    }
