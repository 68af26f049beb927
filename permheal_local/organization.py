"""An AWS Organization on the local AWS: member accounts, each set up through its own credentials.

moto keeps one backend per account id and routes a request by the account its credentials belong
to (an assumed role's credentials belong to the role's account), so every member here is a real,
separate account for the code under test. Members are set up the way an administrator does it:
through `OrganizationAccountAccessRole`, which CreateAccount makes (on AWS and in moto), deploying
org/scan-role.yaml with CloudFormation. `faithful_sts` makes AssumeRole need that role to exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from permheal_local.builder import REGION, World, execute_api, function_arn
from permheal_local.faithful_sts import ACCESS_ROLE
from permheal_local.stack import ROOT

SCAN_ROLE_TEMPLATE = ROOT / "org" / "scan-role.yaml"


class AccountClients(dict[str, Any]):
    """boto3 clients signed with one account's credentials, made on first use (a `World`'s clients)."""

    def __init__(self, credentials: Mapping[str, Any], region: str) -> None:
        super().__init__()
        self._kwargs = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
            "region_name": region,
        }

    def __contains__(self, service: object) -> bool:
        return True

    def __missing__(self, service: str) -> Any:
        made = boto3.client(service, **self._kwargs)  # type: ignore[call-overload]
        self[service] = made
        return made


@dataclass
class Organization:
    management: str
    members: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    region: str = REGION

    def world(self, account: str, role: str = ACCESS_ROLE) -> World:
        """A builder acting in `account` (through `role`, the administrator's way in)."""
        credentials = boto3.client("sts", region_name=self.region).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="permheal-local-setup"
        )["Credentials"]
        return World(region=self.region, clients=AccountClients(credentials, self.region))

    def deploy_scan_role(self, account: str, template: Path = SCAN_ROLE_TEMPLATE, **parameters: str) -> None:
        """org/scan-role.yaml in `account`, trusting the management account (as the StackSet does)."""
        values = {"HubAccountId": self.management, **parameters}
        self.world(account).client("cloudformation").create_stack(
            StackName=f"permheal-scan-role-{values.get('RoleName', 'default')}",
            TemplateBody=template.read_text(),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )


def create_organization(member_names: Sequence[str], region: str = REGION) -> Organization:
    """An organization managed by the caller's account, with one new account per name."""
    client = boto3.client("organizations", region_name=region)
    management = client.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    org = Organization(management, region=region)
    for name in member_names:
        status = client.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        org.members.append(status["AccountId"])
        org.names[status["AccountId"]] = name
    return org


def pets_api(world: World, account: str, name: str = "pets", *, granted: bool) -> str:
    """In `account`: GET /pets invoking `name`:${stageVariables.alias} (alias live) on stage prod."""
    world.function(name, alias="live")
    api = world.rest_api(name)
    target = function_arn(name, "${stageVariables.alias}", account=account, region=world.region)
    world.method(api, "/pets", "GET", target)
    world.deploy(api, "prod", {"alias": "live"})
    if granted:
        source = execute_api(api, "*/GET/pets", region=world.region, account=account)
        world.grant(name, source, sid=f"{name}-get", qualifier="live")
    return api
