"""Lambda resource policies: parsing, IAM evaluation for API Gateway calls, and grants permheal may touch.

A statement this module does not fully understand grants nothing and is never a removal candidate:
being unsure must only ever make permheal add a narrow grant, never remove one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from permheal.arnlike import arn_like, covers, is_arn_pattern, string_like
from permheal.errors import ParseError

APIGATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
INVOKE_ACTION = "lambda:InvokeFunction"
POLICY_SIZE_LIMIT = 20_480
SOURCE_ARN_KEY = "aws:sourcearn"
SOURCE_ACCOUNT_KEY = "aws:sourceaccount"

Statement = Mapping[str, Any]


@dataclass(frozen=True)
class Policy:
    """One qualifier's policy as read, with the RevisionId every write must carry."""

    statements: tuple[Statement, ...] = ()
    revision_id: str | None = None
    policy_id: str = "default"

    @classmethod
    def from_json(cls, document: str | None, revision_id: str | None = None) -> Policy:
        if not document:
            return cls((), revision_id)
        try:
            parsed = json.loads(document)
        except (TypeError, ValueError, RecursionError) as exc:  # absurd nesting raises RecursionError
            raise ParseError(f"policy is not JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ParseError("policy document must be a JSON object")
        statements = parsed.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            raise ParseError("policy Statement must be an object or a list of objects")
        return cls(tuple(statements), revision_id, str(parsed.get("Id", "default")))

    def document(self) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Id": self.policy_id, "Statement": list(self.statements)}

    @property
    def size_bytes(self) -> int:
        """0 for a qualifier without a policy, as Lambda has nothing stored for it."""
        return policy_size(self.statements, self.policy_id) if self.statements else 0

    def with_changes(self, added: Iterable[Statement] = (), removed_sids: Iterable[str] = ()) -> Policy:
        gone = set(removed_sids)
        # A Sid that is not a string (malformed input) is never one permheal removes, nor hashable.
        kept = tuple(s for s in self.statements if not (isinstance(s.get("Sid"), str) and s["Sid"] in gone))
        return Policy(kept + tuple(added), self.revision_id, self.policy_id)

    def sids(self) -> set[str]:
        return {s["Sid"] for s in self.statements if isinstance(s.get("Sid"), str)}


def policy_size(statements: Sequence[Statement], policy_id: str = "default") -> int:
    """Bytes of the compact policy JSON, the measure Lambda holds against its 20 KB limit."""
    document = {"Version": "2012-10-17", "Id": policy_id, "Statement": list(statements)}
    return len(json.dumps(document, separators=(",", ":")).encode())


@dataclass(frozen=True)
class InvokeRequest:
    """API Gateway asking Lambda to invoke `resource_arn` on behalf of `source_arn`."""

    resource_arn: str
    source_arn: str
    source_account: str


class Decision(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Evaluation:
    """A policy's answer to one invoke request, and the statements that decided it."""

    decision: Decision
    sids: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def evaluate(policy: Policy, request: InvokeRequest) -> Evaluation:
    """IAM evaluation of one policy: an explicit Deny wins, then any Allow, else not allowed.

    A Deny statement permheal cannot read counts as denying: claiming access we cannot prove would
    hide a failure.
    """
    allows: list[str] = []
    denies: list[str] = []
    for index, statement in enumerate(policy.statements):
        applies = statement_applies(statement, request)
        sid = str(statement.get("Sid", f"#{index}"))
        effect = statement.get("Effect")
        if effect == "Deny" and applies is not False:
            denies.append(sid)
        elif effect == "Allow" and applies:
            allows.append(sid)
    if denies:
        return Evaluation(Decision.DENY, tuple(denies))
    if allows:
        return Evaluation(Decision.ALLOW, tuple(allows))
    return Evaluation(Decision.NOT_ALLOWED)


def statement_applies(statement: Statement, request: InvokeRequest) -> bool | None:
    """Whether a statement matches the request; None when it uses something we do not model."""
    return trace_statement(statement, request).applies


@dataclass(frozen=True)
class StatementTrace:
    """One statement judged against one call, with the reason: what `permheal explain` prints.

    `statement_applies` is this trace's `applies`, so an explanation and the verdict `evaluate`
    reaches cannot disagree.
    """

    sid: str
    effect: str
    applies: bool | None
    reason: str

    @property
    def outcome(self) -> str:
        """`allows`, `denies`, `no match` or `not understood` (a Deny not understood still denies)."""
        if self.effect == "Deny" and self.applies is not False:
            return "denies"
        if self.effect == "Allow" and self.applies:
            return "allows"
        return "no match" if self.applies is False else "not understood"

    def to_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "effect": self.effect, "outcome": self.outcome, "reason": self.reason}


def trace_statement(statement: Statement, request: InvokeRequest, index: int = 0) -> StatementTrace:
    """Judge one statement; anything unmodelled makes it unknown even beside a mismatch."""
    sid = str(statement.get("Sid", f"#{index}"))
    effect = statement.get("Effect")
    label = effect if isinstance(effect, str) else repr(effect)
    if effect not in ("Allow", "Deny"):
        return StatementTrace(sid, label, None, f"Effect {effect!r} is neither Allow nor Deny")
    unmodelled = [key for key in ("NotPrincipal", "NotAction", "NotResource") if key in statement]
    if unmodelled:
        return StatementTrace(sid, label, None, f"uses {unmodelled[0]}, which permheal does not evaluate")
    checks = (
        _principal_check(statement.get("Principal")),
        _action_check(statement.get("Action")),
        _resource_check(statement.get("Resource"), request.resource_arn),
        _conditions_check(statement.get("Condition", {}), request),
    )
    for result, reason in checks:
        if result is None:
            return StatementTrace(sid, label, None, reason)
    for result, reason in checks:
        if not result:
            return StatementTrace(sid, label, False, reason)
    return StatementTrace(sid, label, True, checks[3][1])


def trace(policy: Policy, request: InvokeRequest) -> tuple[StatementTrace, ...]:
    """Every statement of the policy judged against the call, in policy order."""
    return tuple(trace_statement(s, request, i) for i, s in enumerate(policy.statements))


Check = tuple[bool | None, str]


def _principal_check(principal: Any) -> Check:
    result = _principal_matches(principal)
    shown = json.dumps(principal)
    if result is None:
        return None, f"Principal {shown} is not a form permheal evaluates"
    if result:
        return True, f"Principal {shown} includes API Gateway"
    return False, f"Principal {shown} is not {APIGATEWAY_PRINCIPAL}"


def _action_check(action: Any) -> Check:
    result = _values_match(action, lambda p: string_like(p.lower(), INVOKE_ACTION.lower()))
    shown = json.dumps(action)
    if result is None:
        return None, f"Action {shown} is not a form permheal evaluates"
    return result, f"Action {shown} {'covers' if result else 'does not cover'} {INVOKE_ACTION}"


def _resource_check(resource: Any, invoked_arn: str) -> Check:
    result = _resource_matches(resource, invoked_arn)
    shown = json.dumps(resource)
    if result is None:
        return None, f"Resource {shown} is not a form permheal evaluates"
    if result:
        return True, f"Resource {shown} is the invoked {invoked_arn}"
    return (
        False,
        f"Resource {shown} is not the invoked {invoked_arn} (another qualifier's grant does not count)",
    )


def _principal_matches(principal: Any) -> bool | None:
    if principal == "*":
        return True
    if not isinstance(principal, dict) or not principal:
        return None
    matched = False
    for kind, value in principal.items():
        values = _strings(value)
        if values is None:
            return None
        if (kind == "AWS" and "*" in values) or (kind == "Service" and APIGATEWAY_PRINCIPAL in values):
            matched = True
    return matched


def _resource_matches(resource: Any, invoked_arn: str) -> bool | None:
    # `...:function:f:$LATEST` is the unqualified function: both names refer to one policy.
    candidates = {invoked_arn, invoked_arn.removesuffix(":$LATEST")}
    return _values_match(resource, lambda pattern: any(string_like(pattern, arn) for arn in candidates))


def _values_match(value: Any, matches: Any) -> bool | None:
    values = _strings(value)
    if values is None:
        return None
    return any(matches(v) for v in values)


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "stringequals": (lambda p, v: p == v, False),
    "stringnotequals": (lambda p, v: p == v, True),
    "stringequalsignorecase": (lambda p, v: p.lower() == v.lower(), False),
    "stringnotequalsignorecase": (lambda p, v: p.lower() == v.lower(), True),
    "stringlike": (string_like, False),
    "stringnotlike": (string_like, True),
    "arnequals": (arn_like, False),
    "arnlike": (arn_like, False),
    "arnnotequals": (arn_like, True),
    "arnnotlike": (arn_like, True),
}


