"""What a cold start loads: each handler module imports only what its step uses.

Every module a handler imports at load is paid at every cold start (benchmarks/coldstart.py): these
are the guarantees the cold-start figures rely on, checked in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEVER = {"aws_xray_sdk", "wrapt", "asyncio", "permheal_local", "moto", "permheal.cli", "permheal.check"}
"""No handler loads these: the X-Ray SDK (and what it pulls), the local AWS, the CLI."""
NOT_AT_LOAD = {
    # the detector decodes logs and starts executions: no API Gateway, Lambda policy or OpenAPI code
    "detect": {
        "permheal.adapters.apigateway",
        "permheal.adapters.apigatewayv2",
        "permheal.adapters.lambda_policy",
        "permheal.openapi",
        "permheal.apiv2",
        "permheal.policy",
        "permheal.planner",
        "permheal.proactive",
    },
    # the repair step reads and writes one function's policy: no API Gateway or OpenAPI code
    "repair": {
        "permheal.adapters.apigateway",
        "permheal.adapters.apigatewayv2",
        "permheal.adapters.access_logs",
        "permheal.openapi",
        "permheal.apiv2",
        "permheal.proactive",
    },
    # the resolve step never reads a policy
    "resolve": {"permheal.adapters.lambda_policy", "permheal.planner", "permheal.proactive"},
    # the summary makes no AWS call (Security Hub is imported only when it is on): no SDK beyond the
    # botocore package itself, which Powertools imports to register its user agent
    "summarize": {
        "boto3",
        "botocore.session",
        "botocore.client",
        "permheal.adapters.aws",
        "permheal.adapters.securityhub",
    },
    "proactive": {"permheal.planner", "permheal.adapters.lambda_policy"},
}


def loaded_by(module: str, then: str = "", **variables: str) -> set[str]:
    """Every module a fresh interpreter holds after importing `module` and running `then` (Lambda-like
    environment, plus `variables`)."""
    code = f"import json, sys\nimport {module}\n{then}\nprint(json.dumps(sorted(sys.modules)))"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PERMHEAL_"))}
    env.update(
        PYTHONPATH=f"{ROOT / 'functions'}{os.pathsep}{env.get('PYTHONPATH', '')}",
        LAMBDA_TASK_ROOT="/var/task",
        AWS_LAMBDA_FUNCTION_NAME="permheal-test",
        AWS_REGION="us-east-1",
        **variables,
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", sorted(NOT_AT_LOAD))
def test_a_handler_module_loads_nothing_its_step_does_not_use(handler: str) -> None:
    # Given a handler module, imported as Lambda imports it at a cold start
    # When the modules it loaded are listed
    loaded = loaded_by(f"permheal.handlers.{handler}")
    # Then it loaded itself and Powertools, and none of what its step never uses
    assert f"permheal.handlers.{handler}" in loaded and "aws_lambda_powertools.logging" in loaded
    assert {m for m in loaded if m.split(".")[0] in NEVER or m in NEVER} == set()
    assert loaded & NOT_AT_LOAD[handler] == set()


# The summarize step's first call (no AWS call, so no moto): a failed run's summary.
LAMBDA = {"POWERTOOLS_SERVICE_NAME": "permheal", "POWERTOOLS_METRICS_NAMESPACE": "Permheal"}
FIRST_CALL = """
from permheal.handlers.summarize import lambda_handler
class Context:
    function_name = "permheal-summarize"; memory_limit_in_mb = 256; aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:permheal-summarize"
state = {"error": {"Error": "States.TaskFailed", "Cause": "boom"},
         "request": {"apiId": "abc123", "stage": "prod"}}
execution = "arn:aws:states:us-east-1:123456789012:execution:m:e1"
lambda_handler({"executionArn": execution, "state": state}, Context())
import botocore.client
patched = type(vars(botocore.client.BaseClient)["_make_api_call"]).__name__ == "FunctionWrapper"  # wrapt's
assert patched == TRACED, "botocore patched or not as the setting says"
"""


@pytest.mark.parametrize("setting", ["", "false"])
def test_without_trace_aws_calls_a_handler_call_loads_no_xray_sdk(setting: str) -> None:
    # Given a handler's first call with PERMHEAL_TRACE_AWS_CALLS unset or false (the default)
    # When the modules the process holds afterwards are listed
    loaded = loaded_by(
        "permheal.handlers.summarize",
        FIRST_CALL.replace("TRACED", "False"),
        PERMHEAL_TRACE_AWS_CALLS=setting,
        **LAMBDA,
    )
    # Then neither the X-Ray SDK nor what it pulls was imported, and botocore is unpatched
    assert {m for m in loaded if m.split(".")[0] in {"aws_xray_sdk", "wrapt"}} == set()


def test_with_trace_aws_calls_the_first_call_loads_the_tracer_and_patches_botocore() -> None:
    # Given a handler's first call with PERMHEAL_TRACE_AWS_CALLS=true (TraceAwsCalls=true)
    # When the modules the process holds afterwards are listed
    loaded = loaded_by(
        "permheal.handlers.summarize",
        FIRST_CALL.replace("TRACED", "True"),
        PERMHEAL_TRACE_AWS_CALLS="true",
        **LAMBDA,
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
    )
    # Then Powertools' Tracer and the X-Ray SDK are loaded and botocore's calls go through it
    assert {
        "aws_lambda_powertools.tracing.tracer",
        "aws_xray_sdk.core",
        "aws_xray_sdk.ext.botocore.patch",
    } <= loaded
