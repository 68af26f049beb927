"""Issue 9's repair and scan semantics, end to end through `permheal scan` / `permheal remediate --local`.

Mixed qualifiers, Deny statements, the dedupe scope of a grant, what `scan --api` reports, and
statements CloudFormation owns. Each test builds the setup with real boto3 calls against moto with
AWS-faithful Lambda policies and reads the policies Lambda holds afterwards.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from permheal.adapters.lambda_policy import LambdaPolicies
from permheal.adapters.ports import Adapters
from permheal.arns import FunctionRef
from permheal.config import Settings
from permheal.models import Finding, FindingKind
from permheal.policy import Policy
from permheal.workflow.repair import settings_options
from permheal.workflow.scan import scan as scan_api
from permheal_local.builder import ACCOUNT, REGION, World, execute_api, function_arn
from tests.integration.support import allows, build_petstore, received, subscribe_queue

OTHER_ACCOUNT = "210987654321"
# Statement ids CloudFormation gives AWS::Lambda::Permission resources: {stack}-{LogicalId}-{suffix}.
CFN_PROD = "petstore-PetsGetPermissionProd-1T51HIPIZC1R9"
CFN_TEST = "petstore-PetsGetPermissionTest-jYLo8ECBABS5"


# --- helpers ----------------------------------------------------------------------------------------


def scan(cli: Any, *flags: str) -> Any:
    return cli("scan", "--format", "json", *flags)


def remediate(cli: Any, api: str, *flags: str) -> Any:
    return cli("remediate", "--api", api, "--local", "--format", "json", *flags)


def kinds(run: Any) -> list[str]:
    return [f["kind"] for f in run.json["findings"]]


def of_kind(run: Any, kind: str) -> list[dict[str, Any]]:
    return [f for f in run.json["findings"] if f["kind"] == kind]


def sids(world: World, function: str, qualifier: str | None = None) -> list[str]:
    return [s["Sid"] for s in world.statements(function, qualifier)]


def pets_api(
    world: World,
    name: str = "pets",
    *,
    stages: dict[str, dict[str, str]] | None = None,
    uri: str | None = None,
) -> str:
    """GET /pets invoking `uri` (default pets:${stageVariables.alias}), deployed per stage, allowlisted."""
    api = world.rest_api(name)
    world.method(api, "/pets", "GET", uri or function_arn("pets", "${stageVariables.alias}"))
    for stage, variables in (stages or {"prod": {"alias": "live"}}).items():
        world.deploy(api, stage, variables)
    world.allow("*")
    return api


def put_statement(function: str, qualifier: str | None, statement: dict[str, Any]) -> None:
    """Write a statement AddPermission cannot create (a Deny) straight into the faithful Lambda store."""
    from moto.awslambda.utils import get_backend

    from permheal_local import faithful_lambda

    backend = get_backend(ACCOUNT, REGION)
    with faithful_lambda._LOCK:
        target = faithful_lambda._resolve(backend, function, qualifier)
        policy = faithful_lambda._policy(backend, target)
        policy.statements.append(statement)
        policy.revision = str(uuid.uuid4())


def deny(sid: str, source_pattern: str, resource: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": resource,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_pattern}},
    }


# --- 1. mixed qualifiers ----------------------------------------------------------------------------


@pytest.fixture
def mixed(world: World) -> str:
    """dev invokes pets unqualified (stage variable `$LATEST`), prod invokes pets:live."""
    world.function("pets", alias="live")
    return pets_api(world, stages={"dev": {"alias": "$LATEST"}, "prod": {"alias": "live"}})


def test_mixed_qualifiers_on_one_api_are_scanned_as_two_policies(world: World, cli: Any, mixed: str) -> None:
    # Given dev calling pets unqualified and prod calling pets:live, neither granted
    # When the account is scanned
    run = scan(cli)

    # Then exit 1 and one missing grant per qualifier, each on its own stage
    assert run.code == 1
    found = {(f["stage"], f["qualifier"]) for f in of_kind(run, "missing_permission")}
    assert found == {("dev", None), ("prod", "live")}


def test_mixed_qualifiers_dry_run_plans_one_change_per_qualifier(world: World, cli: Any, mixed: str) -> None:
    # Given dev calling pets unqualified and prod calling pets:live, neither granted
    # When the API is remediated with --dry-run
    run = remediate(cli, "pets", "--dry-run")

    # Then both policies are planned and neither is written
    assert (run.code, run.json["outcome"]) == (0, "dry_run")
    assert sorted((c["qualifier"] or "", len(c["added"])) for c in run.json["changes"]) == [
        ("", 1),
        ("live", 1),
    ]
    assert world.statements("pets") == [] and world.statements("pets", "live") == []


def test_mixed_qualifiers_are_repaired_each_on_its_own_policy(world: World, cli: Any, mixed: str) -> None:
    # Given dev calling pets unqualified and prod calling pets:live, neither granted
    # When the API is remediated
    run = remediate(cli, "pets")

    # Then each call is allowed by the policy of the qualifier it invokes, and a scan is clean
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert allows(world, "pets", None, execute_api(mixed, "dev/GET/pets"))
    assert allows(world, "pets", "live", execute_api(mixed, "prod/GET/pets"))
    assert (scan(cli).code, scan(cli).json) == (0, {"findings": []})


def test_two_apis_sharing_a_function_on_different_qualifiers(world: World, cli: Any) -> None:
    # Given pets calling the function unqualified and orders calling its alias
    world.function("pets", alias="live")
    pets = pets_api(world, "pets", uri=function_arn("pets"))
    orders = pets_api(world, "orders", uri=function_arn("pets", "live"))

    # When the account is scanned, then each API remediated
    scanned = scan(cli)
    runs = [remediate(cli, "pets"), remediate(cli, "orders")]

    # Then the scan names both calls, both repairs succeed, and the account is clean afterwards
    assert scanned.code == 1
    assert {(f["apiId"], f["qualifier"]) for f in of_kind(scanned, "missing_permission")} == {
        (pets, None),
        (orders, "live"),
    }
    assert [(r.code, r.json["outcome"]) for r in runs] == [(0, "repaired"), (0, "repaired")]
    assert scan(cli).code == 0


# --- 4. a call still denied ----------------------------------------------------------------------------


@pytest.fixture
def denied(world: World) -> str:
    """prod's call to pets:live is granted, and also blocked by a Deny statement `block-prod`."""
    world.function("pets", alias="live")
    api = pets_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="pets-get", qualifier="live")
    put_statement(
        "pets", "live", deny("block-prod", execute_api(api, "prod/*"), function_arn("pets", "live"))
    )
    return api


