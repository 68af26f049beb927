"""Make moto's AssumeRole need a role that exists and trusts the caller, as AWS does.

moto 5.2.5 lets anyone assume any role ARN, existing or not ("Note that the role does not need to
exist"), so a scan role missing from a member account, or one trusting another account, would pass
on moto and fail on AWS. :func:`install` patches moto in-process (class level, like the other
`faithful_*` doubles):

- AssumeRole answers ``AccessDenied`` ("User: <caller> is not authorized to perform:
  sts:AssumeRole on resource: <role>") unless the role exists in its account and an Allow
  statement of its trust policy names the caller (``*``, the caller's account id or
  ``arn:…:iam::<account>:root``, or the caller's ARN) for ``sts:AssumeRole``; conditions on
  ``aws:PrincipalArn`` (ArnEquals/ArnLike/StringEquals/StringLike) are evaluated, any other
  condition fails closed.

moto's Organizations CreateAccount already creates ``OrganizationAccountAccessRole`` in the new
account, trusting the management account, as AWS does: the way in to set a member account up.

Not modelled: the caller's own permission to call sts:AssumeRole (moto enforces no IAM).
"""

from __future__ import annotations

import fnmatch
import json
import threading
import warnings
from typing import Any

from moto.iam.models import iam_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

from permheal_local import patching

__all__ = ["ACCESS_ROLE", "AccessDenied", "install", "is_installed", "uninstall"]

ACCESS_ROLE = "OrganizationAccountAccessRole"
_LOCK = threading.RLock()
_ORIGINALS: patching.Originals = {}
_ORIGINAL_ASSUME = TokenResponse.assume_role


class AccessDenied(STSClientError):
    code = "AccessDenied"

    def __init__(self, message: str) -> None:
        super().__init__("AccessDenied", message)


def _assume_role(self: TokenResponse) -> Any:
    role_arn = str(self._get_param("RoleArn") or "")
    _, caller_arn, caller_account = self.backend.get_caller_identity(self.get_access_key(), self.region)
    if not _trusted(role_arn, caller_arn, caller_account):
        raise AccessDenied(
            f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
    return _ORIGINAL_ASSUME(self)


def _trusted(role_arn: str, caller_arn: str, caller_account: str) -> bool:
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return False
    partition, account, name = parts[1], parts[4], parts[5].rsplit("/", 1)[-1]
    backend = iam_backends[account][partition]
    role = next((r for r in backend.roles.values() if r.name == name), None)
    if role is None:
        return False
    document = json.loads(role.assume_role_policy_document or "{}")
    principal_arn = _principal_arn(caller_arn)
    statements = document.get("Statement", [])
    return any(
        _allows(s, partition, caller_account, principal_arn)
        for s in (statements if isinstance(statements, list) else [statements])
    )


def _principal_arn(caller_arn: str) -> str:
    """aws:PrincipalArn: an assumed-role session is its role (`arn:…:iam::acct:role/Name`)."""
    head, _, resource = caller_arn.partition(":assumed-role/")
    if not resource:
        return caller_arn
    return f"{head.replace(':sts:', ':iam:')}:role/{resource.split('/')[0]}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows(statement: dict[str, Any], partition: str, caller_account: str, principal_arn: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in _as_list(statement.get("Action", []))):
        return False
    principal = statement.get("Principal", {})
    names = _as_list(principal.get("AWS", [])) if isinstance(principal, dict) else _as_list(principal)
    accepted = {"*", caller_account, f"arn:{partition}:iam::{caller_account}:root", principal_arn}
    if not accepted & {str(n) for n in names}:
        return False
    return all(
        _condition(operator, key, values, principal_arn)
        for operator, block in (statement.get("Condition") or {}).items()
        for key, values in block.items()
    )


def _condition(operator: str, key: str, values: Any, principal_arn: str) -> bool:
    if key.lower() != "aws:principalarn":
        return False  # a condition this double cannot evaluate: fail closed
    patterns = [str(v) for v in _as_list(values)]
    if operator in ("ArnEquals", "StringEquals"):
        return principal_arn in patterns
    if operator in ("ArnLike", "StringLike"):
        return any(fnmatch.fnmatchcase(principal_arn, p) for p in patterns)
    return False


def install() -> None:
    # AWS's AccessDenied is a generic error, in no service model: moto warns when it serializes one.
    warnings.filterwarnings("ignore", message=r"Exception\(AccessDenied\)", category=UserWarning)
    patching.apply(
        [
            (TokenResponse, "assume_role", _assume_role),
        ],
        _ORIGINALS,
        _LOCK,
    )


def uninstall() -> None:
    patching.restore(_ORIGINALS, _LOCK)


def is_installed() -> bool:
    return bool(_ORIGINALS)
