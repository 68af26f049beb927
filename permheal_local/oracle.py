"""An independent judge of Lambda resource policies for API Gateway invocations.

The local AWS must not grade permheal with permheal's own evaluator (`permheal.policy.evaluate`):
a shared mistake would be invisible. This module re-implements, from the IAM documentation and
with nothing imported from permheal's core, the one question the simulator and the test suites
ask: may `apigateway.amazonaws.com` invoke this function ARN on behalf of this source ARN?

IAM semantics implemented:
- an explicit Deny that applies wins; otherwise any Allow that applies; otherwise implicit deny;
- Principal `"*"`, `{"AWS": "*"}` and `{"Service": ...}` (string or list) naming API Gateway;
  any other principal (accounts, roles, other services) is not API Gateway;
- Action glob, case-insensitive (`lambda:InvokeFunction`, `lambda:*`, `*`, `lambda:Invoke*`, lists);
- Resource `*`, or ArnLike over the invoked ARN (`...:function:f:$LATEST` is the unqualified
  `...:function:f`, which `function:f:*` does not cover; an alias or version is its own ARN);
- Condition on `aws:SourceArn` / `aws:SourceAccount` (key names case-insensitive) with ArnLike,
  ArnEquals, ArnNotLike, ArnNotEquals, StringEquals, StringNotEquals, StringEqualsIgnoreCase,
  StringNotEqualsIgnoreCase, StringLike, StringNotLike and their `IfExists` forms (both keys are
  always present in an API Gateway call, so `IfExists` changes nothing); several values of one
  key match if any matches (a negated operator: if none matches); operators and keys are ANDed.

Anything else (another condition key or operator, `NotPrincipal`/`NotAction`/`NotResource`, a
malformed element) is *unknown*. A statement's applicability is three-valued (Kleene AND): one
element that certainly does not match makes the statement not apply even if another is unknown.
An unknown Allow grants nothing; an unknown Deny counts as denying (conservative: the judge
must never report a call as working that AWS might refuse).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

__all__ = ["UNKNOWN", "Verdict", "allows", "decide", "statement_matches"]

GATEWAY_SERVICE = "apigateway.amazonaws.com"
INVOKE = "lambda:InvokeFunction"


class _Unknown(Enum):
    """The third truth value: the oracle cannot tell whether the element matches."""

    UNKNOWN = "unknown"


UNKNOWN = _Unknown.UNKNOWN
Truth = bool | _Unknown


@dataclass(frozen=True)
class Verdict:
    """The decision for one call, with the statements that made it (Sid or `#index`)."""

    allowed: bool
    denied_by: tuple[str, ...] = ()
    allowed_by: tuple[str, ...] = ()


# --- matching ----------------------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _glob(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """`*` any run of characters, `?` exactly one, everything else literal."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_components(text: str) -> list[str] | None:
    parts = text.split(":", 5)
    return parts if len(parts) == 6 and parts[0] == "arn" else None


