"""The `permheal explain` subcommand: argument wiring; the tracing is `permheal.explain` (pure)."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO


def add_parser(commands: Any, parents: list[argparse.ArgumentParser], api: Any, stage: Any) -> None:
    """Register `explain` on the CLI's subparsers (kept here so cli.py only gains a few lines)."""
    explain = commands.add_parser(
        "explain", parents=parents, help="why one call of an API stage is allowed or denied, step by step"
    )
    explain.add_argument("--api", required=True, type=api, metavar="NAME_OR_ID")
    explain.add_argument("--stage", required=True, type=stage)
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--route",
        type=_route,
        metavar="ROUTE",
        help='"GET /pets/{id}"; HTTP/WebSocket also "$default", "$connect"',
    )
    which.add_argument("--authorizer", type=_authorizer, metavar="ID")
    explain.add_argument("--format", choices=("table", "json"), default="table")
    explain.set_defaults(run=run)


def _route(value: str) -> str:
    """`GET /pets/{id}` (REST, HTTP), `$default`, or a WebSocket route key (`$connect`, `sendMessage`)."""
    method, _, path = value.strip().partition(" ")
    if len(value) > 2048 or not value.isprintable() or not method:
        raise argparse.ArgumentTypeError(f"{value!r} is not a route like 'GET /pets/{{id}}' or '$default'")
    if not path:
        return method
    if not method.isalpha() or not path.strip().startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a route like 'GET /pets/{{id}}' or '$default'")
    return f"{method.upper()} {path.strip()}"


def _authorizer(value: str) -> str:
    if not value.isalnum() or len(value) > 64:
        raise argparse.ArgumentTypeError(f"{value!r} is not an authorizer id")
    return value


def explain(adapters: Any, api_name_or_id: str, stage: str, call: Any, scope: Any) -> Any:
    """Read what the stage serves and the policies it needs (read-only), then trace the call."""
    from permheal.adapters.apigatewayv2 import V2Definition
    from permheal.arns import ApiRef
    from permheal.explain import StageView, explain_call, explain_v2_call

    gateway = adapters.gateway
    api = gateway.find_api(api_name_or_id)
    definition = gateway.definition(api, stage)
    identity = adapters.identity()
    ref = ApiRef(identity.partition, gateway.region, identity.account, api.api_id)
    if isinstance(definition, V2Definition):
        (v2_stage,) = (s for s in definition.stages if s.name == stage)
        return explain_v2_call(ref, api.name, definition.spec, v2_stage, call, adapters.policies.read, scope)
    (served,) = (s for s in definition.stages if s.name == stage)
    view = StageView(served.name, served.deployment_id, served.variables, served.served, served.canary)
    return explain_call(ref, api.name, view, call, adapters.policies.read, scope, definition.working_copy)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from permheal.adapters.ports import Adapters
    from permheal.config import CliSettings
    from permheal.explain import Call, render

    settings = CliSettings.from_env().workflow
    explanation = explain(
        Adapters.default(), args.api, args.stage, Call(args.route, args.authorizer), settings.scope
    )
    if args.format == "json":
        json.dump(explanation.to_dict(), out, indent=2)
        out.write("\n")
    else:
        out.write(render(explanation))
    code: int = explanation.verdict.exit_code
    return code
