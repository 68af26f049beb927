"""Read template.yaml the way SAM does, so local deployments run what the stack would run.

Pure: no AWS calls and no environment reads. Values stay raw (`{"Ref": ...}`, `{"Fn::GetAtt": ...}`,
`{"Fn::Sub": ...}` dicts are kept for the caller to resolve against what it deployed); only
`Fn::FindInMap` over the template's own literal `Mappings` is resolved, because it is a constant of
the template rather than something a deployment decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
SERVERLESS_STATE_MACHINE = "AWS::Serverless::StateMachine"
# What Lambda applies when neither the function nor Globals say.
DEFAULT_TIMEOUT_SECONDS = 3
DEFAULT_MEMORY_MB = 128


class TemplateError(ValueError):
    """The template does not have the shape the local deployer needs."""


@dataclass(frozen=True)
class FunctionSpec:
    """One function as deployed: Globals merged in, values raw."""

    handler: str
    environment: dict[str, Any]
    timeout: int
    memory: int


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or JSON template, short-form tags (`!Ref`, `!Sub`, `!GetAtt`...) as long form."""
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # dev/local dependency only

    template = _plain(cfn_yaml.load(str(path)))
    if not isinstance(template, dict):
        raise TemplateError(f"{path}: a template must be a mapping")
    return template


def resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's resources by logical id, without `Fn::ForEach::...` entries (lists, not resources)."""
    return {
        name: resource
        for name, resource in _mapping(template.get("Resources")).items()
        if isinstance(resource, dict)
    }


def function_specs(template: Mapping[str, Any]) -> dict[str, FunctionSpec]:
    """Every Lambda function of the template by logical id, SAM `Globals.Function` merged in."""
    specs: dict[str, FunctionSpec] = {}
    defaults = _mapping(_mapping(template.get("Globals")).get("Function"))
    for logical_id, resource in resources(template).items():
        kind = resource.get("Type")
        if kind not in (SERVERLESS_FUNCTION, LAMBDA_FUNCTION):
            continue
        props = _mapping(resource.get("Properties"))
        # Globals apply to SAM functions only, exactly as the SAM transform does.
        inherited = defaults if kind == SERVERLESS_FUNCTION else {}
        environment = {**_variables(inherited, logical_id), **_variables(props, logical_id)}
        specs[logical_id] = FunctionSpec(
            handler=_handler(props.get("Handler", inherited.get("Handler")), logical_id),
            environment={name: resolve_mappings(template, value) for name, value in environment.items()},
            timeout=_int(props.get("Timeout", inherited.get("Timeout", DEFAULT_TIMEOUT_SECONDS)), logical_id),
            memory=_int(props.get("MemorySize", inherited.get("MemorySize", DEFAULT_MEMORY_MB)), logical_id),
        )
    return specs


def state_machine_spec(
    template: Mapping[str, Any], logical_id: str | None = None, base_dir: str | Path | None = None
) -> tuple[Path, dict[str, Any]]:
    """The state machine's definition file and its `DefinitionSubstitutions` (name -> raw value).

    Without `logical_id` the template must have exactly one SAM state machine. The path is the
    template's `DefinitionUri`, joined to `base_dir` (the template's folder) when given.
    """
    machines = {
        name: resource
        for name, resource in resources(template).items()
        if resource.get("Type") == SERVERLESS_STATE_MACHINE
    }
    if logical_id is None:
        if len(machines) != 1:
            found = ", ".join(sorted(machines)) or "none"
            raise TemplateError(f"expected one {SERVERLESS_STATE_MACHINE}, found {found}")
        logical_id = next(iter(machines))
    if logical_id not in machines:
        raise TemplateError(f"{logical_id} is not a {SERVERLESS_STATE_MACHINE} of this template")
    props = _mapping(machines[logical_id].get("Properties"))
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str) or not uri:
        raise TemplateError(f"{logical_id}: DefinitionUri must be a local file path")
    substitutions = props.get("DefinitionSubstitutions") or {}
    if not isinstance(substitutions, dict):
        raise TemplateError(f"{logical_id}: DefinitionSubstitutions must be a mapping")
    path = Path(uri)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return path, {name: resolve_mappings(template, value) for name, value in substitutions.items()}


def resolve_mappings(template: Mapping[str, Any], value: Any) -> Any:
    """Replace every `Fn::FindInMap` whose three keys are literals; leave other intrinsics as they are."""
    if isinstance(value, list):
        return [resolve_mappings(template, item) for item in value]
    if not isinstance(value, dict):
        return value
    keys = value.get("Fn::FindInMap")
    if (
        len(value) == 1
        and isinstance(keys, list)
        and len(keys) == 3
        and all(isinstance(k, str) for k in keys)
    ):
        map_name, top_key, second_key = keys
        found = _mapping(_mapping(_mapping(template.get("Mappings")).get(map_name)).get(top_key))
        if second_key not in found:
            raise TemplateError(f"Fn::FindInMap {keys} names no entry of the template's Mappings")
        return found[second_key]
    return {name: resolve_mappings(template, item) for name, item in value.items()}


def _plain(node: Any) -> Any:
    """cfn-lint's position-tracking nodes as plain dicts, lists and strs."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _variables(props: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    variables = _mapping(props.get("Environment")).get("Variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError(f"{logical_id}: Environment.Variables must be a literal mapping")
    return dict(variables)


def _handler(value: Any, logical_id: str) -> str:
    if not isinstance(value, str) or not value:
        raise TemplateError(f"{logical_id}: Handler must be a literal string")
    return value


def _int(value: Any, logical_id: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise TemplateError(f"{logical_id}: expected a literal number, got {value!r}")
