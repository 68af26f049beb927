"""`permheal scan --org` when some accounts misbehave: throttled beyond retries, denied, unreachable role.

AWS answers in those accounts only (the local AWS's backend for that account id raises), so the
other accounts' scans run unchanged beside them; each failure is that account's error row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.responses import LambdaResponse

from permheal_local import faithful_sts
from permheal_local.organization import Organization, create_organization, pets_api
from tests.reliability.conftest import Record

pytestmark = pytest.mark.reliability


class _Throttled(LambdaClientError):
    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate exceeded")


class _Denied(LambdaClientError):
    code = 403

    def __init__(self) -> None:
        super().__init__("AccessDeniedException", "not authorized to perform: lambda:GetPolicy")


@pytest.fixture
def org(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Organization]:
    """Five members with a missing grant each; botocore's backoff instant, 3 attempts per call."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    faithful_sts.install()
    try:
        organization = create_organization([f"member-{i}" for i in range(5)])
        for account in organization.members:
            pets_api(organization.world(account), account, granted=False)
            organization.deploy_scan_role(account)
        yield organization
    finally:
        faithful_sts.uninstall()


def fail_get_policy(monkeypatch: pytest.MonkeyPatch, faults: dict[str, type[Exception]]) -> list[str]:
    """GetPolicy in the accounts of `faults` answers that error on every attempt; returns their calls."""
    original = LambdaResponse.get_policy  # faithful_lambda's, per qualifier
    calls: list[str] = []

    def get_policy(self: LambdaResponse) -> Any:
        if self.current_account in faults:
            calls.append(self.current_account)
            raise faults[self.current_account]()
        return original(self)

    monkeypatch.setattr(LambdaResponse, "get_policy", get_policy)
    return calls


def test_throttled_and_denied_accounts_are_error_rows_and_the_others_are_scanned(
    org: Organization, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    # Given one member throttled beyond retries, one denying GetPolicy
    throttled, denied, *healthy = org.members
    calls = fail_get_policy(monkeypatch, {throttled: _Throttled, denied: _Denied})

    # When the organization is scanned
    run = cli("scan", "--org", "--format", "json")

    # Then those two are error rows saying why; every other account was scanned and has its finding
    rows = {r["accountId"]: r for r in run.json["accounts"]}
    assert run.code == 2
    assert "throttled by AWS beyond retries" in rows[throttled]["error"]
    assert "access denied" in rows[denied]["error"]
    assert calls.count(throttled) > 1 and calls.count(denied) == 1  # throttling retried, a denial not
    assert sorted(f["accountId"] for f in run.json["findings"]) == sorted(healthy)
    assert {rows[a]["status"] for a in healthy} == {"findings"}
    assert rows[org.management]["status"] == "clean"
    record("scan --org: 1 account throttled, 1 denied, 3 healthy", "2 error rows, 3 accounts scanned", 0)


def test_every_account_failing_is_still_a_report_with_an_error_row_each(
    org: Organization, cli: Any, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    fail_get_policy(monkeypatch, dict.fromkeys(org.members, _Throttled))

    run = cli("scan", "--org", "--format", "json")

    assert run.code == 2
    assert [r["status"] for r in run.json["accounts"] if r["accountId"] in org.members] == ["error"] * 5
    assert run.json["summary"]["failed"] == 5
    record("scan --org: every member throttled", "5 error rows, exit 2", 0)
