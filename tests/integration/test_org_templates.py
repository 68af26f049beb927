"""org/: the scan role grants exactly what `permheal scan --org` sends, the hub lets only the organization
publish, and the templates lint clean.

The scan role's least privilege is proven on what the scan really sends: every request signed with
a member's assumed-role credentials during `permheal scan --org` is recorded (service, operation,
HTTP method, path) and mapped to the IAM action and resource AWS authorizes it as; the role deployed
from org/scan-role.yaml (by CloudFormation, in the member account) must allow each one, and grant
nothing no request needed.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from permheal.org_scan import DEFAULT_ROLE_NAME
from permheal_local import faithful_sts
from permheal_local.builder import function_arn
from permheal_local.organization import Organization, create_organization, pets_api
from permheal_local.template import load_template
from tests.integration.support_v2 import http_api, integration, request_authorizer, route, stage

ROOT = Path(__file__).resolve().parents[2]
ORG = ROOT / "org"
SCAN_ROLE, HUB = ORG / "scan-role.yaml", ORG / "hub.yaml"
APIGATEWAY_RESOURCES = ["/restapis", "/restapis/*", "/apis", "/apis/*"]


# ------------------------------------------------------------------------------ what the scan sends


class Recorder:
    """Every request signed with another key than the caller's: (service, operation, method, path, key)."""

    def __init__(self, own_key: str) -> None:
        self.own_key = own_key
        self.requests: list[tuple[str, str, str, str]] = []

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        credential = str(request.headers.get("Authorization", b"")).split("Credential=", 1)[-1]
        if credential.split("/", 1)[0] == self.own_key:
            return
        _, service, operation = event_name.split(".", 2)
        self.requests.append((service, operation, request.method, unquote(urlsplit(request.url).path)))


@pytest.fixture
def scanned(aws: None, cli: Any) -> Iterator[tuple[Organization, list[tuple[str, str, str, str]], str]]:
    """A member with REST and HTTP APIs (one function without any policy), scanned from the hub."""
    from permheal.adapters.aws import _session, _session_key

    faithful_sts.install()
    try:
        org = create_organization(["member"])
        [member] = org.members
        world = org.world(member)
        pets_api(world, member, granted=False)  # no policy at all: GetPolicy, then GetFunctionConfiguration
        pets_api(world, member, "orders", granted=True)
        world.function("shop")
        shop = function_arn("shop", account=member)
        api = http_api(world)
        route(
            world,
            api,
            "GET /cart",
            integration(world, api, shop),
            authorizer_id=request_authorizer(world, api, shop),
        )
        stage(world, api, log_format=None)
        org.deploy_scan_role(member)
        recorder = Recorder(os.environ["AWS_ACCESS_KEY_ID"])
        events = _session(*_session_key()).events
        events.register("before-send", recorder)
        try:
            run = cli("scan", "--org", "--format", "json")
        finally:
            events.unregister("before-send", recorder)
        assert run.code == 1 and run.json["summary"]["failed"] == 0, run.out
        yield org, recorder.requests, member
    finally:
        faithful_sts.uninstall()


def _granted(org: Organization, member: str) -> list[dict[str, Any]]:
    iam = org.world(member).client("iam")
    document = iam.get_role_policy(RoleName=DEFAULT_ROLE_NAME, PolicyName="permheal-scan-read-only")
    return list(_document(document["PolicyDocument"])["Statement"])


def _document(value: Any) -> dict[str, Any]:
    """A policy document as IAM returns it; moto's CloudFormation stores inline ones as a Python repr."""
    if isinstance(value, dict):
        return value
    try:
        parsed: dict[str, Any] = json.loads(value)
    except ValueError:
        parsed = ast.literal_eval(value)
    return parsed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _authorized_as(request: tuple[str, str, str, str], member: str) -> tuple[str, str]:
    """The IAM action and resource AWS checks for one request (region left as a wildcard-free value)."""
    service, operation, method, path = request
    if service in ("api-gateway", "apigatewayv2"):  # IAM's API Gateway actions are HTTP verbs on paths
        return f"apigateway:{method}", f"arn:aws:apigateway:us-east-1::{path.removeprefix('/v2')}"
    if service == "lambda":
        name = path.split("/functions/", 1)[1].split("/", 1)[0]
        arn = name if name.startswith("arn:") else f"arn:aws:lambda:us-east-1:{member}:function:{name}"
        return f"lambda:{operation}", arn
    raise AssertionError(f"the scan sent {request}, which the role does not cover")


def test_the_scan_role_allows_every_request_the_scan_sends_in_a_member_account(
    scanned: tuple[Organization, list[tuple[str, str, str, str]], str],
) -> None:
    org, requests, member = scanned
    statements = _granted(org, member)
    # When each request is matched against the role's statements
    denied = [
        request
        for request in requests
        if not any(
            action in _as_list(s["Action"])
            and any(fnmatch.fnmatchcase(resource, r) for r in _as_list(s["Resource"]))
            for s in statements
            for action, resource in [_authorized_as(request, member)]
        )
    ]
    # Then every one is allowed (and the scan did send the REST, HTTP and Lambda reads)
    assert {service for service, *_ in requests} == {"api-gateway", "apigatewayv2", "lambda"}
    assert denied == []


