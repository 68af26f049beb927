"""The faithful-Lambda moto patch reproduces AWS's resource-policy behaviour."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda.models import LambdaBackend
from moto.awslambda.utils import get_backend
from moto.server import ThreadedMotoServer

from permheal_local import faithful_lambda
from permheal_local.faithful_lambda import POLICY_SIZE_LIMIT, policy_size, policy_statements

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION = "orders-api"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
API_ARN = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:a1b2c3d4e5/*/GET/orders"
APIGW = "apigateway.amazonaws.com"


@dataclass(frozen=True)
class Deployed:
    """The function under test: version 1 published, alias ``live`` pointing at it."""

    client: LambdaClient
    version: str


@pytest.fixture(autouse=True)
def _faithful() -> Iterator[None]:
    was_installed = faithful_lambda.is_installed()
    faithful_lambda.install()
    yield
    if not was_installed:
        faithful_lambda.uninstall()


@pytest.fixture
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _handler_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _deploy(endpoint_url: str | None = None) -> Deployed:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=endpoint_url)
    role = iam.create_role(
        RoleName="orders-api-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]
    client: LambdaClient = boto3.client("lambda", region_name=REGION, endpoint_url=endpoint_url)
    client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="index.handler",
        Code={"ZipFile": _handler_zip()},
    )
    version = client.publish_version(FunctionName=FUNCTION)["Version"]
    client.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=version)
    return Deployed(client, version)


@pytest.fixture
def deployed(_credentials: None) -> Iterator[Deployed]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield _deploy()


def _allow_apigw(client: LambdaClient, sid: str = "apigw", source_arn: str = API_ARN, **extra: Any) -> None:
    client.add_permission(
        FunctionName=FUNCTION,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=APIGW,
        SourceArn=source_arn,
        **extra,
    )


def _policy(client: LambdaClient, qualifier: str | None = None) -> dict[str, Any]:
    kwargs = {"Qualifier": qualifier} if qualifier else {}
    response = client.get_policy(FunctionName=FUNCTION, **kwargs)
    return {"Document": json.loads(response["Policy"]), "RevisionId": response["RevisionId"]}


def _sids(client: LambdaClient, qualifier: str | None = None) -> list[str]:
    return [s["Sid"] for s in _policy(client, qualifier)["Document"]["Statement"]]


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def _apigw_statement(sid: str, resource: str, source_arn: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": APIGW},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
    }


# --- one policy per qualifier ---------------------------------------------------------------------


def test_alias_permission_is_not_in_unqualified_policy(deployed: Deployed) -> None:
    # Given a permission added to alias "live"
    _allow_apigw(deployed.client, Qualifier="live")

    # When the unqualified policy is read
    with pytest.raises(ClientError) as excinfo:
        deployed.client.get_policy(FunctionName=FUNCTION)

    # Then it does not exist, while the alias policy holds the statement
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)
    assert _sids(deployed.client, "live") == ["apigw"]


def test_unqualified_permission_is_not_in_alias_policy(deployed: Deployed) -> None:
    # Given a permission added to the unqualified function
    _allow_apigw(deployed.client)

    # When the alias policy is read
    with pytest.raises(ClientError) as excinfo:
        deployed.client.get_policy(FunctionName=FUNCTION, Qualifier="live")

    # Then it does not exist
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_version_policy_is_separate_from_alias_pointing_at_it(deployed: Deployed) -> None:
    # Given a permission on version 1 (which alias "live" points at)
    _allow_apigw(deployed.client, Qualifier=deployed.version)

    # When the alias policy is read
    with pytest.raises(ClientError) as excinfo:
        deployed.client.get_policy(FunctionName=FUNCTION, Qualifier="live")

    # Then the alias has no policy; the version has the statement
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)
    assert _sids(deployed.client, deployed.version) == ["apigw"]


def test_latest_qualifier_is_the_unqualified_policy(deployed: Deployed) -> None:
    # Given a permission added with Qualifier $LATEST
    _allow_apigw(deployed.client, Qualifier="$LATEST")

    # When the unqualified policy is read
    policy = _policy(deployed.client)

    # Then it holds the statement, with the unqualified function ARN as resource
    assert policy["Document"]["Statement"] == [_apigw_statement("apigw", FUNCTION_ARN, API_ARN)]


def test_same_sid_may_exist_on_each_qualifier(deployed: Deployed) -> None:
    # Given a permission "apigw" on the unqualified function
    _allow_apigw(deployed.client)

    # When the same Sid is added to the alias and the version
    _allow_apigw(deployed.client, Qualifier="live")
    _allow_apigw(deployed.client, Qualifier=deployed.version)

    # Then each policy holds its own statement
    assert policy_statements(FUNCTION)[0]["Resource"] == FUNCTION_ARN
    assert policy_statements(FUNCTION, "live")[0]["Resource"] == f"{FUNCTION_ARN}:live"
    assert policy_statements(FUNCTION, "1")[0]["Resource"] == f"{FUNCTION_ARN}:1"


# --- AddPermission ---------------------------------------------------------------------------------


def test_duplicate_statement_id_is_a_conflict(deployed: Deployed) -> None:
    # Given a permission "apigw" on the alias
    _allow_apigw(deployed.client, Qualifier="live")

    # When the same Sid is added to the alias again
    with pytest.raises(ClientError) as excinfo:
        _allow_apigw(deployed.client, Qualifier="live")

    # Then AWS answers 409 ResourceConflictException and keeps one statement
    assert _error(excinfo)[:2] == ("ResourceConflictException", 409)
    assert _sids(deployed.client, "live") == ["apigw"]


def test_policy_exactly_at_size_limit_is_accepted(deployed: Deployed) -> None:
    # Given a SourceArn padded so the policy document is exactly the limit
    base = _apigw_statement("big", FUNCTION_ARN, API_ARN)
    source_arn = API_ARN + "x" * (POLICY_SIZE_LIMIT - policy_size([base]))

    # When it is added
    _allow_apigw(deployed.client, "big", source_arn)

    # Then it is stored and the policy is exactly at the limit
    assert policy_size(policy_statements(FUNCTION)) == POLICY_SIZE_LIMIT


def test_policy_over_size_limit_is_rejected(deployed: Deployed) -> None:
    # Given 25 statements of about 550 bytes, and a SourceArn that overshoots the limit by one byte
    for i in range(25):
        _allow_apigw(deployed.client, f"s{i}", f"{API_ARN}/{i}/" + "x" * 400)
    before = _policy(deployed.client)
    stored = policy_statements(FUNCTION)
    overshoot = (
        POLICY_SIZE_LIMIT + 1 - policy_size([*stored, _apigw_statement("last", FUNCTION_ARN, API_ARN)])
    )
    assert overshoot > 0

    # When that statement is added
    with pytest.raises(ClientError) as excinfo:
        _allow_apigw(deployed.client, "last", API_ARN + "x" * overshoot)

    # Then AWS answers 400 PolicyLengthExceededException naming the final size, and nothing changes
    assert _error(excinfo) == (
        "PolicyLengthExceededException",
        400,
        "The final policy size (20481) is bigger than the limit (20480).",
    )
    assert _policy(deployed.client) == before


def test_add_with_stale_revision_id_fails_precondition(deployed: Deployed) -> None:
    # Given an alias policy whose revision then moves on
    _allow_apigw(deployed.client, "first", Qualifier="live")
    stale = _policy(deployed.client, "live")["RevisionId"]
    _allow_apigw(deployed.client, "second", Qualifier="live")

    # When a permission is added with the stale RevisionId
    with pytest.raises(ClientError) as excinfo:
        _allow_apigw(deployed.client, "third", Qualifier="live", RevisionId=stale)

    # Then AWS answers 412 PreconditionFailedException and does not add it
    assert _error(excinfo)[:2] == ("PreconditionFailedException", 412)
    assert _sids(deployed.client, "live") == ["first", "second"]


def test_add_with_current_revision_id_succeeds(deployed: Deployed) -> None:
    # Given an alias policy and its current RevisionId
    _allow_apigw(deployed.client, "first", Qualifier="live")
    current = _policy(deployed.client, "live")["RevisionId"]

    # When a permission is added with that RevisionId
    _allow_apigw(deployed.client, "second", Qualifier="live", RevisionId=current)

    # Then it is added
    assert _sids(deployed.client, "live") == ["first", "second"]


def test_add_permission_returns_the_stored_statement(deployed: Deployed) -> None:
    # Given nothing on the alias
    # When a permission is added
    response = deployed.client.add_permission(
        FunctionName=FUNCTION,
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal=APIGW,
        SourceArn=API_ARN,
        Qualifier="live",
    )

    # Then the response carries the statement as stored, with HTTP 201
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(response["Statement"]) == policy_statements(FUNCTION, "live")[0]


# --- statement shape -------------------------------------------------------------------------------


def test_service_statement_shape_matches_aws(deployed: Deployed) -> None:
    # Given nothing on the alias
    # When API Gateway is allowed with SourceArn and SourceAccount
    _allow_apigw(deployed.client, Qualifier="live", SourceAccount=ACCOUNT)

    # Then the statement is exactly what AWS writes
    assert _policy(deployed.client, "live")["Document"] == {
        "Version": "2012-10-17",
        "Id": "default",
        "Statement": [
            {
                "Sid": "apigw",
                "Effect": "Allow",
                "Principal": {"Service": APIGW},
                "Action": "lambda:InvokeFunction",
                "Resource": f"{FUNCTION_ARN}:live",
                "Condition": {
                    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                    "ArnLike": {"AWS:SourceArn": API_ARN},
                },
            }
        ],
    }


def test_account_statement_shape_without_condition_matches_aws(deployed: Deployed) -> None:
    # Given nothing on the function
    # When another account is allowed, with no condition
    deployed.client.add_permission(
        FunctionName=FUNCTION, StatementId="xacct", Action="lambda:InvokeFunction", Principal="111122223333"
    )

    # Then the principal is the account root and there is no Condition key
    assert policy_statements(FUNCTION) == [
        {
            "Sid": "xacct",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "lambda:InvokeFunction",
            "Resource": FUNCTION_ARN,
        }
    ]


def test_org_and_function_url_conditions_match_aws(deployed: Deployed) -> None:
    # Given nothing on the function
    # When a function-URL permission restricted to an organisation is added
    deployed.client.add_permission(
        FunctionName=FUNCTION,
        StatementId="url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        PrincipalOrgID="o-a1b2c3d4e5",
        FunctionUrlAuthType="AWS_IAM",
    )

    # Then both conditions sit under StringEquals
    assert policy_statements(FUNCTION) == [
        {
            "Sid": "url",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": FUNCTION_ARN,
            "Condition": {
                "StringEquals": {
                    "aws:PrincipalOrgID": "o-a1b2c3d4e5",
                    "lambda:FunctionUrlAuthType": "AWS_IAM",
                }
            },
        }
    ]


# --- RemovePermission ------------------------------------------------------------------------------


def test_remove_with_stale_revision_id_fails_precondition(deployed: Deployed) -> None:
    # Given a policy whose revision then moves on
    _allow_apigw(deployed.client, "first")
    stale = _policy(deployed.client)["RevisionId"]
    _allow_apigw(deployed.client, "second")

    # When a statement is removed with the stale RevisionId
    with pytest.raises(ClientError) as excinfo:
        deployed.client.remove_permission(FunctionName=FUNCTION, StatementId="first", RevisionId=stale)

    # Then AWS answers 412 PreconditionFailedException and keeps the statement
    assert _error(excinfo)[:2] == ("PreconditionFailedException", 412)
    assert _sids(deployed.client) == ["first", "second"]


def test_remove_with_current_revision_id_succeeds(deployed: Deployed) -> None:
    # Given an alias policy with two statements and its current RevisionId
    _allow_apigw(deployed.client, "first", Qualifier="live")
    _allow_apigw(deployed.client, "second", Qualifier="live")
    current = _policy(deployed.client, "live")["RevisionId"]

    # When one is removed with that RevisionId
    response = deployed.client.remove_permission(
        FunctionName=FUNCTION, StatementId="first", Qualifier="live", RevisionId=current
    )

    # Then it is gone (HTTP 204) and the other stays
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _sids(deployed.client, "live") == ["second"]


def test_remove_honours_qualifier(deployed: Deployed) -> None:
    # Given the same Sid on the unqualified function and on the alias
    _allow_apigw(deployed.client)
    _allow_apigw(deployed.client, Qualifier="live")

    # When it is removed from the alias
    deployed.client.remove_permission(FunctionName=FUNCTION, StatementId="apigw", Qualifier="live")

    # Then the alias policy is gone and the unqualified one is untouched
    with pytest.raises(ClientError) as excinfo:
        deployed.client.get_policy(FunctionName=FUNCTION, Qualifier="live")
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)
    assert _sids(deployed.client) == ["apigw"]


def test_remove_unknown_sid_is_not_found(deployed: Deployed) -> None:
    # Given a policy without Sid "ghost"
    _allow_apigw(deployed.client)

    # When "ghost" is removed
    with pytest.raises(ClientError) as excinfo:
        deployed.client.remove_permission(FunctionName=FUNCTION, StatementId="ghost")

    # Then AWS answers 404 ResourceNotFoundException naming the statement
    assert _error(excinfo) == (
        "ResourceNotFoundException",
        404,
        "Statement ghost is not found in resource policy.",
    )
    assert _sids(deployed.client) == ["apigw"]


def test_remove_from_empty_policy_is_not_found(deployed: Deployed) -> None:
    # Given an alias with no policy
    # When a statement is removed from it
    with pytest.raises(ClientError) as excinfo:
        deployed.client.remove_permission(FunctionName=FUNCTION, StatementId="apigw", Qualifier="live")

    # Then AWS answers 404 ResourceNotFoundException
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)


# --- unknown functions and qualifiers ------------------------------------------------------------


@pytest.mark.parametrize("operation", ["add_permission", "get_policy", "remove_permission"])
def test_unknown_function_is_not_found(deployed: Deployed, operation: str) -> None:
    # Given no function "ghost"
    calls: dict[str, Callable[[], object]] = {
        "add_permission": lambda: deployed.client.add_permission(
            FunctionName="ghost", StatementId="apigw", Action="lambda:InvokeFunction", Principal=APIGW
        ),
        "get_policy": lambda: deployed.client.get_policy(FunctionName="ghost"),
        "remove_permission": lambda: deployed.client.remove_permission(FunctionName="ghost", StatementId="x"),
    }

    # When a policy operation names it
    with pytest.raises(ClientError) as excinfo:
        calls[operation]()

    # Then AWS answers 404 ResourceNotFoundException
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize("qualifier", ["staging", "7"])
def test_unknown_qualifier_is_not_found(deployed: Deployed, qualifier: str) -> None:
    # Given no alias "staging" and no version 7
    # When a permission is added to it
    with pytest.raises(ClientError) as excinfo:
        _allow_apigw(deployed.client, Qualifier=qualifier)

    # Then AWS answers 404 ResourceNotFoundException
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)


# --- RevisionId and FunctionName forms -----------------------------------------------------------


def test_revision_id_changes_after_each_write(deployed: Deployed) -> None:
    # Given a fresh policy
    _allow_apigw(deployed.client, "first")
    revisions = [_policy(deployed.client)["RevisionId"]]

    # When it is written twice more (add, then remove)
    _allow_apigw(deployed.client, "second")
    revisions.append(_policy(deployed.client)["RevisionId"])
    deployed.client.remove_permission(FunctionName=FUNCTION, StatementId="first")
    revisions.append(_policy(deployed.client)["RevisionId"])

    # Then every write produced a new RevisionId, and reads do not change it
    assert len(set(revisions)) == 3
    assert _policy(deployed.client)["RevisionId"] == revisions[-1]


def test_full_arn_with_qualifier_targets_that_qualifier(deployed: Deployed) -> None:
    # Given the alias's full ARN as FunctionName
    alias_arn = f"{FUNCTION_ARN}:live"

    # When a permission is added through it
    deployed.client.add_permission(
        FunctionName=alias_arn, StatementId="apigw", Action="lambda:InvokeFunction", Principal=APIGW
    )

    # Then it lands in the alias policy, readable by ARN or by name + Qualifier
    assert _sids(deployed.client, "live") == ["apigw"]
    by_arn = json.loads(deployed.client.get_policy(FunctionName=alias_arn)["Policy"])
    assert [s["Resource"] for s in by_arn["Statement"]] == [alias_arn]
    assert policy_statements(FUNCTION) == []


def test_partial_arn_targets_the_function(deployed: Deployed) -> None:
    # Given the partial ARN "account:function:name"
    # When a permission is added through it
    deployed.client.add_permission(
        FunctionName=f"{ACCOUNT}:function:{FUNCTION}",
        StatementId="apigw",
        Action="lambda:InvokeFunction",
        Principal=APIGW,
    )

    # Then it lands in the unqualified policy
    assert _sids(deployed.client) == ["apigw"]


# --- lifecycle ---------------------------------------------------------------------------------------


def test_recreated_function_starts_without_policy(deployed: Deployed) -> None:
    # Given a permission on a function that is then deleted and created again
    _allow_apigw(deployed.client)
    config = deployed.client.get_function_configuration(FunctionName=FUNCTION)
    deployed.client.delete_function(FunctionName=FUNCTION)
    deployed.client.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=config["Role"],
        Handler="index.handler",
        Code={"ZipFile": _handler_zip()},
    )

    # When its policy is read
    with pytest.raises(ClientError) as excinfo:
        deployed.client.get_policy(FunctionName=FUNCTION)

    # Then there is none, as on AWS
    assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_store_is_wiped_when_moto_resets_the_backend(deployed: Deployed) -> None:
    # Given a permission in the store
    _allow_apigw(deployed.client)
    backend: LambdaBackend = get_backend(ACCOUNT, REGION)
    assert policy_statements(FUNCTION)

    # When moto resets the Lambda backend
    backend.reset()

    # Then the store went with it
    assert not hasattr(backend, "_faithful_lambda_policies")


def test_install_is_idempotent_and_uninstall_restores_moto(deployed: Deployed) -> None:
    # Given the patch installed twice
    faithful_lambda.install()
    patched = LambdaBackend.add_permission

    # When it is uninstalled
    faithful_lambda.uninstall()
    try:
        # Then moto's own method is back and a second install patches again
        assert LambdaBackend.add_permission is not patched
        assert not faithful_lambda.is_installed()
    finally:
        faithful_lambda.install()
    assert LambdaBackend.add_permission is patched


# --- ThreadedMotoServer ---------------------------------------------------------------------------


def test_threaded_moto_server_keeps_alias_policy_separate(_credentials: None) -> None:
    # Given a moto server in this process and a function deployed through it
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = _deploy(endpoint).client

        # When a permission is added to alias "live" over HTTP
        _allow_apigw(client, Qualifier="live")

        # Then only the alias policy holds it
        with pytest.raises(ClientError) as excinfo:
            client.get_policy(FunctionName=FUNCTION)
        assert _error(excinfo)[:2] == ("ResourceNotFoundException", 404)
        assert _sids(client, "live") == ["apigw"]
    finally:
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
        )
        server.stop()
