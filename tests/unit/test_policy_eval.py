"""Lambda resource-policy parsing, IAM evaluation of API Gateway calls, and removable grants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arnlike import arn_like
from permheal.errors import ParseError
from permheal.policy import (
    APIGATEWAY_PRINCIPAL,
    Decision,
    Evaluation,
    GatewayGrant,
    InvokeRequest,
    Policy,
    evaluate,
    gateway_grant,
    gateway_grants,
    invoke_statement,
    policy_size,
    statement_applies,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
FN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
ALIAS = f"{FN}:live"
PREFIX = "arn:aws:execute-api:us-east-1:123456789012:abc123"
SOURCE = f"{PREFIX}/prod/GET/pets/{{petId}}"
OTHER_API_SOURCE = "arn:aws:execute-api:us-east-1:123456789012:zzz999/prod/GET/pets/{petId}"


def request(resource: str = FN, source: str = SOURCE, account: str = ACCOUNT) -> InvokeRequest:
    return InvokeRequest(resource, source, account)


def allow(**overrides: Any) -> dict[str, Any]:
    """A typical API Gateway grant on FN for SOURCE; keys set to None are dropped."""
    statement: dict[str, Any] = {
        "Sid": "grant",
        "Effect": "Allow",
        "Principal": {"Service": APIGATEWAY_PRINCIPAL},
        "Action": "lambda:InvokeFunction",
        "Resource": FN,
        "Condition": {"ArnLike": {"AWS:SourceArn": SOURCE}},
    }
    statement.update(overrides)
    return {k: v for k, v in statement.items() if v is not None}


def deny(**overrides: Any) -> dict[str, Any]:
    return allow(Sid="no", Effect="Deny", **overrides)


def decide(*statements: dict[str, Any], req: InvokeRequest | None = None) -> Decision:
    return evaluate(Policy(tuple(statements)), req or request()).decision


# --- basic decisions -------------------------------------------------------------------------------


def test_a_grant_for_the_exact_source_arn_allows_the_call() -> None:
    # Given a policy granting API Gateway invoke for the exact method ARN
    policy = Policy((allow(),))
    # When API Gateway invokes the function for that method
    result = evaluate(policy, request())
    # Then the call is allowed, attributed to that statement
    assert result == Evaluation(Decision.ALLOW, ("grant",))
    assert result.allowed


def test_an_empty_policy_allows_nothing() -> None:
    # Given a function without a policy
    # When API Gateway invokes it
    result = evaluate(Policy(), request())
    # Then the call is not allowed (implicit deny, not an explicit one)
    assert result == Evaluation(Decision.NOT_ALLOWED)
    assert not result.allowed


def test_an_explicit_deny_wins_over_an_allow() -> None:
    # Given an Allow and a matching Deny for the same call
    policy = Policy((allow(), deny()))
    # When the call is evaluated
    result = evaluate(policy, request())
    # Then the Deny decides, naming the denying statement
    assert result == Evaluation(Decision.DENY, ("no",))


def test_statements_without_sid_are_named_by_position() -> None:
    # Given an Allow without a Sid at index 1
    policy = Policy((allow(Sid="other", Resource=ALIAS), allow(Sid=None)))
    # When the call is evaluated
    result = evaluate(policy, request())
    # Then the evaluation names it by position
    assert result.sids == ("#1",)


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("lambda:InvokeFunction", True),
        ("lambda:invokefunction", True),
        ("LAMBDA:INVOKEFUNCTION", True),
        ("lambda:*", True),
        ("lambda:Invoke*", True),
        ("*", True),
        (["lambda:GetFunction", "lambda:InvokeFunction"], True),
        ("lambda:GetFunction", False),
        ("lambda:InvokeFunctionUrl", False),
        ("lambda:InvokeAsync", False),
        ("s3:*", False),
        (["lambda:GetFunction", "lambda:GetPolicy"], False),
    ],
)
def test_action_must_cover_invoke_function_case_insensitively(action: Any, allowed: bool) -> None:
    # Given a grant whose Action is one of several spellings
    # When API Gateway invokes the function
    # Then only actions matching lambda:InvokeFunction (case-insensitive, globs) allow it
    assert (decide(allow(Action=action)) is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        ({"Service": APIGATEWAY_PRINCIPAL}, True),
        ({"Service": ["sns.amazonaws.com", APIGATEWAY_PRINCIPAL]}, True),
        ("*", True),
        ({"AWS": "*"}, True),
        ({"AWS": ["*"]}, True),
        ({"Service": "sns.amazonaws.com"}, False),
        ({"Service": "events.amazonaws.com"}, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False),
        ({"AWS": ACCOUNT}, False),
    ],
)
def test_principal_must_be_api_gateway_or_everyone(principal: Any, allowed: bool) -> None:
    # Given a grant for some principal
    # When API Gateway invokes the function
    # Then only the API Gateway service principal or a public principal allows it
    assert (decide(allow(Principal=principal)) is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    ("resource", "invoked", "allowed"),
    [
        (FN, FN, True),
        (ALIAS, ALIAS, True),
        (FN, ALIAS, False),
        (ALIAS, FN, False),
        (f"{FN}:blue", ALIAS, False),
        (f"{FN}:7", f"{FN}:7", True),
        ([f"{FN}:blue", ALIAS], ALIAS, True),
        ("arn:aws:lambda:us-east-1:123456789012:function:other", FN, False),
    ],
)
def test_resource_must_be_the_exact_qualified_arn_invoked(resource: Any, invoked: str, allowed: bool) -> None:
    # Given a grant on one function ARN (qualified or not)
    # When API Gateway invokes a given qualifier
    # Then the grant counts only when its Resource is the ARN actually invoked
    result = decide(allow(Resource=resource), req=request(resource=invoked))
    assert (result is Decision.ALLOW) is allowed


# --- conditions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({}, True),
        ({"ArnLike": {"AWS:SourceArn": SOURCE}}, True),
        ({"ArnLike": {"AWS:SourceArn": f"{PREFIX}/*/GET/pets/*"}}, True),
        ({"ArnLike": {"AWS:SourceArn": f"{PREFIX}/*"}}, True),
        ({"ArnLike": {"AWS:SourceArn": f"{PREFIX}/*/POST/pets/*"}}, False),
        ({"ArnLike": {"AWS:SourceArn": OTHER_API_SOURCE}}, False),
        ({"ArnEquals": {"AWS:SourceArn": f"{PREFIX}/*/GET/*"}}, True),
        ({"ArnEquals": {"AWS:SourceArn": OTHER_API_SOURCE}}, False),
        ({"ArnNotLike": {"AWS:SourceArn": OTHER_API_SOURCE}}, True),
        ({"ArnNotLike": {"AWS:SourceArn": f"{PREFIX}/*"}}, False),
        ({"ArnNotEquals": {"AWS:SourceArn": OTHER_API_SOURCE}}, True),
        ({"ArnNotEquals": {"AWS:SourceArn": SOURCE}}, False),
        ({"StringEquals": {"AWS:SourceArn": SOURCE}}, True),
        ({"StringEquals": {"AWS:SourceArn": f"{PREFIX}/*"}}, False),
        ({"StringNotEquals": {"AWS:SourceArn": OTHER_API_SOURCE}}, True),
        ({"StringNotEquals": {"AWS:SourceArn": SOURCE}}, False),
        ({"StringEqualsIgnoreCase": {"AWS:SourceArn": SOURCE.upper()}}, True),
        ({"StringEqualsIgnoreCase": {"AWS:SourceArn": OTHER_API_SOURCE}}, False),
        ({"StringNotEqualsIgnoreCase": {"AWS:SourceArn": SOURCE.upper()}}, False),
        ({"StringNotEqualsIgnoreCase": {"AWS:SourceArn": OTHER_API_SOURCE}}, True),
        ({"StringLike": {"AWS:SourceArn": f"{PREFIX}/*"}}, True),
        ({"StringLike": {"AWS:SourceArn": OTHER_API_SOURCE}}, False),
        ({"StringNotLike": {"AWS:SourceArn": "*zzz999*"}}, True),
        ({"StringNotLike": {"AWS:SourceArn": "*abc123*"}}, False),
        ({"StringEquals": {"AWS:SourceAccount": ACCOUNT}}, True),
        ({"StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT}}, False),
        ({"StringNotEquals": {"AWS:SourceAccount": OTHER_ACCOUNT}}, True),
        ({"StringNotEquals": {"AWS:SourceAccount": ACCOUNT}}, False),
        ({"StringLike": {"AWS:SourceAccount": "1234*"}}, True),
        ({"ArnLikeIfExists": {"AWS:SourceArn": f"{PREFIX}/*"}}, True),
        ({"ArnLikeIfExists": {"AWS:SourceArn": OTHER_API_SOURCE}}, False),
        ({"StringNotEqualsIfExists": {"AWS:SourceAccount": OTHER_ACCOUNT}}, True),
        ({"StringEqualsIfExists": {"AWS:SourceAccount": OTHER_ACCOUNT}}, False),
        ({"ArnLike": {"AWS:SourceArn": [OTHER_API_SOURCE, f"{PREFIX}/*"]}}, True),
        ({"ArnLike": {"AWS:SourceArn": [OTHER_API_SOURCE, "arn:aws:execute-api:*:*:x/*"]}}, False),
        ({"ArnNotLike": {"AWS:SourceArn": [OTHER_API_SOURCE, f"{PREFIX}/*"]}}, False),
        ({"ArnNotLike": {"AWS:SourceArn": [OTHER_API_SOURCE, "arn:aws:execute-api:*:*:x/*"]}}, True),
        ({"StringEquals": {"AWS:SourceAccount": [OTHER_ACCOUNT, ACCOUNT]}}, True),
        ({"StringNotEquals": {"AWS:SourceAccount": [OTHER_ACCOUNT, ACCOUNT]}}, False),
        ({"ArnLike": {"aws:sourcearn": SOURCE}}, True),
        ({"arnlike": {"AWS:SOURCEARN": SOURCE}}, True),
        (
            {"ArnLike": {"AWS:SourceArn": f"{PREFIX}/*"}, "StringEquals": {"AWS:SourceAccount": ACCOUNT}},
            True,
        ),
        (
            {
                "ArnLike": {"AWS:SourceArn": f"{PREFIX}/*"},
                "StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT},
            },
            False,
        ),
        ({"StringEquals": {"AWS:SourceAccount": ACCOUNT, "AWS:SourceArn": OTHER_API_SOURCE}}, False),
    ],
)
def test_conditions_on_source_arn_and_account_follow_iam_operators(condition: Any, allowed: bool) -> None:
    # Given a grant whose Condition uses one of the supported operators on SourceArn/SourceAccount
    # When API Gateway invokes the function for SOURCE from ACCOUNT
    # Then every operator (negated, IfExists, lists = any-of) decides as IAM does, ANDed together
    assert (decide(allow(Condition=condition)) is Decision.ALLOW) is allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}},
        {"StringEquals": {"AWS:SourceArn": SOURCE, "aws:PrincipalOrgID": "o-abc"}},
        {"ArnLike": {"AWS:SourceArn": SOURCE}, "StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        {"ForAnyValue:StringLike": {"AWS:SourceArn": f"{PREFIX}/*"}},
        {"ForAllValues:StringLike": {"AWS:SourceArn": f"{PREFIX}/*"}},
        {"Null": {"AWS:SourceArn": "false"}},
        {"NumericEquals": {"AWS:SourceAccount": "1"}},
        {"Bool": {"aws:SecureTransport": "true"}},
        {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"ArnLike": "not a clause"},
        {"ArnLike": {"AWS:SourceArn": 123}},
        {"ArnLike": {"AWS:SourceArn": []}},
        {"ArnLike": {"AWS:SourceArn": [SOURCE, 1]}},
        {"StringEquals": {"AWS:SourceAccount": 123456789012}},
        "ArnLike",
        [{"ArnLike": {"AWS:SourceArn": SOURCE}}],
    ],
)
def test_a_condition_permheal_does_not_model_grants_nothing(condition: Any) -> None:
    # Given an Allow whose condition uses an unknown key, operator or value shape
    # When the call is evaluated
    # Then the statement grants nothing: permheal must not claim access it cannot prove
    assert decide(allow(Condition=condition)) is Decision.NOT_ALLOWED


def test_a_deny_with_an_unknown_condition_counts_as_denying() -> None:
    # Given an Allow and a Deny whose condition permheal cannot evaluate
    policy = Policy((allow(), deny(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})))
    # When the call is evaluated
    result = evaluate(policy, request())
    # Then the Deny is assumed to apply: a hidden failure is worse than a reported one
    assert result == Evaluation(Decision.DENY, ("no",))


def test_a_deny_that_does_not_match_the_call_does_not_deny() -> None:
    # Given an Allow and a Deny scoped to another API
    policy = Policy((allow(), deny(Condition={"ArnLike": {"AWS:SourceArn": OTHER_API_SOURCE}})))
    # When the call is evaluated
    # Then the Allow decides
    assert evaluate(policy, request()).decision is Decision.ALLOW


def test_a_deny_for_another_principal_does_not_deny() -> None:
    # Given an Allow and a Deny for another service principal
    policy = Policy((allow(), deny(Principal={"Service": "sns.amazonaws.com"})))
    # When the call is evaluated
    # Then the Allow decides
    assert evaluate(policy, request()).decision is Decision.ALLOW


@pytest.mark.parametrize(
    "extra",
    [
        {"NotPrincipal": {"Service": "sns.amazonaws.com"}},
        {"NotAction": "lambda:GetFunction"},
        {"NotResource": "arn:aws:lambda:us-east-1:123456789012:function:other"},
    ],
)
def test_not_elements_are_not_understood_so_an_allow_grants_nothing(extra: dict[str, Any]) -> None:
    # Given an Allow that also uses NotPrincipal / NotAction / NotResource
    # When the call is evaluated
    # Then it is not understood and grants nothing
    assert decide(allow(**extra)) is Decision.NOT_ALLOWED


@pytest.mark.parametrize(
    "extra",
    [
        {"NotPrincipal": {"Service": "sns.amazonaws.com"}},
        {"NotAction": "lambda:GetFunction"},
        {"NotResource": "arn:aws:lambda:us-east-1:123456789012:function:other"},
    ],
)
def test_not_elements_in_a_deny_count_as_denying(extra: dict[str, Any]) -> None:
    # Given an Allow and a Deny using a Not* element
    # When the call is evaluated
    # Then the Deny is assumed to apply
    assert decide(allow(), deny(**extra)) is Decision.DENY


@pytest.mark.parametrize(
    "overrides",
    [
        {"Effect": "allow"},
        {"Effect": None},
        {"Principal": None},
        {"Principal": "apigateway.amazonaws.com"},
        {"Principal": {}},
        {"Principal": {"Service": 5}},
        {"Action": None},
        {"Action": []},
        {"Resource": None},
        {"Resource": {"arn": FN}},
    ],
)
def test_a_malformed_allow_grants_nothing(overrides: dict[str, Any]) -> None:
    # Given an Allow with a missing or oddly-shaped element
    # When the call is evaluated
    # Then it grants nothing
    assert decide(allow(**overrides)) is Decision.NOT_ALLOWED


def test_statement_applies_is_none_for_what_it_does_not_model() -> None:
    # Given a statement with an unknown condition key
    statement = allow(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})
    # When asked whether it applies
    # Then the answer is "unknown", distinct from False
    assert statement_applies(statement, request()) is None


# --- parsing and size ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        "{",
        "not json",
        "[]",
        '"policy"',
        "42",
        '{"Statement": 5}',
        '{"Statement": null}',
        '{"Statement": "Allow"}',
        '{"Statement": [1]}',
        '{"Statement": [{"Sid": "a"}, []]}',
        "[" * 100_000 + "]" * 100_000,
        '{"Statement": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=lambda d: d[:30],
)
def test_from_json_rejects_malformed_policies_with_parse_error(document: str) -> None:
    # Given a policy document that is not JSON or not the shape of a policy
    # When it is parsed
    # Then it is a ParseError (nothing else escapes)
    with pytest.raises(ParseError):
        Policy.from_json(document)


@pytest.mark.parametrize("document", [None, ""])
def test_from_json_of_no_policy_is_an_empty_policy(document: str | None) -> None:
    # Given a qualifier without a policy
    # When it is parsed
    policy = Policy.from_json(document, revision_id="rev-1")
    # Then it has no statements, size 0, and keeps the revision id
    assert (policy.statements, policy.size_bytes, policy.revision_id) == ((), 0, "rev-1")


def test_from_json_accepts_a_single_statement_object() -> None:
    # Given a document whose Statement is one object, not a list
    document = json.dumps({"Version": "2012-10-17", "Id": "custom", "Statement": allow()})
    # When it is parsed
    policy = Policy.from_json(document, "rev-2")
    # Then it holds that one statement and keeps Id and revision
    assert (policy.statements, policy.policy_id, policy.revision_id) == ((allow(),), "custom", "rev-2")


def test_size_is_the_compact_json_of_the_document() -> None:
    # Given a parsed policy
    policy = Policy.from_json(json.dumps({"Version": "2012-10-17", "Id": "default", "Statement": [allow()]}))
    # When its size is measured
    # Then it is the byte length of its compact JSON document
    expected = len(json.dumps(policy.document(), separators=(",", ":")).encode())
    assert policy.size_bytes == expected == policy_size(policy.statements)


def test_size_counts_bytes_not_characters() -> None:
    # Given two policies differing only by a non-ASCII character in a Sid
    ascii_policy, unicode_policy = Policy((allow(Sid="e"),)), Policy((allow(Sid="é"),))
    # When their sizes are measured
    # Then the non-ASCII one is larger (json escapes it as \u00e9)
    assert unicode_policy.size_bytes > ascii_policy.size_bytes


def test_with_changes_removes_by_sid_and_appends_additions() -> None:
    # Given a policy of two statements and a revision id
    policy = Policy((allow(Sid="a"), allow(Sid="b")), revision_id="r", policy_id="p")
    # When one is removed and one added
    changed = policy.with_changes([allow(Sid="c")], {"a"})
    # Then the rest keep their order, the addition comes last, and id/revision are kept
    assert [s["Sid"] for s in changed.statements] == ["b", "c"]
    assert (changed.revision_id, changed.policy_id, changed.sids()) == ("r", "p", {"b", "c"})


def test_invoke_statement_is_exactly_what_add_permission_writes() -> None:
    # Given a sid, a qualified function ARN and a source pattern
    # When the statement is built
    statement = invoke_statement("permheal-1", ALIAS, f"{PREFIX}/*/GET/pets/*")
    # Then it has the shape Lambda stores for AddPermission
    assert statement == {
        "Sid": "permheal-1",
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": ALIAS,
        "Condition": {"ArnLike": {"AWS:SourceArn": f"{PREFIX}/*/GET/pets/*"}},
    }


# --- gateway_grant classification ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (allow(), GatewayGrant("grant", SOURCE, None, 3)),
        (invoke_statement("s", FN, f"{PREFIX}/*"), GatewayGrant("s", f"{PREFIX}/*", None, 3)),
        (allow(Condition={"ArnEquals": {"AWS:SourceArn": SOURCE}}), GatewayGrant("grant", SOURCE, None, 3)),
        (allow(Condition={"ArnLike": {"aws:sourcearn": SOURCE}}), GatewayGrant("grant", SOURCE, None, 3)),
        (allow(Condition={"ArnLike": {"AWS:SourceArn": [SOURCE]}}), GatewayGrant("grant", SOURCE, None, 3)),
        (
            allow(
                Condition={
                    "ArnLike": {"AWS:SourceArn": SOURCE},
                    "StringEquals": {"AWS:SourceAccount": ACCOUNT},
                }
            ),
            GatewayGrant("grant", SOURCE, ACCOUNT, 3),
        ),
        (
            allow(Condition={"StringEquals": {"AWS:SourceAccount": ACCOUNT}}),
            GatewayGrant("grant", None, ACCOUNT, 3),
        ),
        (allow(Condition=None), GatewayGrant("grant", None, None, 3)),
        (allow(Condition={}), GatewayGrant("grant", None, None, 3)),
        (allow(Principal={"Service": [APIGATEWAY_PRINCIPAL]}), GatewayGrant("grant", SOURCE, None, 3)),
        (allow(Action=["lambda:InvokeFunction"]), GatewayGrant("grant", SOURCE, None, 3)),
    ],
)
def test_gateway_grant_recognises_plain_api_gateway_invoke_grants(
    statement: dict[str, Any], expected: GatewayGrant
) -> None:
    # Given a plain API Gateway invoke grant on FN (only SourceArn/SourceAccount conditions)
    # When it is classified at position 3
    # Then it is a removable grant with its source pattern and account
    assert gateway_grant(statement, 3, FN) == expected


@pytest.mark.parametrize(
    "statement",
    [
        allow(Sid=None),
        allow(Sid=7),
        deny(),
        allow(Effect="allow"),
        allow(NotResource="x"),
        allow(Extra="x"),
        allow(Principal="*"),
        allow(Principal={"AWS": "*"}),
        allow(Principal={"Service": "sns.amazonaws.com"}),
        allow(Principal={"Service": [APIGATEWAY_PRINCIPAL, "sns.amazonaws.com"]}),
        allow(Principal={"Service": APIGATEWAY_PRINCIPAL, "AWS": "*"}),
        allow(Action="lambda:*"),
        allow(Action="lambda:invokefunction"),
        allow(Action=["lambda:InvokeFunction", "lambda:GetFunction"]),
        allow(Resource=ALIAS),
        allow(Resource=f"{FN}*"),
        allow(Resource=[FN, ALIAS]),
        allow(Condition={"StringLike": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"StringEquals": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"ArnNotLike": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"ArnLikeIfExists": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"arnlike": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": "*"}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": [SOURCE, OTHER_API_SOURCE]}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": SOURCE}, "ArnEquals": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": SOURCE}, "StringEquals": {"aws:PrincipalOrgID": "o"}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": SOURCE}, "StringLike": {"AWS:SourceAccount": "1*"}}),
        allow(Condition={"StringEquals": {"AWS:SourceAccount": [ACCOUNT, OTHER_ACCOUNT]}}),
        allow(Condition={"StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT, "aws:sourceaccount": ACCOUNT}}),
        allow(Condition={"ArnLike": {"AWS:SourceArn": OTHER_API_SOURCE, "aws:sourcearn": f"{PREFIX}/*"}}),
        allow(Condition={"ForAnyValue:StringLike": {"AWS:SourceArn": SOURCE}}),
        allow(Condition={"Null": {"AWS:SourceArn": "false"}}),
        allow(Condition={"ArnLike": "x"}),
        allow(Condition="x"),
        allow(Condition={"ArnLike": {"AWS:SourceArn": 1}}),
    ],
)
def test_gateway_grant_rejects_anything_but_a_plain_grant(statement: dict[str, Any]) -> None:
    # Given a statement that is not exactly a plain API Gateway invoke grant on FN
    # When it is classified
    # Then it is not removable: None
    assert gateway_grant(statement, 0, FN) is None


def test_gateway_grants_lists_only_removable_grants_with_their_positions() -> None:
    # Given a policy mixing plain grants with other statements
    policy = Policy((allow(Sid="a"), deny(), allow(Sid="b", Resource=ALIAS), allow(Sid="c")))
    # When its grants on FN are listed
    grants = gateway_grants(policy, FN)
    # Then only the plain grants on FN remain, with their index in the policy
    assert [(g.sid, g.position) for g in grants] == [("a", 0), ("c", 3)]


@pytest.mark.parametrize(
    ("broad", "narrow", "expected"),
    [
        (GatewayGrant("a", f"{PREFIX}/*", None, 0), GatewayGrant("b", SOURCE, None, 1), True),
        (GatewayGrant("a", SOURCE, None, 0), GatewayGrant("b", f"{PREFIX}/*", None, 1), False),
        (GatewayGrant("a", SOURCE, None, 0), GatewayGrant("b", SOURCE, None, 1), True),
        (GatewayGrant("a", None, None, 0), GatewayGrant("b", SOURCE, ACCOUNT, 1), True),
        (GatewayGrant("a", SOURCE, None, 0), GatewayGrant("b", None, None, 1), False),
        (GatewayGrant("a", f"{PREFIX}/*", None, 0), GatewayGrant("b", SOURCE, ACCOUNT, 1), True),
        (GatewayGrant("a", f"{PREFIX}/*", ACCOUNT, 0), GatewayGrant("b", SOURCE, None, 1), False),
        (GatewayGrant("a", f"{PREFIX}/*", ACCOUNT, 0), GatewayGrant("b", SOURCE, ACCOUNT, 1), True),
        (GatewayGrant("a", f"{PREFIX}/*", ACCOUNT, 0), GatewayGrant("b", SOURCE, OTHER_ACCOUNT, 1), False),
        (GatewayGrant("a", None, ACCOUNT, 0), GatewayGrant("b", None, None, 1), False),
    ],
)
def test_grant_coverage_accounts_for_both_pattern_and_account(
    broad: GatewayGrant, narrow: GatewayGrant, expected: bool
) -> None:
    # Given two grants
    # When asked whether the first allows every call the second allows
    # Then both its source pattern and its account restriction must be at least as wide
    assert broad.covers(narrow) is expected


# --- properties ------------------------------------------------------------------------------------

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_realistic_strings = st.sampled_from(
    [
        "Allow",
        "Deny",
        "*",
        "lambda:InvokeFunction",
        "lambda:*",
        APIGATEWAY_PRINCIPAL,
        FN,
        ALIAS,
        SOURCE,
        f"{PREFIX}/*",
        "arn:*",
        ACCOUNT,
        "AWS:SourceArn",
        "AWS:SourceAccount",
    ]
)
_keys = st.sampled_from(
    [
        "Sid",
        "Effect",
        "Principal",
        "Action",
        "Resource",
        "Condition",
        "NotPrincipal",
        "NotAction",
        "Service",
        "AWS",
        "ArnLike",
        "ArnNotLike",
        "StringEquals",
        "StringNotEqualsIfExists",
        "ForAnyValue:StringLike",
        "Null",
        "AWS:SourceArn",
        "aws:SourceAccount",
        "aws:PrincipalOrgID",
    ]
) | st.text(max_size=6)
json_like = st.recursive(
    _json_scalars | _realistic_strings,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=8,
)
_element = _realistic_strings | json_like
# Mostly statement-shaped (so evaluation gets past its first checks), sometimes any object at all.
statements = st.fixed_dictionaries(
    {},
    optional={
        "Sid": _element,
        "Effect": _element,
        "Principal": _element,
        "Action": _element,
        "Resource": _element,
        "Condition": st.dictionaries(_keys, st.dictionaries(_keys, _element, max_size=2), max_size=2)
        | json_like,
        "NotAction": _element,
    },
) | st.dictionaries(_keys, json_like, max_size=5)


@settings(max_examples=150, deadline=None)
@given(policy_statements=st.lists(statements, max_size=4), source=st.sampled_from([SOURCE, OTHER_API_SOURCE]))
def test_evaluate_never_raises_on_arbitrary_statements(
    policy_statements: list[dict[str, Any]], source: str
) -> None:
    # Given any JSON-like statements, however malformed
    policy = Policy(tuple(policy_statements))
    # When a call is evaluated against them
    result = evaluate(policy, request(source=source))
    # Then an Evaluation comes back (no exception escapes)
    assert isinstance(result, Evaluation)


@settings(max_examples=150, deadline=None)
@given(
    document=st.text(max_size=200)
    | json_like.map(json.dumps)
    | st.lists(statements, max_size=3).map(lambda s: json.dumps({"Statement": s}))
)
def test_from_json_on_arbitrary_text_returns_a_policy_or_raises_parse_error(document: str) -> None:
    # Given arbitrary text, sometimes JSON and sometimes policy-shaped
    # When it is parsed as a policy
    try:
        policy = Policy.from_json(document)
    except ParseError:
        return
    # Then it is a Policy of dict statements
    assert all(isinstance(s, dict) for s in policy.statements)


_source_patterns = st.sampled_from(
    [
        SOURCE,
        f"{PREFIX}/*",
        f"{PREFIX}/*/GET/*",
        OTHER_API_SOURCE,
        "arn:aws:execute-api:*:*:*",
        f"{PREFIX}/prod/POST/",
    ]
)
_accounts = st.sampled_from([ACCOUNT, OTHER_ACCOUNT])
# Condition keys are case-insensitive in IAM, so one clause may name a key twice in different cases.
_grant_conditions = st.fixed_dictionaries(
    {},
    optional={
        "ArnLike": st.fixed_dictionaries(
            {"AWS:SourceArn": _source_patterns}, optional={"aws:sourcearn": _source_patterns}
        ),
        "ArnEquals": st.fixed_dictionaries({"AWS:SourceArn": _source_patterns}),
        "StringEquals": st.fixed_dictionaries(
            {"AWS:SourceAccount": _accounts}, optional={"aws:sourceaccount": _accounts}
        ),
    },
)


@settings(max_examples=200, deadline=None)
@given(
    condition=_grant_conditions, source=_source_patterns, account=st.sampled_from([ACCOUNT, OTHER_ACCOUNT])
)
def test_a_removable_grant_is_one_evaluation_fully_understands(
    condition: dict[str, Any], source: str, account: str
) -> None:
    # Given a grant with random SourceArn/SourceAccount conditions (some spelled twice)
    statement = allow(Condition=condition)
    grant = gateway_grant(statement, 0, FN)
    # When a call from some source/account is evaluated against it
    applies = statement_applies(statement, request(source=source, account=account))
    # Then, if it is classified as a removable grant, evaluation agrees exactly with its pattern and account
    if grant is None:
        return
    expected = (grant.source_pattern is None or arn_like(grant.source_pattern, source)) and (
        grant.source_account is None or grant.source_account == account
    )
    assert applies is expected
