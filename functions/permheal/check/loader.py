"""Read CloudFormation/SAM templates and OpenAPI files from disk, remembering where resources are.

YAML is read with the CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...) turned into
their long form, so everything downstream sees one shape. Line numbers are kept per resource so a
finding (and its SARIF location) points at the resource, not at the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from permheal.errors import ParseError


class _Loader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """SafeLoader plus the CloudFormation tags; never constructs arbitrary objects."""


def _construct_tag(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    """`!Ref x` -> {"Ref": x}; any other `!Name` -> {"Fn::Name": ...} (Rules and language
    extensions included: `!Contains`, `!ForEach`, ... need no list to keep up with)."""
    tag = suffix.removeprefix("Fn::")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag in ("Ref", "Condition"):
        return {tag: value}
    if tag == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag}": value}


_Loader.add_multi_constructor("!", _construct_tag)


def _no_dates(loader: _Loader, node: yaml.Node) -> Any:
    """`2012-10-17` stays a string: CloudFormation reads it as one."""
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _no_dates)


@dataclass(frozen=True)
class Document:
    """One parsed file: its data and the 1-based line where each top-level resource starts."""

    path: Path
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    is_json: bool = False

    def line_of(self, logical_id: str | None) -> int:
        """The resource's line; a generated resource (SAM) maps to the one whose id prefixes it."""
        if logical_id and logical_id in self.lines:
            return self.lines[logical_id]
        if logical_id:
            owners = [name for name in self.lines if logical_id.startswith(name)]
            if owners:
                return self.lines[max(owners, key=len)]
        return self.lines.get("", 1)


def load(path: Path) -> Document:
    """Parse YAML or JSON; a file that is neither is a ParseError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"{path}: cannot read: {exc}") from exc
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ParseError(f"{path}: not valid JSON: {exc}") from exc
        return Document(path, data, _json_lines(text, data), is_json=True)
    try:
        data = yaml.load(text, Loader=_Loader)
        lines = _yaml_lines(text)
    except yaml.YAMLError as exc:
        raise ParseError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    return Document(path, data, lines)


def _yaml_lines(text: str) -> dict[str, int]:
    """Compose (no construction, so any tag is fine) and record each resource key's line."""
    root = yaml.compose(text, Loader=_Loader)
    lines: dict[str, int] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value == "Resources":
            lines[""] = key.start_mark.line + 1
            if isinstance(value, yaml.MappingNode):
                for resource_key, _ in value.value:
                    lines[str(resource_key.value)] = resource_key.start_mark.line + 1
    return lines


def _json_lines(text: str, data: Any) -> dict[str, int]:
    """JSON has no marks: find each resource's key after `"Resources"`, in order."""
    lines: dict[str, int] = {}
    start = text.find('"Resources"')
    if start < 0 or not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        return lines
    lines[""] = text.count("\n", 0, start) + 1
    position = start
    for name in data["Resources"]:
        match = re.compile(rf'"{re.escape(name)}"\s*:').search(text, position)
        if match:
            lines[name] = text.count("\n", 0, match.start()) + 1
            position = match.end()
    return lines


def include_local(value: Any, base: Path, seen: frozenset[Path] = frozenset()) -> Any:
    """Inline `Fn::Transform: AWS::Include` whose Location is a local file, recursively.

    An S3 location is left as is: only deploy can read it (the caller reports it unresolved).
    """
    if isinstance(value, list):
        return [include_local(item, base, seen) for item in value]
    if not isinstance(value, dict):
        return value
    transform = value.get("Fn::Transform")
    if len(value) == 1 and isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
        location = (transform.get("Parameters") or {}).get("Location")
        local = local_file(location, base)
        if local is None:
            return value
        if local in seen:
            raise ParseError(f"{local}: AWS::Include includes itself")
        return include_local(load(local).data, local.parent, seen | {local})
    return {key: include_local(item, base, seen) for key, item in value.items()}


def local_file(location: Any, base: Path) -> Path | None:
    """A relative or absolute local path (not s3://, not an intrinsic) resolved against `base`."""
    if not isinstance(location, str) or "://" in location or not location:
        return None
    path = (base / location).resolve()
    if not path.is_file():
        raise ParseError(f"{path}: referenced by the template but not found")
    return path
