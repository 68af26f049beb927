"""Make moto's Lambda resource policies behave like AWS, by patching moto in-process.

moto 5.2.5 shares one policy between a function, its versions (shallow copies) and its
aliases, ignores ``Qualifier`` on RemovePermission, always fails RemovePermission given a RevisionId,
accepts duplicate statement ids and has no size limit. :func:`install` replaces the three
policy operations on ``LambdaBackend`` (so also ``LambdaSimpleBackend``) and on
``LambdaResponse``; policies then live in a store on each backend instance, keyed by
(function name, qualifier or ``None``), which moto's backend reset wipes with the backend.
Class-level patching covers both ``mock_aws`` and a ``ThreadedMotoServer`` in this process.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.awslambda.exceptions import (
    GenericResourcNotFound,
    InvalidParameterValueException,
    LambdaClientError,
    PreconditionFailedException,
    UnknownFunctionException,
    UnknownPolicyException,
)
from moto.awslambda.models import LambdaBackend
from moto.awslambda.responses import LambdaResponse
from moto.awslambda.utils import get_backend

from permheal_local import patching

__all__ = [
    "POLICY_SIZE_LIMIT",
    "install",
    "is_installed",
    "policy_size",
    "policy_statements",
    "uninstall",
]

POLICY_SIZE_LIMIT = 20_480

_STORE_ATTR = "_faithful_lambda_policies"
_LOCK = threading.RLock()  # ThreadedMotoServer serves requests on several threads
_ORIGINALS: dict[tuple[type[Any], str], Any] = {}
_NAME_RE = re.compile(
    r"(?:arn:aws[a-zA-Z-]*:lambda:)?(?:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):)?"
    r"(?:(?P<account>\d{12}):)?(?:function:)?(?P<name>[a-zA-Z0-9_-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
)
_REVISION_MISMATCH = (
    "The RevisionId provided does not match the latest RevisionId for the Lambda function or alias. "
    "Call the GetFunction or the GetAlias API to retrieve the latest RevisionId for your resource."
)
# AddPermission parameter -> condition key, all under StringEquals (AWS's order).
_STRING_EQUALS = (
    ("SourceAccount", "AWS:SourceAccount"),
    ("PrincipalOrgID", "aws:PrincipalOrgID"),
    ("FunctionUrlAuthType", "lambda:FunctionUrlAuthType"),
    ("EventSourceToken", "lambda:EventSourceToken"),
)

Statement = dict[str, Any]
_Key = tuple[str, str | None]


class ResourceConflictException(LambdaClientError):
    """AddPermission with a StatementId already in the policy (HTTP 409)."""

    code = 409

    def __init__(self, sid: str) -> None:
        super().__init__(
            "ResourceConflictException",
            f"The statement id ({sid}) provided already exists. "
            "Please provide a new statement id, or remove the existing statement.",
        )


class PolicyLengthExceededException(LambdaClientError):
    """The policy would exceed :data:`POLICY_SIZE_LIMIT` bytes (HTTP 400)."""

    code = 400

    def __init__(self, size: int) -> None:
        super().__init__(
            "PolicyLengthExceededException",
            f"The final policy size ({size}) is bigger than the limit ({POLICY_SIZE_LIMIT}).",
        )


class StatementNotFoundException(LambdaClientError):
    """RemovePermission of a Sid the policy does not hold (HTTP 404)."""

    code = 404

    def __init__(self, sid: str) -> None:
        super().__init__("ResourceNotFoundException", f"Statement {sid} is not found in resource policy.")


@dataclass
class _Policy:
    """One resource policy; ``owner`` is the moto object it belongs to (function, version or alias)."""

    owner: object
    statements: list[Statement] = field(default_factory=list)
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class _Target:
    """A resolved FunctionName + Qualifier."""

    key: _Key
    owner: object
    resource: str


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _document(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "default", "Statement": list(statements)}


def policy_size(statements: Sequence[Mapping[str, Any]]) -> int:
    """Bytes of the compact JSON policy document holding ``statements`` (what AWS limits)."""
    return len(_dumps(_document(statements)).encode("utf-8"))


def _resolve(backend: LambdaBackend, function_name: str, qualifier: str | None) -> _Target:
    """Resolve a name / partial ARN / ARN (maybe ``:qualifier``) plus Qualifier; 404 if unknown."""
    match = _NAME_RE.fullmatch(function_name)
    if (
        match is None
        or match["region"] not in (None, backend.region_name)
        or match["account"] not in (None, backend.account_id)
    ):
        raise UnknownFunctionException(function_name)
    name, derived = match["name"], match["qualifier"]
    if derived and qualifier and derived != qualifier:
        raise InvalidParameterValueException(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    qualifier = derived or qualifier or None
    latest = backend.get_function(name)
    if qualifier is None or qualifier == "$LATEST":
        return _Target((name, None), latest, latest.function_arn)
    version = backend.get_function(name, qualifier)  # 404 for an unknown version or alias
    owner: object = version if qualifier.isdigit() else backend.get_alias(qualifier, name)
    return _Target((name, qualifier), owner, f"{latest.function_arn}:{qualifier}")


def _policy(backend: LambdaBackend, target: _Target) -> _Policy:
    """The target's policy, fresh if the function/alias was deleted and created again."""
    store: dict[_Key, _Policy] = backend.__dict__.setdefault(_STORE_ATTR, {})
    policy = store.get(target.key)
    if policy is None or policy.owner is not target.owner:
        policy = store[target.key] = _Policy(target.owner)
    return policy


def _check_revision(policy: _Policy, revision: str | None) -> None:
    if revision and revision != policy.revision:
        raise PreconditionFailedException(_REVISION_MISMATCH)


