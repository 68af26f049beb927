"""`permheal check` output: a table for people, JSON for tools, SARIF 2.1.0 for code scanning."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from permheal.check.model import CheckFinding, CheckKind

RULES: dict[CheckKind, tuple[str, str, str]] = {
    CheckKind.MISSING_PERMISSION: (
        "error",
        "No permission for a Lambda integration or authorizer",
        "API Gateway will answer 500 (Invalid permissions on Lambda function): no AWS::Lambda::Permission "
        "allows it to invoke the function+qualifier the integration or authorizer calls.",
    ),
    CheckKind.WRONG_QUALIFIER: (
        "error",
        "Permission granted on another qualifier",
        "Each alias and version has its own resource policy: a grant on the unqualified function (or another "
        "alias/version) does not let API Gateway invoke the qualifier the integration names.",
    ),
    CheckKind.WRONG_SOURCE_ARN: (
        "error",
        "Permission whose SourceArn can never match",
        "The grant names another stage, a logical id instead of the API id, a method-shaped pattern for an "
        "authorizer (.../authorizers/{id}), or a trailing slash, so no call API Gateway makes matches it.",
    ),
    CheckKind.POLICY_SIZE_RISK: (
        "warning",
        "Function policy close to the 20 KB limit",
        "One statement per method bloats the function's resource policy; past 20,480 bytes AddPermission and "
        "deploys fail with PolicyLengthExceededException.",
    ),
    CheckKind.UNRESOLVED: (
        "note",
        "Known only at deploy time",
        "The function, stage or grant depends on a value the template does not fix (a parameter without "
        "default, an import, a stage variable no stage sets, a definition in S3): permheal says so "
        "instead of guessing.",
    ),
}


def rule_id(kind: CheckKind) -> str:
    return f"permheal/{kind.value}"


def to_json(findings: Sequence[CheckFinding]) -> str:
    return json.dumps({"findings": [f.to_dict() for f in findings]}, indent=2) + "\n"


def to_table(findings: Sequence[CheckFinding]) -> str:
    from permheal.cli import render_table

    if not findings:
        return "No findings.\n"
    rows = [
        (
            f"{_relative(f.file)}:{f.line}",
            f.kind.value,
            f"{f.api or '-'}/{f.stage or '*'}" if f.api else "-",
            f.where,
            f"{f.function}:{f.qualifier}" if f.function and f.qualifier else (f.function or "-"),
            f.detail,
        )
        for f in findings
    ]
    text = render_table(("WHERE", "KIND", "API/STAGE", "CALL", "FUNCTION", "DETAIL"), rows)
    fixes = list(dict.fromkeys(f.fix for f in findings if f.fix))
    if fixes:
        text += "\nFix (add under Resources):\n\n" + "\n".join(_indent(fix) for fix in fixes)
    return text


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" if line else "\n" for line in text.splitlines())


def _relative(path: str) -> str:
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()


def to_sarif(findings: Sequence[CheckFinding], version: str) -> str:
    kinds = list(CheckKind)
    rules = [
        {
            "id": rule_id(kind),
            "name": "".join(part.title() for part in kind.value.split("_")),
            "shortDescription": {"text": RULES[kind][1]},
            "fullDescription": {"text": RULES[kind][2]},
            "defaultConfiguration": {"level": RULES[kind][0]},
            "helpUri": "https://github.com/permheal/permheal#permheal-check",
            "help": {"text": RULES[kind][2]},
        }
        for kind in kinds
    ]
    results: list[dict[str, Any]] = []
    for finding in findings:
        message = finding.detail + (f"\n\nFix (add under Resources):\n{finding.fix}" if finding.fix else "")
        key = json.dumps(
            [
                finding.kind.value,
                _relative(finding.file),
                finding.api,
                finding.stage,
                finding.where,
                finding.function,
                finding.qualifier,
            ]
        )
        results.append(
            {
                "ruleId": rule_id(finding.kind),
                "ruleIndex": kinds.index(finding.kind),
                "level": RULES[finding.kind][0],
                "message": {"text": message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _relative(finding.file), "uriBaseId": "%SRCROOT%"},
                            "region": {"startLine": finding.line},
                        }
                    }
                ],
                "partialFingerprints": {"permheal/v1": hashlib.sha256(key.encode()).hexdigest()[:32]},
            }
        )
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "permheal",
                        "version": version,
                        "informationUri": "https://github.com/permheal/permheal",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