def _conditions_check(conditions: Any, request: InvokeRequest) -> Check:
    """Every condition must hold; the reason names the first that fails (or why none can be read)."""
    if not isinstance(conditions, dict):
        return None, f"Condition {json.dumps(conditions)} is not an object"
    context = {SOURCE_ARN_KEY: request.source_arn, SOURCE_ACCOUNT_KEY: request.source_account}
    held: list[str] = []
    for operator, clauses in conditions.items():
        # Both keys are always present for API Gateway calls, so IfExists changes nothing.
        name = str(operator).lower().removesuffix("ifexists")
        if name not in _OPERATORS or not isinstance(clauses, dict):
            return None, f"condition operator {operator} is not one permheal evaluates"
        compare, negated = _OPERATORS[name]
        for key, expected in clauses.items():
            actual = context.get(str(key).lower())
            patterns = _strings(expected)
            if actual is None or patterns is None:
                return None, f"condition {operator} on {key} is not one permheal evaluates"
            hit = any(compare(pattern, actual) for pattern in patterns)
            shown = f"{operator} {key} {json.dumps(expected)}"
            if hit == negated:
                return False, f"condition {shown} fails: this call's {key} is {actual}"
            held.append(f"{shown} holds for {actual}")
    return True, "matches: " + ("; ".join(held) if held else "no conditions")


