"""Who and where permheal runs, and which APIs it may touch (the SSM allowlist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from permheal.adapters.aws import client, error_code
from permheal.errors import AwsCallError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient


@dataclass(frozen=True)
class Identity:
    """The partition and account permheal runs in: the only account whose functions it edits."""

    partition: str
    account: str


def caller_identity(sts: STSClient | None = None) -> Identity:
    """The account permheal runs in: the only one whose functions it edits."""
    try:
        arn = (sts or client("sts")).get_caller_identity()["Arn"]
    except ClientError as exc:
        raise AwsCallError(f"GetCallerIdentity: {exc}") from exc
    _, partition, _, _, account, _ = arn.split(":", 5)
    return Identity(partition, account)


@dataclass(frozen=True)
class Allowlist:
    """API ids or names permheal may repair; `*` allows all. Empty allows nothing (fail closed)."""

    entries: frozenset[str] = frozenset()

    def allows(self, api_id: str, api_name: str) -> bool:
        return "*" in self.entries or api_id in self.entries or (bool(api_name) and api_name in self.entries)

    @classmethod
    def parse(cls, value: str) -> Allowlist:
        return cls(frozenset(entry.strip() for entry in value.split(",") if entry.strip()))


def read_allowlist(name: str, ssm: SSMClient | None = None) -> Allowlist:
    """Read the allowlist parameter; missing or unreadable means nothing is allowed."""
    try:
        parameter = (ssm or client("ssm")).get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return Allowlist()
        raise AwsCallError(f"GetParameter {name}: {exc}") from exc
    if parameter.get("Type") not in ("StringList", "String"):
        return Allowlist()
    return Allowlist.parse(parameter.get("Value", ""))
