"""Reading what a stage serves from its OpenAPI export (permheal.openapi)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permheal.errors import ParseError
from permheal.openapi import (
    ApiSpec,
    Authorizer,
    Canary,
    Integration,
    Method,
    authorizers_from_list,
    from_export,
    from_resources,
)

URI = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations"
PETS = URI.format("arn:aws:lambda:us-east-1:123456789012:function:pets:${stageVariables.alias}")
AUTH = URI.format("arn:aws:lambda:us-east-1:123456789012:function:auth")
ROLE = "arn:aws:iam::123456789012:role/invoker"
KNOWN = (Authorizer("a1", "gate", "TOKEN", AUTH),)


def integration(uri: str = PETS, kind: str = "aws_proxy", **extra: Any) -> dict[str, Any]:
    return {"x-amazon-apigateway-integration": {"type": kind, "httpMethod": "POST", "uri": uri, **extra}}


def document(paths: dict[str, Any], schemes: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"openapi": "3.0.1", "info": {"title": "t", "version": "1"}, "paths": paths}
    if schemes is not None:
        doc["components"] = {"securitySchemes": schemes}
    return doc


def token_scheme(uri: str = AUTH, **extra: Any) -> dict[str, Any]:
    return {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "custom",
        "x-amazon-apigateway-authorizer": {"type": "token", "authorizerUri": uri, **extra},
    }


def test_operations_become_methods_with_their_integrations() -> None:
    # Given an export with a GET, an ANY (extension key) and path-level parameters
    doc = document(
        {
            "/pets/{id}": {
                "parameters": [{"name": "id", "in": "path"}],
                "get": integration(),
                "x-amazon-apigateway-any-method": integration(credentials=ROLE),
            },
            "/mock": {"options": integration(kind="mock", uri="")},
        }
    )
    # When parsed
    spec = from_export(doc, KNOWN)
    # Then each operation is a method, type upper-case, ANY named ANY, credentials kept
    assert spec == ApiSpec(
        (
            Method("OPTIONS", "/mock", Integration("MOCK")),
            Method("GET", "/pets/{id}", Integration("AWS_PROXY", PETS)),
            Method("ANY", "/pets/{id}", Integration("AWS_PROXY", PETS, ROLE)),
        )
    )


def test_an_operation_without_the_integration_extension_has_no_integration() -> None:
    spec = from_export(document({"/pets": {"get": {"responses": {}}}}), KNOWN)
    assert spec.methods == (Method("GET", "/pets"),)


def test_security_names_the_authorizer_whose_id_comes_from_get_authorizers() -> None:
    # Given a method secured by scheme `gate`, a token authorizer with credentials
    doc = document(
        {"/pets": {"get": {**integration(), "security": [{"gate": []}]}}},
        {"gate": token_scheme(authorizerCredentials=ROLE)},
    )
    # When parsed with GetAuthorizers' list
    (method,) = from_export(doc, KNOWN).methods
    # Then the method carries the served authorizer, with the id GetAuthorizers gives its name
    assert method.authorizer == Authorizer("a1", "gate", "TOKEN", AUTH, ROLE)


def test_an_authorizer_name_no_id_matches_is_a_problem_not_a_guess() -> None:
    doc = document({"/pets": {"get": {"security": [{"renamed": []}]}}}, {"renamed": token_scheme()})
    spec = from_export(doc, KNOWN)
    assert spec.methods[0].authorizer == Authorizer(None, "renamed", "TOKEN", AUTH)
    (problem,) = spec.problems
    assert "'renamed'" in problem and "no longer exists" in problem


def test_authorizers_sharing_a_name_are_told_apart_by_their_uri() -> None:
    other = URI.format("arn:aws:lambda:us-east-1:123456789012:function:other")
    known = (Authorizer("a1", "gate", "TOKEN", other), Authorizer("a2", "gate", "TOKEN", AUTH))
    doc = document({"/pets": {"get": {"security": [{"gate": []}]}}}, {"gate": token_scheme()})
    spec = from_export(doc, known)
    assert (spec.methods[0].authorizer.authorizer_id if spec.methods[0].authorizer else None) == "a2"
    assert spec.problems == ()


def test_iam_and_api_key_security_are_no_authorizer() -> None:
    sigv4 = {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
    doc = document({"/pets": {"get": {"security": [{"sigv4": []}, {"api_key": []}]}}}, {"sigv4": sigv4})
    spec = from_export(doc, KNOWN)
    assert (spec.methods[0].authorizer, spec.problems) == (None, ())


def test_a_swagger_export_reads_the_same() -> None:
    doc = {
        "swagger": "2.0",
        "paths": {"/pets": {"get": {**integration(), "security": [{"gate": []}]}}},
        "securityDefinitions": {"gate": token_scheme()},
    }
    (method,) = from_export(doc, KNOWN).methods
    assert method.authorizer is not None and method.authorizer.authorizer_id == "a1"


@pytest.mark.parametrize("doc", [None, [], "text", {"openapi": "3.0.1"}, {"paths": []}])
def test_something_that_is_not_an_export_is_a_parse_error(doc: Any) -> None:
    with pytest.raises(ParseError, match="no paths"):
        from_export(doc, KNOWN)


def test_the_working_copy_reads_into_the_same_types() -> None:
    resources = [
        {
            "path": "/pets",
            "resourceMethods": {
                "GET": {
                    "authorizationType": "CUSTOM",
                    "authorizerId": "a1",
                    "methodIntegration": {"type": "AWS_PROXY", "uri": PETS},
                }
            },
        },
        {"path": "/"},
    ]
    authorizers = authorizers_from_list(
        [{"id": "a1", "name": "gate", "type": "TOKEN", "authorizerUri": AUTH}]
    )
    assert authorizers == KNOWN
    assert from_resources(resources, authorizers) == ApiSpec(
        (Method("GET", "/pets", Integration("AWS_PROXY", PETS), KNOWN[0]),)
    )


def test_canary_settings_read_overrides_and_deployment() -> None:
    settings = {"percentTraffic": 12.5, "deploymentId": "d2", "stageVariableOverrides": {"alias": "canary"}}
    assert Canary.from_settings(settings) == Canary("d2", {"alias": "canary"}, 12.5)
    assert Canary.from_settings(None) is None
    assert Canary.from_settings({}) == Canary(None, {}, 0.0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=20,
)
_keys = st.sampled_from(["get", "post", "x-amazon-apigateway-any-method", "parameters", "security", "x"])


@given(
    st.dictionaries(
        st.text(max_size=6),
        st.dictionaries(_keys, _json | st.builds(dict, security=_json), max_size=3),
        max_size=3,
    ),
    _json,
)
def test_any_document_reads_or_fails_with_a_parse_error_only(paths: dict[str, Any], schemes: Any) -> None:
    # Given an arbitrary document shaped roughly like an export
    doc = {"paths": paths, "components": {"securitySchemes": schemes}}
    # When read, Then every method it yields has a method name from the document and a path
    spec = from_export(doc, KNOWN)
    assert all(m.method in ("GET", "POST", "ANY") and m.path in paths for m in spec.methods)
    assert len(spec.methods) == sum(
        1
        for item in paths.values()
        for key in item
        if key in ("get", "post", "x-amazon-apigateway-any-method") and isinstance(item[key], dict)
    )
