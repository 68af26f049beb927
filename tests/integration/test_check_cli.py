"""`permheal check` on the command line: formats, exit codes, one-line errors, and no AWS/network."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.check_support import CORPUS, corpus, line_of

CONTRACT_KEYS = {
    "kind",
    "file",
    "api",
    "apiType",
    "stage",
    "method",
    "resourcePath",
    "routeKey",
    "authorizer",
    "function",
    "qualifier",
    "detail",
    "fix",
}
BROKEN = "sam/http_api_lambda_auth.yaml"
CLEAN = "patterns/apigw-lambda-authorizer/template.yaml"


def test_a_clean_template_exits_0_and_says_so(cli: Any) -> None:
    run = cli("check", str(corpus(CLEAN)))
    assert (run.code, run.out) == (0, "No findings.\n")


def test_findings_exit_1_and_json_carries_every_contract_key(cli: Any) -> None:
    run = cli("check", "--format", "json", str(corpus(BROKEN)), str(corpus(CLEAN)))
    assert run.code == 1
    (finding,) = run.json["findings"]
    assert set(finding) == CONTRACT_KEYS | {"line"}
    assert (finding["kind"], finding["apiType"], finding["authorizer"]) == (
        "missing_permission",
        "HTTP",
        "LambdaAuth",
    )
    assert finding["line"] == line_of(corpus(BROKEN), "MyApi")


def test_the_table_names_file_line_call_and_prints_the_fix(cli: Any) -> None:
    run = cli("check", str(corpus(BROKEN)))
    assert run.code == 1
    assert f"http_api_lambda_auth.yaml:{line_of(corpus(BROKEN), 'MyApi')}" in run.out
    assert "authorizer LambdaAuth" in run.out and "Type: AWS::Lambda::Permission" in run.out


def test_sarif_is_2_1_0_with_a_rule_per_kind_and_a_located_result(cli: Any) -> None:
    run = cli("check", "--format", "sarif", str(corpus(BROKEN)))
    assert run.code == 1
    sarif = run.json
    assert sarif["version"] == "2.1.0"
    (sarif_run,) = sarif["runs"]
    rules = [rule["id"] for rule in sarif_run["tool"]["driver"]["rules"]]
    assert rules == [
        f"permheal/{kind}"
        for kind in (
            "missing_permission",
            "wrong_qualifier",
            "wrong_source_arn",
            "policy_size_risk",
            "unresolved",
        )
    ]
    (result,) = sarif_run["results"]
    assert (
        result["ruleId"] == "permheal/missing_permission" and rules[result["ruleIndex"]] == result["ruleId"]
    )
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("check_corpus/sam/http_api_lambda_auth.yaml")
    assert location["region"]["startLine"] == line_of(corpus(BROKEN), "MyApi")
    assert result["level"] == "error" and "AWS::Lambda::Permission" in result["message"]["text"]


def test_a_cdk_out_directory_reads_every_template(cli: Any) -> None:
    run = cli("check", "--format", "json", str(CORPUS / "cdk"))
    assert (run.code, run.json) == (0, {"findings": []})


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("a: [unclosed", "not valid YAML"), ("just: text\n", "not a CloudFormation")],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "t.yaml"
    if content is not None:
        path.write_text(content)
    run = cli("check", str(path))
    err = capsys.readouterr().err
    assert run.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_without_sam_translator_a_sam_template_is_an_install_hint_and_exit_2(
    cli: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "samtranslator" or m.startswith("samtranslator.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "samtranslator", None)  # import now fails, as if not installed
    run = cli("check", str(corpus(BROKEN)))
    err = capsys.readouterr().err
    assert run.code == 2 and "pip install 'permheal[check]'" in err and len(err.strip().splitlines()) == 1


def test_without_pyyaml_check_is_an_install_hint_and_exit_2(
    cli: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m.startswith("permheal.check") and m != "permheal.check.command"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "yaml", None)
    run = cli("check", str(corpus(CLEAN)))
    err = capsys.readouterr().err
    assert run.code == 2 and "needs yaml: pip install 'permheal[check]'" in err


def test_without_pyyaml_every_other_command_still_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an install without the check extra (no PyYAML, permheal.check never imported)
    for name in [m for m in sys.modules if m.startswith("permheal.check")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "yaml", None)
    from permheal.cli import _parser

    # When the CLI builds its parser for another command
    args = _parser().parse_args(["demo"])

    # Then it does so without touching the check package
    assert args.command == "demo"
    assert not any(m.startswith("permheal.check") for m in sys.modules)


def test_check_opens_no_network_connection(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("permheal check opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert cli("check", str(corpus(BROKEN)), str(CORPUS / "cdk")).code == 1


def test_no_lambda_handler_imports_the_check_package() -> None:
    package = Path(__file__).resolve().parents[2] / "functions" / "permheal"
    importers = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "permheal.check" in path.read_text() and path.parent.name != "check" and path.name != "cli.py"
    ]
    assert importers == []
    assert json.dumps(sorted(p.name for p in (package / "handlers").glob("*.py")))  # handlers exist


ROOT = Path(__file__).resolve().parents[2]


def test_the_github_action_runs_check_as_sarif_and_uploads_it() -> None:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite"
    assert any(str(s.get("uses", "")).startswith("actions/setup-python@") for s in steps)
    run = next(s["run"] for s in steps if s.get("id") == "check")
    assert 'permheal check --format sarif $PATHS > "$SARIF"' in run
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    install = next(s["run"] for s in steps if s.get("name") == "Install permheal")
    assert "[check]" in install


def test_the_pre_commit_hook_runs_check_on_the_files_it_is_given(cli: Any) -> None:
    import re

    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["entry"] == "permheal check" and hook["language"] == "python"
    assert any(d.startswith("aws-sam-translator") for d in hook["additional_dependencies"])
    assert re.search(hook["files"], "infra/template.yaml") and re.search(
        hook["files"], "cdk.out/App.template.json"
    )
    assert not re.search(hook["files"], "src/app.py")
    # pre-commit appends the staged file names to the entry
    assert cli(*hook["entry"].split()[1:], str(corpus(CLEAN))).code == 0


def test_permheals_own_template_checks_clean(cli: Any) -> None:
    # `make check-templates`: SAM + AWS::LanguageExtensions (Fn::ForEach), Rules with !Contains
    assert cli("check", str(ROOT / "template.yaml")).code == 0


def test_the_check_benchmark_reports_figures_for_each_template() -> None:
    from benchmarks.check import run

    rows = run(quick=True)["templates"]
    assert len(rows) == 3 and all(r["bytes"] > 0 and r["median_ms"] >= 0 for r in rows)
    assert rows[2]["findings"] == 0  # 20 per-method grants stay far below the size warning