@dataclass(frozen=True)
class GatewayGrant:
    """A plain API Gateway invoke grant: the only kind of statement permheal may ever remove.

    `source_pattern` None means the statement allows any source ARN.
    """

    sid: str
    source_pattern: str | None
    source_account: str | None
    position: int

    def covers(self, other: GatewayGrant) -> bool:
        """Does this grant allow every call `other` allows?"""
        if self.source_account is not None and self.source_account != other.source_account:
            return False
        if self.source_pattern is None:
            return True
        return other.source_pattern is not None and covers(self.source_pattern, other.source_pattern)


def gateway_grant(statement: Statement, position: int, resource_arn: str) -> GatewayGrant | None:
    """Classify a statement as a removable API Gateway grant on `resource_arn`, or None."""
    sid = statement.get("Sid")
    if not isinstance(sid, str) or statement.get("Effect") != "Allow":
        return None
    if set(statement) - {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}:
        return None
    if _single(statement.get("Principal"), "Service") != APIGATEWAY_PRINCIPAL:
        return None
    if (
        _single(statement.get("Action")) != INVOKE_ACTION
        or _single(statement.get("Resource")) != resource_arn
    ):
        return None
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        return None
    source_pattern: str | None = None
    source_account: str | None = None
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict):
            return None
        for key, value in clauses.items():
            single = _single(value)
            if single is None:
                return None
            pair = (operator, str(key).lower())
            if pair in (("ArnLike", SOURCE_ARN_KEY), ("ArnEquals", SOURCE_ARN_KEY)) and is_arn_pattern(
                single
            ):
                if source_pattern is not None:
                    return None
                source_pattern = single
            elif pair == ("StringEquals", SOURCE_ACCOUNT_KEY):
                if source_account is not None:  # keys are case-insensitive: a second one also applies
                    return None
                source_account = single
            else:
                return None
    return GatewayGrant(sid, source_pattern, source_account, position)


def _single(value: Any, key: str | None = None) -> str | None:
    if key is not None:
        if not isinstance(value, dict) or set(value) != {key}:
            return None
        value = value[key]
    values = _strings(value)
    return values[0] if values is not None and len(values) == 1 else None


def gateway_grants(policy: Policy, resource_arn: str) -> list[GatewayGrant]:
    grants = (gateway_grant(s, i, resource_arn) for i, s in enumerate(policy.statements))
    return [g for g in grants if g is not None]


def invoke_statement(sid: str, resource_arn: str, source_pattern: str) -> dict[str, Any]:
    """The statement AddPermission writes for one API Gateway grant, byte for byte."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": APIGATEWAY_PRINCIPAL},
        "Action": INVOKE_ACTION,
        "Resource": resource_arn,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_pattern}},
    }
