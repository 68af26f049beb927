"""Lambda resource policies, per qualifier, read and written with RevisionId."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import call_error, client, error_code, throttled
from permheal.arns import FunctionRef
from permheal.errors import AwsCallError, ConflictError, NotFoundError
from permheal.pacing import Pacer, unlimited
from permheal.policy import Policy

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

RACE_CODES = ("PreconditionFailedException", "ResourceConflictException")


class StaleRevision(ConflictError):
    """Someone else changed the policy since it was read: re-read and re-plan."""


class PolicyTooLarge(AwsCallError):
    """Lambda refused a write because the policy would exceed 20 KB."""


class LambdaPolicies:
    def __init__(self, lambda_client: LambdaClient | None = None, pacer: Pacer | None = None):
        self._client = lambda_client or client("lambda")
        self._pacer = pacer or unlimited()

    def read(self, function: FunctionRef) -> Policy:
        """The qualifier's own policy; empty (no RevisionId) when it has none yet."""
        try:
            response = self._paced("GetPolicy", self._client.get_policy, **_name(function))
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise call_error(f"GetPolicy {function.arn}: {exc}", exc) from exc
            self._require_function(function)
            return Policy()
        return Policy.from_json(response["Policy"], response.get("RevisionId"))

    def add(self, function: FunctionRef, statement: dict[str, Any], revision_id: str | None) -> None:
        condition = statement["Condition"]["ArnLike"]
        self._write(
            "AddPermission",
            function,
            self._client.add_permission,
            StatementId=statement["Sid"],
            Action=statement["Action"],
            Principal=statement["Principal"]["Service"],
            SourceArn=condition["AWS:SourceArn"],
            **({"RevisionId": revision_id} if revision_id else {}),
        )

    def remove(self, function: FunctionRef, sid: str, revision_id: str | None) -> None:
        self._write(
            "RemovePermission",
            function,
            self._client.remove_permission,
            StatementId=sid,
            **({"RevisionId": revision_id} if revision_id else {}),
        )

    def _write(self, name: str, function: FunctionRef, operation: Any, **kwargs: Any) -> None:
        try:
            self._paced(name, operation, **_name(function), **kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in RACE_CODES:
                raise StaleRevision(f"{name} {function.arn}: {code}") from exc
            if code == "PolicyLengthExceededException":
                raise PolicyTooLarge(f"{name} {function.arn}: {exc}") from exc
            if code == "ResourceNotFoundException":
                raise NotFoundError(f"{name} {function.arn}: {exc}") from exc
            raise call_error(f"{name} {function.arn}: {exc}", exc) from exc

    def _require_function(self, function: FunctionRef) -> None:
        try:
            self._paced(
                "GetFunctionConfiguration", self._client.get_function_configuration, **_name(function)
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise NotFoundError(f"function {function.arn} does not exist") from exc
            raise call_error(f"GetFunctionConfiguration {function.arn}: {exc}", exc) from exc

    def _paced(self, name: str, operation: Any, **kwargs: Any) -> Any:
        return self._pacer.call("lambda", name, lambda: operation(**kwargs), throttled)


def _name(function: FunctionRef) -> dict[str, str]:
    name = {"FunctionName": function.unqualified_arn}
    if function.qualifier:
        name["Qualifier"] = function.qualifier
    return name
