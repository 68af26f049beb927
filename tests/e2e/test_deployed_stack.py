"""Against a real deployed stack: `PERMHEAL_E2E=1 AWS_SAM_STACK_NAME=permheal pytest tests/e2e`.

Skipped otherwise (tests/conftest.py gives every other test fake credentials).

Read-only plus one dry run: safe to point at any account where permheal is deployed.
"""

from __future__ import annotations

import io
import json
import os

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


def test_dry_run_through_the_deployed_workflow_changes_nothing() -> None:
    from permheal.cli import main

    api = os.environ.get("PERMHEAL_E2E_API")
    if not api:
        pytest.skip("set PERMHEAL_E2E_API to an allowlisted API name or id")
    os.environ["PERMHEAL_STACK_NAME"] = os.environ["AWS_SAM_STACK_NAME"]
    out = io.StringIO()
    code = main(["remediate", "--api", api, "--dry-run", "--format", "json"], out)
    assert json.loads(out.getvalue())["outcome"] in ("dry_run", "refused")
    assert code in (0, 1)
