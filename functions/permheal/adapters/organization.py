"""AWS Organizations and STS for `permheal scan --org`: the member accounts, and the ports to scan each.

CLI only (left out of the Lambda artifact by functions/Makefile, like cli.py): no Lambda lists
accounts or assumes roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.account import Identity, caller_identity
from permheal.adapters.apigateway import ApiGateway
from permheal.adapters.aws import Credentials, client, client_for, error_code
from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.adapters.ports import Adapters
from permheal.errors import AwsCallError, ConfigError
from permheal.pacing import Pacer

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

SESSION_NAME = "permheal-scan"
"""The role session name every member account's CloudTrail shows for the scan."""


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str


def active_accounts(organizations: Any = None) -> list[Account]:
    """Every ACTIVE account of the organization (suspended and closing ones cannot be scanned).

    Only the management account or a delegated administrator may list them. (`organizations` is
    untyped: the dev toolchain has no boto3 stubs for Organizations.)
    """
    accounts: list[Account] = []
    try:
        pages = (organizations or client("organizations")).get_paginator("list_accounts").paginate()
        for page in pages:
            accounts.extend(
                Account(item["Id"], item.get("Name", "")) for item in page["Accounts"] if _active(item)
            )
    except ClientError as exc:
        if error_code(exc) == "AWSOrganizationsNotInUseException":
            raise ConfigError("permheal scan --org: this account is not in an AWS Organization") from exc
        raise AwsCallError(f"ListAccounts: {exc}") from exc
    if not accounts:  # an organization always has its management account: this one is in none
        raise ConfigError("permheal scan --org: AWS Organizations lists no ACTIVE account")
    return sorted(accounts, key=lambda a: a.account_id)


def _active(item: Any) -> bool:
    # `Status` is deprecated in favour of `State` (which adds PENDING_CLOSURE, CLOSED...): read both.
    return bool(item.get("State", item.get("Status")) == "ACTIVE")


class MemberAccounts:
    """The scan's ports in each account: the caller's own, or built from a role assumed there."""

    def __init__(self, role_name: str, quota_share: float, sts: STSClient | None = None) -> None:
        self._sts = sts or client("sts")
        self._role_name = role_name
        self._quota_share = quota_share
        self.caller = caller_identity(self._sts)

    def session(self, account: Account) -> Credentials | None:
        """Credentials in `account` (None = the caller's own account: scanned with its own credentials)."""
        if account.account_id == self.caller.account:
            return None
        role_arn = f"arn:{self.caller.partition}:iam::{account.account_id}:role/{self._role_name}"
        try:
            issued = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)["Credentials"]
        except ClientError as exc:
            raise AwsCallError(f"AssumeRole {role_arn}: {exc}") from exc
        return Credentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])

    def adapters(self, account: Account, credentials: Credentials | None, region: str) -> Adapters:
        """Read-only ports in one account and region, paced to that account's own quotas there.

        The identity is known, so never asked for.
        """
        identity = Identity(self.caller.partition, account.account_id)
        pacer = Pacer(self._quota_share)
        if credentials is None:
            gateway = ApiGateway(client("apigateway", region), client("apigatewayv2", region), pacer)
            policies = LambdaPolicies(client("lambda", region), pacer)
        else:
            gateway = ApiGateway(
                client_for("apigateway", region, credentials),
                client_for("apigatewayv2", region, credentials),
                pacer,
            )
            policies = LambdaPolicies(client_for("lambda", region, credentials), pacer)
        return Adapters(gateway, policies, identity=lambda: identity, pacer=pacer)
