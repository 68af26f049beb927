"""Every command x every broken environment: exit 2, one line on stderr, never a traceback.

design.md "CLI" -> Errors. Users meet these through the console script in a bare shell, so a
representative subset runs the real `permheal` in a subprocess with a clean environment (PATH,
HOME in a temporary directory, no AWS variables); the rest runs `permheal.cli.main` in process.
AWS answers (access denied, throttling) come from a tiny local HTTP server that also records the
region each request was signed for, which is how the region precedence is observed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import permheal
from permheal.adapters.aws import forget_clients
from permheal.cli import main

FUNCTIONS_DIR = Path(permheal.__file__).resolve().parent.parent
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:permheal-remediation"

# Every command that talks to AWS, with arguments that are valid, so only the environment is wrong.
AWS_COMMANDS: dict[str, tuple[str, ...]] = {
    "scan": ("scan",),
    "scan --api --stage --format json": ("scan", "--api", "petstore", "--stage", "prod", "--format", "json"),
    "scan --org": ("scan", "--org"),
    "scan --org --role-name --format json": ("scan", "--org", "--role-name", "Reader", "--format", "json"),
    "remediate --local": ("remediate", "--api", "petstore", "--local", "--format", "json"),
    "remediate --local --dry-run": ("remediate", "--api", "petstore", "--local", "--dry-run"),
    "remediate (workflow from the stack)": ("remediate", "--api", "petstore"),
    "remediate --state-machine-arn": ("remediate", "--api", "petstore", "--state-machine-arn", STATE_MACHINE),
    "history": ("history",),
    "history --function": ("history", "--function", "pets:live"),
    "revert": ("revert", "20261205T072700.000000Z-0123abcd"),
    "clear-flap": ("clear-flap", "pets:live"),
}


# ------------------------------------------------------------------------------------------- helpers


def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StubAws(ThreadingHTTPServer):
    """Answers every AWS request with one error, in the request's protocol; records signed regions."""

    daemon_threads = True

    def __init__(self, code: str = "AccessDeniedException", status: int = 403) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.code, self.status = code, status
        self.regions: list[str] = []
        self.operations: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    server: StubAws

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", self.headers.get("Authorization", ""))
        self.server.regions.append(scope[1] if scope else "")
        self.server.operations.append(self.headers.get("X-Amz-Target") or f"{self.command} {self.path}")
        code = self.server.code
        if body.startswith("Action=") or "&Action=" in body:  # query protocol (STS, CloudFormation)
            payload = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code.removesuffix('Exception')}</Code>"
                f"<Message>stub says {code}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        else:  # JSON and REST-JSON protocols
            payload = json.dumps({"__type": code, "message": f"stub says {code}"}).encode()
            content_type = "application/x-amz-json-1.1"
        self.send_response(self.server.status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-amzn-ErrorType", code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read what was recorded."""


@pytest.fixture
def stub_aws() -> Iterator[StubAws]:
    server = StubAws()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def assert_one_line_error(self, *expected: str) -> None:
        """Exit 2, nothing on stdout, exactly one `permheal: ...` line on stderr saying `expected`."""
        assert "Traceback" not in self.err, self.err
        assert (self.code, self.out) == (2, ""), (self.code, self.out, self.err)
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("permheal: "), self.err
        assert all(word in lines[0] for word in expected), (expected, self.err)

    def assert_usage_error(self, *expected: str) -> None:
        """argparse's answer: exit 2, the usage, then one `permheal ...: error: ...` line."""
        assert "Traceback" not in self.err, self.err
        assert (self.code, self.out) == (2, ""), (self.code, self.out, self.err)
        *usage, last = self.err.splitlines()
        assert usage and usage[0].startswith("usage: permheal"), self.err
        assert re.match(r"permheal( [a-z-]+)?: error: ", last), self.err
        assert all(word in last for word in expected), (expected, self.err)


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """`env -i` plus what a shell always has; no AWS variable unless given (instance metadata off)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(FUNCTIONS_DIR),  # the package under test, wherever it is installed
        "AWS_EC2_METADATA_DISABLED": "true",  # never wait on (or reach) 169.254.169.254
        **extra,
    }


def console_script() -> list[str]:
    """The installed `permheal` script beside this interpreter (python -m if not installed)."""
    script = Path(sys.executable).with_name("permheal")
    if script.exists() or shutil.which("permheal"):
        return [str(script if script.exists() else shutil.which("permheal"))]
    return [sys.executable, "-m", "permheal.cli"]


def run_subprocess(argv: tuple[str, ...], env: dict[str, str], cwd: Path) -> Run:
    done = subprocess.run(
        [*console_script(), *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """In process: no AWS variable at all (tests/conftest.py sets fake ones) and a config-less HOME."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "PERMHEAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    forget_clients()  # sessions cache credentials: start from what this environment says
    yield monkeypatch
    forget_clients()


def run_in_process(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> Run:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exited:  # argparse
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return Run(code, out, err)


FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


def setenv(environ: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        environ.setenv(name, value)


# ----------------------------------------------------------------- broken environments, in process


@pytest.mark.parametrize("argv", AWS_COMMANDS.values(), ids=AWS_COMMANDS)
def test_no_region_is_one_line_and_exit_2_before_any_call(
    argv: tuple[str, ...], environ: pytest.MonkeyPatch, stub_aws: StubAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given credentials and an endpoint, but no region anywhere
    setenv(environ, AWS_ENDPOINT_URL=stub_aws.endpoint, **FAKE_CREDENTIALS)

    # When the command runs
    run = run_in_process(argv, capsys)

    # Then it says so in one line, and no request was made
    run.assert_one_line_error("no AWS region", "--region", "AWS_REGION")
    assert stub_aws.operations == []


@pytest.mark.parametrize("argv", AWS_COMMANDS.values(), ids=AWS_COMMANDS)
def test_no_credentials_is_one_line_and_exit_2(
    argv: tuple[str, ...], environ: pytest.MonkeyPatch, stub_aws: StubAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a region and an endpoint, but no credentials
    setenv(environ, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=stub_aws.endpoint)

    # When the command runs
    run = run_in_process(argv, capsys)

    # Then it says so in one line; nothing was sent (botocore signs before sending)
    run.assert_one_line_error("no AWS credentials")
    assert stub_aws.operations == []


@pytest.mark.parametrize("argv", AWS_COMMANDS.values(), ids=AWS_COMMANDS)
def test_unreachable_endpoint_is_one_line_and_exit_2(
    argv: tuple[str, ...], environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given everything but an endpoint that answers
    closed = f"http://127.0.0.1:{closed_port()}"
    setenv(environ, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=closed, AWS_MAX_ATTEMPTS="1", **FAKE_CREDENTIALS)

    # When the command runs
    run = run_in_process(argv, capsys)

    # Then
    run.assert_one_line_error("cannot reach the AWS endpoint", "127.0.0.1")


@pytest.mark.parametrize("argv", AWS_COMMANDS.values(), ids=AWS_COMMANDS)
def test_access_denied_while_reading_is_one_line_and_exit_2(
    argv: tuple[str, ...], environ: pytest.MonkeyPatch, stub_aws: StubAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account that denies every call
    setenv(environ, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=stub_aws.endpoint, **FAKE_CREDENTIALS)

    # When the command runs
    run = run_in_process(argv, capsys)

    # Then the one line names the denial; nothing was retried into a different answer
    run.assert_one_line_error("access denied")
    assert stub_aws.operations


@pytest.mark.parametrize("argv", AWS_COMMANDS.values(), ids=AWS_COMMANDS)
def test_throttled_beyond_retries_is_one_line_and_exit_2_except_a_local_run_which_fails(
    argv: tuple[str, ...], environ: pytest.MonkeyPatch, stub_aws: StubAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account that throttles every call, and two attempts per call (backoff made instant)
    stub_aws.code, stub_aws.status = "ThrottlingException", 400
    environ.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    setenv(environ, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=stub_aws.endpoint, AWS_MAX_ATTEMPTS="2")
    setenv(environ, **FAKE_CREDENTIALS)

    # When the command runs
    run = run_in_process(argv, capsys)

    # Then the first call was retried (independent reads are made at once, so the retry need not
    # come next), and the command stops with one line
    assert stub_aws.operations.count(stub_aws.operations[0]) >= 2
    if "--local" in argv:  # a run that may have changed things reports `failed` (exit 1), as designed
        assert "Traceback" not in run.err
        assert (run.code, run.err) == (1, "")
        assert "ThrottlingException" in run.out and "failed" in run.out
    else:
        run.assert_one_line_error("throttled by AWS beyond retries")


@pytest.fixture
def broken_scan(environ: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A bug: scanning raises something permheal does not expect."""

    def broken(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("division by zero")

    environ.setenv("AWS_REGION", "us-east-1")
    environ.setattr("permheal.workflow.scan.scan", broken)
    return environ


def test_an_unexpected_exception_is_one_line_naming_it_and_exit_2(
    broken_scan: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the buggy command runs
    run = run_in_process(("scan",), capsys)

    # Then one line says it is an internal error and asks for a report, without a traceback
    run.assert_one_line_error("internal error: ZeroDivisionError: division by zero", "please report")


def test_permheal_debug_shows_the_traceback_of_an_internal_error(
    broken_scan: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken_scan.setenv("PERMHEAL_DEBUG", "1")

    run = run_in_process(("scan",), capsys)

    assert run.code == 2
    assert "Traceback" in run.err and run.err.splitlines()[-1].startswith("permheal: internal error")


def test_an_unknown_profile_is_one_line_and_exit_2(
    environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environ.setenv("AWS_PROFILE", "nobody")

    run = run_in_process(("scan",), capsys)

    run.assert_one_line_error("nobody")


def test_a_malformed_region_variable_is_one_line_and_exit_2(
    environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environ.setenv("AWS_REGION", "US East (N. Virginia)")

    run = run_in_process(("scan",), capsys)

    run.assert_one_line_error("AWS_REGION", "not an AWS region name")


# ------------------------------------------------------------------------- region precedence


def write_profiles(home: Path) -> Path:
    config = home / "config"
    config.write_text("[default]\nregion = ca-central-1\n\n[profile other]\nregion = sa-east-1\n")
    return config


REGION_CASES = {
    "--region beats everything": (
        ("--region", "eu-west-1", "scan"),
        {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"},
        "eu-west-1",
    ),
    "--region after the command": (
        ("scan", "--region", "eu-west-1"),
        {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"},
        "eu-west-1",
    ),
    "AWS_REGION beats AWS_DEFAULT_REGION and the profile": (
        ("scan",),
        {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"},
        "us-west-2",
    ),
    "AWS_REGION alone": (("scan",), {"AWS_REGION": "us-west-2"}, "us-west-2"),
    "AWS_DEFAULT_REGION beats the profile": (("scan",), {"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
    "the default profile": (("scan",), {}, "ca-central-1"),
    "the named profile": (("scan",), {"AWS_PROFILE": "other"}, "sa-east-1"),
}


@pytest.mark.parametrize(("argv", "variables", "expected"), REGION_CASES.values(), ids=REGION_CASES)
def test_region_comes_from_flag_then_aws_region_then_aws_default_region_then_profile(
    argv: tuple[str, ...],
    variables: dict[str, str],
    expected: str,
    environ: pytest.MonkeyPatch,
    stub_aws: StubAws,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a config file with a default and a named profile, and the variables of the case
    setenv(environ, AWS_CONFIG_FILE=str(write_profiles(tmp_path)), AWS_ENDPOINT_URL=stub_aws.endpoint)
    setenv(environ, **FAKE_CREDENTIALS, **variables)

    # When scanning (the stub denies, which is enough: the request was signed)
    run = run_in_process(argv, capsys)

    # Then every request was signed for the expected region
    run.assert_one_line_error("access denied")
    assert stub_aws.regions and set(stub_aws.regions) == {expected}


def test_a_region_flag_does_not_leak_into_the_next_command(
    environ: pytest.MonkeyPatch, stub_aws: StubAws, capsys: pytest.CaptureFixture[str]
) -> None:
    setenv(environ, AWS_ENDPOINT_URL=stub_aws.endpoint, AWS_REGION="us-west-2", **FAKE_CREDENTIALS)

    run_in_process(("scan", "--region", "eu-west-1"), capsys)
    run_in_process(("scan",), capsys)

    assert stub_aws.regions[0] == "eu-west-1" and stub_aws.regions[-1] == "us-west-2"


# ---------------------------------------------------------------- empty and odd arguments


USAGE_ERRORS = {
    "scan --api ''": (("scan", "--api", ""), "must not be empty"),
    "scan --api blank": (("scan", "--api", "   "), "must not be empty"),
    "scan --api 2,000 characters": (("scan", "--api", "a" * 2000), "at most 1024"),
    "scan --api newline": (("scan", "--api", "pets\nstore"), "control characters"),
    "scan --stage ''": (("scan", "--stage", ""), "not a stage name"),
    "scan --stage with a space": (("scan", "--stage", "pr od"), "not a stage name"),
    "scan --region ''": (("scan", "--region", ""), "not an AWS region name"),
    "--region upper case": (("--region", "US-EAST-1", "scan"), "not an AWS region name"),
    "scan --org --api": (("scan", "--org", "--api", "petstore"), "not allowed with argument"),
    "scan --role-name without --org": (("scan", "--role-name", "Reader"), "only with --org"),
    "scan --regions without --org": (("scan", "--regions", "us-east-1"), "only with --org"),
    "scan --org --regions ''": (("scan", "--org", "--regions", ""), "not a comma-separated list"),
    "scan --org --regions a,,b": (("scan", "--org", "--regions", "us-east-1,,eu-west-1"), "comma-separated"),
    "scan --org --regions upper case": (
        ("scan", "--org", "--regions", "us-east-1,EU-WEST-1"),
        "not an AWS region",
    ),
    "scan --org --role-name ''": (("scan", "--org", "--role-name", ""), "not an IAM role name"),
    "scan --org --role-name a/b": (("scan", "--org", "--role-name", "a/b"), "not an IAM role name"),
    "scan --org --role-name 65 characters": (
        ("scan", "--org", "--role-name", "r" * 65),
        "not an IAM role name",
    ),
    "remediate --api ''": (("remediate", "--api", "", "--local"), "must not be empty"),
    "remediate --api blank": (("remediate", "--api", "   "), "must not be empty"),
    "remediate --state-machine-arn ''": (("remediate", "--api", "x", "--state-machine-arn", ""), "empty"),
    "history --function ''": (("history", "--function", ""), "must not be empty"),
    "history --api ''": (("history", "--api", ""), "must not be empty"),
    "revert ''": (("revert", ""), "must not be empty"),
    "revert 2,000 characters": (("revert", "x" * 2000), "at most 128"),
    "clear-flap ''": (("clear-flap", ""), "must not be empty"),
    "local-aws --port 0": (("local-aws", "--port", "0"), "not a TCP port"),
    "local-aws --port -1": (("local-aws", "--port", "-1"), "not a TCP port"),
    "local-aws --port 99999": (("local-aws", "--port", "99999"), "not a TCP port"),
    "local-aws --port http": (("local-aws", "--port", "http"), "not a TCP port"),
}


@pytest.mark.parametrize(("argv", "says"), USAGE_ERRORS.values(), ids=USAGE_ERRORS)
def test_empty_and_odd_arguments_are_usage_errors_before_any_call(
    argv: tuple[str, ...], says: str, environ: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no AWS at all (a call would be an error of another kind)
    # When
    run = run_in_process(argv, capsys)

    # Then argparse refuses the argument: usage and one error line
    run.assert_usage_error(says)


ODD_BUT_VALID = {
    "1,024-character name": ("a" * 1024, "no REST API"),
    "unicode name": ("ペットストア 🐾", "no REST API"),
    "dot": (".", "no REST API"),
    "dot dot": ("..", "no REST API"),
    "slash": ("/", "no REST API"),
    "percent-encoded slash": ("%2F", "no REST API"),
    "query characters": ("?a=b#c", "no REST API"),
    "leading dash value": ("-x", "no REST API"),
}


ODD_CASES = [("scan", name, says) for name, says in ODD_BUT_VALID.values()] + [
    ("remediate", name, "no REST API") for name in ("ペットストア 🐾", "..", "/")
]


@pytest.mark.parametrize(
    ("command", "name", "says"), ODD_CASES, ids=[f"{c}-{n[:12]!r}" for c, n, _ in ODD_CASES]
)
def test_odd_but_valid_api_names_are_looked_up_and_reported_missing_in_one_line(
    command: str, name: str, says: str, world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an account with one API, whose name is none of these
    world.rest_api("petstore")
    argv = ("scan", f"--api={name}") if command == "scan" else ("remediate", f"--api={name}", "--local")

    # When
    run = run_in_process(argv, capsys)

    # Then the name was looked up, and it is reported missing (a usage error: exit 2, one line)
    run.assert_one_line_error(says)


def test_clear_flap_of_a_malformed_function_is_one_line_and_exit_2(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_in_process(("clear-flap", ":::"), capsys)

    run.assert_one_line_error("not a Lambda function name or ARN")


@pytest.mark.parametrize("function", [":::", "arn:aws:lambda:nowhere:1:function:x"])
def test_history_of_a_malformed_function_is_one_line_and_exit_2(
    function: str, world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_in_process(("history", "--function", function), capsys)

    run.assert_one_line_error("not a Lambda function name or ARN")


def test_revert_of_an_unknown_change_is_one_line_and_exit_2(
    world: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no deployed stack to find the ledger in
    monkeypatch.setenv("PERMHEAL_STACK_NAME", "no-such-stack")

    run = run_in_process(("revert", "20261205T072700.000000Z-0123abcd"), capsys)

    run.assert_one_line_error("LedgerTableName", "no-such-stack")


def test_region_flag_is_refused_by_the_commands_that_run_their_own_local_aws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_in_process(("--region", "eu-west-1", "demo"), capsys)

    run.assert_one_line_error("--region does not apply")


# --------------------------------------------------------------- the real console script, bare shell


SUBPROCESS_CASES = {
    "scan, no region, no credentials (the stop hook's check)": (("scan",), {}, "no AWS region"),
    "scan --format json, no region": (("scan", "--format", "json"), {}, "no AWS region"),
    "scan, no credentials": (
        ("scan",),
        {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "{closed}"},
        "no AWS",
    ),
    "remediate --local, no credentials": (
        ("remediate", "--api", "petstore", "--local"),
        {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "{closed}"},
        "no AWS credentials",
    ),
    "history, unreachable endpoint": (
        ("history",),
        {
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "{closed}",
            "AWS_MAX_ATTEMPTS": "1",
            **FAKE_CREDENTIALS,
        },
        "cannot reach the AWS endpoint",
    ),
    "scan, unreachable endpoint, region from AWS_REGION": (
        ("scan",),
        {
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "{closed}",
            "AWS_MAX_ATTEMPTS": "1",
            **FAKE_CREDENTIALS,
        },
        "cannot reach the AWS endpoint",
    ),
    "clear-flap of ':::'": (("clear-flap", ":::"), {}, "not a Lambda function name or ARN"),
    "scan --org, no region": (("scan", "--org"), {}, "no AWS region"),
    "scan --org --regions, no credentials (the organization's calls go to the first region)": (
        ("scan", "--org", "--regions", "eu-west-1"),
        {"AWS_ENDPOINT_URL": "{closed}"},
        "no AWS credentials",
    ),
}


@pytest.mark.parametrize(("argv", "variables", "says"), SUBPROCESS_CASES.values(), ids=SUBPROCESS_CASES)
def test_console_script_in_a_bare_environment_exits_2_with_one_line(
    argv: tuple[str, ...], variables: dict[str, str], says: str, tmp_path: Path
) -> None:
    # Given a shell with nothing configured (HOME without ~/.aws), as a new user or a CI gate has
    closed = f"http://127.0.0.1:{closed_port()}"
    env = bare_env(tmp_path, **{k: v.replace("{closed}", closed) for k, v in variables.items()})

    # When the real console script runs
    run = run_subprocess(argv, env, tmp_path)

    # Then exit 2 and one line, never a traceback (exit 1 would read as "findings" to a CI gate)
    run.assert_one_line_error(says)


@pytest.mark.parametrize(
    "argv",
    [("remediate", "--api", ""), ("local-aws", "--port", "0"), ("scan", "--stage", "")],
    ids=["remediate --api ''", "local-aws --port 0", "scan --stage ''"],
)
def test_console_script_usage_errors_exit_2_with_usage_and_one_line(
    argv: tuple[str, ...], tmp_path: Path
) -> None:
    run = run_subprocess(argv, bare_env(tmp_path), tmp_path)

    run.assert_usage_error()


# ----------------------------------------------------------- every botocore error, translated


def client_error(code: str, operation: str) -> Any:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": f"says\n{code}"}}, operation)


def botocore_errors() -> dict[str, tuple[BaseException, type[Exception], str]]:
    from botocore import exceptions as bx

    from permheal.errors import AwsCallError, AwsClientError, ConfigError

    return {
        "NoRegionError": (bx.NoRegionError(), ConfigError, "no AWS region"),
        "NoCredentialsError": (bx.NoCredentialsError(), AwsClientError, "no AWS credentials"),
        "PartialCredentialsError": (
            bx.PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            AwsClientError,
            "no AWS credentials",
        ),
        "CredentialRetrievalError": (
            bx.CredentialRetrievalError(provider="sso", error_msg="expired"),
            AwsClientError,
            "cannot get AWS credentials",
        ),
        "ProfileNotFound": (bx.ProfileNotFound(profile="dev"), ConfigError, "dev"),
        "EndpointConnectionError": (
            bx.EndpointConnectionError(endpoint_url="https://x"),
            AwsClientError,
            "cannot reach",
        ),
        "ConnectTimeoutError": (
            bx.ConnectTimeoutError(endpoint_url="https://x"),
            AwsClientError,
            "cannot reach",
        ),
        "ReadTimeoutError": (bx.ReadTimeoutError(endpoint_url="https://x"), AwsClientError, "cannot reach"),
        "ParamValidationError": (
            bx.ParamValidationError(report="Invalid\n length"),
            ConfigError,
            "invalid argument",
        ),
        "AccessDenied reading": (
            client_error("AccessDeniedException", "GetPolicy"),
            AwsClientError,
            "access denied",
        ),
        "AccessDenied writing": (
            client_error("AccessDeniedException", "AddPermission"),
            AwsCallError,
            "access denied",
        ),
        "expired token": (client_error("ExpiredTokenException", "GetRestApis"), AwsClientError, "rejected"),
        "throttled": (client_error("TooManyRequestsException", "GetRestApis"), AwsCallError, "throttled"),
        "another AWS error": (
            client_error("ServiceException", "GetPolicy"),
            AwsCallError,
            "ServiceException",
        ),
    }


@pytest.mark.parametrize("name", list(botocore_errors()))
def test_every_botocore_error_becomes_a_domain_error_of_one_line(name: str) -> None:
    from permheal.adapters.aws import translate
    from permheal.errors import AwsCallError

    raw, kind, says = botocore_errors()[name]
    wrapped = AwsCallError("GetPolicy arn:...: wrapped by an adapter")
    wrapped.__cause__ = raw

    for error in (translate(raw), translate(wrapped)):
        assert type(error) is kind and says in str(error) and "\n" not in str(error), (name, error)


def test_only_an_adapters_generic_wrapper_is_translated() -> None:
    from permheal.adapters.aws import translate
    from permheal.errors import NotFoundError

    missing = NotFoundError("no stage 'prod'")
    missing.__cause__ = client_error("NotFoundException", "GetStage")

    assert translate(missing) is None and translate(ValueError("x")) is None


@pytest.mark.parametrize("attempts", ["1", "3"])
def test_aws_max_attempts_counts_every_attempt_the_first_included(
    attempts: str, environ: pytest.MonkeyPatch, stub_aws: StubAws
) -> None:
    from botocore.exceptions import ClientError

    from permheal.adapters.aws import client, forget_clients

    # Given an endpoint that throttles every call, and AWS_MAX_ATTEMPTS (total attempts, as SDKs define it)
    stub_aws.code, stub_aws.status = "ThrottlingException", 400
    environ.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_: 0)
    setenv(environ, AWS_REGION="us-east-1", AWS_ENDPOINT_URL=stub_aws.endpoint, AWS_MAX_ATTEMPTS=attempts)
    setenv(environ, **FAKE_CREDENTIALS)
    forget_clients()
    # When one call is made
    with pytest.raises(ClientError):
        client("lambda").get_policy(FunctionName="f")
    forget_clients()
    # Then it was sent exactly that many times
    assert len(stub_aws.operations) == int(attempts)
