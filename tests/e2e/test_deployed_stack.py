"""Against a real deployed stack: `PERMHEAL_E2E=1 AWS_SAM_STACK_NAME=permheal pytest tests/e2e`.

Skipped otherwise (tests/conftest.py gives every other test fake credentials).

Read-only plus one dry run: safe to point at any account where permheal is deployed.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PERMHEAL_E2E") != "1" or not os.environ.get("AWS_SAM_STACK_NAME"),
        reason="needs PERMHEAL_E2E=1, AWS_SAM_STACK_NAME and real AWS credentials",
    ),
]


def test_scan_of_the_real_account_returns_the_contract_json() -> None:
    from permheal.cli import main

    out = io.StringIO()
    code = main(["scan", "--format", "json"], out)
    assert code in (0, 1)
    assert isinstance(json.loads(out.getvalue())["findings"], list)


def policies_of(api: str) -> dict[str, Any]:
    """Every policy the API's integrations and authorizers invoke, read now: RevisionId and statements.

    Read through the control plane (what scan reads), not through the result of the run under test.
    """
    from permheal.adapters.ports import Adapters
    from permheal.errors import NotFoundError
    from permheal.workflow.resolve import api_targets, group_by_function

    adapters = Adapters.default()
    definition = adapters.gateway.definition(adapters.gateway.find_api(api))
    targets, _ = api_targets(definition, adapters.identity(), adapters.gateway.region)
    policies: dict[str, Any] = {}
    for group in group_by_function(targets):
        try:
            policy = adapters.policies.read(group.function)
        except NotFoundError:
            policies[group.function.arn] = "missing function"
            continue
        policies[group.function.arn] = (policy.revision_id, policy.statements)
    return policies


def test_dry_run_through_the_deployed_workflow_changes_nothing() -> None:
    from permheal.cli import main

    api = os.environ.get("PERMHEAL_E2E_API")
    if not api:
        pytest.skip("set PERMHEAL_E2E_API to an allowlisted API name or id")
    os.environ["PERMHEAL_STACK_NAME"] = os.environ["AWS_SAM_STACK_NAME"]
    # Given the policies of every function the API invokes
    before = policies_of(api)
    if not before:
        pytest.skip(f"{api} invokes no Lambda function: a dry run has nothing it could change")

    # When a dry run goes through the deployed workflow
    out = io.StringIO()
    code = main(["remediate", "--api", api, "--dry-run", "--format", "json"], out)

    # Then it reports a dry run (or a refusal) and not one policy changed, not even its RevisionId
    assert json.loads(out.getvalue())["outcome"] in ("dry_run", "refused")
    assert code in (0, 1)
    assert policies_of(api) == before
