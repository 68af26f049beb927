"""`permheal scan --org`: the account scan in every ACTIVE account and chosen region of an organization.

One worker per account (at most `MAX_PARALLEL` at a time) assumes the scan role once and scans its
regions one after the other with that account's own clients: an account's quotas (GetPolicy: 15
requests/s per account and region) are spent only by its own scan, and the pacing `scan` does
through its ports applies per account as it does for one. A failure in one account or region (the
role missing or not trusting the caller, an opt-in region not enabled there, throttling beyond
retries, even a bug) becomes that row's error and never stops the others.

CLI only: left out of the Lambda artifact (functions/Makefile), like cli.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from permheal.adapters.aws import Credentials
from permheal.adapters.organization import Account
from permheal.adapters.ports import Adapters
from permheal.errors import PermhealError
from permheal.models import Finding

DEFAULT_ROLE_NAME = "PermhealScanRole"
"""The role org/scan-role.yaml creates in every member account."""
MAX_PARALLEL = 8
"""Accounts scanned at once: enough to hide round trips, few enough for the caller's own STS quota."""

ScanOne = Callable[[Adapters], list[Finding]]
"""The single-account scan, given one account and region's ports."""


class Members(Protocol):
    """How to reach each account: credentials there, and the scan's ports built from them."""

    def session(self, account: Account) -> Credentials | None: ...

    def adapters(self, account: Account, credentials: Credentials | None, region: str) -> Adapters: ...


@dataclass(frozen=True)
class AccountScan:
    """One account and region: its findings, or why it could not be scanned."""

    account_id: str
    account_name: str
    region: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None

    @property
    def status(self) -> str:
        return "error" if self.error is not None else ("findings" if self.findings else "clean")

    def to_dict(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "accountName": self.account_name,
            "region": self.region,
            "status": self.status,
            "findings": len(self.findings),
            "error": self.error,
        }


@dataclass(frozen=True)
class OrgScanReport:
    scans: tuple[AccountScan, ...]
    regions: tuple[str, ...]

    @property
    def accounts(self) -> int:
        return len({s.account_id for s in self.scans})

    @property
    def failures(self) -> tuple[AccountScan, ...]:
        return tuple(s for s in self.scans if s.error is not None)

    @property
    def finding_count(self) -> int:
        return sum(len(s.findings) for s in self.scans)

    def to_dict(self) -> dict[str, Any]:
        """`findings` as `permheal scan` writes them, each with its `accountId` and `region`."""
        return {
            "accounts": [s.to_dict() for s in self.scans],
            "findings": [
                {**f.to_dict(), "accountId": s.account_id, "region": s.region}
                for s in self.scans
                for f in s.findings
            ],
            "summary": {
                "accounts": self.accounts,
                "regions": list(self.regions),
                "scanned": len(self.scans) - len(self.failures),
                "failed": len(self.failures),
                "findings": self.finding_count,
            },
        }


def scan_organization(
    accounts: Sequence[Account],
    members: Members,
    regions: Sequence[str],
    scan_one: ScanOne,
    max_parallel: int = MAX_PARALLEL,
) -> OrgScanReport:
    """Every account × region, accounts in parallel (bounded), in account order in the report."""
    if not accounts:
        return OrgScanReport((), tuple(regions))

    def one_account(account: Account) -> list[AccountScan]:
        return _scan_account(account, members, regions, scan_one)

    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(accounts)))) as pool:
        per_account = list(pool.map(one_account, accounts))
    return OrgScanReport(tuple(s for scans in per_account for s in scans), tuple(regions))


def _scan_account(
    account: Account, members: Members, regions: Sequence[str], scan_one: ScanOne
) -> list[AccountScan]:
    try:
        credentials = members.session(account)
    except Exception as exc:  # the role is missing, or does not trust the caller: every region fails
        error = error_line(exc)
        return [AccountScan(account.account_id, account.name, region, error=error) for region in regions]
    scans: list[AccountScan] = []
    for region in regions:
        try:
            findings = scan_one(members.adapters(account, credentials, region))
        except Exception as exc:  # this account and region only: the others go on
            scans.append(AccountScan(account.account_id, account.name, region, error=error_line(exc)))
        else:
            scans.append(AccountScan(account.account_id, account.name, region, tuple(findings)))
    return scans


def error_line(exc: BaseException) -> str:
    """What went wrong, in one line, as the CLI would say it."""
    from permheal.adapters.aws import translate

    error = translate(exc) or exc
    if isinstance(error, PermhealError):
        text = str(error) or type(error).__name__
    else:
        text = f"internal error: {type(exc).__name__}: {exc}"
    return " ".join(text.split())