def test_a_call_still_denied_fails_naming_the_deny_statement(world: World, cli: Any, denied: str) -> None:
    # Given a call blocked by a Deny statement, with nothing else to change
    before = world.statements("pets", "live")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then it failed (exit 1), the finding and the error name the statement, and nothing changed
    assert (run.code, run.json["outcome"]) == (1, "failed")
    (finding,) = of_kind(run, "missing_permission")
    assert (finding["sid"], finding["sourceArn"]) == ("block-prod", execute_api(denied, "prod/GET/pets"))
    assert "block-prod" in run.json["error"]
    assert run.json["changes"] == []
    assert world.statements("pets", "live") == before


def test_a_dry_run_with_a_denied_call_fails_too(world: World, cli: Any, denied: str) -> None:
    # Given a call blocked by a Deny statement
    # When the API is remediated with --dry-run
    run = remediate(cli, "pets", "--dry-run")

    # Then the dry run predicts the failure (exit 1) and names the statement
    assert (run.code, run.json["outcome"]) == (1, "failed")
    assert "block-prod" in run.json["error"]
    assert [f["sid"] for f in of_kind(run, "missing_permission")] == ["block-prod"]


def test_a_deny_on_one_call_does_not_stop_the_repair_of_the_others(world: World, cli: Any) -> None:
    # Given GET /pets denied on prod, and POST /pets missing its grant
    world.function("pets", alias="live")
    api = pets_api(world)
    world.method(api, "/pets", "POST", function_arn("pets", "${stageVariables.alias}"))
    world.deploy(api, "prod", {"alias": "live"})
    put_statement(
        "pets", "live", deny("block-get", execute_api(api, "*/GET/*"), function_arn("pets", "live"))
    )

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then POST is granted, GET still fails, and the run is failed naming the Deny
    assert (run.code, run.json["outcome"]) == (1, "failed")
    assert allows(world, "pets", "live", execute_api(api, "prod/POST/pets"))
    assert "block-get" in run.json["error"]
    assert [a["sourceArn"] for c in run.json["changes"] for a in c["added"]] == [
        execute_api(api, "*/POST/pets")
    ]


# --- 5. dedupe scope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "elsewhere",
    [{"region": "eu-west-1"}, {"account": OTHER_ACCOUNT}],
    ids=["other-region", "other-account"],
)
def test_duplicates_naming_the_api_id_elsewhere_are_not_removed(
    world: World, cli: Any, elsewhere: dict[str, str]
) -> None:
    # Given pets:live granted for the API, and a duplicate pair naming its id in another region or account
    world.function("pets", alias="live")
    api = pets_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="pets-get", qualifier="live")
    for sid in ("far-1", "far-2"):
        world.grant("pets", execute_api(api, "*/GET/pets", **elsewhere), sid=sid, qualifier="live")
    before = world.statements("pets", "live")

    # When the API is remediated, and scanned
    run = remediate(cli, "pets")
    scanned = scan(cli, "--api", "pets")

    # Then neither is removed nor reported: they belong to another API that happens to share the id
    assert (run.code, run.json["outcome"], run.json["changes"]) == (0, "no_change", [])
    assert world.statements("pets", "live") == before
    assert (scanned.code, scanned.json) == (0, {"findings": []})


