"""Packaging as users meet it: the wheel, `permheal demo` from it, `sam validate`/`build`, the Lambda package.

Issue 9, defects 11-13: these ran green in a checkout and broke for a real user. Each test runs the
real tool (pip, SAM CLI, Python 3.12) rather than reading the files that configure it.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from permheal_local.template import function_specs, load_template
from tests.integration.tooling import (
    CONSTRAINTS,
    ROOT,
    TEMPLATE,
    python312,
    run,
    runtime_venv,
    sam_build,
    venv_tool,
)

# What `python -m pip wheel` needs to build the wheel (a copy, so no build/ is left in the checkout).
BUILD_INPUTS = [
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "LICENSE",
    "README.md",
    "template.yaml",
    "statemachine",
]
STACK_FILES = [
    "template.yaml",
    *(p.relative_to(ROOT).as_posix() for p in (ROOT / "statemachine").glob("*.asl.json")),
]
FUNCTIONS = sorted(function_specs(load_template(TEMPLATE)))
# The Lambda package: permheal and the handlers' libraries. The runtime provides boto3/botocore.
RUNTIME_LIBRARIES = {"aws_lambda_powertools", "aws_xray_sdk", "wrapt", "jmespath", "typing_extensions"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_name(name)] = version
    return pins


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the project files (setup.py copies the stack files into it)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copyfile)(ROOT / name, source / name)
    for package in ("functions/permheal", "permheal_local"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    done = run(
        [str(venv_tool("python")), "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("permheal-*.whl")
    return built


# ---------------------------------------------------------------------------------------- dependencies


def test_library_dependencies_are_ranges_and_the_constraints_pin_each_one() -> None:
    # Given pyproject's dependencies and extras, and the constraints file
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    pins = _pins()
    # When each requirement is read
    exact = [r for r in requirements if "==" in r]
    unpinned = {_name(r) for r in requirements if _name(r) != "permheal"} - set(pins)
    # Then none is an exact pin (pip must fit permheal beside aws-sam-cli), and every one is pinned in CI
    assert exact == []
    assert unpinned == set()
    assert {"boto3", "botocore", "aws-sam-cli", "cfn-lint-serverless", "aws-sam-translator", "moto"} <= set(
        pins
    )


def test_the_installed_toolchain_fits_together() -> None:
    # Given this venv, installed from pyproject's ranges with constraints.txt (aws-sam-cli included)
    venv_tool("sam")
    # When pip checks every installed distribution's requirements
    done = run([str(venv_tool("python")), "-m", "pip", "check"])
    # Then none conflicts (exact boto3 pins once made permheal and aws-sam-cli uninstallable together)
    assert done.returncode == 0, done.stdout + done.stderr


def test_build_requires_a_setuptools_that_understands_spdx_licenses() -> None:
    # Given the build system and the license expression
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # When they are read
    # Then license = "Apache-2.0" comes with setuptools >= 77, and the license text is shipped
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in pyproject["build-system"]["requires"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert "END OF TERMS AND CONDITIONS" in (ROOT / "LICENSE").read_text()


# ---------------------------------------------------------------------------------------- wheel


@pytest.mark.slow
def test_wheel_ships_the_stack_files_identical_to_the_repository_ones(wheel: Path) -> None:
    # Given the built wheel
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        # When its stack files and metadata are read
        shipped = {f: archive.read(f"permheal_local/stack_files/{f}") for f in STACK_FILES}
        metadata = archive.read(
            f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info/METADATA"
        ).decode()
    # Then template.yaml and the ASL are byte-for-byte the ones SAM deploys, and the license is in it
    assert shipped == {f: (ROOT / f).read_bytes() for f in STACK_FILES}
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_demo_runs_from_an_installed_wheel_and_says_how_to_get_moto(wheel: Path, tmp_path: Path) -> None:
    # Given a fresh venv holding only the wheel (no extras), and a directory that is not the checkout
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert run([str(venv_tool("python")), "-m", "venv", str(venv)]).returncode == 0
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", "-c", str(CONSTRAINTS)]
    done = run([*pip, str(wheel)])
    assert done.returncode == 0, done.stdout + done.stderr
    permheal = str(venv / "bin" / "permheal")
    # When the demo runs without the local extra
    bare = run([permheal, "demo"], cwd=elsewhere)
    # Then it exits 2 with one line naming the extra, no traceback
    assert bare.returncode == 2, bare.stdout + bare.stderr
    assert "Traceback" not in bare.stderr
    assert len(bare.stderr.strip().splitlines()) == 1
    assert "permheal[local]" in bare.stderr
    # When the local extra is installed and the demo runs again
    done = run([*pip, f"permheal[local] @ {wheel.as_uri()}"])
    assert done.returncode == 0, done.stdout + done.stderr
    demo = run([permheal, "demo", "--json"], cwd=elsewhere)
    # Then the whole loop heals the API from the wheel's own template and ASL
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "Traceback" not in demo.stderr
    report = json.loads(demo.stdout)
    assert report["outcome"]["healed"] is True
    assert [r["after"] for r in report["outcome"]["requests"]] == [200, 200, 200]


# ---------------------------------------------------------------------------------------- SAM CLI


@pytest.mark.slow
def test_sam_validate_without_lint_expands_the_language_extensions() -> None:
    # Given the repository's samconfig.toml (sam validate without --lint crashed on Fn::ForEach)
    # When the README's validate command runs
    done = run([str(venv_tool("sam")), "validate"])
    # Then the template is valid
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def test_samconfig_enables_language_extensions_for_every_documented_command() -> None:
    # Given samconfig.toml (sam build, validate, package and deploy read it)
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())["default"]
    # When each command's parameters are read
    enabled = {command: config[command]["parameters"].get("language_extensions") for command in config}
    # Then every documented command expands Fn::ForEach, and deploy may expand the transforms
    assert enabled == dict.fromkeys(["global", "build", "validate", "package", "deploy"], True)
    assert set(config["deploy"]["parameters"]["capabilities"].split()) == {
        "CAPABILITY_IAM",
        "CAPABILITY_AUTO_EXPAND",
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_build(tmp_path_factory.mktemp("sam-build"))


@pytest.mark.slow
def test_sam_build_makes_one_package_per_function(built: Path) -> None:
    # Given `sam build` of the template
    # When the build directory is listed
    packaged = {p.name for p in built.iterdir() if p.is_dir()}
    # Then every function has its artifact, and the built template points at them
    assert packaged == set(FUNCTIONS)
    assert (built / "template.yaml").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_lambda_package_has_no_sdk_and_nothing_test_only(built: Path, function: str) -> None:
    # Given a function's built artifact
    artifact = built / function
    # When its top-level modules and permheal's contents are listed
    top = {
        p.name.removesuffix(".py")
        for p in artifact.iterdir()
        if not p.name.endswith((".dist-info", "-stubs")) and p.name != "__pycache__"
    }
    # Then it is permheal plus the handlers' libraries: no boto3/botocore, no local AWS, no CLI
    assert top == {"permheal", *RUNTIME_LIBRARIES}
    assert not (artifact / "permheal" / "local").exists()
    assert not (artifact / "permheal" / "cli.py").exists()
    assert not (artifact / "permheal" / "check").exists()
    assert not (artifact / "permheal" / "org_scan.py").exists()  # `scan --org` is the CLI's alone
    assert not (artifact / "permheal" / "adapters" / "organization.py").exists()
    assert (artifact / "permheal" / "handlers").is_dir()
    # And it ships python3.12 bytecode (/var/task is read-only: without it every cold start compiles
    # every module), and none of the Powertools features no handler imports
    compiled = {p.name for p in (artifact / "permheal" / "handlers" / "__pycache__").glob("*.pyc")}
    assert "repair.cpython-312.pyc" in compiled
    assert (artifact / "aws_lambda_powertools" / "logging").is_dir()
    assert not (artifact / "aws_lambda_powertools" / "event_handler").exists()
    # And the X-Ray SDK (TraceAwsCalls=true) with its botocore integration only: it patches nothing else
    assert {p.name for p in (artifact / "aws_xray_sdk" / "ext").iterdir()} - {"__pycache__"} == {
        "__init__.py",
        "boto_utils.py",
        "util.py",
        "botocore",
        "resources",
    }


# Imports every handler from the artifact alone (plus the venv's boto3) and calls the summarize
# step, which makes no AWS call: it must answer the failure path of the workflow.
_RUNTIME_PROBE = """
import importlib, json, sys
artifact, handlers = sys.argv[1], json.loads(sys.argv[2])
import boto3, botocore.client
modules = [importlib.import_module(h.rpartition(".")[0]) for h in handlers]
from permheal.handlers import summarize
class Context:
    function_name = "permheal-summarize"; memory_limit_in_mb = 256; aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:permheal-summarize"
