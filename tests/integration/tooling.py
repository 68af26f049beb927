"""The real deploy tools the packaging tests drive: SAM CLI, Python 3.12 (the Lambda runtime), samtranslator.

A tool that is missing skips its tests on a developer's machine but fails them in CI (`CI` set), where
`make test` installs everything: a green CI never hides a test that did not run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from permheal_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CONSTRAINTS = ROOT / "constraints.txt"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def missing_tool(reason: str) -> None:
    """Skip locally, fail in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it with `make test`)")
    pytest.skip(reason)


def venv_tool(name: str) -> Path:
    """A console script installed beside this interpreter (`make` puts the dev toolchain there)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        missing_tool(f"{name} is not installed in {path.parent}")
    return path


def python312() -> Path:
    """Python 3.12, the functions' runtime: $PERMHEAL_PYTHON312, pyenv's, or python3.12 on PATH."""
    candidates = [
        os.environ.get("PERMHEAL_PYTHON312", ""),
        *sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"), reverse=True),
        shutil.which("python3.12") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    missing_tool("python3.12 (the Lambda runtime) is not available")
    raise AssertionError("unreachable")


def tool_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a tool run: no telemetry, python3.12 first on PATH.

    PYTHONPATH is dropped (a checkout's permheal would shadow, or satisfy, what pip installs).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        PATH=os.pathsep.join(
            [str(python312().parent), str(Path(sys.executable).parent), env.get("PATH", "")]
        ),
        **extra,
    )
    return env


def run(command: list[str], cwd: Path = ROOT, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=tool_environment(**extra_env), capture_output=True, text=True, check=False
    )


def sam_build(build_dir: Path) -> Path:
    """`sam build` of template.yaml as the README documents it (settings from samconfig.toml)."""
    done = run([str(venv_tool("sam")), "build", "--build-dir", str(build_dir)])
    assert done.returncode == 0, done.stdout + done.stderr
    return build_dir


def runtime_venv(where: Path) -> Path:
    """A Python 3.12 venv holding only boto3 at the constraints' version: the Lambda runtime's SDK."""
    done = run([str(python312()), "-m", "venv", str(where)])
    assert done.returncode == 0, done.stderr
    python = where / "bin" / "python"
    done = run([str(python), "-m", "pip", "install", "-q", "--no-compile", "-c", str(CONSTRAINTS), "boto3"])
    assert done.returncode == 0, done.stdout + done.stderr
    return python


def transformed_template(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """template.yaml as CloudFormation deploys it: samtranslator's output, no AWS call.

    `Fn::ForEach` (AWS::LanguageExtensions) is left out: it only makes subscription filters, which the
    caller asserts. Local paths become the S3 locations `sam package` would write.
    """
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = load_template(TEMPLATE)
    template["Transform"] = [t for t in template["Transform"] if t != LANGUAGE_EXTENSIONS]
    template["Resources"] = {
        k: v for k, v in template["Resources"].items() if not k.startswith("Fn::ForEach::")
    }
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/functions.zip"
    for resource in template["Resources"].values():
        if "DefinitionUri" in resource.get("Properties", {}):
            resource["Properties"]["DefinitionUri"] = "s3://bucket/statemachine.asl.json"
    # A session is only asked for its region name (no credentials, no call).
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    transformed: dict[str, Any] = translator.translate(
        template, parameter_values=dict(parameters or {}), get_managed_policy_map=_no_named_policies
    )
    return transformed


def _no_named_policies() -> dict[str, str]:
    """The template names no managed policy; SAM's own defaults need no lookup."""
    return {}
