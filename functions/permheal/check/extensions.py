"""`AWS::LanguageExtensions`: expand `Fn::ForEach` before anything else reads the template.

CloudFormation (and `sam build --language-extensions`) expand a loop into one copy of its body
per collection item, with `${Id}` / `&{Id}` in keys and strings and `!Ref Id` replaced by the item.
A collection only deploy knows (a parameter without default) expands to nothing; the loop is named
in `unexpanded` so the caller can say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from permheal.check import intrinsics as ix

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_FOR_EACH = "Fn::ForEach::"


def uses_extensions(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    return LANGUAGE_EXTENSIONS in (transform if isinstance(transform, list) else [transform])


def expand(template: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The template with every `Fn::ForEach` loop in Resources expanded (and the transform removed)."""
    expanded = dict(template)
    transform = template.get("Transform")
    names = [
        t for t in (transform if isinstance(transform, list) else [transform]) if t != LANGUAGE_EXTENSIONS
    ]
    if names:
        expanded["Transform"] = names if len(names) > 1 else names[0]
    else:
        expanded.pop("Transform", None)
    resolver = ix.Resolver(template)
    unexpanded: list[str] = []
    resources = template.get("Resources")
    if isinstance(resources, Mapping):
        expanded["Resources"] = _expand_mapping(resources, resolver, unexpanded)
    return expanded, unexpanded


def _expand_mapping(
    mapping: Mapping[str, Any], resolver: ix.Resolver, unexpanded: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not (isinstance(key, str) and key.startswith(_FOR_EACH)):
            out[key] = value
            continue
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[2], Mapping)):
            unexpanded.append(key)
            continue
        identifier, collection, body = value
        items = resolver.value(collection)
        if isinstance(items, str) and not ix.is_unknown(items):
            items = items.split(",")
        if not isinstance(items, list) or any(ix.is_unknown(i) or not isinstance(i, str) for i in items):
            unexpanded.append(key)
            continue
        for item in items:
            copy = _substitute(body, str(identifier), item)
            out.update(_expand_mapping(copy, resolver, unexpanded))
    return out


def _substitute(node: Any, identifier: str, item: str) -> Any:
    if isinstance(node, list):
        return [_substitute(v, identifier, item) for v in node]
    if isinstance(node, Mapping):
        if set(node) == {"Ref"} and node["Ref"] == identifier:
            return item
        return {_text(str(k), identifier, item): _substitute(v, identifier, item) for k, v in node.items()}
    return _text(node, identifier, item) if isinstance(node, str) else node


def _text(text: str, identifier: str, item: str) -> str:
    text = text.replace("${" + identifier + "}", item)
    return text.replace("&{" + identifier + "}", re.sub(r"[^A-Za-z0-9]", "", item))