# --- 6. what `scan --api` reports -------------------------------------------------------------------


@pytest.fixture
def shared(world: World) -> tuple[str, str]:
    """pets and orders both call pets:live, each granted; orders' grant has a console copy."""
    world.function("pets", alias="live")
    pets = pets_api(world, "pets")
    orders = pets_api(world, "orders")
    world.grant("pets", execute_api(pets, "*/GET/pets"), sid="pets-get", qualifier="live")
    world.grant("pets", execute_api(orders, "*/GET/pets"), sid="orders-get", qualifier="live")
    world.grant("pets", execute_api(orders, "*/GET/pets"), sid="orders-copy", qualifier="live")
    return pets, orders


def test_scan_of_an_api_does_not_report_another_apis_duplicate(
    world: World, cli: Any, shared: tuple[str, str]
) -> None:
    # Given orders' duplicate grant on the function pets shares with it
    # When only pets is scanned
    run = scan(cli, "--api", "pets")

    # Then nothing is reported: remediating pets would not touch orders' grants
    assert (run.code, run.json) == (0, {"findings": []})
    assert remediate(cli, "pets").json["changes"] == []


def test_scan_of_the_api_owning_the_duplicate_reports_what_its_remediation_removes(
    world: World, cli: Any, shared: tuple[str, str]
) -> None:
    # Given orders' duplicate grant on the shared function
    _, orders = shared

    # When orders is scanned, then remediated, then scanned again
    scanned = scan(cli, "--api", "orders")
    run = remediate(cli, "orders")

    # Then the scan reports the duplicate, the remediation removes exactly it, and the next scan is clean
    assert scanned.code == 1
    assert [(f["kind"], f["apiId"], f["sid"]) for f in scanned.json["findings"]] == [
        ("duplicate_statement", orders, "orders-copy")
    ]
    assert [r["sid"] for c in run.json["changes"] for r in c["removed"]] == ["orders-copy"]
    assert scan(cli, "--api", "orders").code == 0


def test_account_scan_reports_each_apis_duplicate_once(
    world: World, cli: Any, shared: tuple[str, str]
) -> None:
    # Given orders' duplicate grant on the function both APIs call
    # When the whole account is scanned
    run = scan(cli)

    # Then it is reported exactly once
    assert [f["sid"] for f in run.json["findings"]] == ["orders-copy"]


def test_scan_does_not_report_a_duplicate_on_a_qualifier_the_api_does_not_call(
    world: World, cli: Any
) -> None:
    # Given pets calls pets:live, orders calls pets unqualified, and pets:live holds orders' duplicate pair
    world.function("pets", alias="live")
    pets = pets_api(world, "pets")
    orders = pets_api(world, "orders", uri=function_arn("pets"))
    world.grant("pets", execute_api(pets, "*/GET/pets"), sid="pets-get", qualifier="live")
    world.grant("pets", execute_api(orders, "*/GET/pets"), sid="orders-get")
    for sid in ("orders-old-1", "orders-old-2"):
        world.grant("pets", execute_api(orders, "*/GET/pets"), sid=sid, qualifier="live")

    # When pets is scanned
    run = scan(cli, "--api", "pets")

    # Then nothing is reported, as remediating pets never removes another API's grants
    assert (run.code, run.json) == (0, {"findings": []})


