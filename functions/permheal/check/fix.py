"""The CloudFormation snippet that grants exactly what a finding says is missing.

The SourceArn is written with `!Sub` and `${ApiLogicalId}` (and `${AuthorizerLogicalId}`), so it
is right after deploy whatever ids API Gateway assigns; the pattern itself is the runtime's
`Target.grant_pattern` (method scope), so `check`'s fix and permheal's repair grant the same thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from permheal.arnlike import covers
from permheal.arns import FunctionRef
from permheal.check import intrinsics as ix
from permheal.check.loader import Document
from permheal.models import Target, TargetKind
from permheal.planner import permheal_sid
from permheal.policy import APIGATEWAY_PRINCIPAL, INVOKE_ACTION

_SUB_PREFIX = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"


class _Tag:
    """A short-form intrinsic in the snippet (`!Ref X` in YAML, `{"Ref": "X"}` in JSON)."""

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def json(self) -> Any:
        return {"Ref": self.value} if self.name == "Ref" else {f"Fn::{self.name}": self.value}

    def yaml(self) -> str:
        return f"!{self.name} {json.dumps(self.value)}"


def _function_expression(resolver: ix.Resolver, function: FunctionRef) -> _Tag:
    for resource in resolver.resources.values():
        kind = resource.type
        if (
            kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version")
            and resolver.ref(resource.logical_id) == function.arn
        ):
            return _Tag("Ref", resource.logical_id)
    for resource in resolver.resources.values():
        if (
            resource.type == "AWS::Lambda::Function"
            and ix.function_arn(resolver.function_name(resource.logical_id)) == function.unqualified_arn
        ):
            if function.qualifier is None:
                return _Tag("Ref", resource.logical_id)
            return _Tag("Sub", f"${{{resource.logical_id}.Arn}}:{function.qualifier}")
    local = f"arn:{ix.PARTITION}:lambda:{ix.REGION}:{ix.ACCOUNT}:"
    return _Tag(
        "Sub", function.arn.replace(local, "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:")
    )


def _source_expression(resolver: ix.Resolver, pattern: str, api_logical: str, authorizer: str | None) -> _Tag:
    prefix = f"arn:{ix.PARTITION}:execute-api:{ix.REGION}:{ix.ACCOUNT}:{resolver.api_id(api_logical)}"
    text = pattern.replace(prefix, _SUB_PREFIX + "${" + api_logical + "}", 1)
    if authorizer and authorizer in resolver.resources:
        text = text.replace(
            f"/authorizers/{resolver.authorizer_id(authorizer)}", f"/authorizers/${{{authorizer}}}"
        )
    return _Tag("Sub", re.sub(r"~[^~]*~", "*", text))  # an id only deploy assigns: any


def _logical_id(label: str, source: str, qualifier: str | None) -> str:
    stem = re.sub(r"[^A-Za-z0-9]", "", label)[:80] or "Function"
    return f"{stem}Invoke{permheal_sid(source, qualifier).removeprefix('permheal-')[:10]}"


def _render(doc: Document, logical_id: str, properties: dict[str, Any], replaces: Sequence[str] = ()) -> str:
    body: dict[str, Any] = {"Type": "AWS::Lambda::Permission", "Properties": properties}
    if replaces:
        body["Metadata"] = {"permheal": {"replaces": list(replaces)}}
    if doc.is_json:

        def plain(value: Any) -> Any:
            if isinstance(value, _Tag):
                return value.json()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return json.dumps({logical_id: plain(body)}, indent=2)
    lines = [f"{logical_id}:", "  Type: AWS::Lambda::Permission"]
    if replaces:
        lines += ["  Metadata:", "    permheal:", "      replaces:"] + [
            f"        - {name}" for name in replaces
        ]
    lines.append("  Properties:")
    for key, value in properties.items():
        lines.append(f"    {key}: {value.yaml() if isinstance(value, _Tag) else json.dumps(value)}")
    return "\n".join(lines) + "\n"


def grant_fix(
    doc: Document, resolver: ix.Resolver, target: Target, site: Any, replaces: Sequence[str] = ()
) -> str:
    """One AWS::Lambda::Permission for this call, in the document's own format."""
    from permheal.check.predict import scoped

    authorizer = site.authorizer if target.kind is TargetKind.AUTHORIZER else None
    source = _source_expression(resolver, scoped(target), site.api, authorizer)
    function = _function_expression(resolver, target.function)
    label = function.value.split(".")[0].strip("${}") if function.name != "Sub" else function.value
    properties = {
        "Action": INVOKE_ACTION,
        "FunctionName": function,
        "Principal": APIGATEWAY_PRINCIPAL,
        "SourceArn": source,
    }
    return _render(doc, _logical_id(label, source.value, target.function.qualifier), properties, replaces)


def consolidated_fix(
    doc: Document,
    resolver: ix.Resolver,
    function: FunctionRef,
    targets: Sequence[Target],
    grants: Sequence[Any],
) -> tuple[str, list[str]]:
    """One API-wide grant per API (the runtime's `api` scope) replacing the per-method grants it covers."""
    expression = _function_expression(resolver, function)
    label = expression.value.split(".")[0].strip("${}") if expression.name != "Sub" else expression.value
    snippets: list[str] = []
    replaced: list[str] = []
    apis = sorted({(t.api.api_id, t.api.prefix) for t in targets if t.kind is TargetKind.INTEGRATION})
    for api_id, prefix in apis:
        api_logical = next(
            (r.logical_id for r in resolver.resources.values() if resolver.api_id(r.logical_id) == api_id),
            None,
        )
        if api_logical is None:
            continue
        wide = f"{prefix}/*/*/*"
        covered = [g.logical_id for g in grants if g.source and covers(wide, g.source)]
        replaced += covered
        source = _source_expression(resolver, wide, api_logical, None)
        properties = {
            "Action": INVOKE_ACTION,
            "FunctionName": expression,
            "Principal": APIGATEWAY_PRINCIPAL,
            "SourceArn": source,
        }
        snippets.append(
            _render(doc, _logical_id(label, source.value, function.qualifier), properties, covered)
        )
    if doc.is_json:  # one JSON object holding every new resource
        merged: dict[str, Any] = {}
        for snippet in snippets:
            merged.update(json.loads(snippet))
        return (json.dumps(merged, indent=2) if merged else ""), replaced
    return "\n".join(snippets), replaced