event = {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:e1",
         "state": {"error": {"Error": "States.TaskFailed", "Cause": "boom"},
                   "request": {"apiId": "abc123", "stage": "prod"}}}
summary = summarize.lambda_handler(event, Context())
xray = {m: getattr(sys.modules.get(m), "__file__", None) for m in ("aws_xray_sdk", "wrapt")}
patched = type(vars(botocore.client.BaseClient)["_make_api_call"]).__name__ == "FunctionWrapper"
print(json.dumps({"python": list(sys.version_info[:2]), "boto3": boto3.__file__,
                  "botocore": botocore.__file__, "permheal": sys.modules["permheal"].__file__,
                  "handlers": [m.__name__ for m in modules], "summary": summary,
                  "xray": xray, "patched": patched}))
"""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return runtime_venv(tmp_path_factory.mktemp("runtime") / "venv")


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_handlers_import_and_run_on_python_312_from_the_artifact(
    built: Path, runtime: Path, function: str
) -> None:
    # Given the artifact on Python 3.12 with only the runtime's boto3 besides it
    artifact = built / function
    handlers = [spec.handler for spec in function_specs(load_template(TEMPLATE)).values()]
    # When every handler module is imported and the summarize step is called
    done = run(
        [str(runtime), "-c", _RUNTIME_PROBE, str(artifact), json.dumps(handlers)],
        cwd=artifact,
        PYTHONPATH=str(artifact),
        PYTHONNOUSERSITE="1",
        POWERTOOLS_TRACE_DISABLED="true",
        AWS_REGION="us-east-1",
    )
    # Then all import on 3.12, permheal comes from the artifact, the SDK from the runtime, and it answers
    assert done.returncode == 0, done.stdout + done.stderr
    probe: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["python"] == [3, 12]
    assert probe["permheal"].startswith(str(artifact))
    assert not probe["botocore"].startswith(str(artifact))
    assert not probe["boto3"].startswith(str(artifact))
    assert probe["handlers"] == [h.rpartition(".")[0] for h in handlers]
    assert "abc123" in json.dumps(probe["summary"])
    # And with TraceAwsCalls off (the default) the X-Ray SDK is never imported
    assert probe["xray"] == {"aws_xray_sdk": None, "wrapt": None} and not probe["patched"]
    assert python312().name == "python3.12"


@pytest.mark.slow
def test_with_trace_aws_calls_the_artifact_traces_with_its_own_xray_sdk_on_python_312(
    built: Path, runtime: Path
) -> None:
    # Given a function's artifact on Python 3.12 in a Lambda-like environment, TraceAwsCalls=true
    artifact = built / "SummarizeFunction"
    handlers = [spec.handler for spec in function_specs(load_template(TEMPLATE)).values()]
    # When every handler module is imported and the summarize step is called
    done = run(
        [str(runtime), "-c", _RUNTIME_PROBE, str(artifact), json.dumps(handlers)],
        cwd=artifact,
        PYTHONPATH=str(artifact),
        PYTHONNOUSERSITE="1",
        AWS_REGION="us-east-1",
        LAMBDA_TASK_ROOT=str(artifact),
        AWS_LAMBDA_FUNCTION_NAME="permheal-summarize",
        _X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0",
        PERMHEAL_TRACE_AWS_CALLS="true",
        POWERTOOLS_TRACE_DISABLED="false",
    )
    # Then it answers, the X-Ray SDK and wrapt coming from the artifact and patching the runtime's botocore
    assert done.returncode == 0, done.stdout + done.stderr
    probe: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert "abc123" in json.dumps(probe["summary"])
    assert all(str(path).startswith(str(artifact)) for path in probe["xray"].values()), probe["xray"]
    assert probe["patched"] and not probe["botocore"].startswith(str(artifact))