def test_scan_reads_each_shared_policy_once(
    world: World, cli: Any, shared: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two APIs calling the same function+qualifier, counting policy reads
    reads: Counter[str] = Counter()
    original = LambdaPolicies.read

    def counting(self: LambdaPolicies, function: FunctionRef) -> Policy:
        reads[function.arn] += 1
        return original(self, function)

    monkeypatch.setattr(LambdaPolicies, "read", counting)

    # When the account is scanned
    scan(cli)

    # Then the shared policy was read once
    assert reads == Counter({function_arn("pets", "live"): 1})


# --- 10. statements CloudFormation owns ---------------------------------------------------------------


@pytest.fixture
def cdk_grants(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """CDK-style per-stage grants for GET /pets (prod and test-invoke-stage) and an ungranted POST /pets."""
    monkeypatch.setenv("PERMHEAL_SCOPE", "api")
    world.function("pets", alias="live")
    api = pets_api(world)
    world.method(api, "/pets", "POST", function_arn("pets", "${stageVariables.alias}"))
    world.deploy(api, "prod", {"alias": "live"})
    world.grant("pets", execute_api(api, "prod/GET/pets"), sid=CFN_PROD, qualifier="live")
    world.grant("pets", execute_api(api, "test-invoke-stage/GET/pets"), sid=CFN_TEST, qualifier="live")
    return api


def test_covered_statements_a_stack_owns_are_reported_not_removed(
    world: World, cli: Any, cdk_grants: str
) -> None:
    # Given CloudFormation-named grants that permheal's API-wide grant will cover
    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the missing call is granted, the stack's statements stay, and each is reported as IaC-owned
    assert (run.code, run.json["outcome"]) == (0, "repaired")
    assert allows(world, "pets", "live", execute_api(cdk_grants, "prod/POST/pets"))
    assert {CFN_PROD, CFN_TEST} <= set(sids(world, "pets", "live"))
    assert [r for c in run.json["changes"] for r in c["removed"]] == []
    redundant = of_kind(run, "redundant_statement")
    assert {f["sid"] for f in redundant} == {CFN_PROD, CFN_TEST}
    assert all("CloudFormation" in f["detail"] and "PERMHEAL_DEDUPE_IAC" in f["detail"] for f in redundant)


def test_covered_statements_a_stack_owns_are_removed_when_allowed(
    world: World, cli: Any, cdk_grants: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same grants, and PERMHEAL_DEDUPE_IAC=true
    monkeypatch.setenv("PERMHEAL_DEDUPE_IAC", "true")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the covered stack statements are removed after the wider grant exists
    assert run.json["outcome"] == "repaired"
    assert {r["sid"] for c in run.json["changes"] for r in c["removed"]} == {CFN_PROD, CFN_TEST}
    assert not {CFN_PROD, CFN_TEST} & set(sids(world, "pets", "live"))
    assert allows(world, "pets", "live", execute_api(cdk_grants, "prod/GET/pets"))


def test_a_console_copy_of_a_stack_statement_is_removed_and_the_stack_one_kept(
    world: World, cli: Any
) -> None:
    # Given a console copy added before the stack's own identical statement
    world.function("pets", alias="live")
    api = pets_api(world)
    world.grant("pets", execute_api(api, "*/GET/pets"), sid="console-copy", qualifier="live")
    world.grant("pets", execute_api(api, "*/GET/pets"), sid=CFN_PROD, qualifier="live")

    # When the API is remediated
    run = remediate(cli, "pets")

    # Then the console copy goes and the statement the stack owns stays
    assert run.json["outcome"] == "repaired"
    assert sids(world, "pets", "live") == [CFN_PROD]
    assert [r["reason"] for c in run.json["changes"] for r in c["removed"]] == [f"duplicate of {CFN_PROD}"]


def test_the_deployed_workflow_fails_and_notifies_a_call_still_denied(
    world: World, stack: Any, cli: Any
) -> None:
    # Given the petstore's prod call to pets:live blocked by a Deny, and on-call subscribed
    petstore = build_petstore(world)
    inbox = subscribe_queue(world, stack.topic_arn)
    put_statement("pets", "live", deny("block-prod", petstore.method_arn(), function_arn("pets", "live")))

    # When `permheal remediate` runs the deployed workflow
    run = cli(
        "remediate", "--api", "petstore", "--state-machine-arn", stack.state_machine_arn, "--format", "json"
    )

    # Then the run failed naming the Deny (the authorizer grant is still added), and on-call was told
    assert (run.code, run.json["outcome"]) == (1, "failed")
    assert "block-prod" in run.json["error"]
    assert "block-prod" in [f["sid"] for f in of_kind(run, "missing_permission")]
    assert allows(world, "pets-authorizer", None, petstore.authorizer_arn())
    (notice,) = received(world, inbox)
    assert notice.attributes["outcome"] == "failed"


def test_scan_with_the_deployment_settings_says_what_remediate_would_do_with_stack_statements(
    world: World, cdk_grants: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CloudFormation-named grants an api-scope repair would cover
    def redundant() -> list[Finding]:
        options = settings_options(Settings.from_env())
        findings = scan_api(Adapters.default(), ["pets"], None, options)
        return [f for f in findings if f.kind is FindingKind.REDUNDANT_STATEMENT]

    # When pets is scanned with the default settings, then with PERMHEAL_DEDUPE_IAC=true
    kept = redundant()
    monkeypatch.setenv("PERMHEAL_DEDUPE_IAC", "true")
    removed = redundant()

    # Then both report the two statements; only the first says they stay
    assert {f.sid for f in kept} == {f.sid for f in removed} == {CFN_PROD, CFN_TEST}
    assert all("reported, not removed" in f.detail for f in kept)
    assert not any("reported, not removed" in f.detail for f in removed)
