"""SAM templates as `sam build` leaves them: what only build/deploy fills in gets a placeholder,
so the transform runs offline and the prediction sees what SAM will deploy."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from permheal.check import CheckKind, check_paths

BASE: dict[str, Any] = {
    "Transform": "AWS::Serverless-2016-10-31",
    "Globals": {"Function": {"Runtime": "python3.12", "Handler": "app.handler", "CodeUri": "src/"}},
    "Resources": {
        "Fn": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Events": {"Get": {"Type": "Api", "Properties": {"Path": "/items/", "Method": "get"}}}
            },
        },
        "Inline": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"InlineCode": "def handler(e, c): pass"},
        },
    },
}


def run(tmp_path: Path, template: dict[str, Any]) -> list[Any]:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return check_paths([path])


def test_globals_code_uri_next_to_inline_code_and_a_trailing_slash_path_are_clean(tmp_path: Path) -> None:
    # SAM rejects Globals CodeUri + InlineCode unless `sam build` resolved it; the event path
    # `/items/` is `/items` once API Gateway imports it, which SAM's grant names.
    assert run(tmp_path, BASE) == []


def test_a_function_without_code_uri_and_an_image_function_transform(tmp_path: Path) -> None:
    template = copy.deepcopy(BASE)
    del template["Globals"]
    template["Resources"]["Fn"]["Properties"].update(Runtime="python3.12", Handler="app.handler")
    template["Resources"]["Inline"]["Properties"].update(Runtime="python3.12", Handler="app.handler")
    template["Resources"]["Image"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"PackageType": "Image"},
    }
    template["Resources"]["Bare"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Runtime": "python3.12", "Handler": "a.b"},
    }
    assert run(tmp_path, template) == []


def test_a_serverless_application_is_not_looked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    template = copy.deepcopy(BASE)
    template["Resources"]["App"] = {
        "Type": "AWS::Serverless::Application",
        "Properties": {
            "Location": {
                "ApplicationId": "arn:aws:serverlessrepo:us-east-1:1:applications/x",
                "SemanticVersion": "1.0.0",
            }
        },
    }
    assert run(tmp_path, template) == []


def test_non_lambda_aws_integrations_are_not_lambda_calls(tmp_path: Path) -> None:
    template = copy.deepcopy(BASE)
    template["Resources"]["Api"] = {
        "Type": "AWS::Serverless::Api",
        "Properties": {
            "StageName": "v1",
            "DefinitionBody": {
                "swagger": "2.0",
                "info": {"title": "t", "version": "1"},
                "paths": {
                    "/s3": {
                        "get": {
                            "x-amazon-apigateway-integration": {
                                "type": "aws",
                                "httpMethod": "GET",
                                "uri": {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}:s3:path/bucket/key"},
                            }
                        }
                    },
                    "/web": {
                        "get": {
                            "x-amazon-apigateway-integration": {
                                "type": "http_proxy",
                                "httpMethod": "GET",
                                "uri": "https://example.com/",
                            }
                        }
                    },
                },
            },
        },
    }
    assert run(tmp_path, template) == []


def test_a_response_streaming_integration_is_checked_like_any_lambda_call(tmp_path: Path) -> None:
    template = copy.deepcopy(BASE)
    uri = (
        "arn:aws:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${Inline.Arn}"
        "/response-streaming-invocations"
    )
    template["Resources"]["Api"] = {
        "Type": "AWS::Serverless::Api",
        "Properties": {
            "StageName": "v1",
            "DefinitionBody": {
                "openapi": "3.0.1",
                "info": {"title": "t", "version": "1"},
                "paths": {
                    "/story": {
                        "post": {
                            "x-amazon-apigateway-integration": {
                                "type": "aws_proxy",
                                "httpMethod": "POST",
                                "responseTransferMode": "STREAM",
                                "uri": {"Fn::Sub": uri},
                            }
                        }
                    }
                },
            },
        },
    }
    findings = run(tmp_path, template)
    assert {(f.kind, f.function, f.method, f.resource_path) for f in findings} == {
        (CheckKind.MISSING_PERMISSION, "Inline", "POST", "/story")
    }


def test_a_resource_whose_type_is_not_a_string_does_not_crash_the_preparation(tmp_path: Path) -> None:
    template = copy.deepcopy(BASE)
    template["Resources"]["Odd"] = {"Type": {"Ref": "X"}}
    assert run(tmp_path, template) == []  # SAM passes it through; it holds no API
