"""Step Functions: start the remediation workflow (idempotently) and wait for its result."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import client, error_code, translate
from permheal.errors import AwsCallError, ConfigError
from permheal.models import Outcome, RemediationResult

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

STACK_OUTPUT = "StateMachineArn"


class Workflow:
    def __init__(self, state_machine_arn: str, sfn: SFNClient | None = None):
        self.arn = state_machine_arn
        self._client = sfn or client("stepfunctions")

    def start(self, execution_input: dict[str, Any], name: str | None = None) -> str:
        """Start an execution and return its ARN."""
        try:
            response = self._client.start_execution(
                stateMachineArn=self.arn,
                input=json.dumps(execution_input),
                **({"name": name} if name else {}),
            )
        except ClientError as exc:
            raise AwsCallError(f"StartExecution: {exc}") from exc
        return str(response["executionArn"])

    def start_once(self, name: str, execution_input: dict[str, Any]) -> str | None:
        """Start the named execution unless it already exists; None means suppressed."""
        try:
            return self.start(execution_input, name)
        except AwsCallError as exc:
            if error_code(exc.__cause__) == "ExecutionAlreadyExists":
                return None
            raise

    def wait(
        self, execution_arn: str, timeout: float = 600, sleep: Callable[[float], None] = time.sleep
    ) -> RemediationResult:
        """Poll until the execution ends; its output (or its Fail cause) is the result."""
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            try:
                execution = self._client.describe_execution(executionArn=execution_arn)
            except ClientError as exc:
                raise AwsCallError(f"DescribeExecution {execution_arn}: {exc}") from exc
            status = execution["status"]
            if status == "SUCCEEDED":
                return RemediationResult.from_dict(json.loads(execution.get("output") or "{}"))
            if status != "RUNNING":
                return _failed_result(execution)
            if time.monotonic() > deadline:
                raise AwsCallError(f"execution {execution_arn} still running after {timeout:.0f}s")
            sleep(delay)
            delay = min(delay * 1.5, 5.0)


def _failed_result(execution: Any) -> RemediationResult:
    cause = execution.get("cause") or ""
    try:
        return RemediationResult.from_dict(json.loads(cause))
    except ValueError:  # not a result: the execution crashed before summarizing
        error = f"execution {execution['status']}: {execution.get('error', '')} {cause}".strip()
        return RemediationResult(Outcome.FAILED, None, None, error=error)


def find_state_machine(name: str) -> str:
    """The state machine ARN from the deployed stack's outputs."""
    return find_stack_output(name, STACK_OUTPUT)


def find_stack_output(name: str, key: str) -> str:
    """An output of the deployed stack `name` (CliSettings.stack_name)."""
    try:
        stacks = client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) != "ValidationError":  # denied, throttled, ...: not a missing stack
            raise translate(exc) or AwsCallError(str(exc)) from exc
        raise ConfigError(
            f"cannot find {key}: set it with its flag or PERMHEAL_* variable, "
            f"or deploy the stack {name!r} ({exc})"
        ) from exc
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise ConfigError(f"stack {name!r} has no {key} output")
