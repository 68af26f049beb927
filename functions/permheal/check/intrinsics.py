"""Evaluate CloudFormation intrinsics with stand-ins for what only deploy knows.

A deployed stack gives every resource a physical id (an API id, a function name, a version
number). Before deploy we give each one a stand-in that is unique, stable and shaped like the
real thing (a 10-character API id, a function name of realistic length), so ARNs built from
`!Ref`/`!GetAtt`/`!Sub`/`Fn::Join` compare exactly as they will after deploy, and sizes come out
close to real. A value nobody can know before deploy (a parameter without default, an import, a
condition that depends on one) becomes an *unknown* marker: `~why~`. The marker cannot appear in
a function name, so anything built from it is reported `unresolved`, never guessed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "stack"
_UNKNOWN = re.compile(r"~[^~]*~")
NO_VALUE = object()


def unknown(why: str) -> str:
    return f"~{why}~"


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and _UNKNOWN.search(value) is not None


def unknown_reasons(value: str) -> list[str]:
    return [match[1:-1] for match in _UNKNOWN.findall(value)]


def stand_in(logical_id: str, length: int, alphabet: str = "0123456789abcdefghijklmnopqrstuvwxyz") -> str:
    """A stable id shaped like the physical one deploy will assign (unique per logical id)."""
    number = int.from_bytes(hashlib.sha256(logical_id.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


def function_arn(name: str) -> str:
    return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: Mapping[str, Any]


class Resolver:
    """Resolves intrinsics of one template against its parameters, mappings and resources."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        raw = template.get("Resources")
        self.resources: dict[str, Resource] = {}
        for name, body in (raw if isinstance(raw, Mapping) else {}).items():
            if isinstance(body, Mapping):
                properties = body.get("Properties")
                self.resources[str(name)] = Resource(
                    str(name),
                    str(body.get("Type", "")),
                    properties if isinstance(properties, Mapping) else {},
                )
        parameters = template.get("Parameters")
        self.parameters: Mapping[str, Any] = parameters if isinstance(parameters, Mapping) else {}
        mappings = template.get("Mappings")
        self.mappings: Mapping[str, Any] = mappings if isinstance(mappings, Mapping) else {}
        conditions = template.get("Conditions")
        self.conditions: Mapping[str, Any] = conditions if isinstance(conditions, Mapping) else {}
        self._busy: set[str] = set()
        # A resource whose Condition is false at the parameter defaults is not deployed.
        for name, body in (raw if isinstance(raw, Mapping) else {}).items():
            condition = body.get("Condition") if isinstance(body, Mapping) else None
            if isinstance(condition, str) and self.condition(condition) is False:
                self.resources.pop(str(name), None)

    # --- public -------------------------------------------------------------------------------

    def value(self, node: Any) -> Any:
        """Resolve every intrinsic in `node`; lists and maps keep their shape."""
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, Mapping):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return self.ref(str(argument))
            if isinstance(key, str) and key.startswith("Fn::"):
                return self._function(key[4:], argument)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def text(self, node: Any) -> str | None:
        """A string value; None when absent; an unknown marker when it is not a plain string."""
        if node is None:
            return None
        value = self.value(node)
        if value is NO_VALUE or value is None:
            return None
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, int | float | str):
            return str(value)
        return unknown("not a string")

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/id",
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            parameter = self.parameters[name]
            default = parameter.get("Default") if isinstance(parameter, Mapping) else None
            if default is None:
                return unknown(f"parameter {name} has no default")
            return ",".join(map(str, default)) if isinstance(default, list) else str(default)
        resource = self.resources.get(name)
        if resource is None:
            return unknown(f"Ref {name}")
        return self._physical(resource)

    def get_att(self, name: str, attribute: str) -> Any:
        resource = self.resources.get(name)
        if resource is None:
            return unknown(f"GetAtt {name}.{attribute}")
        kind = resource.type
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return function_arn(self.function_name(name))
        if kind == "AWS::Lambda::Version" and attribute == "Version":
            return self.version_number(name)
        if kind == "AWS::Lambda::Version" and attribute == "FunctionArn":
            return self._physical(resource)
        if kind == "AWS::Lambda::Alias" and attribute == "AliasArn":
            return self._physical(resource)
        if kind == "AWS::ApiGateway::RestApi" and attribute == "RootResourceId":
            return stand_in(name + "/", 10)
        if kind in ("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api") and attribute in (
            "RestApiId",
            "ApiId",
        ):
            return self.api_id(name)
        if kind == "AWS::ApiGatewayV2::Authorizer" and attribute == "AuthorizerId":
            return self.authorizer_id(name)
        if kind == "AWS::ApiGateway::Authorizer" and attribute == "AuthorizerId":
            return self.authorizer_id(name)
        if kind == "AWS::ApiGateway::Resource" and attribute == "ResourceId":
            return stand_in(name, 6)
        return f"{stand_in(name, 8)}.{attribute}"

    # --- physical ids -------------------------------------------------------------------------

    def api_id(self, name: str) -> str:
        return stand_in(name, 10)

    def authorizer_id(self, name: str) -> str:
        return stand_in(name, 6)

    def version_number(self, name: str) -> str:
        return str(1 + int(stand_in(name, 6, "0123456789")))

    def function_name(self, name: str) -> str:
        resource = self.resources[name]
        explicit = self._guarded(name, lambda: self.text(resource.properties.get("FunctionName")))
        if explicit:
            return str(explicit)
        # CloudFormation: {stack}-{logical id}-{12 random}, at most 64 characters.
        suffix = stand_in(name, 12, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        return f"{STACK}-{name[: 64 - len(STACK) - 14]}-{suffix}"

    def _physical(self, resource: Resource) -> Any:
        kind, name = resource.type, resource.logical_id
        if kind == "AWS::Lambda::Function":
            return self.function_name(name)
        if kind in ("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"):
            return self.api_id(name)
        if kind in ("AWS::ApiGateway::Authorizer", "AWS::ApiGatewayV2::Authorizer"):
            return self.authorizer_id(name)
        if kind in ("AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Stage"):
            return self._guarded(name, lambda: self.text(resource.properties.get("StageName"))) or unknown(
                f"stage {name}"
            )
        if kind == "AWS::Lambda::Version":
            base = self._guarded(name, lambda: self.function_text(resource.properties.get("FunctionName")))
            return f"{base}:{self.version_number(name)}"
        if kind == "AWS::Lambda::Alias":
            base = self._guarded(name, lambda: self.function_text(resource.properties.get("FunctionName")))
            alias = self._guarded(name, lambda: self.text(resource.properties.get("Name")))
            return f"{base}:{alias}"
        return stand_in(name, 10)

    def function_text(self, node: Any) -> str:
        """A function reference as a full ARN when it is a bare name, so `:qualifier` can follow."""
        text = self.text(node) or unknown("no function")
        if text.startswith("arn:") or is_unknown(text):
            return text
        if re.fullmatch(r"\d{12}:function:.+", text):
            return f"arn:{PARTITION}:lambda:{REGION}:{text}"
        return function_arn(text)

    def _guarded(self, name: str, compute: Any) -> Any:
        """Break reference cycles (a function whose name refers to itself) with an unknown."""
        if name in self._busy:
            return unknown(f"cycle at {name}")
        self._busy.add(name)
        try:
            return compute()
        finally:
            self._busy.discard(name)

    # --- functions ----------------------------------------------------------------------------

    def _function(self, name: str, argument: Any) -> Any:
        if name == "GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            if isinstance(parts, list) and len(parts) == 2:
                return self.get_att(str(self.value(parts[0])), str(self.value(parts[1])))
            return unknown("GetAtt")
        if name == "Sub":
            return self._sub(argument)
        if name == "Join" and isinstance(argument, list) and len(argument) == 2:
            items = self.value(argument[1])
            if not isinstance(items, list):
                return unknown("Join of a non-list")
            return str(self.value(argument[0])).join(self._string(item) for item in items)
        if name == "Select" and isinstance(argument, list) and len(argument) == 2:
            items = self.value(argument[1])
            try:
                return items[int(self.value(argument[0]))]
            except (TypeError, ValueError, IndexError, KeyError):
                return unknown("Select")
        if name == "Split" and isinstance(argument, list) and len(argument) == 2:
            text = self.text(argument[1]) or ""
            return unknown("Split") if is_unknown(text) else text.split(str(self.value(argument[0])))
        if name == "If" and isinstance(argument, list) and len(argument) == 3:
            verdict = self.condition(str(argument[0]))
            if verdict is None:
                then, other = self.value(argument[1]), self.value(argument[2])
                return then if then == other else unknown(f"condition {argument[0]}")
            return self.value(argument[1] if verdict else argument[2])
        if name == "FindInMap" and isinstance(argument, list) and len(argument) >= 3:
            keys = [self.value(item) for item in argument[:3]]
            try:
                return self.mappings[keys[0]][keys[1]][keys[2]]
            except (KeyError, TypeError):
                return unknown("FindInMap")
        if name == "GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if name == "ImportValue":
            return unknown(f"ImportValue {self.value(argument)}")
        if name == "Base64":
            return self.value(argument)
        return unknown(f"Fn::{name}")

    def _string(self, item: Any) -> str:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            return str(item)
        return unknown("not a string")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list) and len(argument) == 2:
            template, variables = argument
            variables = variables if isinstance(variables, Mapping) else {}
        else:
            template, variables = argument, {}
        if not isinstance(template, str):
            return unknown("Sub")

        def replace(match: re.Match[str]) -> str:
            expression = match[1]
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return self._string(self.value(variables[expression]))
            if "." in expression and not expression.startswith("AWS::"):
                resource, attribute = expression.split(".", 1)
                return self._string(self.get_att(resource, attribute))
            return self._string(self.ref(expression))

        return re.sub(r"\$\{([^}]*)\}", replace, template)

    def condition(self, name: str) -> bool | None:
        """Evaluate a named condition with parameter defaults; None when it depends on deploy."""
        definition = self.conditions.get(name)
        if definition is None or name in self._busy:
            return None
        return self._guarded(name, lambda: self._truth(definition))  # type: ignore[no-any-return]

    def _truth(self, node: Any) -> bool | None:
        if not isinstance(node, Mapping) or len(node) != 1:
            return None
        ((key, argument),) = node.items()
        if key == "Condition":
            return self.condition(str(argument))
        if not isinstance(argument, list):
            return None
        if key == "Fn::Equals" and len(argument) == 2:
            left, right = (self.value(item) for item in argument)
            if is_unknown(left) or is_unknown(right):
                return None
            return str(left) == str(right)
        values = [self._truth(item) for item in argument]
        if key == "Fn::Not" and len(values) == 1:
            return None if values[0] is None else not values[0]
        if key == "Fn::And":
            return False if False in values else (None if None in values else True)
        if key == "Fn::Or":
            return True if True in values else (None if None in values else False)
        return None
