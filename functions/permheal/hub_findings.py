"""Security Hub findings (ASFF) for what permheal cannot fix, created, updated and resolved.

Pure: the summarize step passes the remediation result, the functions the run examined and what
Security Hub holds now; this module says which findings to import. A finding's Id is derived from
(API, stage, category, subject) only, so a later run *replaces* it (BatchImportFindings updates
by Id) instead of adding a copy. A finding a later run no longer sees is re-imported ARCHIVED with
Compliance PASSED (Security Hub then marks its workflow RESOLVED itself; providers may not set
`Workflow` through BatchImportFindings after creation). Repair-side categories (a Deny, an
over-size policy, a flapping grant) are only resolved by a run that examined their function: a run
narrowed to other functions by log hints says nothing about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permheal.models import Finding, FindingKind, RemediationResult

SCHEMA_VERSION = "2018-10-08"
TYPES = ["Software and Configuration Checks/AWS Security Best Practices"]
IMPORT_BATCH = 100
"""BatchImportFindings takes at most 100 findings per call."""
_LABEL = r"[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9_$-]{1,128})?"
_DENY = re.compile(
    rf"(?P<label>{_LABEL}): still not allowed after repair: (?P<body>.*?)"
    rf"(?=; {_LABEL}: still |; {_LABEL} was repaired |; policy of |$)"
)
_FLAP = re.compile(rf"(?P<label>{_LABEL}) was repaired (?P<count>\d+) times")
_OVERSIZE = re.compile(rf"policy of (?P<label>{_LABEL}) would be (?P<bytes>\d+) bytes during the repair")


@dataclass(frozen=True)
class Category:
    name: str
    severity: str
    title: str
    recommendation: str
    whole_api: bool
    """Seen on every run of the API (control-plane facts), not only for the functions repaired."""


INTEGRATION_ROLE = Category(
    "integration-role",
    "MEDIUM",
    "API Gateway invokes a Lambda function through an IAM role permheal does not manage",
    "Make sure the role trusts apigateway.amazonaws.com and allows lambda:InvokeFunction on the function, "
    "or remove the integration credentials so the function's resource policy applies.",
    True,
)
CROSS_ACCOUNT = Category(
    "cross-account-function",
    "MEDIUM",
    "API Gateway invokes a Lambda function in another account",
    "Grant the API's execute-api source ARN in the other account's function policy (permheal only edits "
    "functions in its own account).",
    True,
)
DENY = Category(
    "deny-statement",
    "HIGH",
    "A Deny statement blocks API Gateway from invoking a Lambda function",
    "Remove or narrow the Deny statement named in the description if the call should be allowed; permheal "
    "never edits Deny statements.",
    False,
)
OVERSIZE = Category(
    "policy-too-large",
    "HIGH",
    "A Lambda resource policy is too large for the grant API Gateway needs",
    "Consolidate the function's invoke grants (PERMHEAL_SCOPE=api), or remove stale statements, to stay "
    "under the 20 KB policy limit.",
    False,
)
FLAPPING = Category(
    "flapping-grant",
    "HIGH",
    "Something keeps removing a Lambda permission API Gateway needs",
    "Find what removes the grant (often infrastructure-as-code drift), fix it, then run "
    "`permheal clear-flap FUNCTION`.",
    False,
)
CATEGORIES = {c.name: c for c in (INTEGRATION_ROLE, CROSS_ACCOUNT, DENY, OVERSIZE, FLAPPING)}


@dataclass(frozen=True)
class Where:
    """The account the findings belong to, and the product they are imported as."""

    partition: str
    region: str
    account: str

    @property
    def product_arn(self) -> str:
        return f"arn:{self.partition}:securityhub:{self.region}:{self.account}:product/{self.account}/default"

    def function_arn(self, label: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{label}"


@dataclass(frozen=True)
class Problem:
    category: Category
    function_arn: str
    """Qualified when the problem is on an alias or version."""
    detail: str


def problems(result: RemediationResult, where: Where) -> list[Problem]:
    """What the run could not fix, one problem per category and function+qualifier."""
    found: dict[tuple[str, str], Problem] = {}

    def add(category: Category, function_arn: str, detail: str) -> None:
        found.setdefault((category.name, function_arn), Problem(category, function_arn, detail))

    for finding in result.findings:
        if finding.kind is FindingKind.INTEGRATION_ROLE and finding.function_arn:
            add(INTEGRATION_ROLE, _qualified(finding), f"{_call(finding)}: {finding.detail}")
        elif finding.kind is FindingKind.CROSS_ACCOUNT_FUNCTION and finding.function_arn:
            add(CROSS_ACCOUNT, _qualified(finding), f"{_call(finding)}: {finding.detail}")
    error = result.error or ""
    for match in _DENY.finditer(error):
        if "denied by statement" in match["body"]:
            add(DENY, where.function_arn(match["label"]), match["body"])
    for match in _OVERSIZE.finditer(error):
        add(OVERSIZE, where.function_arn(match["label"]), match[0])
    for match in _FLAP.finditer(error):
        add(
            FLAPPING,
            where.function_arn(match["label"]),
            f"{match['label']} was repaired {match['count']} times",
        )
    return list(found.values())


def _qualified(finding: Finding) -> str:
    return f"{finding.function_arn}:{finding.qualifier}" if finding.qualifier else str(finding.function_arn)


def _call(finding: Finding) -> str:
    if finding.authorizer_id:
        return f"authorizer {finding.authorizer_id}"
    return finding.route_key or f"{finding.method} {finding.resource_path}"


def finding_id(api_id: str, stage: str | None, category: str, function_arn: str) -> str:
    """Deterministic: the same problem on a later run updates this finding instead of adding one."""
    return f"permheal/{api_id}/{stage or '*'}/{category}/{function_arn}"[:512]


def to_import(
    result: RemediationResult,
    where: Where,
    examined: Iterable[str],
    existing: Sequence[Mapping[str, Any]],
    now: str,
) -> list[dict[str, Any]]:
    """Findings to import: the problems (created or updated) and the active ones now fixed (resolved).

    `examined` are the (qualified) function ARNs the run repaired or checked; `existing` is what
    Security Hub holds for this API (any record state), `now` an ISO 8601 timestamp.
    """
    api_id = result.api_id or "unknown"
    created = {str(f.get("Id")): str(f.get("CreatedAt") or now) for f in existing}
    current: list[dict[str, Any]] = []
    for problem in problems(result, where):
        identifier = finding_id(api_id, result.stage, problem.category.name, problem.function_arn)
        current.append(_asff(identifier, problem, result, where, created.get(identifier, now), now))
    seen = {f["Id"] for f in current}
    checked = set(examined)
    resolved = []
    for old in existing:
        fields = old.get("ProductFields") or {}
        category = CATEGORIES.get(str(fields.get("permheal/category")))
        if (
            category is None
            or old.get("Id") in seen
            or old.get("RecordState") != "ACTIVE"
            or fields.get("permheal/apiId") != api_id
            or not _same_scope(fields.get("permheal/stage"), result.stage)
            or not (category.whole_api or fields.get("permheal/function") in checked)
        ):
            continue
        resolved.append(
            {
                **{
                    k: v
                    for k, v in old.items()
                    if k not in ("Workflow", "UpdatedAt", "Compliance", "RecordState")
                },
                "UpdatedAt": now,
                "Compliance": {"Status": "PASSED"},
                "RecordState": "ARCHIVED",
            }
        )
    return current + resolved


def _same_scope(stage: Any, run_stage: str | None) -> bool:
    """A run over every stage (None) speaks for each stage; a one-stage run only for its own."""
    return run_stage is None or stage == run_stage


def _asff(
    identifier: str, problem: Problem, result: RemediationResult, where: Where, created_at: str, now: str
) -> dict[str, Any]:
    api_id = result.api_id or "unknown"
    stage = result.stage or "*"
    api = f"{result.api_name or api_id} ({api_id}) stage {stage}"
    description = f"{api}: {problem.detail}"
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": identifier,
        "ProductArn": where.product_arn,
        "GeneratorId": f"permheal/{problem.category.name}",
        "AwsAccountId": where.account,
        "Types": TYPES,
        "CreatedAt": created_at,
        "UpdatedAt": now,
        "Severity": {"Label": problem.category.severity},
        "Title": problem.category.title[:256],
        "Description": description if len(description) <= 1024 else description[:1023] + "…",
        "Remediation": {"Recommendation": {"Text": problem.category.recommendation[:512]}},
        "ProductFields": {
            "permheal/apiId": api_id,
            "permheal/stage": stage if result.stage else "*",
            "permheal/category": problem.category.name,
            "permheal/function": problem.function_arn,
            "permheal/explain": f"permheal history --api {api_id}",
        },
        "Resources": [
            {
                "Type": "AwsLambdaFunction",
                "Id": problem.function_arn,
                "Partition": where.partition,
                "Region": where.region,
            },
            {
                "Type": "Other",
                "Id": f"arn:{where.partition}:execute-api:{where.region}:{where.account}:{api_id}/{stage}",
                "Partition": where.partition,
                "Region": where.region,
            },
        ],
        "Compliance": {"Status": "FAILED"},
        "RecordState": "ACTIVE",
    }


def batches(findings: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [list(findings[i : i + IMPORT_BATCH]) for i in range(0, len(findings), IMPORT_BATCH)]