def _arn_like(pattern: str, value: str) -> bool:
    """IAM ArnLike/ArnEquals: six colon-separated components, each matched as its own glob."""
    pattern_parts, value_parts = _arn_components(pattern), _arn_components(value)
    if pattern_parts is None or value_parts is None:
        return False
    return all(_glob_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _values(value: Any) -> list[str] | None:
    """A policy element's values: one string or a non-empty list of strings; None when malformed."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


_COMPARATORS: dict[str, Any] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringEqualsIgnoreCase": lambda expected, actual: expected.casefold() == actual.casefold(),
    "StringLike": _glob_match,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
}
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _operator(name: str) -> tuple[Any, bool] | None:
    """(comparator, negated) for an operator name, case-sensitive as IAM writes them."""
    base = name.removesuffix("IfExists")
    if base in _COMPARATORS:
        return _COMPARATORS[base], False
    if base in _NEGATIONS:
        return _COMPARATORS[_NEGATIONS[base]], True
    return None


def _kleene_and(truths: Iterable[Truth]) -> Truth:
    result: Truth = True
    for truth in truths:
        if truth is False:
            return False
        if truth is UNKNOWN:
            result = UNKNOWN
    return result


def _principal(principal: Any) -> Truth:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping) or not principal:
        return UNKNOWN
    found: Truth = False
    for kind, value in principal.items():
        names = _values(value)
        if names is None or kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            found = UNKNOWN if found is False else found
            continue
        if (kind == "AWS" and "*" in names) or (kind == "Service" and GATEWAY_SERVICE in names):
            return True
    return found


def _action(action: Any) -> Truth:
    names = _values(action)
    if names is None:
        return UNKNOWN
    return any(_glob_match(name, INVOKE, ignore_case=True) for name in names)


def _resource(resource: Any, invoked_arn: str) -> Truth:
    patterns = _values(resource)
    if patterns is None:
        return UNKNOWN
    # `$LATEST` is the unqualified function, whose policy names it by its unqualified ARN only
    # (`function:f:*` covers versions and aliases, not the function itself).
    name = invoked_arn.removesuffix(":$LATEST")
    return any(pattern == "*" or _arn_like(pattern, name) for pattern in patterns)


def _condition(condition: Any, context: Mapping[str, str]) -> Truth:
    if condition is None:
        return True
    if not isinstance(condition, Mapping):
        return UNKNOWN
    truths: list[Truth] = []
    for name, clauses in condition.items():
        operator = _operator(str(name))
        if operator is None or not isinstance(clauses, Mapping) or not clauses:
            truths.append(UNKNOWN)
            continue
        compare, negated = operator
        for key, expected in clauses.items():
            actual = context.get(str(key).lower())
            patterns = _values(expected)
            if actual is None or patterns is None:
                truths.append(UNKNOWN)
                continue
            hit = any(compare(pattern, actual) for pattern in patterns)
            truths.append(hit != negated)
    return _kleene_and(truths)


_KNOWN_ELEMENTS = frozenset({"Sid", "Effect", "Principal", "Action", "Resource", "Condition"})


def statement_matches(
    statement: Mapping[str, Any], function_arn: str, source_arn: str, source_account: str
) -> Truth:
    """Whether the statement is about this call: True, False or UNKNOWN (Effect not considered)."""
    context = {"aws:sourcearn": source_arn, "aws:sourceaccount": source_account}
    unmodelled: Truth = UNKNOWN if set(statement) - _KNOWN_ELEMENTS else True
    return _kleene_and(
        (
            _principal(statement.get("Principal")),
            _action(statement.get("Action")),
            _resource(statement.get("Resource"), function_arn),
            _condition(statement.get("Condition"), context),
            unmodelled,
        )
    )


# --- the decision ------------------------------------------------------------------------------------


def _statements(policy: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[Any]:
    if policy is None or policy == "":
        return []
    if isinstance(policy, str):
        policy = json.loads(policy)
    if isinstance(policy, Mapping):
        statements = policy.get("Statement", [])
        return [statements] if isinstance(statements, Mapping) else list(statements)
    return list(policy)


def decide(
    policy: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    function_arn: str,
    source_arn: str,
    source_account: str,
) -> Verdict:
    """IAM's decision for API Gateway invoking `function_arn` (the exact qualifier) from `source_arn`.

    `policy` is the policy document of exactly that qualifier (JSON text, parsed, or its
    statement list); None or "" when Lambda holds none.
    """
    denies: list[str] = []
    grants: list[str] = []
    for index, statement in enumerate(_statements(policy)):
        name = statement.get("Sid") if isinstance(statement, Mapping) else None
        label = name if isinstance(name, str) else f"#{index}"
        if not isinstance(statement, Mapping):
            continue  # Lambda would not store it; it neither grants nor denies
        matched = statement_matches(statement, function_arn, source_arn, source_account)
        effect = statement.get("Effect")
        if effect == "Allow":
            if matched is True:
                grants.append(label)
        elif matched is not False:  # Deny, or an Effect we cannot read: may deny
            denies.append(label)
    if denies:
        return Verdict(False, denied_by=tuple(denies))
    return Verdict(bool(grants), allowed_by=tuple(grants))


def allows(
    policy: str | Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    function_arn: str,
    source_arn: str,
    source_account: str,
) -> bool:
    return decide(policy, function_arn, source_arn, source_account).allowed
