"""Repair planning for one function+qualifier's policy (permheal.planner)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arns import ApiRef, FunctionRef
from permheal.models import (
    AddedStatement,
    Change,
    FindingKind,
    RemovedStatement,
    Scope,
    Target,
    TargetKind,
)
from permheal.planner import Plan, PlanOptions, allows, iac_owner, permheal_sid, plan_repair, policy_after
from permheal.policy import (
    APIGATEWAY_PRINCIPAL,
    POLICY_SIZE_LIMIT,
    InvokeRequest,
    Policy,
    evaluate,
    invoke_statement,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
REGION = "us-east-1"
API1 = ApiRef("aws", REGION, ACCOUNT, "api1")
API2 = ApiRef("aws", REGION, ACCOUNT, "api2")
P1, P2 = API1.prefix, API2.prefix
FN = FunctionRef("aws", REGION, ACCOUNT, "orders")
LIVE = FunctionRef("aws", REGION, ACCOUNT, "orders", "live")


def route(
    method: str, path: str, stage: str = "prod", api: ApiRef = API1, function: FunctionRef = FN
) -> Target:
    return Target(TargetKind.INTEGRATION, api, stage, function, method, path)


def authorizer(authorizer_id: str, api: ApiRef = API1, function: FunctionRef = FN) -> Target:
    return Target(TargetKind.AUTHORIZER, api, "prod", function, authorizer_id=authorizer_id)


def grant(sid: str, pattern: str, function: FunctionRef = FN, **condition: Any) -> dict[str, Any]:
    statement = invoke_statement(sid, function.arn, pattern)
    statement["Condition"].update(condition)
    return statement


def plan(
    policy: Policy | tuple[dict[str, Any], ...],
    targets: list[Target],
    function: FunctionRef = FN,
    **options: Any,
) -> Plan:
    if not isinstance(policy, Policy):
        policy = Policy(tuple(policy))
    return plan_repair(function, policy, targets, PlanOptions(**options), {"api1": "orders-api"})


def allowed(policy: Policy, source_arn: str, function: FunctionRef = FN) -> bool:
    return evaluate(policy, InvokeRequest(function.arn, source_arn, ACCOUNT)).allowed


def added_sources(p: Plan) -> list[str]:
    return [a.source_arn for a in p.change().added]


def kinds(p: Plan) -> list[FindingKind]:
    return [f.kind for f in p.findings]


def filler(count: int, prefix: str = P2, function: FunctionRef = FN) -> tuple[dict[str, Any], ...]:
    """Distinct, mutually non-covering grants, to push a policy towards the size limit."""
    return tuple(
        grant(f"filler-{i:04d}", f"{prefix}/prod/GET/items/i{i:04d}", function) for i in range(count)
    )


def fill_to(limit: int, prefix: str = P2) -> Policy:
    """The largest filler policy whose size stays at or under `limit` bytes."""
    count = 1
    while Policy(filler(count + 1, prefix)).size_bytes <= limit:
        count += 1
    return Policy(filler(count, prefix))


def policy_of_size(size: int, prefix: str = P2) -> Policy:
    """A filler policy of exactly `size` bytes (the last Sid is padded)."""
    statements = list(fill_to(size, prefix).statements)
    missing = size - Policy(tuple(statements)).size_bytes
    statements[-1] = {**statements[-1], "Sid": statements[-1]["Sid"] + "x" * missing}
    policy = Policy(tuple(statements))
    assert policy.size_bytes == size
    return policy


def statement_bytes(statement: dict[str, Any]) -> int:
    """What appending `statement` to a non-empty policy adds to its size (the JSON plus a comma)."""
    return Policy((statement, statement)).size_bytes - Policy((statement,)).size_bytes


# --- adding grants ---------------------------------------------------------------------------------


def test_a_missing_permission_is_added_as_a_method_scoped_grant_on_the_exact_qualifier() -> None:
    # Given an alias without a policy and a GET /pets/{petId} integration invoking it
    target = route("GET", "/pets/{petId}", function=LIVE)
    # When the repair is planned with the default scope
    result = plan((), [target], function=LIVE)
    # Then one SAM-style grant is added on the alias, with the deterministic sid, and nothing removed
    pattern = f"{P1}/*/GET/pets/*"
    assert result.add == (invoke_statement(permheal_sid(pattern, "live"), LIVE.arn, pattern),)
    assert result.removals == ()
    assert result.refusal is None


def test_a_missing_permission_is_reported_with_the_sid_that_fixes_it() -> None:
    # Given a target without a grant
    target = route("GET", "/pets")
    # When the repair is planned
    result = plan((), [target])
    # Then a missing_permission finding names the API, the call and the sid to add
    (finding,) = result.findings
    assert finding.kind is FindingKind.MISSING_PERMISSION
    assert (finding.api_id, finding.api_name, finding.source_arn, finding.sid) == (
        "api1",
        "orders-api",
        f"{P1}/prod/GET/pets",
        result.add[0]["Sid"],
    )


@pytest.mark.parametrize(
    ("pattern", "qualifier"),
    [(f"{P1}/*/GET/pets", None), (f"{P1}/*/GET/pets", "live"), (f"{P1}/authorizers/a1", "7")],
)
def test_permheal_sid_is_stable_and_valid_for_add_permission(pattern: str, qualifier: str | None) -> None:
    # Given a source pattern and a qualifier
    # When the sid is computed twice
    sid = permheal_sid(pattern, qualifier)
    # Then it is the same both times, `permheal-` + 16 hex digits, a valid StatementId
    assert sid == permheal_sid(pattern, qualifier)
    assert re.fullmatch(r"permheal-[0-9a-f]{16}", sid)


def test_permheal_sid_differs_per_qualifier_and_per_pattern() -> None:
    # Given one pattern on two qualifiers, and two patterns on one qualifier
    # When their sids are computed
    sids = {
        permheal_sid(f"{P1}/*/GET/pets", None),
        permheal_sid(f"{P1}/*/GET/pets", "live"),
        permheal_sid(f"{P1}/*/POST/pets", None),
    }
    # Then all differ
    assert len(sids) == 3


def test_an_already_allowed_target_needs_no_change() -> None:
    # Given a policy that already allows the call
    target = route("GET", "/pets/{petId}")
    # When the repair is planned
    result = plan((grant("sam", f"{P1}/*/GET/pets/*"),), [target])
    # Then the plan is empty, without findings
    assert result.empty
    assert result.findings == ()


def test_replanning_the_planned_policy_is_a_no_op() -> None:
    # Given a first repair for several targets, applied
    targets = [route("GET", "/pets"), route("POST", "/pets"), authorizer("a1")]
    first = plan((), targets)
    # When the repair is planned again on the resulting policy
    second = plan(policy_after(first), targets)
    # Then there is nothing left to do
    assert len(first.add) == 3
    assert second.empty


def test_a_grant_on_the_unqualified_function_does_not_count_for_an_alias() -> None:
    # Given an alias whose (own) policy holds a grant naming the unqualified function
    target = route("GET", "/pets", function=LIVE)
    policy = (grant("unqualified", f"{P1}/*", FN),)
    # When the repair for the alias is planned
    result = plan(policy, [target], function=LIVE)
    # Then a grant on the alias ARN is still added
    assert [s["Resource"] for s in result.add] == [LIVE.arn]


@pytest.mark.parametrize(
    ("scope", "target", "pattern"),
    [
        (Scope.METHOD, route("GET", "/pets/{petId}"), f"{P1}/*/GET/pets/*"),
        (Scope.METHOD, route("ANY", "/{proxy+}"), f"{P1}/*/*/*"),
        (Scope.METHOD, route("POST", "/"), f"{P1}/*/POST/"),
        (Scope.METHOD, route("GET", "/pets/{petId}/toys"), f"{P1}/*/GET/pets/*/toys"),
        (Scope.STAGE, route("GET", "/pets/{petId}", stage="dev"), f"{P1}/dev/GET/pets/*"),
        (Scope.STAGE, route("ANY", "/pets"), f"{P1}/prod/*/pets"),
        (Scope.API, route("GET", "/pets/{petId}"), f"{P1}/*/*/*"),
        (Scope.API, route("DELETE", "/", stage="dev"), f"{P1}/*/*/*"),
    ],
)
def test_the_added_grant_is_as_wide_as_the_scope(scope: Scope, target: Target, pattern: str) -> None:
    # Given a target without a grant
    # When the repair is planned with a scope
    result = plan((), [target], scope=scope)
    # Then the grant's SourceArn has that scope's shape
    assert added_sources(result) == [pattern]


@pytest.mark.parametrize("scope", list(Scope))
def test_an_authorizer_grant_is_always_scoped_to_the_authorizer(scope: Scope) -> None:
    # Given a Lambda authorizer without a grant
    # When the repair is planned with any scope
    result = plan((), [authorizer("auth01")], scope=scope)
    # Then its grant is {api}/authorizers/{id}, never wider
    assert added_sources(result) == [f"{P1}/authorizers/auth01"]


def test_targets_sharing_a_pattern_get_one_grant() -> None:
    # Given the same method on two stages (one method-scope pattern)
    targets = [route("GET", "/pets/{petId}", "prod"), route("GET", "/pets/{petId}", "dev")]
    # When the repair is planned
    result = plan((), targets)
    # Then one grant is added, and each target is reported
    assert len(result.add) == 1
    assert kinds(result) == [FindingKind.MISSING_PERMISSION] * 2


def test_a_new_grant_covered_by_another_new_grant_is_not_added() -> None:
    # Given GET /pets and ANY /pets, both missing
    targets = [route("GET", "/pets"), route("ANY", "/pets")]
    # When the repair is planned
    result = plan((), targets)
    # Then only the ANY grant (which covers GET) is added
    assert added_sources(result) == [f"{P1}/*/*/pets"]


# --- removing dead weight --------------------------------------------------------------------------


def test_an_exact_duplicate_is_removed_keeping_the_first() -> None:
    # Given two identical grants under different sids, the call already allowed
    policy = (grant("first", f"{P1}/*/GET/pets"), grant("second", f"{P1}/*/GET/pets"))
    # When the repair is planned
    result = plan(policy, [route("GET", "/pets")])
    # Then the second is removed (safely, before any add), recorded verbatim for revert
    assert result.remove_first == (RemovedStatement("second", f"{P1}/*/GET/pets", "duplicate of first"),)
    assert result.remove_first[0].statement == policy[1]
    assert (result.add, result.remove_after_add) == ((), ())
    assert kinds(result) == [FindingKind.DUPLICATE_STATEMENT]


@pytest.mark.parametrize(
    "twin",
    [
        grant("second", f"{P1}/**"),
        {**grant("second", f"{P1}/*"), "Condition": {"ArnEquals": {"AWS:SourceArn": f"{P1}/*"}}},
        {**grant("second", f"{P1}/*"), "Condition": {"ArnLike": {"aws:sourcearn": f"{P1}/*"}}},
        {**grant("second", f"{P1}/*"), "Principal": {"Service": [APIGATEWAY_PRINCIPAL]}},
    ],
)
def test_an_equivalent_grant_spelled_differently_is_a_duplicate(twin: dict[str, Any]) -> None:
    # Given a grant and an equivalent one written another way
    policy = (grant("first", f"{P1}/*"), twin)
    # When the repair is planned
    result = plan(policy, [])
    # Then the later one is the duplicate
    assert [(r.sid, r.reason) for r in result.removals] == [("second", "duplicate of first")]


def test_a_grant_covered_by_an_existing_wider_grant_is_removed_first() -> None:
    # Given a narrow grant and, later in the policy, a wider one
    policy = (grant("narrow", f"{P1}/prod/GET/pets"), grant("wide", f"{P1}/*/GET/*"))
    # When the repair is planned
    result = plan(policy, [route("GET", "/pets")])
    # Then the narrow grant is removed before anything else, naming its keeper
    assert result.remove_first == (RemovedStatement("narrow", f"{P1}/prod/GET/pets", "covered by wide"),)
    assert result.remove_after_add == ()
    assert kinds(result) == [FindingKind.REDUNDANT_STATEMENT]


def test_a_grant_with_a_source_account_is_covered_by_the_same_grant_without_one() -> None:
    # Given the same pattern with and without a SourceAccount condition
    policy = (
        grant("with-account", f"{P1}/*", StringEquals={"AWS:SourceAccount": ACCOUNT}),
        grant("plain", f"{P1}/*"),
    )
    # When the repair is planned
    result = plan(policy, [])
    # Then the narrower (account-restricted) one goes
    assert [r.sid for r in result.removals] == ["with-account"]


def test_a_grant_covered_only_by_a_new_grant_is_removed_after_the_add() -> None:
    # Given an existing GET grant and a missing POST call, planned with api scope
    policy = (grant("get-only", f"{P1}/*/GET/pets"),)
    # When the repair is planned
    result = plan(policy, [route("POST", "/pets")], scope=Scope.API)
    # Then the api-wide grant is added and the GET grant removed only after it
    new_sid = permheal_sid(f"{P1}/*/*/*", None)
    assert [s["Sid"] for s in result.add] == [new_sid]
    assert result.remove_first == ()
    assert result.remove_after_add == (
        RemovedStatement("get-only", f"{P1}/*/GET/pets", f"covered by {new_sid}"),
    )


@pytest.mark.parametrize(
    "policy",
    [
        (grant("first", f"{P1}/*/GET/pets"), grant("second", f"{P1}/*/GET/pets")),
        (grant("narrow", f"{P1}/prod/GET/pets"), grant("wide", f"{P1}/*")),
        (grant("narrow", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/prod/GET/x"), grant("wide", f"{P1}/*")),
        (
            grant("narrow", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/prod/GET/x"),
            grant("wide", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/*"),
        ),
    ],
)
def test_grants_for_apis_not_being_repaired_are_never_removed(policy: tuple[dict[str, Any], ...]) -> None:
    # Given duplicate or covered grants naming api1 (or any API), while only api2 is being repaired
    # When the repair is planned with removable_apis = {api2}
    result = plan(policy, [], removable_apis=frozenset({API2}))
    # Then nothing is removed
    assert result.removals == ()


def test_covered_grants_naming_the_repaired_api_are_removed_when_it_is_removable() -> None:
    # Given a grant for api1 covered by a wider one
    policy = (grant("narrow", f"{P1}/prod/GET/pets"), grant("wide", f"{P1}/*"))
    # When the repair is planned with removable_apis = {api1}
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then the covered grant is removed
    assert [r.sid for r in result.removals] == ["narrow"]


# --- dedupe scope: a grant belongs to an API only in its partition, region and account --------------

ELSEWHERE = {
    "other-region": f"arn:aws:execute-api:eu-west-1:{ACCOUNT}:api1",
    "other-account": f"arn:aws:execute-api:{REGION}:{OTHER_ACCOUNT}:api1",
    "other-partition": f"arn:aws-cn:execute-api:{REGION}:{ACCOUNT}:api1",
    "any-region": f"arn:aws:execute-api:*:{ACCOUNT}:api1",
    "any-account": f"arn:aws:execute-api:{REGION}:*:api1",
}


@pytest.mark.parametrize("prefix", list(ELSEWHERE.values()), ids=list(ELSEWHERE))
def test_exact_duplicates_naming_the_api_id_elsewhere_are_not_removed(prefix: str) -> None:
    # Given an exact duplicate pair whose source ARN names api1's id outside its partition/region/account
    policy = (grant("far-1", f"{prefix}/*/GET/pets"), grant("far-2", f"{prefix}/*/GET/pets"))
    # When api1 is repaired
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then neither is removed nor reported
    assert result.removals == ()
    assert result.findings == ()


@pytest.mark.parametrize("prefix", list(ELSEWHERE.values()), ids=list(ELSEWHERE))
def test_a_grant_naming_the_api_id_elsewhere_is_not_removed_though_covered(prefix: str) -> None:
    # Given a grant naming api1's id elsewhere, covered by a wider grant that matches any region/account
    policy = (grant("far", f"{prefix}/prod/GET/pets"), grant("wide", "arn:*:execute-api:*:*:api1/*"))
    # When api1 is repaired
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then it stays
    assert result.removals == ()


def test_exact_duplicates_naming_the_api_itself_are_removed() -> None:
    # Given the same duplicate pair naming api1 in its own partition, region and account
    policy = (grant("near-1", f"{P1}/*/GET/pets"), grant("near-2", f"{P1}/*/GET/pets"))
    # When api1 is repaired
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then the second one goes
    assert [r.sid for r in result.removals] == ["near-2"]


# --- statements an IaC stack owns ----------------------------------------------------------------------

CFN_A = "petstore-PetsGetPermissionProd-1T51HIPIZC1R9"
CFN_B = "petstore-PetsGetPermissionTest-jYLo8ECBABS5"


@pytest.mark.parametrize(
    ("sid", "owner"),
    [
        ("d1-PersonalizationFunctionGetResourcePermissionProd-HZ0LP3EH5RUG", "CloudFormation"),
        ("dev-hello-scala-HelloLambdaHelloLambdaApiPermissionTest-Z7AJQCE7VA8O", "CloudFormation"),
        ("nodejs-apig-functiongetEndpointPermissionProd-BWDBXMPLXE2F", "CloudFormation"),
        ("vj-backend-formatTextFunctionApiPermissionProd-jYLo8ECBABS5", "CloudFormation"),
        ("CdkStack-ApiGETApiPermissionTestCdkStackApiB9A3C5E1GETB0C8-1R2S3T4U5V6W7", "CloudFormation"),
        ("terraform-20190515194113925900000001", "Terraform"),
        ("apigw-20240101120000123400000a2f", "Terraform"),
        ("permheal-0123456789abcdef", None),
        ("permheal-0123456789abcdef-2", None),
        ("8c1f2d3e-4b5a-4c6d-9e7f-4f5c9a1b2c3d", None),
        ("lambda-8c1f2d3e-4b5a-4c6d-9e7f-4f5c9a1b2c3d", None),
        ("607d0e61cd1aad645b2c4aeb9ec19dff55d03664", None),
        ("console-copy", None),
        ("pets-get", None),
        ("AllowExecutionFromAPIGateway", None),
    ],
)
def test_iac_owned_statements_are_told_by_their_sid(sid: str, owner: str | None) -> None:
    # Given a statement id as CloudFormation, Terraform, permheal, a console or a person writes it
    # When its owner is guessed
    # Then generated IaC ids are recognised, permheal's and console-style ones are not
    assert iac_owner(sid) == owner


def test_a_duplicate_a_stack_owns_is_reported_not_removed() -> None:
    # Given two equivalent grants, each owned by a stack
    policy = (grant(CFN_A, f"{P1}/*/GET/pets"), grant(CFN_B, f"{P1}/*/GET/pets"))
    # When the repair is planned
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then the duplicate is reported, saying why it stays, and nothing is removed
    (finding,) = result.findings
    assert (finding.kind, finding.sid) == (FindingKind.DUPLICATE_STATEMENT, CFN_B)
    assert finding.detail.startswith(f"duplicate of {CFN_A}")
    assert "CloudFormation" in finding.detail and "PERMHEAL_DEDUPE_IAC" in finding.detail
    assert result.empty


@pytest.mark.parametrize("order", ["console-first", "stack-first"])
def test_of_two_equivalent_grants_the_one_a_stack_owns_is_kept(order: str) -> None:
    # Given a console copy of a stack's grant, before or after it
    pair = [grant("console-copy", f"{P1}/*/GET/pets"), grant(CFN_A, f"{P1}/*/GET/pets")]
    policy = tuple(pair if order == "console-first" else reversed(pair))
    # When the repair is planned
    result = plan(policy, [], removable_apis=frozenset({API1}))
    # Then the console copy is the one removed
    assert result.removals == (RemovedStatement("console-copy", f"{P1}/*/GET/pets", f"duplicate of {CFN_A}"),)


def test_a_covered_grant_a_stack_owns_is_reported_not_removed() -> None:
    # Given CDK's per-stage grants and a method missing, planned at api scope (the new grant covers them)
    policy = (grant(CFN_A, f"{P1}/prod/GET/pets"), grant(CFN_B, f"{P1}/test-invoke-stage/GET/pets"))
    # When the repair is planned
    result = plan(policy, [route("POST", "/pets")], scope=Scope.API, removable_apis=frozenset({API1}))
    # Then the api-wide grant is added and the stack's grants are reported as covered, not removed
    assert added_sources(result) == [f"{P1}/*/*/*"]
    assert result.removals == ()
    redundant = [f for f in result.findings if f.kind is FindingKind.REDUNDANT_STATEMENT]
    assert {f.sid for f in redundant} == {CFN_A, CFN_B}
    assert all("reported, not removed" in f.detail for f in redundant)


def test_dead_weight_a_stack_owns_is_removed_when_allowed() -> None:
    # Given the same covered stack grants, and dedupe_iac
    policy = (grant(CFN_A, f"{P1}/prod/GET/pets"), grant(CFN_B, f"{P1}/*/GET/pets"))
    # When the repair is planned
    result = plan(policy, [], removable_apis=frozenset({API1}), dedupe_iac=True)
    # Then the covered one is removed like any other grant
    assert result.removals == (RemovedStatement(CFN_A, f"{P1}/prod/GET/pets", f"covered by {CFN_B}"),)


def test_a_stale_grant_a_stack_owns_is_not_pruned_unless_allowed() -> None:
    # Given a stack's grant for a deleted API, with pruning on
    policy = (grant(CFN_A, f"{GONE}/*/GET/pets"),)
    # When the repair is planned, without and with dedupe_iac
    kept = plan(policy, [], existing_api_ids=frozenset({"api1"}), prune_stale=True)
    pruned = plan(policy, [], existing_api_ids=frozenset({"api1"}), prune_stale=True, dedupe_iac=True)
    # Then it is only reported by default, and removed when stack statements may be removed
    assert (kept.removals, [f.kind for f in kept.findings]) == ((), [FindingKind.STALE_STATEMENT])
    assert [r.sid for r in pruned.removals] == [CFN_A]


@pytest.mark.parametrize(
    "statement",
    [
        grant("s", f"{P1}/prod/GET/pets", StringEquals={"aws:PrincipalOrgID": "o-abc"}),
        {
            **grant("s", f"{P1}/prod/GET/pets"),
            "Condition": {"ForAnyValue:StringLike": {"AWS:SourceArn": f"{P1}/*"}},
        },
        grant("s", f"{P1}/prod/GET/pets", Null={"AWS:SourceArn": "false"}),
        {**grant("s", f"{P1}/prod/GET/pets"), "Action": "lambda:*"},
        {**grant("s", f"{P1}/prod/GET/pets"), "Principal": "*"},
        {**grant("s", f"{P1}/prod/GET/pets"), "Principal": {"AWS": "*"}},
        {**grant("s", f"{P1}/prod/GET/pets"), "Resource": [FN.arn, f"{FN.arn}:other"]},
        {**grant("s", f"{P1}/prod/GET/pets"), "Effect": "Deny"},
        {k: v for k, v in grant("s", f"{P1}/prod/GET/pets").items() if k != "Sid"},
        {**grant("s", f"{P1}/prod/GET/pets"), "Condition": {"StringLike": {"AWS:SourceArn": f"{P1}/*"}}},
    ],
)
def test_statements_that_are_not_plain_grants_are_never_removed(statement: dict[str, Any]) -> None:
    # Given a statement permheal does not fully understand, next to a plain grant that covers it
    policy = (statement, grant("wide", f"{P1}/*"), grant("wide2", f"{P1}/*/*"))
    # When the repair is planned
    result = plan(policy, [])
    # Then only plain grants may be removed; the odd statement stays
    assert [r.sid for r in result.removals] == ["wide2"]
    assert statement in policy_after(result).statements


def test_the_first_of_two_equivalent_widest_grants_survives() -> None:
    # Given two equivalent wide grants and several narrow ones before them
    policy = (
        grant("n1", f"{P1}/prod/GET/pets"),
        grant("w1", f"{P1}/*"),
        grant("n2", f"{P1}/dev/POST/"),
        grant("w2", f"{P1}/*"),
    )
    # When the repair is planned
    result = plan(policy, [])
    # Then everything except the first wide grant goes
    assert policy_after(result).sids() == {"w1"}


# --- stale grants ----------------------------------------------------------------------------------

GONE = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:gone1"


def test_a_grant_for_a_deleted_api_is_reported_but_kept_by_default() -> None:
    # Given a grant naming an API that no longer exists in the function's account/region
    policy = (grant("old", f"{GONE}/*/GET/pets"),)
    # When the repair is planned knowing the existing APIs
    result = plan(policy, [], existing_api_ids=frozenset({"api1"}))
    # Then it is reported as stale, naming the API, and not removed
    (finding,) = result.findings
    assert (finding.kind, finding.api_id, finding.sid) == (FindingKind.STALE_STATEMENT, "gone1", "old")
    assert result.removals == ()


def test_a_grant_for_a_deleted_api_is_removed_when_pruning() -> None:
    # Given a grant naming a deleted API
    policy = (grant("old", f"{GONE}/*/GET/pets"),)
    # When the repair is planned with prune_stale
    result = plan(policy, [], existing_api_ids=frozenset({"api1"}), prune_stale=True)
    # Then it is removed
    assert result.remove_first == (
        RemovedStatement("old", f"{GONE}/*/GET/pets", "API gone1 no longer exists"),
    )


@pytest.mark.parametrize(
    ("pattern", "existing"),
    [
        (f"{GONE}/*", None),
        (f"{P1}/*", frozenset({"api1"})),
        (f"arn:aws:execute-api:eu-west-1:{ACCOUNT}:gone1/*", frozenset({"api1"})),
        (f"arn:aws:execute-api:{REGION}:{OTHER_ACCOUNT}:gone1/*", frozenset({"api1"})),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/*", frozenset({"api1"})),
        ("arn:aws:execute-api:*:*:gone1/*", frozenset({"api1"})),
    ],
)
def test_a_grant_is_not_called_stale_without_proof(pattern: str, existing: frozenset[str] | None) -> None:
    # Given a grant whose API exists, is elsewhere, is a wildcard, or the API list is unknown
    # When the repair is planned with prune_stale
    result = plan((grant("g", pattern),), [], existing_api_ids=existing, prune_stale=True)
    # Then it is neither reported nor removed
    assert result.findings == ()
    assert result.empty


# --- size budget -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("slack", "refused"), [(0, False), (-1, True), (1, False), (-200, True)])
def test_a_repair_is_refused_exactly_when_it_would_exceed_the_size_limit(slack: int, refused: bool) -> None:
    # Given a non-dedupable policy sized so that the repair lands `slack` bytes under the limit
    target = route("GET", "/pets")
    new_bytes = statement_bytes(plan((), [target]).add[0])
    policy = policy_of_size(POLICY_SIZE_LIMIT - new_bytes - slack)
    # When the repair is planned
    result = plan(policy, [target])
    # Then it is refused exactly when the result would be over 20,480 bytes
    assert (result.refusal is not None) is refused
    if not refused:
        assert result.bytes_after == POLICY_SIZE_LIMIT - slack == policy_after(result).size_bytes


def test_a_refused_repair_adds_and_removes_nothing() -> None:
    # Given a policy exactly at the limit with a (smaller) duplicate in it, and a missing grant
    twins = [grant("a", f"{P1}/*/GET/x"), grant("b", f"{P1}/*/GET/x")]
    policy = policy_of_size(POLICY_SIZE_LIMIT - 2 * statement_bytes(twins[0])).with_changes(twins)
    assert policy.size_bytes == POLICY_SIZE_LIMIT
    target = route("GET", "/pets")
    # When the repair is planned
    result = plan(policy, [target])
    # Then it is refused: nothing added or removed, the target unresolved, the policy size kept
    assert result.refusal is not None and str(POLICY_SIZE_LIMIT) in result.refusal
    assert (result.add, result.removals) == ((), ())
    assert result.empty
    assert not allows(policy_after(result), FN, target)
    assert result.bytes_after == policy.size_bytes


def test_a_refused_repair_reports_the_policy_near_its_limit() -> None:
    # Given a repair refused for size
    result = plan(fill_to(POLICY_SIZE_LIMIT), [route("GET", "/pets")])
    # When its findings are read
    # Then both the missing permission and the near-limit policy are reported
    assert kinds(result) == [FindingKind.MISSING_PERMISSION, FindingKind.POLICY_NEAR_LIMIT]
    assert "limit" in result.findings[-1].detail


def test_removals_make_room_before_the_size_check() -> None:
    # Given a policy near the limit whose grants are all covered by one wide api1 grant
    policy = fill_to(POLICY_SIZE_LIMIT - 250, prefix=P1).with_changes([grant("wide", f"{P1}/prod/*")])
    target = route("GET", "/pets", api=API2)
    # When a missing grant for api2 is planned (it would not fit without the removals)
    result = plan(policy, [target])
    # Then the covered grants go and the new one fits
    assert policy.with_changes(result.add).size_bytes > POLICY_SIZE_LIMIT
    assert result.refusal is None
    assert len(result.add) == 1
    assert policy_after(result).sids() == {"wide", result.add[0]["Sid"]}


def test_consolidation_switches_to_api_scope_when_method_scope_does_not_fit() -> None:
    # Given api1 method grants leaving room for exactly one more statement, and two api1 calls missing
    api_grant = invoke_statement(permheal_sid(f"{P1}/*/*/*", None), FN.arn, f"{P1}/*/*/*")
    policy = policy_of_size(POLICY_SIZE_LIMIT - statement_bytes(api_grant), prefix=P1)
    targets = [route("POST", "/orders"), route("DELETE", "/orders")]
    assert plan(policy, targets, removable_apis=frozenset({API1})).refusal is not None
    # When the repair is planned with consolidation allowed
    result = plan(policy, targets, consolidate=True, removable_apis=frozenset({API1}))
    # Then one api-wide grant is added and every grant it covers is removed after it
    assert result.refusal is None
    assert result.add == (api_grant,)
    assert result.remove_first == ()
    assert {r.sid for r in result.remove_after_add} == policy.sids()
    assert policy_after(result).sids() == {api_grant["Sid"]}


def test_grants_removed_after_the_add_do_not_make_room_for_it() -> None:
    # Given a policy at the limit whose grants only the new api-wide grant would cover
    policy = fill_to(POLICY_SIZE_LIMIT, prefix=P1)
    # When an api-scope repair is planned
    result = plan(policy, [route("POST", "/orders")], scope=Scope.API)
    # Then it is refused: the add must fit before those removals may run
    assert result.refusal is not None
    assert result.empty


def test_consolidation_that_still_does_not_fit_is_refused() -> None:
    # Given a policy full of grants for another API, which this repair may not remove
    policy = fill_to(POLICY_SIZE_LIMIT, prefix=P2)
    # When an api1 repair with consolidation is planned
    result = plan(policy, [route("POST", "/orders")], consolidate=True, removable_apis=frozenset({API1}))
    # Then it is still refused
    assert result.refusal is not None
    assert result.add == ()


def test_without_consolidation_a_repair_that_does_not_fit_is_refused() -> None:
    # Given the same full api1 policy
    policy = fill_to(POLICY_SIZE_LIMIT, prefix=P1)
    # When the repair is planned without consolidation
    result = plan(policy, [route("POST", "/orders")], removable_apis=frozenset({API1}))
    # Then it is refused rather than widened
    assert result.refusal is not None
    assert result.add == ()


def test_a_policy_over_eighty_percent_of_the_limit_is_reported() -> None:
    # Given a policy at about 85 % of the limit that already allows the call
    policy = fill_to(int(POLICY_SIZE_LIMIT * 0.85)).with_changes([grant("ok", f"{P1}/*")])
    # When the repair is planned
    result = plan(policy, [route("GET", "/pets")])
    # Then nothing changes but the policy is reported as near its limit
    assert result.empty
    (finding,) = result.findings
    assert finding.kind is FindingKind.POLICY_NEAR_LIMIT
    assert (finding.function_arn, finding.qualifier) == (FN.unqualified_arn, None)


def test_a_policy_under_eighty_percent_is_not_reported() -> None:
    # Given a policy at about 75 % of the limit
    policy = fill_to(int(POLICY_SIZE_LIMIT * 0.75)).with_changes([grant("ok", f"{P1}/*")])
    # When the repair is planned
    result = plan(policy, [route("GET", "/pets")])
    # Then there is no finding
    assert result.findings == ()


# --- deny ------------------------------------------------------------------------------------------


def test_a_denied_target_is_reported_and_no_grant_is_added() -> None:
    # Given a Deny statement matching the call
    deny = {**grant("block", f"{P1}/*"), "Effect": "Deny"}
    target = route("GET", "/pets")
    # When the repair is planned
    result = plan((deny,), [target])
    # Then the target is reported as denied naming the statement, left unresolved, and nothing is added
    (finding,) = result.findings
    assert finding.kind is FindingKind.MISSING_PERMISSION
    assert "block" in finding.detail and "Deny" in finding.detail
    assert finding.sid == "block"
    assert result.add == ()
    assert not allows(policy_after(result), FN, target)


@pytest.mark.parametrize(
    "statement",
    [
        {**grant("odd", f"{P1}/*"), "Effect": "Deny", "NotPrincipal": {"AWS": "*"}},
        {**grant("odd", f"{P1}/*"), "Effect": "Deny", "Condition": {"DateGreaterThan": {"aws:x": "1"}}},
    ],
    ids=["not-principal", "unknown-condition"],
)
def test_a_deny_permheal_cannot_read_counts_as_denying_and_is_named(statement: dict[str, Any]) -> None:
    # Given a grant for the call, and a Deny statement using something permheal does not model
    target = route("GET", "/pets")
    policy = (grant("ok", f"{P1}/*/GET/pets"), statement)
    # When the repair is planned
    result = plan(policy, [target])
    # Then the call is reported as denied by that statement and left unresolved (never claimed allowed)
    (finding,) = result.findings
    assert (finding.kind, finding.sid) == (FindingKind.MISSING_PERMISSION, "odd")
    assert not allows(policy_after(result), FN, target)
    assert result.empty


# --- plan → change ---------------------------------------------------------------------------------


def test_change_summarises_the_plan_for_the_result_contract() -> None:
    # Given a plan that adds one grant and removes a duplicate on an alias
    policy = Policy((grant("a", f"{P1}/*/GET/pets", LIVE), grant("b", f"{P1}/*/GET/pets", LIVE)))
    result = plan(policy, [route("POST", "/pets", function=LIVE)], function=LIVE)
    # When it is turned into a Change
    change = result.change()
    # Then it names the function, qualifier, sids, sources and sizes
    new_sid = permheal_sid(f"{P1}/*/POST/pets", "live")
    assert change == Change(
        function_arn=FN.arn,
        qualifier="live",
        added=(AddedStatement(new_sid, f"{P1}/*/POST/pets"),),
        removed=(RemovedStatement("b", f"{P1}/*/GET/pets", "duplicate of a"),),
        policy_bytes_before=policy.size_bytes,
        policy_bytes_after=policy_after(result).size_bytes,
    )


# --- properties ------------------------------------------------------------------------------------

APIS = (API1, API2)
STAGES = ("prod", "dev")
METHODS = ("GET", "POST", "ANY")
PATHS = ("/", "/pets", "/pets/{petId}", "/{proxy+}")
AUTHORIZERS = ("auth1", "auth2")
CALL_STAGES = (*STAGES, "test-invoke-stage")
CALL_METHODS = (*METHODS, "DELETE")
CALLS = tuple(
    api.method_arn(stage, method, path)
    for api in APIS
    for stage in CALL_STAGES
    for method in CALL_METHODS
    for path in PATHS
) + tuple(api.authorizer_arn(a) for api in APIS for a in AUTHORIZERS)


@st.composite
def targets(draw: st.DrawFn, function: FunctionRef) -> Target:
    api = draw(st.sampled_from(APIS))
    if draw(st.integers(0, 4)) == 0:
        return authorizer(draw(st.sampled_from(AUTHORIZERS)), api, function)
    return route(
        draw(st.sampled_from(METHODS)),
        draw(st.sampled_from(PATHS)),
        draw(st.sampled_from(STAGES)),
        api,
        function,
    )


@st.composite
def source_patterns(draw: st.DrawFn) -> str:
    """Realistic SourceArn patterns (SAM, CDK, console, hand-written) over the two APIs."""
    prefix = draw(st.sampled_from(APIS)).prefix
    stage = draw(st.sampled_from((*CALL_STAGES, "*")))
    method = draw(st.sampled_from((*CALL_METHODS, "*")))
    path = draw(st.sampled_from(PATHS))
    wild = path.replace("{petId}", "*").replace("{proxy+}", "*")
    return draw(
        st.sampled_from(
            [
                f"{prefix}/*/*/*",
                f"{prefix}/*",
                f"{prefix}/{stage}/*",
                f"{prefix}/{stage}/*/*",
                f"{prefix}/*/{method}{wild}",
                f"{prefix}/{stage}/{method}{wild}",
                f"{prefix}/{stage}/{method}{path}",
                f"{prefix}/test-invoke-stage/{method}{path}",
                f"{prefix}/authorizers/{draw(st.sampled_from(AUTHORIZERS))}",
                f"{prefix}/authorizers/*",
                f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/*/{method}/*",
                f"arn:aws:execute-api:*:*:{prefix.rsplit(':', 1)[1]}/{stage}/*",
            ]
        )
    )


@st.composite
def statements(draw: st.DrawFn, sid: str, function: FunctionRef) -> dict[str, Any]:
    """Mostly plain grants in several spellings; sometimes statements permheal must leave alone."""
    pattern = draw(source_patterns())
    form = draw(st.integers(0, 10))
    if form == 5:  # grants nothing (two SourceAccount keys, as IAM keys are case-insensitive)
        accounts = {"AWS:SourceAccount": OTHER_ACCOUNT, "aws:sourceaccount": ACCOUNT}
        return grant(sid, pattern, function, StringEquals=accounts)
    if form == 0:
        return grant(sid, pattern, function, StringEquals={"AWS:SourceAccount": ACCOUNT})
    if form == 1:
        return grant(sid, pattern, function, StringEquals={"AWS:SourceAccount": OTHER_ACCOUNT})
    if form == 2:
        return {**grant(sid, pattern, function), "Condition": {"ArnEquals": {"AWS:SourceArn": pattern}}}
    if form == 3:
        return grant(sid, pattern, function, StringEquals={"aws:PrincipalOrgID": "o-abc"})
    if form == 4:
        return {**grant(sid, pattern, function), "Resource": f"{function.unqualified_arn}:other"}
    return grant(sid, pattern, function)


def cfn_sid(index: int) -> str:
    """A Sid as CloudFormation generates for an AWS::Lambda::Permission: {stack}-{LogicalId}-{suffix}."""
    return f"orders-stack-OrdersPermission{index}-1T51HIPIZC{index:03d}"


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[FunctionRef, Policy, list[Target], PlanOptions]:
    function = draw(st.sampled_from((FN, LIVE)))
    count = draw(st.integers(0, 8))
    # Some statements carry Sids CloudFormation would generate (stack-owned: reported, not removed).
    existing = [
        draw(statements(draw(st.sampled_from([f"s{i}", cfn_sid(i)])), function)) for i in range(count)
    ]
    for i in range(draw(st.integers(0, 3)) if existing else 0):  # verbatim duplicates under new sids
        original = draw(st.sampled_from(existing))
        sid = draw(st.sampled_from([f"dup{i}", cfn_sid(100 + i)]))
        existing.insert(draw(st.integers(0, len(existing))), {**original, "Sid": sid})
    wanted = draw(st.lists(targets(function), max_size=6))
    options = PlanOptions(
        scope=draw(st.sampled_from(list(Scope))),
        consolidate=draw(st.booleans()),
        prune_stale=draw(st.booleans()),
        existing_api_ids=draw(st.sampled_from([None, frozenset({"api1", "api2"})])),
        removable_apis=draw(st.sampled_from([None, frozenset({API1}), frozenset({API1, API2})])),
        dedupe_iac=draw(st.booleans()),
    )
    return function, Policy(tuple(existing)), wanted, options


PROPERTY = settings(max_examples=100, deadline=None)
SIDE_PROPERTY = settings(max_examples=50, deadline=None)


def _allowed_calls(policy: Policy, function: FunctionRef) -> set[str]:
    return {call for call in CALLS if allowed(policy, call, function)}


@PROPERTY
@given(scenario=scenarios())
def test_property_repair_then_replan_is_empty_and_every_target_is_allowed(
    scenario: tuple[FunctionRef, Policy, list[Target], PlanOptions],
) -> None:
    # Given any policy of API Gateway grants and any targets
    function, policy, wanted, options = scenario
    # When the repair is planned, applied, and planned again
    first = plan_repair(function, policy, wanted, options)
    after = policy_after(first)
    second = plan_repair(function, after, wanted, options)
    # Then the second plan is empty and every target can call the function
    assert first.refusal is None
    assert second.empty, (second.add, second.removals)
    assert all(allowed(after, t.source_arn, function) for t in wanted)


@PROPERTY
@given(scenario=scenarios())
def test_property_a_repair_never_loses_access_even_if_interrupted(
    scenario: tuple[FunctionRef, Policy, list[Target], PlanOptions],
) -> None:
    # Given any policy of API Gateway grants (with duplicates and odd statements) and any targets
    function, policy, wanted, options = scenario
    before = _allowed_calls(policy, function)
    # When the repair is planned and applied in its three phases
    result = plan_repair(function, policy, wanted, options)
    removed_first = policy.with_changes((), {r.sid for r in result.remove_first})
    added = removed_first.with_changes(result.add)
    final = policy_after(result)
    # Then no call allowed before is lost at any phase, and every target is allowed at the end
    assert before <= _allowed_calls(removed_first, function)
    assert before <= _allowed_calls(added, function)
    assert before <= _allowed_calls(final, function)
    assert all(allowed(final, t.source_arn, function) for t in wanted)


@SIDE_PROPERTY
@given(scenario=scenarios())
def test_property_only_plain_grants_for_removable_apis_are_removed(
    scenario: tuple[FunctionRef, Policy, list[Target], PlanOptions],
) -> None:
    # Given any policy and options restricting removals to some API ids
    function, policy, wanted, options = scenario
    # When the repair is planned
    result = plan_repair(function, policy, wanted, options)
    # Then every removed statement is a plain grant (no odd conditions, right resource) of a removable API
    for removal in result.removals:
        statement = removal.statement
        assert statement["Resource"] == function.arn
        assert set(statement["Condition"]) <= {"ArnLike", "ArnEquals", "StringEquals"}
        assert set(statement["Condition"].get("StringEquals", {})) <= {"AWS:SourceAccount"}
        if options.removable_apis is not None:
            assert any(str(removal.source_arn).startswith(f"{a.prefix}/") for a in options.removable_apis)
        if not options.dedupe_iac:
            assert iac_owner(removal.sid) is None


@SIDE_PROPERTY
@given(scenario=scenarios())
def test_property_pruning_stale_grants_only_loses_calls_to_deleted_apis(
    scenario: tuple[FunctionRef, Policy, list[Target], PlanOptions],
) -> None:
    # Given any policy, where api2 has been deleted and stale grants are pruned
    function, policy, _, options = scenario
    api1_targets = [t for t in scenario[2] if t.api == API1]
    options = PlanOptions(
        options.scope, True, options.consolidate, frozenset({"api1"}), options.removable_apis
    )
    before = _allowed_calls(policy, function)
    # When the repair is planned and applied
    after = _allowed_calls(policy_after(plan_repair(function, policy, api1_targets, options)), function)
    # Then any call that lost access is one to the deleted API
    assert all(call.startswith(f"{P2}/") for call in before - after)


def test_a_hand_edited_statement_holding_the_permheal_sid_gets_a_suffixed_sibling() -> None:
    # Given the deterministic Sid is taken by a statement that no longer grants the call
    from permheal.arns import ApiRef, FunctionRef
    from permheal.models import Target, TargetKind
    from permheal.planner import PlanOptions, permheal_sid, plan_repair
    from permheal.policy import Policy, invoke_statement

    fn = FunctionRef("aws", "us-east-1", "123456789012", "pets", "live")
    api = ApiRef("aws", "us-east-1", "123456789012", "abc123")
    target = Target(TargetKind.INTEGRATION, api, "prod", fn, "GET", "/pets")
    pattern = target.grant_pattern(PlanOptions().scope)
    taken = permheal_sid(pattern, "live")
    policy = Policy((invoke_statement(taken, fn.arn, f"{api.prefix}/*/GET/other"),), "rev")
    # When the repair is planned
    plan = plan_repair(fn, policy, [target], PlanOptions())
    # Then the new grant uses the next free Sid instead of colliding (AddPermission would conflict forever)
    assert [s["Sid"] for s in plan.add] == [f"{taken}-1"]
