"""`permheal check`: predict API Gateway -> Lambda permission failures from templates, before deploy.

Pure and offline (no AWS call, no credentials, no network); never imported by a Lambda handler.
Inputs: SAM / CloudFormation templates (YAML or JSON), `cdk.out` directories, OpenAPI files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from permheal.check.loader import Document, load
from permheal.check.model import CheckFinding, CheckKind
from permheal.errors import ParseError

__all__ = ["CheckFinding", "CheckKind", "check_paths", "expand_paths"]

_TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json", ".template")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files to read: a directory means its `*.template.json` (a cdk.out), else its templates."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.rglob("*.template.json"))
            if not found:
                found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _TEMPLATE_SUFFIXES)
            if not found:
                raise ParseError(f"{path}: no templates in this directory (expected a cdk.out or templates)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ParseError(f"{path}: no such file or directory")
    return list(dict.fromkeys(files))


def check_paths(paths: Iterable[str | Path]) -> list[CheckFinding]:
    """Every finding for every input, in input order."""
    findings: list[CheckFinding] = []
    for path in expand_paths(paths):
        findings.extend(check_document(load(path)))
    return findings


def check_document(doc: Document) -> list[CheckFinding]:
    from permheal.check import extensions, sam
    from permheal.check.predict import check_openapi, check_template

    data = doc.data
    if not isinstance(data, Mapping):
        raise ParseError(f"{doc.path}: not a template or OpenAPI document (top level is not a mapping)")
    if isinstance(data.get("paths"), Mapping) and ("openapi" in data or "swagger" in data):
        return check_openapi(doc, data)
    if not isinstance(data.get("Resources"), Mapping):
        raise ParseError(f"{doc.path}: not a CloudFormation template (no Resources) nor an OpenAPI document")
    notes: list[CheckFinding] = []
    if extensions.uses_extensions(data):
        original = data
        data, unexpanded = extensions.expand(data)
        found = (_unexpanded(doc, name, original["Resources"][name]) for name in unexpanded)
        notes = [note for note in found if note is not None]
    template: Mapping[str, Any] = sam.transform(data, doc.path.parent) if sam.is_sam(data) else data
    return notes + check_template(doc, template)


def _unexpanded(doc: Document, name: str, body: Any) -> CheckFinding | None:
    """A loop over a list only deploy knows: said when it could hold APIs or permissions."""
    text = json.dumps(body, default=str)
    if not any(kind in text for kind in ("AWS::Lambda::Permission", "AWS::ApiGateway", "AWS::Serverless::")):
        return None
    return CheckFinding(
        kind=CheckKind.UNRESOLVED,
        file=str(doc.path),
        line=doc.line_of(name),
        detail=f"{name} loops over a collection known only at deploy; what it creates is not checked",
    )
