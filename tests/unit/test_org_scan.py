"""The organization scan's orchestration: parallel across accounts, one failure never stops the others."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from permheal.adapters.aws import Credentials
from permheal.adapters.organization import Account
from permheal.errors import AwsCallError
from permheal.models import Finding, FindingKind
from permheal.org_scan import AccountScan, OrgScanReport, error_line, scan_organization

A, B, C = Account("111111111111", "a"), Account("222222222222", "b"), Account("333333333333", "c")
KEYS = Credentials("AKID", "secret", "token")


class FakePorts:
    """What `scan` would be given: which account and region, with which credentials."""

    def __init__(self, account: Account, credentials: Credentials | None, region: str) -> None:
        self.account, self.credentials, self.region = account, credentials, region


class FakeMembers:
    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.sessions: list[str] = []

    def session(self, account: Account) -> Credentials | None:
        self.sessions.append(account.account_id)
        if account.account_id in self.refuse:
            raise AwsCallError(f"AssumeRole arn:aws:iam::{account.account_id}:role/PermhealScanRole: denied")
        return KEYS

    def adapters(self, account: Account, credentials: Credentials | None, region: str) -> Any:
        return FakePorts(account, credentials, region)


def finding(detail: str) -> Finding:
    return Finding(FindingKind.MISSING_PERMISSION, detail=detail)


def scan_one(ports: FakePorts) -> list[Finding]:
    return [finding(f"{ports.account.account_id}/{ports.region}")]


def test_every_account_and_region_is_scanned_with_its_own_ports_in_account_order() -> None:
    # Given three accounts and two regions
    members = FakeMembers()
    # When the organization is scanned
    report = scan_organization([C, A, B], members, ["us-east-1", "eu-west-1"], scan_one)  # type: ignore[arg-type]
    # Then each account's role was assumed once, and each row holds that account and region's findings
    assert sorted(members.sessions) == [A.account_id, B.account_id, C.account_id]
    assert [(s.account_id, s.region, [f.detail for f in s.findings]) for s in report.scans] == [
        (account.account_id, region, [f"{account.account_id}/{region}"])
        for account in (C, A, B)
        for region in ("us-east-1", "eu-west-1")
    ]
    assert (report.accounts, report.finding_count, report.failures) == (3, 6, ())


def test_an_account_whose_role_cannot_be_assumed_is_an_error_row_per_region_and_the_others_go_on() -> None:
    members = FakeMembers(refuse=frozenset({B.account_id}))

    report = scan_organization([A, B, C], members, ["us-east-1", "eu-west-1"], scan_one)  # type: ignore[arg-type]

    assert [(s.account_id, s.region, s.status) for s in report.scans] == [
        (A.account_id, "us-east-1", "findings"),
        (A.account_id, "eu-west-1", "findings"),
        (B.account_id, "us-east-1", "error"),
        (B.account_id, "eu-west-1", "error"),
        (C.account_id, "us-east-1", "findings"),
        (C.account_id, "eu-west-1", "findings"),
    ]
    assert all("AssumeRole" in (s.error or "") for s in report.failures)


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (AwsCallError("GetRestApis: throttled"), "GetRestApis: throttled"),
        (ZeroDivisionError("division by zero"), "internal error: ZeroDivisionError: division by zero"),
    ],
)
def test_a_region_that_fails_is_an_error_row_even_for_a_bug_and_the_account_s_other_regions_go_on(
    raised: Exception, says: str
) -> None:
    def flaky(ports: FakePorts) -> list[Finding]:
        if ports.region == "eu-west-1" and ports.account == A:
            raise raised
        return []

    report = scan_organization([A, B], FakeMembers(), ["us-east-1", "eu-west-1"], flaky)  # type: ignore[arg-type]

    assert [(s.account_id, s.region, s.error) for s in report.scans] == [
        (A.account_id, "us-east-1", None),
        (A.account_id, "eu-west-1", says),
        (B.account_id, "us-east-1", None),
        (B.account_id, "eu-west-1", None),
    ]


def test_accounts_are_scanned_in_parallel() -> None:
    # Given a scan that only returns once two accounts are inside it at the same time
    both_inside = threading.Barrier(2, timeout=10)

    def meet(ports: FakePorts) -> list[Finding]:
        both_inside.wait()  # BrokenBarrierError (an error row) if the accounts ran one after the other
        return []

    # When two accounts are scanned
    report = scan_organization([A, B], FakeMembers(), ["us-east-1"], meet)  # type: ignore[arg-type]

    # Then both met there
    assert report.failures == ()


def test_no_more_accounts_than_the_bound_are_scanned_at_once() -> None:
    # Given a scan that records how many accounts are inside it
    lock, inside, peak = threading.Lock(), [0], [0]
    release = threading.Event()

    def count(ports: FakePorts) -> list[Finding]:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            if inside[0] == 2:
                release.set()
        release.wait(timeout=10)
        with lock:
            inside[0] -= 1
        return []

    accounts = [Account(f"{i:012d}", str(i)) for i in range(1, 7)]
    # When six accounts are scanned two at a time
    report = scan_organization(accounts, FakeMembers(), ["us-east-1"], count, max_parallel=2)  # type: ignore[arg-type]

    # Then two ran at once, never more
    assert (peak[0], len(report.scans), report.failures) == (2, 6, ())


def test_report_json_lists_every_row_and_each_finding_with_its_account_and_region() -> None:
    report = OrgScanReport(
        (
            AccountScan(A.account_id, "a", "us-east-1", (finding("x"),)),
            AccountScan(B.account_id, "b", "us-east-1", error="access denied: AssumeRole"),
        ),
        ("us-east-1",),
    )

    data = report.to_dict()

    assert data["accounts"] == [
        {
            "accountId": A.account_id,
            "accountName": "a",
            "region": "us-east-1",
            "status": "findings",
            "findings": 1,
            "error": None,
        },
        {
            "accountId": B.account_id,
            "accountName": "b",
            "region": "us-east-1",
            "status": "error",
            "findings": 0,
            "error": "access denied: AssumeRole",
        },
    ]
    assert [(f["kind"], f["detail"], f["accountId"], f["region"]) for f in data["findings"]] == [
        ("missing_permission", "x", A.account_id, "us-east-1")
    ]
    assert data["summary"] == {
        "accounts": 2,
        "regions": ["us-east-1"],
        "scanned": 1,
        "failed": 1,
        "findings": 1,
    }


def test_an_organization_without_accounts_is_an_empty_report() -> None:
    report = scan_organization([], FakeMembers(), ["us-east-1"], scan_one)  # type: ignore[arg-type]

    assert (report.scans, report.accounts) == ((), 0)


def test_error_lines_are_one_line() -> None:
    assert error_line(AwsCallError("first\n  second")) == "first second"


# ------------------------------------------------------------------------------ listing the accounts


class FakeOrganizations:
    """ListAccounts in pages, or one error."""

    def __init__(self, pages: list[list[dict[str, str]]] | None = None, error: str | None = None) -> None:
        self.pages, self.error = pages or [], error

    def get_paginator(self, name: str) -> Any:
        assert name == "list_accounts"
        return self

    def paginate(self) -> Any:
        from botocore.exceptions import ClientError

        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "ListAccounts")
        return ({"Accounts": page} for page in self.pages)


def test_only_active_accounts_of_every_page_are_listed_in_id_order() -> None:
    from permheal.adapters.organization import active_accounts

    pages = [
        [{"Id": "333333333333", "Name": "c", "Status": "ACTIVE", "State": "ACTIVE"}],
        [
            {"Id": "111111111111", "Name": "a", "Status": "ACTIVE"},  # before `State` existed
            {"Id": "444444444444", "Name": "d", "Status": "ACTIVE", "State": "PENDING_CLOSURE"},
            {"Id": "555555555555", "Name": "e", "Status": "SUSPENDED", "State": "SUSPENDED"},
        ],
    ]

    accounts = active_accounts(FakeOrganizations(pages))

    assert accounts == [Account("111111111111", "a"), Account("333333333333", "c")]


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("AWSOrganizationsNotInUseException", "this account is not in an AWS Organization"),
        ("AccessDeniedException", "access denied: ListAccounts"),
    ],
)
def test_listing_failures_say_why_in_one_line(code: str, says: str) -> None:
    from permheal.adapters.organization import active_accounts

    with pytest.raises(Exception) as raised:
        active_accounts(FakeOrganizations(error=code))

    assert says in error_line(raised.value)


def test_no_active_account_at_all_is_a_configuration_error() -> None:
    from permheal.adapters.organization import active_accounts
    from permheal.errors import ConfigError

    with pytest.raises(ConfigError, match="no ACTIVE account"):
        active_accounts(FakeOrganizations([[{"Id": "555555555555", "Status": "SUSPENDED"}]]))
