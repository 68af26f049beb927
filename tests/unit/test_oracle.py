"""The independent oracle (permheal_local.oracle): IAM table tests, and a cross-check with permheal.policy.

The oracle grades permheal's repairs in the simulator and the reliability suite, so it must not
share code with `permheal.policy` and must agree with it on every policy both understand.

Deliberate disagreements, excluded from the exact-agreement property and checked separately:
- A **Deny** with an element neither models (another condition key or operator, `NotAction`...)
  but with another element that certainly does not match (another action, principal, resource,
  a failing SourceArn condition): the oracle applies IAM's rule that such a statement does not
  apply (three-valued AND); permheal counts it as denying. There permheal must only ever be the
  more conservative one: whenever permheal allows, the oracle allows.
- Not generated at all, because Lambda's AddPermission can never store them: Effects other than
  `Allow`/`Deny` (the oracle treats them as possibly denying, permheal ignores them), condition
  operators in another case (`arnlike`: IAM spells them exactly; permheal lower-cases them), empty
  condition blocks or value lists, and calls that name `...:$LATEST` (the simulator presents the
  unqualified ARN; permheal also matches `Resource: ...:f:*` against `f:$LATEST`, the oracle
  does not, as that pattern covers versions and aliases only).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.policy import InvokeRequest, Policy, evaluate
from permheal_local import oracle
from permheal_local.oracle import UNKNOWN, Verdict, allows, decide, statement_matches

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders"
ALIAS = f"{FN}:live"
API = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123"
SOURCE = f"{API}/prod/GET/pets/7"
GATEWAY = {"Service": "apigateway.amazonaws.com"}


def grant(**overrides: Any) -> dict[str, Any]:
    """What AddPermission writes for API Gateway on FN; keys set to None are dropped."""
    statement: dict[str, Any] = {
        "Sid": "grant",
        "Effect": "Allow",
        "Principal": GATEWAY,
        "Action": "lambda:InvokeFunction",
        "Resource": FN,
        "Condition": {"ArnLike": {"AWS:SourceArn": f"{API}/*/GET/pets/*"}},
    }
    statement.update(overrides)
    return {k: v for k, v in statement.items() if v is not None}


def deny(**overrides: Any) -> dict[str, Any]:
    return grant(**{"Sid": "no", "Effect": "Deny", **overrides})


def judge(
    *statements: dict[str, Any], function: str = FN, source: str = SOURCE, account: str = ACCOUNT
) -> bool:
    return allows(list(statements), function, source, account)


# --- the oracle's own IAM semantics ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        (grant(), True),
        (grant(Condition=None), True),  # no condition: any source
        (grant(Principal="*"), True),
        (grant(Principal={"AWS": "*"}), True),
        (grant(Principal={"AWS": ["*"]}), True),
        (grant(Principal={"Service": ["events.amazonaws.com", "apigateway.amazonaws.com"]}), True),
        (grant(Principal={"Service": "events.amazonaws.com"}), False),
        (grant(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), False),
        (grant(Principal="apigateway.amazonaws.com"), False),  # malformed: unknown, grants nothing
        (grant(Action="lambda:*"), True),
        (grant(Action="*"), True),
        (grant(Action="LAMBDA:invokefunction"), True),  # actions are case-insensitive
        (grant(Action="lambda:Invoke*"), True),
        (grant(Action=["lambda:GetFunction", "lambda:InvokeFunction"]), True),
        (grant(Action="lambda:InvokeFunctionUrl"), False),
        (grant(Action="lambda:GetFunction"), False),
        (grant(Resource="*"), True),
        (grant(Resource=f"{FN}*"), True),
        (grant(Resource=f"arn:aws:lambda:*:{ACCOUNT}:function:orders"), True),
        (grant(Resource=f"{FN}:live"), False),  # another qualifier's ARN
        (grant(Resource=f"{FN}-other"), False),
        (grant(Condition={"ArnLike": {"AWS:SourceArn": f"{API}/prod/GET/pets/7"}}), True),
        (grant(Condition={"ArnEquals": {"aws:sourcearn": f"{API}/*/GET/*"}}), True),
        (grant(Condition={"ArnLike": {"AWS:SourceArn": f"{API}/dev/GET/pets/*"}}), False),
        (grant(Condition={"ArnLike": {"AWS:SourceArn": f"{API}/*"}}), True),
        # `*` in an ARN component never spans a colon
        (grant(Condition={"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:*/prod/GET/pets/7"}}), False),
        (grant(Condition={"StringLike": {"AWS:SourceArn": "arn:aws:execute-api:*/prod/GET/pets/7"}}), True),
        (grant(Condition={"ArnLike": {"AWS:SourceArn": [f"{API}/dev/*", f"{API}/prod/*"]}}), True),
        (grant(Condition={"ArnNotLike": {"AWS:SourceArn": f"{API}/dev/*"}}), True),
        (grant(Condition={"ArnNotLike": {"AWS:SourceArn": [f"{API}/dev/*", f"{API}/prod/*"]}}), False),
        (grant(Condition={"StringEquals": {"AWS:SourceAccount": ACCOUNT}}), True),
        (grant(Condition={"StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT}}), False),
        (grant(Condition={"StringNotEquals": {"AWS:SourceAccount": OTHER_ACCOUNT}}), True),
        (grant(Condition={"StringEqualsIgnoreCase": {"AWS:SourceArn": SOURCE.upper()}}), True),
        (grant(Condition={"StringEquals": {"AWS:SourceArn": SOURCE.upper()}}), False),
        (grant(Condition={"ArnLikeIfExists": {"AWS:SourceArn": f"{API}/*"}}), True),
        (grant(Condition={"StringEqualsIfExists": {"AWS:SourceAccount": OTHER_ACCOUNT}}), False),
        (
            grant(
                Condition={
                    "ArnLike": {"AWS:SourceArn": f"{API}/*"},
                    "StringEquals": {"AWS:SourceAccount": OTHER_ACCOUNT},
                }
            ),
            False,
        ),  # operators are ANDed
        # unknown: grants nothing
        (grant(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-123"}}), False),
        (grant(Condition={"NumericEquals": {"AWS:SourceAccount": ACCOUNT}}), False),
        (grant(Condition={"arnlike": {"AWS:SourceArn": f"{API}/*"}}), False),  # operators are case-sensitive
        (grant(NotResource="arn:aws:lambda:*:*:function:x"), False),
        (grant(Effect="allow"), False),
    ],
)
def test_a_single_statement_allows_exactly_what_iam_allows(statement: dict[str, Any], allowed: bool) -> None:
    # Given a policy of one statement / When API Gateway invokes FN from SOURCE / Then IAM's answer
    assert judge(statement) is allowed


def test_an_alias_policy_answers_for_the_alias_only() -> None:
    # Given a grant whose Resource is the alias ARN, as AddPermission(Qualifier=live) writes it
    alias_grant = grant(Resource=ALIAS)
    # Then it allows calls to the alias, not to the unqualified function (another policy on AWS)
    assert judge(alias_grant, function=ALIAS)
    assert not judge(alias_grant, function=FN)
    assert not judge(grant(), function=ALIAS)


def test_latest_is_the_unqualified_function_which_a_qualifier_wildcard_does_not_cover() -> None:
    assert judge(grant(), function=f"{FN}:$LATEST")
    assert not judge(grant(Resource=f"{FN}:*"), function=FN)
    assert judge(grant(Resource=f"{FN}:*"), function=ALIAS)


def test_an_explicit_deny_wins_and_is_named() -> None:
    # Given a grant and a Deny for the same call
    verdict = decide([grant(), deny(Sid="block")], FN, SOURCE, ACCOUNT)
    # Then the call is denied, naming the Deny
    assert verdict == Verdict(False, denied_by=("block",))


def test_a_deny_for_another_source_does_not_block() -> None:
    verdict = decide(
        [grant(), deny(Condition={"ArnLike": {"AWS:SourceArn": f"{API}/dev/*"}})], FN, SOURCE, ACCOUNT
    )
    assert verdict == Verdict(True, allowed_by=("grant",))


def test_a_deny_it_cannot_read_counts_as_denying() -> None:
    # Given a Deny on a condition key the oracle does not model, and no element that rules it out
    unreadable = deny(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-123"}})
    # Then the judge refuses to report the call as working
    assert decide([grant(), unreadable], FN, SOURCE, ACCOUNT) == Verdict(False, denied_by=("no",))


def test_a_deny_it_cannot_read_but_that_names_another_action_does_not_apply() -> None:
    # Given an unreadable Deny that is about another action entirely
    other_action = deny(Action="lambda:GetFunction", Condition={"Bool": {"aws:SecureTransport": "false"}})
    # Then IAM's three-valued AND says it cannot apply: the call is allowed
    assert statement_matches(other_action, FN, SOURCE, ACCOUNT) is False
    assert judge(grant(), other_action)


def test_statement_matches_is_three_valued() -> None:
    assert statement_matches(grant(), FN, SOURCE, ACCOUNT) is True
    assert statement_matches(grant(Resource=ALIAS), FN, SOURCE, ACCOUNT) is False
    assert statement_matches(grant(NotAction="x"), FN, SOURCE, ACCOUNT) is UNKNOWN


@pytest.mark.parametrize(
    "policy",
    [None, "", json.dumps({"Version": "2012-10-17", "Statement": grant()}), {"Statement": [grant()]}],
)
def test_policy_documents_in_every_shape_lambda_returns(policy: Any) -> None:
    expected = policy not in (None, "")
    assert allows(policy, FN, SOURCE, ACCOUNT) is expected


def test_the_oracle_imports_nothing_from_permheal() -> None:
    # Independence is the point: a shared helper would hide a shared mistake.
    tree = ast.parse(Path(oracle.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    ]
    assert imported and not [name for name in imported if name.startswith("permheal")]


# --- cross-check with permheal.policy.evaluate -------------------------------------------------------

OTHER_API = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:zzz999"
SOURCES = [
    SOURCE,
    f"{API}/dev/GET/pets/7",
    f"{API}/prod/POST/pets",
    f"{API}/authorizers/auth1",
    f"{OTHER_API}/prod/GET/pets/7",
    f"arn:aws:execute-api:eu-west-1:{OTHER_ACCOUNT}:abc123/prod/GET/pets/7",
]
SOURCE_PATTERNS = [
    *SOURCES,
    f"{API}/*/GET/pets/*",
    f"{API}/*",
    f"{API}/prod/*",
    f"{API}/authorizers/*",
    "arn:aws:execute-api:*:*:abc123/*",
    f"arn:aws:execute-api:us-east-1:{ACCOUNT}:*/*/GET/*",
    f"{API}/*/*/pets/?",
    "arn:aws:execute-api:*/prod/*",  # not a six-part ARN pattern
    "*",
]
ACCOUNTS = [ACCOUNT, OTHER_ACCOUNT, "12345678901?", "*"]
MODELLED_OPERATORS = [
    "ArnLike",
    "ArnEquals",
    "ArnNotLike",
    "ArnNotEquals",
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
]
OPERATORS = [*MODELLED_OPERATORS, *(f"{op}IfExists" for op in MODELLED_OPERATORS)]
UNMODELLED_OPERATORS = ["NumericEquals", "Bool", "DateLessThan", "ForAnyValue:StringLike"]
UNMODELLED_KEYS = ["aws:PrincipalOrgID", "lambda:FunctionUrlAuthType"]


def one_or_many(values: list[str]) -> st.SearchStrategy[Any]:
    return st.sampled_from(values) | st.lists(st.sampled_from(values), min_size=1, max_size=3)


@st.composite
def clauses(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """(operator, {key: values}, modelled)."""
    if draw(st.integers(0, 7)) == 0:
        operator = draw(st.sampled_from(UNMODELLED_OPERATORS))
        return operator, {"AWS:SourceArn": draw(one_or_many(SOURCE_PATTERNS))}, False
    operator = draw(st.sampled_from(OPERATORS))
    block: dict[str, Any] = {}
    modelled = True
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            block[draw(st.sampled_from(UNMODELLED_KEYS))] = draw(st.sampled_from(["o-1", "NONE"]))
            modelled = False
        elif kind <= 6:
            block[draw(st.sampled_from(["AWS:SourceArn", "aws:SourceArn", "aws:sourcearn"]))] = draw(
                one_or_many(SOURCE_PATTERNS)
            )
        else:
            block[draw(st.sampled_from(["AWS:SourceAccount", "aws:sourceaccount"]))] = draw(
                one_or_many(ACCOUNTS)
            )
    return operator, block, modelled


@st.composite
def statements(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """(statement, modelled): a random statement over a small alphabet of realistic elements."""
    statement: dict[str, Any] = {
        "Sid": draw(st.sampled_from(["a", "b", "c", "permheal-1"])),
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Principal": draw(
            st.sampled_from(
                [
                    GATEWAY,
                    GATEWAY,
                    "*",
                    {"AWS": "*"},
                    {"AWS": ["*"]},
                    {"Service": ["events.amazonaws.com", "apigateway.amazonaws.com"]},
                    {"Service": "events.amazonaws.com"},
                    {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                ]
            )
        ),
        "Action": draw(
            st.sampled_from(
                [
                    "lambda:InvokeFunction",
                    "lambda:InvokeFunction",
                    "lambda:*",
                    "*",
                    "lambda:Invoke*",
                    "Lambda:invokefunction",
                    ["lambda:GetFunction", "lambda:InvokeFunction"],
                    "lambda:GetFunction",
                    "lambda:InvokeFunctionUrl",
                ]
            )
        ),
        "Resource": draw(
            st.sampled_from(
                [
                    FN,
                    FN,
                    ALIAS,
                    f"{FN}:*",
                    f"{FN}*",
                    "*",
                    f"{FN}-other",
                    f"arn:aws:lambda:*:{ACCOUNT}:function:orders",
                ]
            )
        ),
    }
    modelled = True
    if draw(st.integers(0, 4)) > 0:
        condition: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 2))):
            operator, block, block_modelled = draw(clauses())
            condition.setdefault(operator, {}).update(block)
            modelled = modelled and block_modelled
        statement["Condition"] = condition
    if draw(st.integers(0, 12)) == 0:
        statement["NotResource"] = "arn:aws:lambda:*:*:function:x"
        modelled = False
    return statement, modelled


requests = st.tuples(
    st.sampled_from([FN, ALIAS]), st.sampled_from(SOURCES), st.sampled_from([ACCOUNT, OTHER_ACCOUNT])
)


@settings(max_examples=600, deadline=None)
@given(st.lists(statements(), max_size=5), requests)
def test_oracle_and_permheal_agree_on_every_policy_both_model(
    drawn: list[tuple[dict[str, Any], bool]], request: tuple[str, str, str]
) -> None:
    policy = [statement for statement, _ in drawn]
    function, source, account = request
    theirs = evaluate(Policy(tuple(policy)), InvokeRequest(function, source, account))
    ours = decide(policy, function, source, account)
    unreadable_deny = any(not modelled and s["Effect"] == "Deny" for s, modelled in drawn)
    if not unreadable_deny:
        # Then: exact agreement, down to the statements that decided
        assert ours.allowed == theirs.allowed, (policy, request)
        assert (ours.denied_by or ours.allowed_by) == theirs.sids, (policy, request)
    else:
        # The documented disagreement: permheal may be more conservative, never less.
        assert not theirs.allowed or ours.allowed, (policy, request)


def test_the_cross_check_exercises_both_answers_and_the_documented_disagreement() -> None:
    """The property above is only worth something if it sees allows, denies and the known gap."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, derandomize=True)
    @given(st.lists(statements(), min_size=1, max_size=5), requests)
    def collect(drawn: list[tuple[dict[str, Any], bool]], request: tuple[str, str, str]) -> None:
        policy = [statement for statement, _ in drawn]
        theirs = evaluate(Policy(tuple(policy)), InvokeRequest(*request))
        ours = decide(policy, *request)
        seen.add("allow" if ours.allowed else "deny" if ours.denied_by else "implicit")
        if ours.allowed != theirs.allowed:
            seen.add("gap")

    collect()
    assert seen == {"allow", "deny", "implicit", "gap"}


@pytest.mark.parametrize(
    "path",
    ["permheal_local/simulator.py", "tests/reliability/support.py", "tests/corpus/judge.py"],
    ids=[
        "simulator",
        "statements-lost-measure",
        "corpus-judge",
    ],  # a path id would look like a reliability test
)
def test_the_judges_do_not_use_permheals_evaluator(path: str) -> None:
    # The simulator's invoke check, the "statements lost" measure and the corpus verdict use the oracle.
    tree = ast.parse((Path(__file__).resolve().parents[2] / path).read_text())
    names = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "allows" in names or "oracle" in names
    assert "evaluate" not in names and "permheal.planner" not in modules
