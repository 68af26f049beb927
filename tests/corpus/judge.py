"""The corpus verdict: what a deployed API serves, whether each call works, and what a repair changed.

Every call is judged by the API Gateway simulator, whose invoke check is the independent oracle
(`permheal_local.oracle`); policy comparisons use the oracle too. Nothing here uses
`permheal.policy.evaluate` or the planner: the judge must not share a mistake with the judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from permheal_local import faithful_lambda
from permheal_local.builder import ACCOUNT, REGION, World
from permheal_local.oracle import allows
from permheal_local.simulator import ApiGatewaySimulator

GATEWAY = "apigateway.amazonaws.com"
_FUNCTION_IN_URI = re.compile(r"/functions/(?P<arn>arn:[^/]+)/invocations$")
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")

FunctionId = tuple[str, str | None]
Policies = dict[FunctionId, list[dict[str, Any]]]


@dataclass(frozen=True)
class Call:
    """One request a client can make to a stage: a route (and the authorizer in front of it)."""

    api_id: str
    stage: str
    method: str
    resource_path: str
    authorizer_id: str | None
    headers: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return f"{self.api_id}/{self.stage} {self.method} {self.resource_path}"

    @property
    def request_path(self) -> str:
        """A concrete path the route matches: each `{param}` / `{proxy+}` gets a value."""
        return re.sub(r"\{[^}]+\}", "x", self.resource_path)


def calls(world: World, api_id: str) -> list[Call]:
    """Every route of every stage of the API (ANY is requested as GET), with identity headers."""
    apigw = world.client("apigateway")
    stages = sorted(s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"])
    authorizers = {a["id"]: a for a in apigw.get_authorizers(restApiId=api_id)["items"]}
    found: list[Call] = []
    for resource in _resources(world, api_id):
        for verb, method in sorted((resource.get("resourceMethods") or {}).items()):
            authorizer_id = (
                method.get("authorizerId") if method.get("authorizationType") == "CUSTOM" else None
            )
            headers = _identity_headers(authorizers.get(authorizer_id or "", {}))
            for stage in stages:
                found.append(Call(api_id, stage, verb, resource["path"], authorizer_id, headers))
    return found


def _resources(world: World, api_id: str) -> list[dict[str, Any]]:
    pages = (
        world.client("apigateway")
        .get_paginator("get_resources")
        .paginate(restApiId=api_id, embed=["methods"])
    )
    return sorted((item for page in pages for item in page["items"]), key=lambda r: str(r["path"]))


def _identity_headers(authorizer: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    sources = str(authorizer.get("identitySource") or "").split(",")
    names = [s.strip().split(".", 3)[3] for s in sources if s.strip().startswith("method.request.header.")]
    return tuple((name, "allow") for name in names)


def failures(world: World, api_ids: Iterable[str]) -> list[str]:
    """Each call that does not get a successful answer, as `label -> status body`."""
    simulator = ApiGatewaySimulator(world, account=ACCOUNT)
    failed: list[str] = []
    for api_id in api_ids:
        for call in calls(world, api_id):
            method = "GET" if call.method == "ANY" else call.method
            response = simulator.request(api_id, call.stage, method, call.request_path, dict(call.headers))
            if not response.ok:
                failed.append(f"{call.label} -> {response.status} {response.body}")
    return failed


def invoked_targets(world: World, api_id: str) -> set[FunctionId]:
    """(function name, qualifier) that some stage's integration or authorizer invokes."""
    apigw = world.client("apigateway")
    uris = [
        str((m.get("methodIntegration") or {}).get("uri") or "")
        for r in _resources(world, api_id)
        for m in (r.get("resourceMethods") or {}).values()
    ]
    uris += [str(a.get("authorizerUri") or "") for a in apigw.get_authorizers(restApiId=api_id)["items"]]
    targets: set[FunctionId] = set()
    for stage in apigw.get_stages(restApiId=api_id)["item"]:
        variables: dict[str, str] = stage.get("variables") or {}
        for uri in uris:
            resolved = _substitute(uri, variables)
            match = _FUNCTION_IN_URI.search(resolved)
            if match:
                parts = match.group("arn").split(":")
                qualifier = parts[7] if len(parts) > 7 and parts[7] != "$LATEST" else None
                targets.add((parts[6], qualifier))
    return targets