def test_the_scan_role_grants_nothing_the_scan_does_not_send(
    scanned: tuple[Organization, list[tuple[str, str, str, str]], str],
) -> None:
    org, requests, member = scanned
    # Given the actions the requests needed
    needed = {_authorized_as(request, member)[0] for request in requests}
    # When compared with the role's
    granted = {action for s in _granted(org, member) for action in _as_list(s["Action"])}
    # Then they are the same: reads only, GetFunctionConfiguration included (a function without policy)
    assert granted == needed == {"apigateway:GET", "lambda:GetPolicy", "lambda:GetFunctionConfiguration"}


def test_the_scan_role_reads_only_its_own_accounts_functions_and_api_gateway_paths(
    scanned: tuple[Organization, list[tuple[str, str, str, str]], str],
) -> None:
    org, _, member = scanned
    resources = {
        action: _as_list(s["Resource"]) for s in _granted(org, member) for action in _as_list(s["Action"])
    }
    assert resources["apigateway:GET"] == [f"arn:aws:apigateway:*::{p}" for p in APIGATEWAY_RESOURCES]
    assert resources["lambda:GetPolicy"] == [f"arn:aws:lambda:*:{member}:function:*"]
    assert resources["lambda:GetFunctionConfiguration"] == [f"arn:aws:lambda:*:{member}:function:*"]


# ------------------------------------------------------------------------------ trust


@pytest.fixture
def org(aws: None) -> Iterator[Organization]:
    faithful_sts.install()
    try:
        yield create_organization(["member"])
    finally:
        faithful_sts.uninstall()


def _trust(org: Organization, member: str, role: str = DEFAULT_ROLE_NAME) -> list[dict[str, Any]]:
    document = org.world(member).client("iam").get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    return list(_document(document)["Statement"])


def test_the_scan_role_trusts_only_the_hub_account(org: Organization) -> None:
    [member] = org.members
    org.deploy_scan_role(member)

    assert _trust(org, member) == [
        {
            "Sid": "TrustTheHubAccount",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{org.management}:root"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_a_scanner_principal_narrows_the_trust_to_it(org: Organization) -> None:
    import boto3

    [member] = org.members
    scanner = f"arn:aws:iam::{org.management}:role/auditor"
    org.deploy_scan_role(member, ScannerPrincipalArn=scanner)
    sts = boto3.client("sts", region_name="us-east-1")

    [statement] = _trust(org, member)
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": scanner}}
    # The hub's default caller is not the auditor: refused, as AWS would
    with pytest.raises(sts.exceptions.ClientError, match="AccessDenied"):
        sts.assume_role(
            RoleArn=f"arn:aws:iam::{member}:role/{DEFAULT_ROLE_NAME}", RoleSessionName="permheal-scan"
        )


# ------------------------------------------------------------------------------ static checks


@pytest.fixture(scope="module")
def hub() -> dict[str, Any]:
    return load_template(HUB)


@pytest.fixture(scope="module")
def scan_role() -> dict[str, Any]:
    return load_template(SCAN_ROLE)


def test_the_role_name_is_one_default_everywhere(hub: dict[str, Any], scan_role: dict[str, Any]) -> None:
    assert scan_role["Parameters"]["RoleName"]["Default"] == DEFAULT_ROLE_NAME
    assert hub["Parameters"]["ScanRoleName"]["Default"] == DEFAULT_ROLE_NAME


def test_only_the_organization_may_publish_to_the_hub_topic_and_only_publish(hub: dict[str, Any]) -> None:
    policy = hub["Resources"]["HubTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "HubTopic"}]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "PublishFromTheOrganization",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "sns:Publish",
            "Resource": {"Ref": "HubTopic"},
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
        }
    ]


def test_only_the_organization_may_read_the_artifacts_and_only_over_tls(hub: dict[str, Any]) -> None:
    bucket = hub["Resources"]["ArtifactBucket"]["Properties"]
    statements = hub["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "ReadFromTheOrganization",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${ArtifactBucket.Arn}/*"},
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}},
        }
    ]
    [deny] = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}


def test_the_hub_scanner_policy_lists_accounts_assumes_the_scan_role_and_reads_like_it(
    hub: dict[str, Any], scan_role: dict[str, Any]
) -> None:
    statements = hub["Resources"]["OrgScannerPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: (s["Action"], s["Resource"]) for s in statements}
    role_reads = scan_role["Resources"]["ScanRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    assert by_sid.pop("ListTheAccounts") == (
        "organizations:ListAccounts",
        "*",
    )  # no resource-level permissions
    assert by_sid.pop("AssumeTheScanRole") == (
        "sts:AssumeRole",
        {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${ScanRoleName}"},
    )
    # The hub account itself is scanned with the caller's credentials: the same reads as the role's
    assert sorted(by_sid.values(), key=str) == sorted(
        ((s["Action"], s["Resource"]) for s in role_reads), key=str
    )


@pytest.mark.parametrize(
    "rules", [[], ["--append-rules", "cfn_lint_serverless.rules"]], ids=["", "serverless"]
)
@pytest.mark.parametrize("template", [SCAN_ROLE, HUB], ids=lambda p: p.name)
def test_cfn_lint_passes_on_the_org_templates(template: Path, rules: list[str]) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    command = [str(cfn_lint), str(template), *rules]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_makefile_lints_the_org_templates() -> None:
    lint = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "cfn-lint template.yaml org/*.yaml" in lint
