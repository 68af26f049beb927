"""Expand a SAM template with aws-sam-translator, the library SAM itself uses, offline.

What only deploy knows gets a placeholder the translator accepts (a local CodeUri becomes an S3
location), and the region comes from a boto3 Session built here, so no environment is read and no
AWS call is made (the managed-policy map is a stub: policies do not affect invoke permissions).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from permheal.check import intrinsics
from permheal.check.loader import include_local, load, local_file
from permheal.errors import ConfigError, ParseError

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
INSTALL_HINT = "permheal check needs aws-sam-translator for SAM templates: pip install 'permheal[check]'"
_CODE = {"Bucket": "permheal-check-placeholder", "Key": "code.zip"}
_URI_PROPERTIES = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
    "AWS::Serverless::Application": ("Location",),
}
_DEFINITION_URI = {
    "AWS::Serverless::Api": ("DefinitionUri", "DefinitionBody"),
    "AWS::Serverless::HttpApi": ("DefinitionUri", "DefinitionBody"),
}


def is_sam(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    if SAM_TRANSFORM in names:
        return True
    # A SAM resource without the Transform line (SAM's own test inputs, fragments): still SAM.
    resources = template.get("Resources")
    return isinstance(resources, Mapping) and any(
        isinstance(r, Mapping) and str(r.get("Type", "")).startswith("AWS::Serverless::")
        for r in resources.values()
    )


def transform(template: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy, with local files inlined first."""
    try:
        import boto3
        from samtranslator.model.exceptions import (  # type: ignore[import-not-found, import-untyped]
            InvalidDocumentException,
            InvalidTemplateException,
        )
        from samtranslator.parser.parser import Parser  # type: ignore[import-not-found, import-untyped]
        from samtranslator.translator.translator import Translator  # type: ignore[import-not-found, import-untyped]
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc
    quiet = logging.getLogger("samtranslator")
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())  # its warnings are about SAM's own feature flags
        quiet.propagate = False
    prepared = prepare(template, base)
    session = boto3.session.Session(region_name=intrinsics.REGION)  # no call: only names the region
    translator = Translator(None, Parser(), boto_session=session)
    parameters = {"AWS::AccountId": intrinsics.ACCOUNT, "AWS::StackName": intrinsics.STACK}
    try:
        result = translator.translate(
            prepared, parameter_values=parameters, get_managed_policy_map=lambda: {}
        )
    except (InvalidDocumentException, InvalidTemplateException) as exc:
        causes = "; ".join(str(cause) for cause in getattr(exc, "causes", [])) or str(exc)
        raise ParseError(f"SAM transform failed: {causes}") from exc
    except Exception as exc:  # the translator raises many types; none may become a traceback
        raise ParseError(f"SAM transform failed: {type(exc).__name__}: {exc}") from exc
    return dict(result)


def prepare(template: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Placeholders for deploy-time artifacts; local OpenAPI files inlined as definition bodies."""
    prepared: dict[str, Any] = dict(include_local(copy.deepcopy(dict(template)), base))
    globals_ = prepared.get("Globals")
    function_globals = globals_.get("Function") if isinstance(globals_, dict) else None
    shared_code = function_globals.pop("CodeUri", None) if isinstance(function_globals, dict) else None
    for resource in (prepared.get("Resources") or {}).values():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            continue  # the translator reports it
        kind = resource["Type"]
        if kind.startswith("AWS::Serverless::") and resource.get("Properties") is None:
            resource["Properties"] = {}
        if not isinstance(resource.get("Properties"), dict):
            continue
        properties = resource["Properties"]
        if kind == "AWS::Serverless::Application":
            # SAM would ask the Serverless Application Repository (an AWS call); a nested stack is
            # what it becomes, and it holds no API of this template anyway.
            resource["Type"] = "AWS::CloudFormation::Stack"
            resource["Properties"] = {"TemplateURL": "https://placeholder.invalid/app.yaml"}
            continue
        if kind == "AWS::Serverless::Function":
            _code_placeholder(properties, shared_code, function_globals)
        for key in _URI_PROPERTIES.get(str(kind), ()):
            if key in properties and _is_local(properties[key]):
                properties[key] = dict(_CODE) if key != "Location" else "s3://placeholder/app.yaml"
        path = local_file(properties.get("DefinitionUri"), base) if kind in _DEFINITION_URI else None
        if path is not None:
            properties.pop("DefinitionUri")
            properties["DefinitionBody"] = include_local(load(path).data, path.parent)
    return prepared


def _code_placeholder(properties: dict[str, Any], shared: Any, function_globals: Any) -> None:
    """What `sam build` leaves: the Globals CodeUri on functions without code of their own, an image
    URI on image functions (SAM rejects Globals CodeUri next to InlineCode; `sam build` does not)."""
    package = properties.get("PackageType")
    if package is None and isinstance(function_globals, dict):
        package = function_globals.get("PackageType")
    if package == "Image":
        properties.setdefault(
            "ImageUri", f"{intrinsics.ACCOUNT}.dkr.ecr.{intrinsics.REGION}.amazonaws.com/app:latest"
        )
    elif "InlineCode" not in properties and "CodeUri" not in properties and not _inline(function_globals):
        # No CodeUri at all means the template's folder to `sam build`.
        properties["CodeUri"] = shared if shared is not None and not _is_local(shared) else dict(_CODE)


def _inline(function_globals: Any) -> bool:
    return isinstance(function_globals, dict) and "InlineCode" in function_globals


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://")
