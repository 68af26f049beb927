"""Transform a SAM template to CloudFormation with aws-sam-translator, as `sam deploy` has it done.

What only packaging knows is replaced by placeholders first, as `sam package` would: a local
`CodeUri` (or none, or one from Globals) becomes an S3 location. The deployer never runs code.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from permheal_local.builder import ACCOUNT, REGION

PLACEHOLDER_CODE = "s3://permheal-corpus-artifacts/code.zip"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


def load(path: Path) -> dict[str, Any]:
    """A template file as data: JSON (CDK output) or YAML with CloudFormation's short tags."""
    text = path.read_text()
    if path.suffix == ".json":
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    from samtranslator.yaml_helper import yaml_parse

    # An unquoted `AWSTemplateFormatVersion: 2010-09-09` is a YAML date; CloudFormation reads text.
    parsed: dict[str, Any] = json.loads(json.dumps(yaml_parse(text), default=str))
    return parsed


def is_sam(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names or any(
        str(r.get("Type", "")).startswith("AWS::Serverless::")
        for r in (template.get("Resources") or {}).values()
    )


def package(template: dict[str, Any]) -> dict[str, Any]:
    """Replace local code locations with an S3 placeholder, as `sam package` uploads and rewrites them."""
    packaged = copy.deepcopy(template)
    function_globals = (packaged.get("Globals") or {}).get("Function") or {}
    if _is_local(function_globals.get("CodeUri")):
        function_globals["CodeUri"] = PLACEHOLDER_CODE
    for resource in (packaged.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        if "InlineCode" in properties or "ImageUri" in properties:
            continue
        if _is_local(properties.get("CodeUri", None if "CodeUri" in function_globals else "")):
            properties["CodeUri"] = PLACEHOLDER_CODE
    return packaged


def _is_local(code_uri: Any) -> bool:
    return isinstance(code_uri, str) and not code_uri.startswith("s3://")


def to_cloudformation(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation CloudFormation deploys: SAM templates transformed, others as they are."""
    if not is_sam(template):
        return template
    from samtranslator.translator.transform import transform

    class _NoManagedPolicies:
        """Managed policy names resolve through IAM at deploy time; the deployer skips IAM anyway."""

        def load(self) -> dict[str, str]:
            return {}

    parameters = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
    transformed: dict[str, Any] = transform(package(template), parameters, _NoManagedPolicies())
    return transformed
