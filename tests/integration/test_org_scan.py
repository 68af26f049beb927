"""`permheal scan --org` on a local AWS Organization: separate accounts, each with its own credentials.

moto routes each request to the account its credentials belong to, and `faithful_sts` makes
AssumeRole need the role to exist and trust the caller, so the member accounts here are as separate
as on AWS: the scan sees an account's APIs only through the role assumed there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from permheal_local import faithful_sts
from permheal_local.organization import Organization, create_organization, pets_api

MEMBERS = ("broken", "clean", "no-role")


@pytest.fixture
def org(aws: None) -> Iterator[Organization]:
    """Three members: a missing grant, all granted, no scan role (the first two have the role)."""
    faithful_sts.install()
    try:
        organization = create_organization(MEMBERS)
        broken, clean, _ = organization.members
        for account, granted in ((broken, False), (clean, True)):
            pets_api(organization.world(account), account, granted=granted)
            organization.deploy_scan_role(account)
        yield organization
    finally:
        faithful_sts.uninstall()


def rows(run: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["accountId"], r["region"]): r for r in run.json["accounts"]}


def test_each_account_is_scanned_through_its_role_and_a_missing_role_is_an_error_row(
    org: Organization, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    broken, clean, no_role = org.members

    # When the organization is scanned from the management account
    run = cli("scan", "--org", "--format", "json")

    # Then every ACTIVE account has its row: the management account (own credentials) and the
    # members through their role; the member without the role is an error, not a crash
    statuses = {account: row["status"] for (account, _), row in rows(run).items()}
    assert statuses == {org.management: "clean", broken: "findings", clean: "clean", no_role: "error"}
    error = rows(run)[(no_role, "us-east-1")]["error"]
    assert "AssumeRole" in error and f"arn:aws:iam::{no_role}:role/PermhealScanRole" in error
    # The broken account's finding is its own function's, in its own account
    [found] = run.json["findings"]
    assert (found["kind"], found["accountId"], found["region"]) == ("missing_permission", broken, "us-east-1")
    assert found["functionArn"] == f"arn:aws:lambda:us-east-1:{broken}:function:pets"
    assert found["sourceArn"].startswith(f"arn:aws:execute-api:us-east-1:{broken}:")
    # An incomplete scan exits 2 after the report, with one line saying so
    err = capsys.readouterr().err
    assert run.code == 2
    assert err.splitlines() == [
        "permheal: 1 of 4 account/region scans failed (the error rows say why); the report is incomplete"
    ]


def test_an_organization_whose_accounts_all_answer_exits_1_with_findings_in_one_table(
    org: Organization, cli: Any
) -> None:
    broken, _, no_role = org.members
    org.deploy_scan_role(no_role)

    run = cli("scan", "--org")

    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "ACCOUNT",
        "NAME",
        "REGION",
        "KIND",
        "API/STAGE",
        "WHERE",
        "FUNCTION",
        "DETAIL",
    ]
    [row] = [line for line in lines[2:] if line.startswith(broken)]
    assert row.split()[:6] == [broken, "broken", "us-east-1", "missing_permission", "pets/prod", "GET"]
    assert lines[-1] == "4 account(s) x 1 region(s): 4 scanned, 0 failed, 1 finding(s)."


def test_a_clean_organization_exits_0(org: Organization, cli: Any) -> None:
    broken, _, no_role = org.members
    org.deploy_scan_role(no_role)
    world = org.world(broken)
    world.grant(
        "pets", "arn:aws:execute-api:us-east-1:" + broken + ":*/*/GET/pets", sid="all", qualifier="live"
    )

    run = cli("scan", "--org")

    assert (run.code, run.out) == (
        0,
        "No findings. 4 account(s) x 1 region(s): 4 scanned, 0 failed, 0 finding(s).\n",
    )


def test_every_region_named_is_scanned_in_every_account(org: Organization, cli: Any) -> None:
    broken, _, no_role = org.members
    org.deploy_scan_role(no_role)

    run = cli("scan", "--org", "--regions", "eu-west-1,us-east-1", "--format", "json")

    assert run.code == 1
    assert sorted(rows(run)) == sorted(
        (account, region)
        for account in (org.management, *org.members)
        for region in ("eu-west-1", "us-east-1")
    )
    assert [(f["accountId"], f["region"]) for f in run.json["findings"]] == [(broken, "us-east-1")]


def test_role_name_chooses_the_role_assumed_in_each_account(org: Organization, cli: Any) -> None:
    # Given every member with a scan role of another name (the broken one keeps only the default)
    broken, clean, no_role = org.members
    for account in (clean, no_role):
        org.deploy_scan_role(account, RoleName="AuditReader")

    # When scanning with that role name
    run = cli("scan", "--org", "--role-name", "AuditReader", "--format", "json")

    # Then the accounts with it are scanned, the one without it is the error
    statuses = {account: row["status"] for (account, _), row in rows(run).items()}
    assert statuses == {org.management: "clean", broken: "error", clean: "clean", no_role: "clean"}
    assert "role/AuditReader" in rows(run)[(broken, "us-east-1")]["error"]


def test_a_role_trusting_another_account_cannot_be_assumed(org: Organization, cli: Any) -> None:
    _, _, no_role = org.members
    org.deploy_scan_role(no_role, HubAccountId="999999999999")

    run = cli("scan", "--org", "--format", "json")

    assert "access denied: AssumeRole" in rows(run)[(no_role, "us-east-1")]["error"]


def test_suspended_accounts_are_not_scanned(org: Organization, cli: Any) -> None:
    import boto3

    _, _, no_role = org.members
    boto3.client("organizations", region_name="us-east-1").close_account(AccountId=no_role)

    run = cli("scan", "--org", "--format", "json")

    assert {account for account, _ in rows(run)} == {org.management, *org.members[:2]}
    assert run.code == 1


def test_an_account_outside_any_organization_is_one_line_and_exit_2(
    aws: None, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = cli("scan", "--org")

    assert (run.code, run.out) == (2, "")
    # (AWS answers AWSOrganizationsNotInUseException, moto an empty list: both are said in one line)
    [line] = capsys.readouterr().err.splitlines()
    assert line in (
        "permheal: permheal scan --org: this account is not in an AWS Organization",
        "permheal: permheal scan --org: AWS Organizations lists no ACTIVE account",
    )


def test_the_cli_loads_the_organization_code_only_when_scan_org_runs() -> None:
    import subprocess
    import sys

    # Given a fresh interpreter that builds the parser and parses `scan --org` (as every command does)
    probe = (
        "import sys, permheal.cli as c; c._parser().parse_args(['scan', '--org', '--regions', 'us-east-1']);"
        "print(sorted(m for m in sys.modules if m in ('boto3', 'botocore', 'permheal.org_scan',"
        " 'permheal.adapters.organization', 'permheal.workflow.scan')))"
    )
    # When it lists what got imported
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # Then nothing of the scan, the organization or the SDK: they load when the command runs
    assert done.stdout.strip() == "[]"


def test_the_table_shows_a_failed_account_as_an_error_row_beside_the_findings(
    org: Organization, cli: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    broken, _, no_role = org.members

    run = cli("scan", "--org")

    rows_by_account = {
        line.split()[0]: line.split() for line in run.out.splitlines()[2:] if line[:1].isdigit()
    }
    assert rows_by_account[no_role][:4] == [no_role, "no-role", "us-east-1", "error"]
    assert "AssumeRole" in " ".join(rows_by_account[no_role])
    assert rows_by_account[broken][3] == "missing_permission"
    assert run.out.splitlines()[-1] == "4 account(s) x 1 region(s): 3 scanned, 1 failed, 1 finding(s)."
    assert run.code == 2 and "1 of 4 account/region scans failed" in capsys.readouterr().err


def test_the_region_flag_reaches_the_organization_s_own_calls(org: Organization, cli: Any) -> None:
    import re

    from permheal.adapters.aws import _session, _session_key

    # Given AWS_REGION us-east-1 (tests/conftest.py) and a recorder of what every request is signed for
    signed: list[tuple[str, str]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", str(request.headers.get("Authorization", b"")))
        signed.append((event_name.split(".")[1], scope[1] if scope else ""))

    events = _session(*_session_key()).events
    events.register("before-send", record)
    try:
        # When scanning with --region eu-west-1
        run = cli("scan", "--org", "--region", "eu-west-1", "--format", "json")
    finally:
        events.unregister("before-send", record)

    # Then the accounts are scanned in eu-west-1 and the hub's STS calls went there too
    assert {r["region"] for r in run.json["accounts"]} == {"eu-west-1"}
    assert {region for service, region in signed if service == "sts"} == {"eu-west-1"}


def test_each_account_and_region_is_paced_by_its_own_quotas(org: Organization) -> None:
    from permheal.adapters.organization import Account, MemberAccounts

    broken, clean, _ = org.members
    members = MemberAccounts("PermhealScanRole", 0.5)
    # Given the ports of two accounts, and of one account in two regions
    ports = [
        members.adapters(Account(a, a), members.session(Account(a, a)), region)
        for a, region in ((broken, "us-east-1"), (clean, "us-east-1"), (broken, "eu-west-1"))
    ]
    # Then each has its own pacer, at the configured share of every quota, used by both its ports
    pacers = [p.pacer for p in ports]
    assert len({id(p) for p in pacers}) == 3
    assert all(p.share == 0.5 and p.buckets["lambda:GetPolicy"].rate == 7.5 for p in pacers)
    assert all(p.gateway._pacer is p.pacer and p.policies._pacer is p.pacer for p in ports)
