"""ARNs permheal reads and writes: Lambda functions, execute-api sources and integration URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from permheal.errors import ParseError

_FUNCTION_NAME = r"[A-Za-z0-9_-]{1,64}"
_QUALIFIER = r"(?:\$LATEST|[0-9]{1,10}|[A-Za-z0-9_-]{1,128})"
_FULL_FUNCTION_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z]{{2}}(?:-[a-z]+)+-\d):(?P<account>\d{{12}}):"
    rf"function:(?P<name>{_FUNCTION_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)
_PARTIAL_FUNCTION_ARN = re.compile(
    rf"^(?P<account>\d{{12}}):function:(?P<name>{_FUNCTION_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)
_BARE_FUNCTION = re.compile(rf"^(?P<name>{_FUNCTION_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$")
_INTEGRATION_URI = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):apigateway:(?P<region>[a-z0-9-]+):lambda:path/"
    r"(?P<version>[0-9-]+)/functions/(?P<function>.+)/invocations$"
)
_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")


@dataclass(frozen=True, order=True)
class FunctionRef:
    """A Lambda function and the qualifier API Gateway invokes (None = unqualified / $LATEST)."""

    partition: str
    region: str
    account: str
    name: str
    qualifier: str | None = None

    @property
    def unqualified_arn(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def arn(self) -> str:
        """The exact ARN invoked: its policy is the one API Gateway is checked against."""
        return f"{self.unqualified_arn}:{self.qualifier}" if self.qualifier else self.unqualified_arn

    @property
    def label(self) -> str:
        return f"{self.name}:{self.qualifier}" if self.qualifier else self.name


def parse_function(text: str, *, partition: str, region: str, account: str) -> FunctionRef:
    """Parse a function name, partial ARN or full ARN (with optional qualifier).

    Names and partial ARNs take the region/account of the API that refers to them. `$LATEST`
    is normalised to None: it shares the unqualified function's policy.
    """
    if not isinstance(text, str):
        raise ParseError(f"function reference must be a string, got {type(text).__name__}")
    # fullmatch, not match: a pattern ending in `$` would also accept a trailing newline.
    if match := _FULL_FUNCTION_ARN.fullmatch(text):
        partition, region, account = match["partition"], match["region"], match["account"]
    elif match := _PARTIAL_FUNCTION_ARN.fullmatch(text):
        account = match["account"]
    elif not (match := _BARE_FUNCTION.fullmatch(text)):
        raise ParseError(f"not a Lambda function name or ARN: {text!r}")
    qualifier = match["qualifier"]
    return FunctionRef(
        partition=partition,
        region=region,
        account=account,
        name=match["name"],
        qualifier=None if qualifier in (None, "$LATEST") else qualifier,
    )


@dataclass(frozen=True)
class IntegrationUri:
    """A Lambda integration or authorizer URI, before stage variables are substituted."""

    partition: str
    region: str
    function_text: str

    @property
    def stage_variables(self) -> tuple[str, ...]:
        return tuple(_STAGE_VARIABLE.findall(self.function_text))


def parse_integration_uri(uri: str) -> IntegrationUri | None:
    """Return the Lambda part of an API Gateway integration URI, or None for non-Lambda URIs."""
    if uri is not None and not isinstance(uri, str):
        raise ParseError(f"integration URI must be a string, got {type(uri).__name__}")
    match = _INTEGRATION_URI.fullmatch(uri or "")  # fullmatch: `$` alone lets "\n" through
    if not match:
        return None
    return IntegrationUri(match["partition"], match["region"], match["function"])


def substitute_stage_variables(text: str, variables: dict[str, str]) -> str:
    """Fill `${stageVariables.x}`; a variable the stage does not define is an error, not a guess."""

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name not in variables:
            raise ParseError(f"stage variable {name!r} is not defined on the stage")
        return variables[name]

    return _STAGE_VARIABLE.sub(value, text)


def resolve_integration_function(uri: IntegrationUri, variables: dict[str, str], account: str) -> FunctionRef:
    """The function an integration invokes on a stage, after stage-variable substitution."""
    text = substitute_stage_variables(uri.function_text, variables)
    return parse_function(text, partition=uri.partition, region=uri.region, account=account)


@dataclass(frozen=True)
class ApiRef:
    """Where an API lives: the parts every execute-api ARN of it shares."""

    partition: str
    region: str
    account: str
    api_id: str

    def method_arn(self, stage: str, method: str, resource_path: str) -> str:
        """The source ARN API Gateway sends when a method invokes its integration."""
        return f"{self.prefix}/{stage}/{method}{resource_path}"

    def authorizer_arn(self, authorizer_id: str) -> str:
        return f"{self.prefix}/authorizers/{authorizer_id}"

    @property
    def prefix(self) -> str:
        return f"arn:{self.partition}:execute-api:{self.region}:{self.account}:{self.api_id}"


_PATH_PARAMETER = re.compile(r"\{[^/{}]+\}")


def wildcard_path(resource_path: str) -> str:
    """`/pets/{petId}` -> `/pets/*` and `/{proxy+}` -> `/*`, as SAM scopes its grants."""
    return _PATH_PARAMETER.sub("*", resource_path)


_EXECUTE_API_SOURCE = re.compile(
    r"^arn:(?P<partition>[^:]+):execute-api:(?P<region>[^:]+):(?P<account>[^:]+):(?P<api>[^/]+)(?:/(?P<rest>.*))?$"
)


@dataclass(frozen=True)
class SourcePattern:
    """The literal parts of an execute-api source ARN pattern, for stale-API detection."""

    region: str
    account: str
    api_id: str


def execute_api_source(pattern: str) -> SourcePattern | None:
    """Split an execute-api SourceArn pattern; None when it is not one or its API id has wildcards."""
    match = _EXECUTE_API_SOURCE.match(pattern)
    if not match or any(c in match["api"] for c in "*?"):
        return None
    return SourcePattern(match["region"], match["account"], match["api"])