def _principal(principal: str, partition: str) -> Any:
    if principal == "*":
        return "*"
    if principal.isdigit() and len(principal) == 12:
        return {"AWS": f"arn:{partition}:iam::{principal}:root"}
    if principal.startswith("arn:"):
        return {"AWS": principal}
    return {"Service": principal}


def _statement(request: Mapping[str, Any], resource: str, partition: str) -> Statement:
    """The statement AWS writes for an AddPermission request."""
    statement: Statement = {
        "Sid": request["StatementId"],
        "Effect": "Allow",
        "Principal": _principal(request["Principal"], partition),
        "Action": request["Action"],
        "Resource": resource,
    }
    condition: dict[str, dict[str, str]] = {}
    for param, key in _STRING_EQUALS:
        if param in request:
            condition.setdefault("StringEquals", {})[key] = request[param]
    if "SourceArn" in request:
        condition["ArnLike"] = {"AWS:SourceArn": request["SourceArn"]}
    if request.get("InvokedViaFunctionUrl"):
        condition["Bool"] = {"lambda:InvokedViaFunctionUrl": "true"}
    if condition:
        statement["Condition"] = condition
    return statement


# --- replacements for LambdaBackend methods -------------------------------------------------------


def _add_permission(self: LambdaBackend, function_name: str, qualifier: str | None, raw: str) -> Statement:
    """AddPermission on one qualifier's policy: RevisionId, duplicate Sid and size checks."""
    request = json.loads(raw)
    with _LOCK:
        target = _resolve(self, function_name, qualifier)
        policy = _policy(self, target)
        _check_revision(policy, request.get("RevisionId"))
        if any(s.get("Sid") == request["StatementId"] for s in policy.statements):
            raise ResourceConflictException(request["StatementId"])
        statement = _statement(request, target.resource, self.partition)
        size = policy_size([*policy.statements, statement])
        if size > POLICY_SIZE_LIMIT:
            raise PolicyLengthExceededException(size)
        policy.statements.append(statement)
        policy.revision = str(uuid.uuid4())
        return copy.deepcopy(statement)


def _remove_permission(
    self: LambdaBackend,
    function_name: str,
    sid: str,
    revision: str | None = "",
    qualifier: str | None = None,
) -> None:
    """RemovePermission from one qualifier's policy, honouring RevisionId."""
    with _LOCK:
        target = _resolve(self, function_name, qualifier)
        policy = _policy(self, target)
        _check_revision(policy, revision)
        if not policy.statements:
            raise UnknownPolicyException()
        kept = [s for s in policy.statements if s.get("Sid") != sid]
        if len(kept) == len(policy.statements):
            raise StatementNotFoundException(sid)
        policy.statements = kept
        policy.revision = str(uuid.uuid4())


def _get_policy(self: LambdaBackend, function_name: str, qualifier: str | None = None) -> str:
    """GetPolicy wire body for one qualifier's policy; 404 when it has no statements."""
    with _LOCK:
        policy = _policy(self, _resolve(self, function_name, qualifier))
        if not policy.statements:
            raise GenericResourcNotFound()
        return json.dumps({"Policy": _dumps(_document(policy.statements)), "RevisionId": policy.revision})


# --- replacements for LambdaResponse methods ------------------------------------------------------


def _query(response: LambdaResponse, name: str) -> str | None:
    # Not response.querystring: moto fills that from the body or headers when the URL has no query.
    return parse_qs(response.parsed_url.query).get(name, [None])[0]


def _response_add_permission(self: LambdaResponse) -> tuple[int, dict[str, Any], str]:
    function_name = unquote(self.path.split("/")[-2])
    statement = _add_permission(self.backend, function_name, _query(self, "Qualifier"), self.body)
    return 201, {"status": 201}, json.dumps({"Statement": _dumps(statement)})


def _response_get_policy(self: LambdaResponse) -> str:
    function_name = unquote(self.path.split("/")[-2])
    return _get_policy(self.backend, function_name, _query(self, "Qualifier"))


def _response_remove_permission(self: LambdaResponse) -> tuple[int, dict[str, Any], str]:
    parts = self.path.split("/")  # .../functions/{FunctionName}/policy/{StatementId}
    function_name, sid = unquote(parts[-3]), unquote(parts[-1])
    _remove_permission(
        self.backend, function_name, sid, _query(self, "RevisionId"), _query(self, "Qualifier")
    )
    return 204, {"status": 204}, ""


_PATCHES: tuple[patching.Patch, ...] = (
    (LambdaBackend, "add_permission", _add_permission),
    (LambdaBackend, "remove_permission", _remove_permission),
    (LambdaBackend, "get_policy", _get_policy),
    (LambdaResponse, "add_permission", _response_add_permission),
    (LambdaResponse, "remove_permission", _response_remove_permission),
    (LambdaResponse, "get_policy", _response_get_policy),
)


def install() -> None:
    """Patch moto's Lambda policy operations; calling it again does nothing."""
    patching.apply(_PATCHES, _ORIGINALS, _LOCK)


def uninstall() -> None:
    """Restore moto's own methods (policies already in the store are left unreachable)."""
    patching.restore(_ORIGINALS, _LOCK)


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_ORIGINALS)


def policy_statements(
    function_name: str,
    qualifier: str | None = None,
    *,
    account_id: str = "123456789012",
    region: str = "us-east-1",
) -> list[dict[str, Any]]:
    """Test helper: a copy of the statements of one qualifier's policy, read from the store."""
    backend = get_backend(account_id, region)
    with _LOCK:
        return copy.deepcopy(_policy(backend, _resolve(backend, function_name, qualifier)).statements)
