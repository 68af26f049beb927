"""`permheal explain`'s pure core: statement traces agree with `evaluate`; each cause is named."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arns import ApiRef, FunctionRef
from permheal.errors import NotFoundError
from permheal.explain import Call, StageView, Verdict, explain_call, render
from permheal.models import Scope
from permheal.openapi import ApiSpec, Authorizer, Integration, Method
from permheal.policy import Decision, Policy, StatementTrace, evaluate, trace, trace_statement
from tests.unit.test_policy_eval import ALIAS, FN, OTHER_API_SOURCE, SOURCE, allow, deny, request, statements

API = ApiRef("aws", "us-east-1", "123456789012", "abc123")
URI = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations"


def decision_from(traces: tuple[StatementTrace, ...]) -> Decision:
    """IAM's rule over the traces: any `denies` wins, then any `allows`."""
    outcomes = {t.outcome for t in traces}
    if "denies" in outcomes:
        return Decision.DENY
    return Decision.ALLOW if "allows" in outcomes else Decision.NOT_ALLOWED


@settings(max_examples=300, deadline=None)
@given(
    policy_statements=st.lists(statements, max_size=4),
    source=st.sampled_from([SOURCE, OTHER_API_SOURCE]),
    resource=st.sampled_from([FN, ALIAS]),
)
def test_the_trace_reaches_the_verdict_evaluate_reaches(
    policy_statements: list[dict[str, Any]], source: str, resource: str
) -> None:
    # Given any statements, however malformed, and a call
    policy, call = Policy(tuple(policy_statements)), request(resource, source)
    # When traced statement by statement
    traces = trace(policy, call)
    # Then the traces give evaluate's decision, and name exactly the statements evaluate names
    evaluation = evaluate(policy, call)
    assert decision_from(traces) is evaluation.decision
    deciding = "denies" if evaluation.decision is Decision.DENY else "allows"
    assert tuple(t.sid for t in traces if t.outcome == deciding) == evaluation.sids
    assert all(t.reason for t in traces)


@pytest.mark.parametrize(
    ("statement", "outcome", "reason"),
    [
        (allow(), "allows", "ArnLike AWS:SourceArn"),
        (allow(Condition={"ArnLike": {"AWS:SourceArn": SOURCE.replace("prod", "dev")}}), "no match", "fails"),
        (allow(Resource=ALIAS), "no match", "another qualifier"),
        (allow(Principal={"Service": "s3.amazonaws.com"}), "no match", "is not apigateway"),
        (allow(Action="lambda:GetPolicy"), "no match", "does not cover"),
        (
            allow(Condition={"StringEquals": {"AWS:SourceAccount": "210987654321"}}),
            "no match",
            "SourceAccount",
        ),
        (allow(Condition={"Null": {"AWS:SourceArn": "false"}}), "not understood", "operator Null"),
        (deny(), "denies", "holds for"),
        (deny(NotAction="x"), "denies", "NotAction"),
    ],
)
def test_each_statement_outcome_says_why(statement: dict[str, Any], outcome: str, reason: str) -> None:
    judged = trace_statement(statement, request())
    assert judged.outcome == outcome
    assert reason in judged.reason, judged.reason


# --- explain_call with an in-memory stage --------------------------------------------------------------


def stage(*methods: Method, variables: dict[str, str] | None = None) -> StageView:
    return StageView("prod", "dep1", variables or {"alias": "live"}, ApiSpec(tuple(methods)))


def pets(credentials: str | None = None, authorizer: Authorizer | None = None) -> Method:
    uri = URI.format(FN + ":${stageVariables.alias}")
    return Method("GET", "/pets/{petId}", Integration("AWS_PROXY", uri, credentials), authorizer)


def reader(policies: dict[str, list[dict[str, Any]]]) -> Any:
    def read(function: FunctionRef) -> Policy:
        if function.name != "orders":
            raise NotFoundError(f"function {function.arn} does not exist")
        return Policy(tuple(policies.get(function.arn, [])))

    return read


def test_a_deny_statement_denies_and_is_never_the_fix() -> None:
    # Given the alias's policy allows the call but also denies it
    policies = {ALIAS: [allow(Resource=ALIAS), {**deny(Resource=ALIAS), "Sid": "block"}]}
    # When explained
    explanation = explain_call(API, "pets", stage(pets()), Call("GET /pets/{petId}"), reader(policies))
    # Then denied by the Deny, whose Sid the fix names, and no grant is offered
    [path] = explanation.paths
    assert explanation.verdict is Verdict.DENIED and explanation.verdict.exit_code == 1
    assert [t.outcome for t in path.statements] == ["allows", "denies"]
    assert path.fix is not None and path.fix.cli is None and "block" in path.fix.note
    assert "denied by Deny statement(s) block" in render(explanation)


def test_an_any_method_serves_a_get_and_the_note_says_so() -> None:
    uri = URI.format(FN)
    method = Method("ANY", "/pets/{petId}", Integration("AWS_PROXY", uri))
    explanation = explain_call(API, "pets", stage(method), Call("GET /pets/{petId}"), reader({}))
    [path] = explanation.paths
    assert path.source_arn == f"{API.prefix}/prod/ANY/pets/{{petId}}"
    assert path.fix is not None and path.fix.source_arn == f"{API.prefix}/*/*/pets/*"
    assert any("served by ANY" in s.detail for s in path.steps)


def test_the_scope_setting_shapes_the_fix() -> None:
    explanation = explain_call(API, "pets", stage(pets()), Call("GET /pets/{petId}"), reader({}), Scope.STAGE)
    fix = explanation.paths[0].fix
    assert fix is not None and fix.source_arn == f"{API.prefix}/prod/GET/pets/*"


def test_a_missing_function_is_denied_with_its_name() -> None:
    method = Method("GET", "/x", Integration("AWS_PROXY", URI.format(FN.replace("orders", "gone"))))
    explanation = explain_call(API, "pets", stage(method), Call("GET /x"), reader({}))
    assert explanation.verdict is Verdict.DENIED
    assert "does not exist" in render(explanation)


def test_a_cross_account_function_is_noted_and_still_traced() -> None:
    other = "arn:aws:lambda:us-east-1:210987654321:function:orders"
    method = Method("GET", "/x", Integration("AWS_PROXY", URI.format(other)))
    explanation = explain_call(API, "pets", stage(method), Call("GET /x"), reader({}))
    assert "permheal never edits it" in render(explanation)
    assert explanation.verdict is Verdict.DENIED


def test_an_undeployed_route_says_to_deploy() -> None:
    working = ApiSpec((pets(),))
    with pytest.raises(NotFoundError, match="deploy the API"):
        explain_call(API, "pets", stage(), Call("GET /pets/{petId}"), reader({}), working_copy=working)
