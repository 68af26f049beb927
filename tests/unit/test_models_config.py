"""The domain's wire formats (permheal.models) and settings (permheal.config)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permheal.arns import ApiRef, FunctionRef
from permheal.config import (
    CliSettings,
    DetectorSettings,
    Mode,
    ProactiveSettings,
    Settings,
    SummarySettings,
    trace_aws_calls,
)
from permheal.errors import ConfigError, ParseError
from permheal.models import (
    AddedStatement,
    Change,
    Finding,
    FindingKind,
    Outcome,
    RemediationResult,
    RemovedStatement,
    Scope,
    Target,
    TargetKind,
)

ACCOUNT = "123456789012"
API = ApiRef("aws", "us-east-1", ACCOUNT, "api1")
LIVE = FunctionRef("aws", "us-east-1", ACCOUNT, "orders", "live")
FN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"
PREFIX = "arn:aws:execute-api:us-east-1:123456789012:api1"

# design.md, "CLI": the finding keys and kinds of the JSON contract, verbatim.
FINDING_KEYS = [
    "kind",
    "apiId",
    "apiName",
    "stage",
    "method",
    "resourcePath",
    "authorizerId",
    "functionArn",
    "qualifier",
    "sourceArn",
    "sid",
    "detail",
    "apiType",  # design.md, "API kinds": REST | HTTP | WEBSOCKET
    "routeKey",  # v2 routes only
]
FINDING_KINDS = {
    "missing_permission",
    "duplicate_statement",
    "redundant_statement",
    "stale_statement",
    "policy_near_limit",
    "logging_disabled",
    "integration_role",
    "cross_account_function",
    "missing_function",
    "undeployed_change",  # additive (issue 9): working copy invokes what no stage serves
    "access_log_missing_error",  # design.md, "API kinds": an HTTP stage's access log cannot show failures
}

# --- Finding ---------------------------------------------------------------------------------------


def test_finding_kinds_are_exactly_the_contract_kinds() -> None:
    # Given the design's list of finding kinds
    # When compared with the enum
    # Then they are the same set of strings
    assert {k.value for k in FindingKind} == FINDING_KINDS


def test_finding_to_dict_uses_exactly_the_contract_keys() -> None:
    # Given a finding with every field set
    finding = Finding(
        FindingKind.MISSING_PERMISSION,
        api_id="api1",
        api_name="orders-api",
        stage="prod",
        method="GET",
        resource_path="/pets/{petId}",
        authorizer_id=None,
        function_arn=FN_ARN,
        qualifier="live",
        source_arn=f"{PREFIX}/prod/GET/pets/{{petId}}",
        sid="permheal-0123456789abcdef",
        detail="API Gateway may not invoke orders:live",
    )
    # When it is serialised
    data = finding.to_dict()
    # Then the keys are the contract's camelCase keys, in order, and the kind is its string value
    assert list(data) == FINDING_KEYS
    assert data["kind"] == "missing_permission"
    assert data["resourcePath"] == "/pets/{petId}"
    assert json.loads(json.dumps(data)) == data


def test_finding_for_target_copies_where_the_call_happens() -> None:
    # Given an integration target on an alias
    target = Target(TargetKind.INTEGRATION, API, "prod", LIVE, "GET", "/pets")
    # When a finding is made for it
    finding = Finding.for_target(FindingKind.MISSING_PERMISSION, target, "orders-api", sid="s", detail="d")
    # Then api, stage, call, function and source ARN come from the target
    assert finding == Finding(
        FindingKind.MISSING_PERMISSION,
        api_id="api1",
        api_name="orders-api",
        stage="prod",
        method="GET",
        resource_path="/pets",
        function_arn=FN_ARN,
        qualifier="live",
        source_arn=f"{PREFIX}/prod/GET/pets",
        sid="s",
        detail="d",
        api_type="REST",
    )


_optional_text = st.none() | st.text(max_size=30)
findings = st.builds(
    Finding,
    kind=st.sampled_from(list(FindingKind)),
    api_id=_optional_text,
    api_name=_optional_text,
    stage=_optional_text,
    method=_optional_text,
    resource_path=_optional_text,
    authorizer_id=_optional_text,
    function_arn=_optional_text,
    qualifier=_optional_text,
    source_arn=_optional_text,
    sid=_optional_text,
    detail=st.text(max_size=60),
)


@settings(max_examples=150, deadline=None)
@given(finding=findings)
def test_property_finding_round_trips_through_json(finding: Finding) -> None:
    # Given any finding
    # When it goes through to_dict, JSON and from_dict
    back = Finding.from_dict(json.loads(json.dumps(finding.to_dict())))
    # Then it comes back unchanged
    assert back == finding


def test_finding_from_dict_defaults_missing_optional_fields() -> None:
    # Given a minimal finding (only the kind)
    # When it is read
    finding = Finding.from_dict({"kind": "logging_disabled"})
    # Then the other fields are None and detail is empty
    assert finding == Finding(FindingKind.LOGGING_DISABLED)


@pytest.mark.parametrize("data", [{}, {"kind": "no_such_kind"}, {"kind": None}, [], "finding", None, 5])
def test_finding_from_dict_rejects_malformed_input_with_parse_error(data: Any) -> None:
    # Given something that is not a finding
    # When it is read
    # Then it is a ParseError
    with pytest.raises(ParseError):
        Finding.from_dict(data)


# --- Target ----------------------------------------------------------------------------------------

TARGETS = [
    Target(TargetKind.INTEGRATION, API, "prod", LIVE, "GET", "/pets/{petId}"),
    Target(
        TargetKind.INTEGRATION, API, "dev", FunctionRef("aws", "us-east-1", ACCOUNT, "orders"), "ANY", "/"
    ),
    Target(TargetKind.AUTHORIZER, API, "prod", LIVE, authorizer_id="auth1"),
]


@pytest.mark.parametrize("target", TARGETS)
def test_target_round_trips_through_its_site(target: Target) -> None:
    # Given a target (integration or authorizer)
    # When its site goes through JSON and is placed back on the same API and function
    back = Target.at_site(target.api, target.function, json.loads(json.dumps(target.site())))
    # Then it comes back unchanged
    assert back == target


def test_target_site_uses_camel_case_keys() -> None:
    # Given an integration target
    # When its site is serialised
    data = TARGETS[0].site()
    # Then its keys are camelCase and carry only where the call happens
    assert data == {
        "kind": "integration",
        "stage": "prod",
        "method": "GET",
        "resourcePath": "/pets/{petId}",
        "authorizerId": None,
    }


@pytest.mark.parametrize(
    ("target", "source_arn"),
    [
        (TARGETS[0], f"{PREFIX}/prod/GET/pets/{{petId}}"),
        (TARGETS[1], f"{PREFIX}/dev/ANY/"),
        (TARGETS[2], f"{PREFIX}/authorizers/auth1"),
    ],
)
def test_target_source_arn_is_what_api_gateway_presents(target: Target, source_arn: str) -> None:
    # Given a target
    # When its source ARN is read
    # Then integrations use {stage}/{METHOD}{template} and authorizers {api}/authorizers/{id}
    assert target.source_arn == source_arn


@pytest.mark.parametrize(
    "site",
    [
        {"stage": "prod", "method": "GET", "resourcePath": "/"},
        {"kind": "lambda", "stage": "prod"},
        {"kind": None, "stage": "prod"},
        {"kind": "integration"},
        [],
        "integration",
        None,
    ],
)
def test_target_at_site_rejects_malformed_sites_with_parse_error(site: Any) -> None:
    # Given a serialised site with a part missing or mistyped, or not an object
    # When it is read back
    # Then it is a ParseError
    with pytest.raises(ParseError):
        Target.at_site(API, LIVE, site)


# --- Change and RemediationResult ------------------------------------------------------------------

CHANGE = Change(
    function_arn=FN_ARN,
    qualifier="live",
    added=(AddedStatement("permheal-0123456789abcdef", f"{PREFIX}/*/GET/pets/*"),),
    removed=(
        RemovedStatement(
            "dup", f"{PREFIX}/*/GET/pets/*", "duplicate of sam", {"Sid": "dup", "Effect": "Allow"}
        ),
    ),
    policy_bytes_before=812,
    policy_bytes_after=811,
)
RESULT = RemediationResult(
    Outcome.REPAIRED,
    api_id="api1",
    stage="prod",
    api_name="orders-api",
    changes=(CHANGE,),
    findings=(Finding(FindingKind.MISSING_PERMISSION, api_id="api1", detail="x"),),
)


def test_change_to_dict_uses_the_contract_keys() -> None:
    # Given a change that adds and removes
    # When it is serialised
    data = CHANGE.to_dict()
    # Then it has the contract's keys (removed entries also carry the statement, for revert)
    assert list(data) == [
        "functionArn",
        "qualifier",
        "added",
        "removed",
        "policyBytesBefore",
        "policyBytesAfter",
    ]
    assert data["added"] == [{"sid": "permheal-0123456789abcdef", "sourceArn": f"{PREFIX}/*/GET/pets/*"}]
    assert {"sid", "sourceArn", "reason"} <= set(data["removed"][0])
    assert data["removed"][0]["statement"] == {"Sid": "dup", "Effect": "Allow"}


def test_change_round_trips_through_json_including_the_removed_statement() -> None:
    # Given a change
    # When it goes through to_dict, JSON and from_dict
    back = Change.from_dict(json.loads(json.dumps(CHANGE.to_dict())))
    # Then it is equal, and the removed statement (not part of equality) survives too
    assert back == CHANGE
    assert back.removed[0].statement == CHANGE.removed[0].statement


@pytest.mark.parametrize(
    ("change", "changed"),
    [(CHANGE, True), (Change(FN_ARN, None), False), (Change(FN_ARN, None, removed=CHANGE.removed), True)],
)
def test_change_is_changed_only_when_it_adds_or_removes(change: Change, changed: bool) -> None:
    # Given a change
    # When asked whether it changed anything
    # Then it did only when it adds or removes a statement
    assert change.changed is changed


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"functionArn": FN_ARN, "added": [{"sid": "x"}]},
        {"functionArn": FN_ARN, "added": [5]},
        {"functionArn": FN_ARN, "removed": [{"sourceArn": "x"}]},
        {"functionArn": FN_ARN, "removed": [[]]},
        {"functionArn": FN_ARN, "removed": ["x"]},
        {"functionArn": FN_ARN, "policyBytesBefore": "big"},
        {"functionArn": FN_ARN, "added": 5},
        [],
        None,
    ],
)
def test_change_from_dict_rejects_malformed_input_with_parse_error(data: Any) -> None:
    # Given something that is not a change
    # When it is read
    # Then it is a ParseError
    with pytest.raises(ParseError):
        Change.from_dict(data)


def test_result_to_dict_has_the_contract_keys() -> None:
    # Given a repaired result
    # When it is serialised
    data = RESULT.to_dict()
    # Then it has the contract's keys (plus apiName for the summary) and no error key
    assert {"outcome", "apiId", "stage", "changes", "findings"} <= set(data)
    assert set(data) - {"outcome", "apiId", "stage", "changes", "findings"} == {"apiName"}
    assert data["outcome"] == "repaired"
    assert data["findings"][0]["kind"] == "missing_permission"


def test_result_includes_the_error_only_when_there_is_one() -> None:
    # Given a failed result with an error
    failed = replace(RESULT, outcome=Outcome.FAILED, error="boom")
    # When it is serialised
    # Then the error is included, and the outcome replaced
    assert (failed.to_dict()["outcome"], failed.to_dict()["error"]) == ("failed", "boom")


@pytest.mark.parametrize(
    "result",
    [
        RESULT,
        replace(RESULT, outcome=Outcome.FAILED, error="boom"),
        RemediationResult(Outcome.NO_CHANGE, None, None),
    ],
)
def test_result_round_trips_through_json(result: RemediationResult) -> None:
    # Given a result
    # When it goes through to_dict, JSON and from_dict
    # Then it comes back unchanged
    assert RemediationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"outcome": "partly"},
        {"outcome": "failed", "changes": 5},
        {"outcome": "failed", "changes": [{}]},
        {"outcome": "failed", "findings": [{"kind": "bogus"}]},
        {"outcome": "failed", "findings": [[]]},
        {"outcome": "failed", "findings": ["missing_permission"]},
        [],
        None,
    ],
)
def test_result_from_dict_rejects_malformed_input_with_parse_error(data: Any) -> None:
    # Given something that is not a remediation result
    # When it is read
    # Then it is a ParseError
    with pytest.raises(ParseError):
        RemediationResult.from_dict(data)


@pytest.mark.parametrize("outcome", list(Outcome))
def test_only_repaired_no_change_and_dry_run_count_as_success(outcome: Outcome) -> None:
    # Given any outcome
    # When asked whether it succeeded
    # Then repaired/no_change/dry_run are successes (CLI exit 0); every other outcome is not (exit 1)
    assert outcome.succeeded is (outcome.value in {"repaired", "no_change", "dry_run"})


def test_the_contract_outcomes_all_exist() -> None:
    # Given the design's outcome strings
    # When compared with the enum
    # Then each of them is an outcome
    assert {"repaired", "no_change", "dry_run", "refused", "failed"} <= {o.value for o in Outcome}


# --- Settings --------------------------------------------------------------------------------------


def test_settings_from_an_empty_environment_are_the_defaults() -> None:
    # Given no PERMHEAL_* variables
    # When settings are read
    result = Settings.from_env({})
    # Then enforce mode, method scope, the default allowlist parameter, no pruning, no consolidation
    assert result == Settings(
        mode=Mode.ENFORCE,
        scope=Scope.METHOD,
        allowlist_param="/permheal/allowed-apis",
        prune_stale=False,
        consolidate=False,
    )


def test_settings_read_every_variable() -> None:
    # Given every PERMHEAL_* variable set
    env = {
        "PERMHEAL_MODE": "dry-run",
        "PERMHEAL_SCOPE": "stage",
        "PERMHEAL_ALLOWLIST_PARAM": "/custom/apis",
        "PERMHEAL_PRUNE_STALE": "true",
        "PERMHEAL_CONSOLIDATE": "yes",
        "PERMHEAL_LEDGER_TABLE": "ledger",
        "PERMHEAL_FLAP_THRESHOLD": "5",
        "PERMHEAL_FLAP_WINDOW_HOURS": "2",
        "PERMHEAL_DEDUPE_IAC": "true",
    }
    # When settings are read
    result = Settings.from_env(env)
    # Then each is taken
    assert result == Settings(
        Mode.DRY_RUN,
        Scope.STAGE,
        "/custom/apis",
        True,
        True,
        ledger_table="ledger",
        flap_threshold=5,
        flap_window_hours=2,
        dedupe_iac=True,
    )


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("PERMHEAL_MODE", "enforce", "mode", Mode.ENFORCE),
        ("PERMHEAL_MODE", " DRY-RUN ", "mode", Mode.DRY_RUN),
        ("PERMHEAL_MODE", "", "mode", Mode.ENFORCE),
        ("PERMHEAL_SCOPE", "method", "scope", Scope.METHOD),
        ("PERMHEAL_SCOPE", "API", "scope", Scope.API),
        ("PERMHEAL_SCOPE", "", "scope", Scope.METHOD),
        ("PERMHEAL_PRUNE_STALE", "TRUE", "prune_stale", True),
        ("PERMHEAL_PRUNE_STALE", "1", "prune_stale", True),
        ("PERMHEAL_PRUNE_STALE", " yes ", "prune_stale", True),
        ("PERMHEAL_PRUNE_STALE", "false", "prune_stale", False),
        ("PERMHEAL_PRUNE_STALE", "0", "prune_stale", False),
        ("PERMHEAL_PRUNE_STALE", "no", "prune_stale", False),
        ("PERMHEAL_PRUNE_STALE", "", "prune_stale", False),
        ("PERMHEAL_CONSOLIDATE", "true", "consolidate", True),
        ("PERMHEAL_DEDUPE_IAC", "true", "dedupe_iac", True),
        ("PERMHEAL_DEDUPE_IAC", " YES ", "dedupe_iac", True),
        ("PERMHEAL_DEDUPE_IAC", "false", "dedupe_iac", False),
        ("PERMHEAL_DEDUPE_IAC", "", "dedupe_iac", False),
        ("PERMHEAL_ALLOWLIST_PARAM", "", "allowlist_param", "/permheal/allowed-apis"),
        ("PERMHEAL_LEDGER_TABLE", "", "ledger_table", None),
    ],
)
def test_settings_parse_each_value_leniently_in_case_and_space(
    name: str, value: str, field: str, expected: Any
) -> None:
    # Given one variable set to an accepted spelling (or empty)
    # When settings are read
    # Then the field takes the parsed value (empty means default)
    assert getattr(Settings.from_env({name: value}), field) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PERMHEAL_MODE", "enforcing"),
        ("PERMHEAL_MODE", "dry_run"),
        ("PERMHEAL_MODE", "off"),
        ("PERMHEAL_SCOPE", "global"),
        ("PERMHEAL_SCOPE", "resource"),
        ("PERMHEAL_PRUNE_STALE", "maybe"),
        ("PERMHEAL_PRUNE_STALE", "on"),
        ("PERMHEAL_CONSOLIDATE", "2"),
        ("PERMHEAL_DEDUPE_IAC", "sometimes"),
        ("PERMHEAL_DEDUPE_IAC", "on"),
    ],
)
def test_settings_reject_invalid_values_with_config_error(name: str, value: str) -> None:
    # Given one variable set to a value that is not allowed
    # When settings are read
    # Then it is a ConfigError naming the variable
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_stack_owned_statements_are_only_reported_by_default() -> None:
    # Given no PERMHEAL_DEDUPE_IAC
    # When settings are read
    # Then permheal must not remove statements a CloudFormation stack owns (no stack drift by default)
    assert Settings.from_env({}).dedupe_iac is False


def test_settings_read_the_process_environment_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given PERMHEAL_SCOPE set in the process environment
    monkeypatch.setenv("PERMHEAL_SCOPE", "api")
    # When settings are read without an explicit mapping
    # Then the process environment is used
    assert Settings.from_env().scope is Scope.API


@pytest.mark.parametrize(
    ("mode", "requested", "dry"),
    [
        (Mode.ENFORCE, False, False),
        (Mode.ENFORCE, True, True),
        (Mode.DRY_RUN, False, True),
        (Mode.DRY_RUN, True, True),
    ],
)
def test_an_execution_can_only_make_a_run_drier(mode: Mode, requested: bool, dry: bool) -> None:
    # Given a deployment mode and an execution's dryRun request
    # When the effective dry-run flag is computed
    # Then a dry-run deployment stays dry whatever the execution asks
    assert Settings(mode=mode).dry_run(requested) is dry


def test_dry_run_defaults_to_the_deployment_mode() -> None:
    # Given an enforce and a dry-run deployment
    # When no execution preference is given
    # Then the deployment mode decides
    assert (Settings(mode=Mode.ENFORCE).dry_run(), Settings(mode=Mode.DRY_RUN).dry_run()) == (False, True)


# --- one settings type per entry point -----------------------------------------------------------

DETECTOR_ENV = {
    "PERMHEAL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:permheal",
    "PERMHEAL_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/permheal-dlq",
}


def test_detector_settings_read_the_window_and_default_it() -> None:
    from permheal.detection import DEFAULT_WINDOW_SECONDS

    settings = DetectorSettings.from_env({**DETECTOR_ENV, "PERMHEAL_INCIDENT_WINDOW_SECONDS": "900"})
    assert settings == DetectorSettings(*DETECTOR_ENV.values(), 900)
    assert DetectorSettings.from_env(DETECTOR_ENV).incident_window_seconds == DEFAULT_WINDOW_SECONDS


@pytest.mark.parametrize("window", ["soon", "0", "-60", "1.5"])
def test_detector_settings_refuse_a_window_that_is_not_a_positive_whole_number(window: str) -> None:
    with pytest.raises(ConfigError, match="PERMHEAL_INCIDENT_WINDOW_SECONDS"):
        DetectorSettings.from_env({**DETECTOR_ENV, "PERMHEAL_INCIDENT_WINDOW_SECONDS": window})


@pytest.mark.parametrize("missing", sorted(DETECTOR_ENV))
def test_detector_settings_need_the_state_machine_and_the_queue(missing: str) -> None:
    env = {k: v for k, v in DETECTOR_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        DetectorSettings.from_env(env)


def test_cli_settings_hold_the_workflows_and_where_the_stack_is() -> None:
    env = {"PERMHEAL_SCOPE": "api", "PERMHEAL_STACK_NAME": "heal-dev", **DETECTOR_ENV}
    cli = CliSettings.from_env(env)
    assert cli == CliSettings(
        Settings(scope=Scope.API), DETECTOR_ENV["PERMHEAL_STATE_MACHINE_ARN"], "heal-dev"
    )
    assert CliSettings.from_env({}) == CliSettings(Settings())


PROACTIVE_ENV = {
    "PERMHEAL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:permheal",
    "PERMHEAL_LEDGER_TABLE": "permheal-ledger",
}


def test_proactive_settings_read_the_trigger_s_variables() -> None:
    role = "arn:aws:iam::123456789012:role/repair"
    env = {
        **PROACTIVE_ENV,
        "PERMHEAL_PROACTIVE_WINDOW_SECONDS": "60",
        "PERMHEAL_PROACTIVE_GRACE_SECONDS": "0",
        "PERMHEAL_OWN_ROLE_ARNS": f"{role}, ",
        "PERMHEAL_ALLOWLIST_PARAM": "/x/allowed",
    }
    settings = ProactiveSettings.from_env(env)
    assert (settings.window_seconds, settings.grace_seconds) == (60, 0)
    assert (settings.own_role_arns, settings.allowlist_param) == (frozenset({role}), "/x/allowed")
    assert ProactiveSettings.from_env(PROACTIVE_ENV) == ProactiveSettings(*PROACTIVE_ENV.values())


@pytest.mark.parametrize(
    "change",
    [
        {"PERMHEAL_LEDGER_TABLE": ""},
        {"PERMHEAL_STATE_MACHINE_ARN": ""},
        {"PERMHEAL_PROACTIVE_WINDOW_SECONDS": "0"},
        {"PERMHEAL_PROACTIVE_WINDOW_SECONDS": "thirty"},
        {"PERMHEAL_PROACTIVE_GRACE_SECONDS": "-1"},
    ],
)
def test_proactive_settings_refuse_a_missing_or_bad_variable(change: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        ProactiveSettings.from_env({**PROACTIVE_ENV, **change})


def test_summary_settings_take_the_lambda_region() -> None:
    assert SummarySettings.from_env({"AWS_REGION": "eu-west-1"}).region == "eu-west-1"
    assert SummarySettings.from_env({}).region == "us-east-1"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), ("", False), ("false", False), ("true", True), ("TRUE", True)]
)
def test_aws_calls_are_traced_only_when_asked(value: str | None, expected: bool) -> None:
    # Given PERMHEAL_TRACE_AWS_CALLS unset or set (the TraceAwsCalls parameter)
    env = {} if value is None else {"PERMHEAL_TRACE_AWS_CALLS": value}
    # When the setting is read
    # Then only true turns the per-call subsegments on: the default keeps the X-Ray SDK out
    assert trace_aws_calls(env) is expected


def test_trace_aws_calls_refuses_a_value_that_is_not_a_flag() -> None:
    with pytest.raises(ConfigError, match="PERMHEAL_TRACE_AWS_CALLS"):
        trace_aws_calls({"PERMHEAL_TRACE_AWS_CALLS": "sometimes"})


def test_no_module_but_config_reads_the_environment() -> None:
    """One owner per variable: the SDK's own (AWS_PROFILE, AWS_ENDPOINT_URL) stay with the client factory."""
    import ast
    from pathlib import Path

    import permheal

    package = Path(permheal.__file__).parent
    readers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.add(path.relative_to(package).as_posix())
    assert readers <= {"config.py", "adapters/aws.py"}
