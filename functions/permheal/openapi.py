"""What a REST API stage serves, read from its OpenAPI export; the working copy in the same types.

Pure. A stage invokes its deployment's snapshot (aws-facts.md §8), which only `GetExport` of the
stage shows (`x-amazon-apigateway-integration` per operation, authorizers as security schemes
carrying `x-amazon-apigateway-authorizer`). The export names authorizers, not their ids: ids come
from GetAuthorizers by name. `GetResources` (the undeployed working copy) is parsed into the same
types so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from permheal.errors import ParseError

__all__ = [
    "ApiSpec",
    "Authorizer",
    "Canary",
    "Integration",
    "Method",
    "authorizers_from_list",
    "from_export",
    "from_resources",
]

ANY_METHOD = "x-amazon-apigateway-any-method"
INTEGRATION = "x-amazon-apigateway-integration"
AUTHORIZER = "x-amazon-apigateway-authorizer"
AUTHORIZED = ("CUSTOM", "COGNITO_USER_POOLS")
"""Method authorization types behind an authorizer of the API (whose id GetAuthorizers gives)."""
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(frozen=True)
class Integration:
    """A method's integration: type upper-case as the control plane spells it (`AWS_PROXY`)."""

    type: str
    uri: str | None = None
    credentials: str | None = None


@dataclass(frozen=True)
class Authorizer:
    """A custom authorizer; `authorizer_id` is None when the export's name matches no known id."""

    authorizer_id: str | None
    name: str
    type: str
    uri: str | None = None
    credentials: str | None = None


@dataclass(frozen=True)
class Method:
    """One method of a served API: what it integrates and who authorizes it."""

    method: str
    """HTTP method upper-case, or ANY."""
    path: str
    integration: Integration | None = None
    authorizer: Authorizer | None = None


@dataclass(frozen=True)
class ApiSpec:
    """The methods of one definition (a stage's deployment, or the working copy)."""

    methods: tuple[Method, ...] = ()
    problems: tuple[str, ...] = ()
    """What could not be read (e.g. an authorizer whose id is unknown); reported, never guessed."""


@dataclass(frozen=True)
class Canary:
    """A stage's canary: its deployment and the stage-variable overrides its requests get."""

    deployment_id: str | None
    variable_overrides: Mapping[str, str] = field(default_factory=dict)
    percent_traffic: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> Canary | None:
        if not isinstance(settings, Mapping):
            return None
        overrides = settings.get("stageVariableOverrides") or {}
        return cls(
            str(settings["deploymentId"]) if settings.get("deploymentId") else None,
            {str(k): str(v) for k, v in overrides.items()} if isinstance(overrides, Mapping) else {},
            float(settings.get("percentTraffic") or 0.0),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def authorizers_from_list(items: Iterable[Mapping[str, Any]]) -> tuple[Authorizer, ...]:
    """GetAuthorizers items (the working copy's authorizers, with ids)."""
    return tuple(
        Authorizer(
            str(item.get("id")),
            str(item.get("name") or ""),
            str(item.get("type") or "").upper(),
            _text(item.get("authorizerUri")),
            _text(item.get("authorizerCredentials")),
        )
        for item in items
    )


def from_resources(resources: Iterable[Mapping[str, Any]], authorizers: Sequence[Authorizer]) -> ApiSpec:
    """The working copy: GetResources(embed=methods) items."""
    by_id = {a.authorizer_id: a for a in authorizers}
    methods: list[Method] = []
    for resource in resources:
        path = str(resource.get("path", ""))
        for name, definition in sorted((resource.get("resourceMethods") or {}).items()):
            raw = definition.get("methodIntegration") or None
            integration = (
                Integration(
                    str(raw.get("type") or "").upper(), _text(raw.get("uri")), _text(raw.get("credentials"))
                )
                if isinstance(raw, Mapping)
                else None
            )
            authorizer = None
            if definition.get("authorizationType") in AUTHORIZED:
                authorizer = by_id.get(str(definition.get("authorizerId")))
            methods.append(Method(str(name).upper(), path, integration, authorizer))
    return ApiSpec(tuple(methods))


def from_export(document: Any, known: Sequence[Authorizer]) -> ApiSpec:
    """What a stage serves, from its OAS 3.0 (or Swagger 2.0) export with both extensions.

    `known` (GetAuthorizers) maps the export's authorizer names to ids; a name with no unique
    match is a problem, not a guess.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("paths"), Mapping):
        raise ParseError("the stage export has no paths: not an OpenAPI document")
    components = document.get("components")
    schemes = (
        components.get("securitySchemes") if isinstance(components, Mapping) else None
    ) or document.get("securityDefinitions")
    schemes = schemes if isinstance(schemes, Mapping) else {}
    problems: list[str] = []
    authorizers: dict[str, Authorizer | None] = {}
    methods: list[Method] = []
    for path, item in sorted(document["paths"].items()):
        if not isinstance(item, Mapping):
            continue
        for key, operation in sorted(item.items()):
            name = "ANY" if key == ANY_METHOD else key.upper() if key in HTTP_METHODS else None
            if name is None or not isinstance(operation, Mapping):
                continue
            authorizer = None
            for scheme_name in _security_names(operation.get("security", document.get("security"))):
                if scheme_name not in authorizers:
                    authorizers[scheme_name] = _authorizer(
                        scheme_name, schemes.get(scheme_name), known, problems
                    )
                authorizer = authorizers[scheme_name] or authorizer
            methods.append(Method(name, str(path), _integration(operation.get(INTEGRATION)), authorizer))
    return ApiSpec(tuple(methods), tuple(problems))


def _security_names(security: Any) -> list[str]:
    if not isinstance(security, list):
        return []
    return [str(name) for requirement in security if isinstance(requirement, Mapping) for name in requirement]


def _integration(raw: Any) -> Integration | None:
    if not isinstance(raw, Mapping):
        return None
    return Integration(
        str(raw.get("type") or "").upper(), _text(raw.get("uri")), _text(raw.get("credentials"))
    )


def _authorizer(
    name: str, scheme: Any, known: Sequence[Authorizer], problems: list[str]
) -> Authorizer | None:
    """The served authorizer behind a security scheme; None for schemes that are no authorizer."""
    if not isinstance(scheme, Mapping) or not isinstance(scheme.get(AUTHORIZER), Mapping):
        return None  # e.g. sigv4 (AWS_IAM) or an API key: no Lambda is invoked
    raw = scheme[AUTHORIZER]
    kind = str(raw.get("type") or "").upper()
    uri, credentials = _text(raw.get("authorizerUri")), _text(raw.get("authorizerCredentials"))
    candidates = [a for a in known if a.name == name]
    if len(candidates) > 1:
        candidates = [a for a in candidates if a.uri == uri]
    authorizer_id = candidates[0].authorizer_id if len(candidates) == 1 else None
    if authorizer_id is None and uri is not None:
        why = "no longer exists (renamed or deleted since)" if not candidates else "is ambiguous"
        problems.append(
            f"authorizer {name!r} that the stage serves {why}: its id, which its grant names, is unknown; "
            "redeploy the stage"
        )
    return Authorizer(authorizer_id, name, kind, uri, credentials)
