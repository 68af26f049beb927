"""3. Control-plane cost: AWS calls and wall time to resolve one API as it grows, and to scan an account.

Resolve is what the "Resolve targets" Lambda does (adapters built as in the handler, so the account
comes from the context and STS is not called). Each API has `methods` Lambda-proxy methods over
four function+qualifier pairs; `authorizers` of them sit behind their own Lambda authorizer.
moto answers GetResources in a single page whatever the size; AWS pages it by 500 resources, so
`aws_calls` adds the pages AWS would need.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from benchmarks.common import CallCounter, moto_aws, timed

PAGE = 500
_FUNCTIONS = (("orders", "live"), ("orders", "1"), ("pets", None), ("admin", "live"))
_AUTH_FUNCTIONS = ("auth-a", "auth-b")


@dataclass
class _Context:
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:permheal-resolve"


def build_functions(world: Any) -> None:
    world.function("orders", alias="live", versions=1)
    world.function("pets")
    world.function("admin", alias="live")
    for name in _AUTH_FUNCTIONS:
        world.function(name)


def build_api(world: Any, name: str, methods: int, authorizers: int) -> tuple[str, int]:
    """`methods` methods (4 per resource, one import), `authorizers` of them authorized: (id, resources)."""
    from permheal_local.builder import function_arn, integration_uri

    plain = methods - authorizers
    verbs = ("get", "post", "put", "delete")
    paths: dict[str, dict[str, Any]] = {}
    for index in range(plain):
        fn, qualifier = _FUNCTIONS[index % len(_FUNCTIONS)]
        paths.setdefault(f"/r{index // 4:04d}/{{id}}", {})[verbs[index % 4]] = {
            "responses": {},
            "x-amazon-apigateway-integration": {
                "type": "AWS_PROXY",
                "httpMethod": "POST",
                "uri": integration_uri(function_arn(fn, qualifier)),
            },
        }
    apigw = world.client("apigateway")
    api_id = world.rest_api(name)
    document = {"openapi": "3.0.1", "info": {"title": name, "version": "1"}, "paths": paths}
    apigw.put_rest_api(restApiId=api_id, mode="overwrite", body=json.dumps(document).encode())
    for index in range(authorizers):
        authorizer = world.authorizer(
            api_id, f"auth{index}", function_arn(_AUTH_FUNCTIONS[index % len(_AUTH_FUNCTIONS)])
        )
        world.method(api_id, f"/secure{index:02d}", "GET", function_arn("pets"), authorizer_id=authorizer)
    world.deploy(api_id, "prod")
    resources = len(apigw.get_resources(restApiId=api_id, limit=PAGE)["items"])
    return api_id, resources


def _aws_calls(counter: CallCounter, resources: int) -> int:
    """Measured calls plus the GetResources pages AWS would add (moto returns one page)."""
    return counter.total + max(0, math.ceil(resources / PAGE) - counter.calls["apigateway:GetResources"])


def resolve_api(api_id: str, resources: int, methods: int, authorizers: int) -> dict[str, Any]:
    from permheal.config import Settings
    from permheal.handlers import adapters_for
    from permheal.workflow.resolve import resolve
    from permheal.workflow.state import ExecutionInput

    settings = Settings()
    counter = CallCounter()
    with counter.installed():
        seconds, resolution = timed(
            lambda: resolve(adapters_for(_Context(), settings), ExecutionInput(api_id, "prod"), settings)
        )
    targets = sum(len(g.targets) for g in resolution.groups)
    aws_calls = _aws_calls(counter, resources)
    return {
        "methods": methods,
        "authorizers": authorizers,
        "resources": resources,
        "targets": targets,
        "function_groups": len(resolution.groups),
        "calls": counter.total,
        "aws_calls": aws_calls,
        "calls_per_method": round(aws_calls / methods, 4),
        "by_operation": dict(sorted(counter.calls.items())),
        "wall_ms": round(seconds * 1000, 1),
        "ms_in_aws_calls": round(counter.seconds_in_calls * 1000, 1),
        "ms_permheal": round((seconds - counter.seconds_in_calls) * 1000, 1),
    }


def build_http_api(world: Any, name: str, routes: int) -> str:
    """An HTTP API with `routes` routes over the same four function+qualifiers (one integration each),
    every tenth behind a REQUEST Lambda authorizer, on an auto-deployed `$default` stage."""
    from permheal_local.builder import function_arn, integration_uri

    v2 = world.client("apigatewayv2")
    api_id = v2.create_api(Name=name, ProtocolType="HTTP")["ApiId"]
    integrations = [
        v2.create_integration(
            ApiId=api_id,
            IntegrationType="AWS_PROXY",
            IntegrationUri=function_arn(fn, qualifier),
            PayloadFormatVersion="2.0",
        )["IntegrationId"]
        for fn, qualifier in _FUNCTIONS
    ]
    authorizer = v2.create_authorizer(
        ApiId=api_id,
        AuthorizerType="REQUEST",
        Name="auth",
        IdentitySource=["$request.header.Authorization"],
        AuthorizerUri=integration_uri(function_arn(_AUTH_FUNCTIONS[0])),
        AuthorizerPayloadFormatVersion="2.0",
    )["AuthorizerId"]
    for index in range(routes):
        secured = {"AuthorizationType": "CUSTOM", "AuthorizerId": authorizer} if index % 10 == 0 else {}
        v2.create_route(
            ApiId=api_id,
            RouteKey=f"{('GET', 'POST', 'PUT', 'DELETE')[index % 4]} /r{index // 4:04d}/{{id}}",
            Target=f"integrations/{integrations[index % len(integrations)]}",
            **secured,
        )
    v2.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    return str(api_id)


def resolve_http_api(api_id: str, routes: int) -> dict[str, Any]:
    """Resolve one HTTP API as the handler does; the faithful v2 double pages as AWS (500 per page)."""
    from permheal.config import Settings
    from permheal.handlers import adapters_for
    from permheal.workflow.resolve import resolve
    from permheal.workflow.state import ExecutionInput

    settings = Settings()
    counter = CallCounter()
    with counter.installed():
        seconds, resolution = timed(
            lambda: resolve(adapters_for(_Context(), settings), ExecutionInput(api_id, "$default"), settings)
        )
    return {
        "routes": routes,
        "targets": sum(len(g.targets) for g in resolution.groups),
        "function_groups": len(resolution.groups),
        "aws_calls": counter.total,
        "calls_per_route": round(counter.total / routes, 4),
        "by_operation": dict(sorted(counter.calls.items())),
        "wall_ms": round(seconds * 1000, 1),
        "ms_in_aws_calls": round(counter.seconds_in_calls * 1000, 1),
        "ms_permheal": round((seconds - counter.seconds_in_calls) * 1000, 1),
    }


def scan_account(world: Any, apis: int) -> dict[str, Any]:
    """`permheal scan` over `apis` APIs of 8 methods and 1 authorizer each."""
    from permheal.adapters.ports import Adapters
    from permheal.planner import PlanOptions
    from permheal.workflow.scan import scan

    for index in range(apis):
        build_api(world, f"svc-{index:03d}", 8, 1)
    counter = CallCounter()
    with counter.installed():
        seconds, findings = timed(lambda: scan(Adapters.default(), [], None, PlanOptions()))
    return {
        "apis": apis,
        "methods": apis * 8,
        "calls": counter.total,
        "calls_per_api": round(counter.total / apis, 2),
        "by_operation": dict(sorted(counter.calls.items())),
        "findings": len(findings),
        "wall_ms": round(seconds * 1000, 1),
        "ms_in_aws_calls": round(counter.seconds_in_calls * 1000, 1),
        "ms_permheal": round((seconds - counter.seconds_in_calls) * 1000, 1),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from permheal_local.builder import World

    sizes = (10, 30) if quick else (10, 100, 1000)
    authorizer_counts = (1, 3) if quick else (1, 10)
    with moto_aws():
        world = World()
        build_functions(world)
        world.allow("*")
        resolves = []
        for authorizers in authorizer_counts:
            for methods in sizes:
                api_id, resources = build_api(world, f"api-{methods}-{authorizers}", methods, authorizers)
                resolve_api(api_id, resources, methods, authorizers)  # warm the clients and moto
                resolves.append(resolve_api(api_id, resources, methods, authorizers))
        http_resolves = []
        for routes in sizes:
            http_id = build_http_api(world, f"http-{routes}", routes)
            resolve_http_api(http_id, routes)  # warm the clients and moto
            http_resolves.append(resolve_http_api(http_id, routes))
    with moto_aws():  # a fresh account holding only the scanned APIs
        world = World()
        build_functions(world)
        scanned = scan_account(world, 3 if quick else 50)
    per_method = [r["calls_per_method"] for r in resolves if r["authorizers"] == authorizer_counts[0]]
    return {
        "resolve": resolves,
        "calls_per_method_falls": all(a > b for a, b in itertools.pairwise(per_method)),
        "calls_constant_in_size": len({r["aws_calls"] for r in resolves if r["resources"] <= PAGE}) == 1,
        "scan": scanned,
        "resolve_http": http_resolves,
        "http_calls_constant_in_size": len({r["aws_calls"] for r in http_resolves if r["routes"] <= PAGE})
        == 1,
    }
