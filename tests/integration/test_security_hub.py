"""Security Hub findings for what permheal cannot fix: created, updated and resolved, against moto.

moto 5.2.5 implements BatchImportFindings (update by Id) and GetFindings (without filters: the
adapter filters again). It checks little of ASFF, so every finding is validated here against the
ASFF fields BatchImportFindings requires.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from permheal.adapters.securityhub import SecurityHub, record_findings
from permheal.hub_findings import Where, finding_id, to_import
from permheal.models import Finding, FindingKind, Outcome, RemediationResult
from permheal_local.builder import ACCOUNT, REGION, World, function_arn
from tests.integration.support import build_petstore, run

WHERE = Where("aws", REGION, ACCOUNT)
PETS = function_arn("pets")
# BatchImportFindings: the required top-level attributes and the shapes permheal relies on.
ASFF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    ],
    "properties": {
        "SchemaVersion": {"const": "2018-10-08"},
        "Id": {"type": "string", "minLength": 1, "maxLength": 512},
        "ProductArn": {"const": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"},
        "GeneratorId": {"type": "string", "minLength": 1, "maxLength": 512},
        "AwsAccountId": {"const": ACCOUNT},
        "Types": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": "^[^/]+(/[^/]+){0,2}$"},
        },
        "CreatedAt": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "UpdatedAt": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"},
        "Severity": {
            "type": "object",
            "required": ["Label"],
            "properties": {"Label": {"enum": ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]}},
        },
        "Title": {"type": "string", "minLength": 1, "maxLength": 256},
        "Description": {"type": "string", "minLength": 1, "maxLength": 1024},
        "Resources": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "items": {"type": "object", "required": ["Type", "Id"]},
        },
        "Compliance": {
            "type": "object",
            "properties": {"Status": {"enum": ["PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"]}},
        },
        "RecordState": {"enum": ["ACTIVE", "ARCHIVED"]},
        "ProductFields": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4096}},
    },
    "not": {"required": ["Workflow"]},  # providers may not set Workflow through BatchImportFindings updates
}


def result(
    *findings: Finding, error: str | None = None, outcome: Outcome = Outcome.FAILED, stage: str = "prod"
) -> RemediationResult:
    return RemediationResult(outcome, "abc123", stage, "petstore", findings=findings, error=error)


def role_finding(stage: str = "prod") -> Finding:
    return Finding(
        FindingKind.INTEGRATION_ROLE,
        "abc123",
        "petstore",
        stage,
        "POST",
        "/orders",
        function_arn=PETS,
        detail="invoked with role arn:aws:iam::123456789012:role/r",
    )


DENY_ERROR = (
    f"pets:live: still not allowed after repair: arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/prod/GET/pets "
    "denied by statement(s) block; orders was repaired 3 times in 24 h (x); "
    "policy of big would be 20999 bytes during the repair, over the 20480-byte limit"
)


@pytest.fixture
def hub(aws: None) -> SecurityHub:
    from permheal.adapters.aws import client

    client("securityhub").enable_security_hub()
    return SecurityHub()


def held(hub: SecurityHub) -> dict[str, dict[str, Any]]:
    return {f["Id"]: f for f in hub.findings_for(WHERE.product_arn, "abc123")}


def test_every_category_becomes_a_valid_asff_finding_with_a_deterministic_id() -> None:
    findings = to_import(result(role_finding(), error=DENY_ERROR), WHERE, [], [], "2026-12-05T09:00:00.000Z")
    for finding in findings:
        jsonschema.validate(finding, ASFF_SCHEMA)
    categories = {
        f["ProductFields"]["permheal/category"]: f["ProductFields"]["permheal/function"] for f in findings
    }
    assert categories == {
        "integration-role": PETS,
        "deny-statement": f"{PETS}:live",
        "flapping-grant": function_arn("orders"),
        "policy-too-large": function_arn("big"),
    }
    deny = next(f for f in findings if f["GeneratorId"] == "permheal/deny-statement")
    assert deny["Id"] == finding_id("abc123", "prod", "deny-statement", f"{PETS}:live")
    assert "denied by statement(s) block" in deny["Description"] and deny["Severity"]["Label"] == "HIGH"


def test_the_asff_check_can_fail() -> None:
    (finding,) = to_import(result(role_finding()), WHERE, [], [], "2026-12-05T09:00:00.000Z")
    for broken in (
        {**finding, "Workflow": {"Status": "NEW"}},
        {k: v for k, v in finding.items() if k != "Title"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, ASFF_SCHEMA)


def test_findings_are_created_updated_in_place_and_resolved_when_fixed(hub: SecurityHub) -> None:
    # Given a run that finds an integration role (created)
    assert record_findings(hub, result(role_finding()), WHERE, [], "2026-12-05T09:00:00.000Z") == 1
    (created,) = held(hub).values()
    assert (created["RecordState"], created["Compliance"]["Status"]) == ("ACTIVE", "FAILED")
    # When a later run finds it again (updated: same Id, first CreatedAt kept, new UpdatedAt)
    record_findings(hub, result(role_finding()), WHERE, [], "2026-12-05T10:00:00.000Z")
    (updated,) = held(hub).values()
    assert updated["Id"] == created["Id"]
    assert (updated["CreatedAt"], updated["UpdatedAt"]) == (
        "2026-12-05T09:00:00.000Z",
        "2026-12-05T10:00:00.000Z",
    )
    # And a run that no longer finds it resolves it: archived, compliance passed
    record_findings(hub, result(outcome=Outcome.REPAIRED), WHERE, [], "2026-12-05T11:00:00.000Z")
    (resolved,) = held(hub).values()
    assert (resolved["RecordState"], resolved["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    jsonschema.validate(resolved, ASFF_SCHEMA)
    # And a resolved finding is not resolved again (nothing to import)
    assert record_findings(hub, result(outcome=Outcome.REPAIRED), WHERE, [], "2026-12-05T12:00:00.000Z") == 0


def test_a_repair_side_finding_is_resolved_only_by_a_run_that_examined_its_function(hub: SecurityHub) -> None:
    # Given a Deny on pets:live
    record_findings(hub, result(error=DENY_ERROR), WHERE, [f"{PETS}:live"], "2026-12-05T09:00:00.000Z")
    deny = finding_id("abc123", "prod", "deny-statement", f"{PETS}:live")
    # When a run narrowed to another function succeeds, the Deny stays active
    record_findings(
        hub, result(outcome=Outcome.REPAIRED), WHERE, [function_arn("other")], "2026-12-05T10:00:00.000Z"
    )
    assert held(hub)[deny]["RecordState"] == "ACTIVE"
    # And a run that examined pets:live and found it allowed resolves it
    record_findings(
        hub, result(outcome=Outcome.REPAIRED), WHERE, [f"{PETS}:live"], "2026-12-05T11:00:00.000Z"
    )
    assert held(hub)[deny]["RecordState"] == "ARCHIVED"


def test_a_run_for_another_stage_does_not_resolve_this_stages_finding(hub: SecurityHub) -> None:
    record_findings(hub, result(role_finding("prod")), WHERE, [], "2026-12-05T09:00:00.000Z")
    record_findings(hub, result(outcome=Outcome.REPAIRED, stage="dev"), WHERE, [], "2026-12-05T10:00:00.000Z")
    assert [f["RecordState"] for f in held(hub).values()] == ["ACTIVE"]


def test_the_deployed_workflow_reports_an_integration_role_and_resolves_it_once_removed(world: World) -> None:
    # Given the stack deployed with SecurityHubFindings=true and a petstore method invoked through a role
    from permheal.adapters.aws import client
    from permheal_local import lambda_runtime
    from permheal_local.stack import deploy

    client("securityhub").enable_security_hub()
    lambda_runtime.install()
    try:
        stack = deploy(world, {"AllowedApis": "petstore", "SecurityHubFindings": "true"})
        petstore = build_petstore(world)
        world.method(
            petstore.api_id, "/orders", "POST", function_arn("pets"), credentials=world.execution_role()
        )
        world.deploy(petstore.api_id, "prod", {"alias": "live"})
        sfn = world.client("stepfunctions")
        # When the workflow runs
        run(sfn, stack.state_machine_arn, {"source": "manual", "apiName": "petstore", "stage": "prod"})
        # Then Security Hub holds one active integration-role finding for POST /orders
        hub = SecurityHub()
        (finding,) = hub.findings_for(WHERE.product_arn, petstore.api_id)
        jsonschema.validate(finding, ASFF_SCHEMA)
        assert finding["RecordState"] == "ACTIVE"
        assert "POST /orders" in finding["Description"]
        # When the role is removed (a plain integration) and the workflow runs again
        world.method(petstore.api_id, "/orders", "POST", function_arn("pets"))
        world.deploy(petstore.api_id, "prod", {"alias": "live"})
        run(sfn, stack.state_machine_arn, {"source": "manual", "apiName": "petstore", "stage": "prod"})
        # Then the finding resolved on its own
        (finding,) = hub.findings_for(WHERE.product_arn, petstore.api_id)
        assert (finding["RecordState"], finding["Compliance"]["Status"]) == ("ARCHIVED", "PASSED")
    finally:
        lambda_runtime.uninstall()