def _substitute(uri: str, variables: Mapping[str, str]) -> str:
    return _STAGE_VARIABLE.sub(lambda m: str(variables.get(m.group(1), "")), uri)


def policies(world: World) -> Policies:
    """Every statement of every function, alias and version in the local Lambda."""
    lam = world.client("lambda")
    found: Policies = {}
    for function in lam.list_functions()["Functions"]:
        name = function["FunctionName"]
        qualifiers: list[str | None] = [None]
        qualifiers += [a["Name"] for a in lam.list_aliases(FunctionName=name)["Aliases"]]
        qualifiers += [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]
        for qualifier in qualifiers:
            if qualifier == "$LATEST":
                continue
            found[(name, qualifier)] = faithful_lambda.policy_statements(name, qualifier)
    return found


def function_arn(function: FunctionId) -> str:
    name, qualifier = function
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def source_pattern(statement: Mapping[str, Any]) -> str | None:
    for operator in ("ArnLike", "ArnEquals"):
        value = (statement.get("Condition") or {}).get(operator, {}).get("AWS:SourceArn")
        if isinstance(value, str):
            return value
    return None


def api_prefix(api_id: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/"


def belongs_to(statement: Mapping[str, Any], api_ids: Iterable[str]) -> bool:
    """An API Gateway grant whose source pattern names one of these APIs (this account and region)."""
    pattern = source_pattern(statement)
    principal = (
        (statement.get("Principal") or {}).get("Service")
        if isinstance(statement.get("Principal"), dict)
        else None
    )
    return (
        principal == GATEWAY
        and pattern is not None
        and any(pattern.startswith(api_prefix(api_id)) for api_id in api_ids)
    )


def lost(before: Policies, after: Policies, api_ids: Iterable[str]) -> list[str]:
    """Statements gone or changed that were not this API's grants, and this API's calls no longer allowed.

    A statement of another API, another principal, or one nobody can read must still be there as
    it was. A grant of this API may go (dedupe) only if every call it allowed is still allowed:
    checked with one call its pattern matches, by the oracle.
    """
    ids = list(api_ids)
    problems: list[str] = []
    for function, statements in before.items():
        remaining = after.get(function, [])
        for statement in statements:
            if statement in remaining:
                continue
            if not belongs_to(statement, ids):
                problems.append(
                    f"{function}: {statement.get('Sid')} removed or changed (not this API's grant)"
                )
                continue
            sample = re.sub(r"[*?]", "x", str(source_pattern(statement)))
            if allows(statements, function_arn(function), sample, ACCOUNT) and not allows(
                remaining, function_arn(function), sample, ACCOUNT
            ):
                problems.append(f"{function}: {statement.get('Sid')} removed and {sample} no longer allowed")
    return problems


def drifted(before: Policies, after: Policies, owned_sids: Iterable[str]) -> list[str]:
    """Statements a stack owns (its AWS::Lambda::Permission Sids) that are gone: the stack drifted.

    By default permheal reports a redundant IaC-owned statement and leaves it (design.md, "IaC-owned
    statements"), so a repair must never remove one.
    """
    owned = set(owned_sids)
    kept = {(function, s.get("Sid")) for function, statements in after.items() for s in statements}
    return [
        f"{function}: stack-owned {statement.get('Sid')} removed"
        for function, statements in before.items()
        for statement in statements
        if statement.get("Sid") in owned and (function, statement.get("Sid")) not in kept
    ]


def too_wide(
    before: Policies, after: Policies, api_ids: Iterable[str], targets: set[FunctionId]
) -> list[str]:
    """Added statements that are not API Gateway grants scoped to one of these APIs, on a target invoked."""
    ids = list(api_ids)
    problems: list[str] = []
    for function, statements in after.items():
        old_sids = {s.get("Sid") for s in before.get(function, [])}
        for statement in statements:
            if statement.get("Sid") in old_sids:
                continue
            pattern = source_pattern(statement)
            if not belongs_to(statement, ids) or pattern is None or "*" in pattern.split("/", 1)[0]:
                problems.append(
                    f"{function}: added {statement.get('Sid')} is not scoped to the API: {pattern}"
                )
            elif function not in targets:
                problems.append(f"{function}: added {statement.get('Sid')} on a function no stage invokes")
    return problems
