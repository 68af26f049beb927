"""template.yaml: it lints, it matches the ASL and the code.

Its IAM is proven least privilege on the transformed template in test_least_privilege.py.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from permheal.config import Mode, Settings
from permheal.detection import SUBSCRIPTION_FILTER_PATTERN
from permheal.logparse import PERMISSION_FAILURE_PHRASE
from permheal.models import Scope
from permheal_local.template import (
    FunctionSpec,
    TemplateError,
    function_specs,
    load_template,
    resolve_mappings,
    resources,
    state_machine_spec,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STATE_MACHINE = "RemediationStateMachine"
STEP_FUNCTIONS = ("ResolveTargetsFunction", "RepairPolicyFunction", "SummarizeFunction")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resources(template)[logical_id]["Properties"]
    return props


def _placeholders() -> set[str]:
    return set(re.findall(r"\$\{([^}]+)\}", (ROOT / "statemachine" / "remediation.asl.json").read_text()))


# ---------------------------------------------------------------------------------------- lint


@pytest.mark.parametrize(
    "rules", [[], ["--append-rules", "cfn_lint_serverless.rules"]], ids=["cfn-lint", "serverless"]
)
def test_cfn_lint_passes_on_the_template(rules: list[str]) -> None:
    # Given the cfn-lint installed next to this interpreter (with cfn-lint-serverless's rules or not)
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.exists(), f"cfn-lint is not installed in {cfn_lint.parent}"
    # When it lints the template
    run = subprocess.run(
        [str(cfn_lint), str(TEMPLATE), *rules], cwd=ROOT, capture_output=True, text=True, check=False
    )
    # Then it reports nothing (warnings included)
    assert run.returncode == 0, run.stdout + run.stderr


# ---------------------------------------------------------------------------------------- ASL


def test_every_asl_placeholder_has_a_definition_substitution(template: dict[str, Any]) -> None:
    # Given the placeholders the ASL uses
    used = _placeholders()
    # When the template's substitutions are read
    _, substitutions = state_machine_spec(template)
    # Then each placeholder is filled
    assert used, "the ASL uses no ${...} placeholder"
    assert used - set(substitutions) == set()


def test_every_definition_substitution_is_used_by_the_asl(template: dict[str, Any]) -> None:
    # Given the template's substitutions
    _, substitutions = state_machine_spec(template)
    # When they are compared with the ASL's placeholders
    unused = set(substitutions) - _placeholders()
    # Then none is dead
    assert unused == set()


def test_state_machine_definition_is_the_asl_file_in_statemachine(template: dict[str, Any]) -> None:
    # Given the state machine's DefinitionUri
    path, _ = state_machine_spec(template, base_dir=ROOT)
    # When it is resolved against the project root
    # Then it is the ASL file the tests run
    assert path == ROOT / "statemachine" / "remediation.asl.json"
    assert path.is_file()


HUB_OR_OWN_TOPIC = {
    "Fn::If": ["UseHubTopic", {"Ref": "HubNotificationTopicArn"}, {"Ref": "NotificationTopic"}]
}
"""Where the workflow notifies: the hub account's topic when HubNotificationTopicArn is set (org/)."""


def test_the_workflow_steps_are_the_three_step_functions_and_the_topic(template: dict[str, Any]) -> None:
    # Given the substitutions
    _, substitutions = state_machine_spec(template)
    # When their values are read
    # Then each step function's ARN and the topic fill them
    assert substitutions == {
        "ResolveTargetsFunctionArn": {"Fn::GetAtt": ["ResolveTargetsFunction", "Arn"]},
        "RepairPolicyFunctionArn": {"Fn::GetAtt": ["RepairPolicyFunction", "Arn"]},
        "SummarizeFunctionArn": {"Fn::GetAtt": ["SummarizeFunction", "Arn"]},
        "NotificationTopicArn": HUB_OR_OWN_TOPIC,
    }


# ---------------------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    "logical_id",
    [
        "DetectorFunction",
        "ResolveTargetsFunction",
        "RepairPolicyFunction",
        "SummarizeFunction",
        "ProactiveTriggerFunction",
    ],
)
def test_every_handler_is_importable_and_has_lambda_handler(
    template: dict[str, Any], logical_id: str
) -> None:
    # Given the function's Handler
    handler = function_specs(template)[logical_id].handler
    module_name, _, attribute = handler.rpartition(".")
    # When its module is imported the way Lambda does
    module = importlib.import_module(module_name)
    # Then it exposes a callable lambda_handler
    assert attribute == "lambda_handler"
    assert callable(getattr(module, attribute, None))


def test_every_function_traces_aws_calls_as_the_trace_aws_calls_parameter_says(
    template: dict[str, Any],
) -> None:
    # Given every function as deployed (Globals merged) and its handler as Lambda imports it
    for logical_id, spec in function_specs(template).items():
        module_name, _, attribute = spec.handler.rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
        wrappers = []
        while handler is not None:
            wrappers.append(handler.__code__.co_qualname)  # functools.wraps copies __qualname__, not the code
            handler = getattr(handler, "__wrapped__", None)
        # When its tracing settings and decorators are read
        # Then Lambda traces it (active), the parameter reaches it, and its handler runs under `traced`
        assert template["Resources"][logical_id]["Properties"].get("Tracing", "Active") == "Active"
        assert spec.environment["PERMHEAL_TRACE_AWS_CALLS"] == {"Ref": "TraceAwsCalls"}, logical_id
        assert "traced.<locals>.run" in wrappers, (logical_id, wrappers)


def test_template_declares_exactly_the_five_functions(template: dict[str, Any]) -> None:
    # Given the template
    # When its functions are listed
    specs = function_specs(template)
    # Then they are the detector, the three workflow steps and the proactive trigger
    assert set(specs) == {"DetectorFunction", *STEP_FUNCTIONS, "ProactiveTriggerFunction"}


def test_function_names_and_log_groups_follow_the_handler_module(template: dict[str, Any]) -> None:
    # Given each function's handler module (detect, resolve, repair, summarize)
    for logical_id, spec in function_specs(template).items():
        role = spec.handler.split(".")[-2]
        props = _props(template, logical_id)
        # When its name and log group are read
        log_group = _props(template, props["LoggingConfig"]["LogGroup"]["Ref"])
        # Then both are named after the stack and the role, and logs are kept 30 days
        assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{role}"}
        assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{role}"}
        assert log_group["RetentionInDays"] == 30


def test_globals_configure_the_runtime_and_observability(template: dict[str, Any]) -> None:
    # Given the Globals every function inherits
    defaults = template["Globals"]["Function"]
    # When they are read
    # Then Python 3.12 on arm64 with X-Ray and Powertools settings is the baseline
    assert defaults["Runtime"] == "python3.12"
    assert defaults["Architectures"] == ["arm64"]
    assert defaults["CodeUri"] == "functions/"
    assert defaults["Tracing"] == "Active"
    assert (defaults["MemorySize"], defaults["Timeout"]) == (512, 60)
    assert defaults["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "permheal",
        "POWERTOOLS_METRICS_NAMESPACE": "Permheal",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PERMHEAL_MODE": {"Ref": "Mode"},
        "PERMHEAL_SCOPE": {"Ref": "Scope"},
        "PERMHEAL_PRUNE_STALE": {"Ref": "PruneStale"},
        "PERMHEAL_ALLOWLIST_PARAM": {"Fn::FindInMap": ["Constants", "Allowlist", "ParameterName"]},
        "PERMHEAL_LEDGER_TABLE": {"Ref": "LedgerTable"},
        "PERMHEAL_FLAP_THRESHOLD": {"Ref": "FlapThreshold"},
        "PERMHEAL_FLAP_WINDOW_HOURS": {"Ref": "FlapWindowHours"},
        "PERMHEAL_TRACE_AWS_CALLS": {"Ref": "TraceAwsCalls"},
    }


def test_detector_gets_the_workflow_the_queue_and_the_window(template: dict[str, Any]) -> None:
    # Given the detector's merged environment
    environment = function_specs(template)["DetectorFunction"].environment
    # When the settings its handler reads are looked up
    # Then they point at the stack's own resources and parameter
    assert environment["PERMHEAL_STATE_MACHINE_ARN"] == {"Ref": STATE_MACHINE}
    assert environment["PERMHEAL_DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}
    assert environment["PERMHEAL_INCIDENT_WINDOW_SECONDS"] == {"Ref": "IncidentWindowSeconds"}


def test_detector_failures_reach_the_dead_letter_queue_after_two_retries(template: dict[str, Any]) -> None:
    # Given the detector's asynchronous invocation settings
    config = _props(template, "DetectorFunction")["EventInvokeConfig"]
    # When they are read
    # Then two retries happen before the event lands in the DLQ
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    }


def test_dead_letter_queue_is_encrypted_and_keeps_messages_14_days(template: dict[str, Any]) -> None:
    # Given the dead-letter queue
    queue = _props(template, "DeadLetterQueue")
    # When it is read
    # Then SSE-SQS is on and retention is the maximum
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


# ---------------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("parameter", "allowed", "default"),
    [
        # design.md: PERMHEAL_MODE=enforce|dry-run; the code's Mode enum is the same list
        ("Mode", ["enforce", "dry-run"], "enforce"),
        # design.md "Scope": method (default), stage or api; the code's Scope enum is the same list
        ("Scope", ["method", "stage", "api"], "method"),
        # design.md "Deployment": account-policy | log-groups with a list
        ("SubscriptionMode", ["account-policy", "log-groups"], "account-policy"),
        # design.md: stale grants removed only when PERMHEAL_PRUNE_STALE=true
        ("PruneStale", ["true", "false"], "false"),
        # issue 9 defect 10: IaC-owned redundant statements are only reported unless PERMHEAL_DEDUPE_IAC=true
        ("DedupeIacStatements", ["true", "false"], "false"),
        # per-AWS-call X-Ray subsegments are opt-in: the X-Ray SDK costs every cold start
        ("TraceAwsCalls", ["true", "false"], "false"),
    ],
)
def test_parameter_allowed_values_match_design(
    template: dict[str, Any], parameter: str, allowed: list[str], default: str
) -> None:
    # Given the parameter's declaration
    spec = template["Parameters"][parameter]
    # When its choices and default are read
    # Then they are the documented ones, the default being the conservative choice
    assert spec["AllowedValues"] == allowed
    assert str(spec["Default"]) == default
    assert spec["Description"]


def test_mode_and_scope_choices_are_what_the_code_accepts(template: dict[str, Any]) -> None:
    # Given the enums the settings are parsed into
    # When compared with the template's choices
    # Then a deployable value is always a valid setting
    assert template["Parameters"]["Mode"]["AllowedValues"] == [m.value for m in Mode]
    assert template["Parameters"]["Scope"]["AllowedValues"] == [s.value for s in Scope]


def test_every_parameter_explains_itself(template: dict[str, Any]) -> None:
    # Given every parameter
    parameters = template["Parameters"]
    # When their descriptions are read
    # Then each has one and the list is the documented one
    assert set(parameters) == {
        "AllowedApis",
        "Mode",
        "Scope",
        "NotificationEmail",
        "SubscriptionMode",
        "ExecutionLogGroups",
        "PruneStale",
        "IncidentWindowSeconds",
        "FlapThreshold",
        "FlapWindowHours",
        "DedupeIacStatements",
        "DetectorReservedConcurrency",
        "RepairReservedConcurrency",
        "SecurityHubFindings",
        "ProactiveMode",
        "ProactiveWindowSeconds",
        "HubNotificationTopicArn",
        "TraceAwsCalls",
    }
    assert all(len(spec.get("Description", "")) > 40 for spec in parameters.values())


def test_every_parameter_is_in_a_console_group(template: dict[str, Any]) -> None:
    # Given the console's parameter groups
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    # When their parameters are collected
    grouped = [name for group in groups for name in group["Parameters"]]
    # Then every parameter appears exactly once
    assert sorted(grouped) == sorted(template["Parameters"])


@pytest.mark.parametrize("function", ["ResolveTargetsFunction", "RepairPolicyFunction"])
def test_dedupe_iac_setting_reaches_the_steps_that_plan_removals(
    template: dict[str, Any], function: str
) -> None:
    # Given the function's merged environment
    environment = function_specs(template)[function].environment
    # When the IaC dedupe setting is looked up
    # Then it is the DedupeIacStatements parameter
    assert environment["PERMHEAL_DEDUPE_IAC"] == {"Ref": "DedupeIacStatements"}


def test_allowlist_parameter_exists_only_when_apis_are_allowed(template: dict[str, Any]) -> None:
    # Given the allowlist parameter and its condition
    resource = resources(template)["AllowlistParameter"]
    # When AllowedApis is left empty (its default)
    # Then the parameter is not created, so the allowlist is missing and nothing is allowed
    assert template["Parameters"]["AllowedApis"]["Default"] == ""
    assert resource["Condition"] == "HasAllowedApis"
    assert template["Conditions"]["HasAllowedApis"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedApis"}, ""]}]
    }
    assert resource["Properties"]["Type"] == "StringList"
    assert resource["Properties"]["Value"] == {"Ref": "AllowedApis"}


def test_allowlist_name_is_one_value_used_everywhere(template: dict[str, Any]) -> None:
    # Given every place that names the allowlist parameter
    names = {
        "parameter": resolve_mappings(template, _props(template, "AllowlistParameter")["Name"]),
        "environment": function_specs(template)["RepairPolicyFunction"].environment[
            "PERMHEAL_ALLOWLIST_PARAM"
        ],
        "output": resolve_mappings(template, template["Outputs"]["AllowlistParameterName"]["Value"]),
    }
    # When they are compared
    # Then they agree with each other and with the code's default
    assert set(names.values()) == {Settings().allowlist_param}


def test_email_subscription_exists_only_with_an_address(template: dict[str, Any]) -> None:
    # Given the email subscription
    resource = resources(template)["NotificationEmailSubscription"]
    # When NotificationEmail is empty (its default)
    # Then no subscription is created
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    assert resource["Condition"] == "HasEmail"
    assert resource["Properties"]["TopicArn"] == {"Ref": "NotificationTopic"}


# ---------------------------------------------------------------------------------------- subscription


def test_filter_pattern_is_the_one_detection_reads(template: dict[str, Any]) -> None:
    # Given the template's filter pattern
    pattern = template["Mappings"]["Constants"]["Subscription"]["FilterPattern"]
    # When compared with the phrases the detector looks for
    # Then it is detection's pattern: each phrase quoted, any one of them suffices
    assert pattern == SUBSCRIPTION_FILTER_PATTERN
    assert f'?"{PERMISSION_FAILURE_PHRASE}"' in pattern


def test_account_policy_sends_matching_events_to_the_detector(template: dict[str, Any]) -> None:
    # Given the account-level subscription policy
    resource = resources(template)["PermissionFailureAccountPolicy"]
    props = resource["Properties"]
    # When its document is read
    document = resolve_mappings(template, props["PolicyDocument"]["Fn::ToJsonString"])
    # Then it targets the detector with the phrase filter, in account-policy mode only
    assert resource["Condition"] == "UseAccountPolicy"
    assert resource["DependsOn"] == "DetectorLogsPermission"
    assert (props["PolicyType"], props["Scope"]) == ("SUBSCRIPTION_FILTER_POLICY", "ALL")
    assert document == {
        "DestinationArn": {"Fn::GetAtt": ["DetectorFunction", "Arn"]},
        "FilterPattern": SUBSCRIPTION_FILTER_PATTERN,
        "Distribution": "Random",
    }


def test_account_policy_excludes_every_permheal_log_group(template: dict[str, Any]) -> None:
    # Given every log group the stack creates
    log_groups = {name for name, r in resources(template).items() if r["Type"] == "AWS::Logs::LogGroup"}
    # When the account policy's selection criteria are read
    criteria = _props(template, "PermissionFailureAccountPolicy")["SelectionCriteria"]["Fn::Sub"]
    # Then each of them is excluded (permheal never reads its own logs); the proactive trigger's by
    # name, since it exists only with ProactiveMode=on and a reference would fail without it
    named = {
        name: r["Properties"]["LogGroupName"]["Fn::Sub"]
        for name, r in resources(template).items()
        if r["Type"] == "AWS::Logs::LogGroup" and r.get("Condition")
    }
    assert criteria.startswith("LogGroupName NOT IN [")
    assert set(re.findall(r'"\$\{(\w+)\}"', criteria)) == log_groups - set(named)
    assert set(named) == {"ProactiveTriggerLogGroup"}
    assert all(f'"{value}"' in criteria for value in named.values())
    assert len(log_groups) == 6


def test_log_groups_mode_subscribes_each_listed_group(template: dict[str, Any]) -> None:
    # Given the Fn::ForEach over ExecutionLogGroups
    identifier, collection, body = template["Resources"]["Fn::ForEach::ExecutionLogSubscriptions"]
    ((logical_id, resource),) = body.items()
    # When its generated resource is read
    props = resource["Properties"]
    # Then each listed group gets a filter to the detector, in log-groups mode only
    assert collection == {"Ref": "ExecutionLogGroups"}
    assert logical_id == f"PermissionFailureSubscription&{{{identifier}}}"
    assert resource["Type"] == "AWS::Logs::SubscriptionFilter"
    assert resource["Condition"] == "UseLogGroups"
    assert resource["DependsOn"] == "DetectorLogsPermission"
    assert props["LogGroupName"] == {"Ref": identifier}
    assert props["DestinationArn"] == {"Fn::GetAtt": ["DetectorFunction", "Arn"]}
    assert resolve_mappings(template, props["FilterPattern"]) == SUBSCRIPTION_FILTER_PATTERN


def test_cloudwatch_logs_may_invoke_the_detector_from_this_account_only(template: dict[str, Any]) -> None:
    # Given the detector's resource-based permission
    props = _props(template, "DetectorLogsPermission")
    # When it is read
    # Then only CloudWatch Logs of this account and region may invoke it
    assert props["Principal"] == "logs.amazonaws.com"
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert props["SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
    }


# ---------------------------------------------------------------------------------------- workflow, alarms


def test_state_machine_is_standard_traced_and_logs_errors_without_data(template: dict[str, Any]) -> None:
    # Given the state machine
    props = _props(template, STATE_MACHINE)
    # When its type, tracing and logging are read
    logging = props["Logging"]
    # Then it is a Standard (idempotent StartExecution) workflow that logs errors but no payloads
    assert props["Type"] == "STANDARD"
    assert props["Tracing"] == {"Enabled": True}
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ERROR", False)
    assert logging["Destinations"] == [
        {
            "CloudWatchLogsLogGroup": {
                "LogGroupArn": {"Fn::GetAtt": ["RemediationStateMachineLogGroup", "Arn"]}
            }
        }
    ]


@pytest.mark.parametrize(
    ("namespace", "metric"),
    [
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("Permheal", "UndecodablePayloads"),
    ],
)
def test_alarm_notifies_the_topic(template: dict[str, Any], namespace: str, metric: str) -> None:
    # Given the stack's alarms
    alarms = [r["Properties"] for r in resources(template).values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    # When the one on this metric is found
    matching = [a for a in alarms if (a["Namespace"], a["MetricName"]) == (namespace, metric)]
    # Then it exists once and pages on-call through the topic
    assert len(matching) == 1
    assert matching[0]["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_undecodable_payloads_alarm_watches_the_detectors_metric(template: dict[str, Any]) -> None:
    # Given the Powertools namespace and service every function uses
    environment = function_specs(template)["DetectorFunction"].environment
    # When the alarm on the custom metric is read
    alarm = _props(template, "UndecodablePayloadsAlarm")
    # Then it looks where Powertools Metrics publishes (namespace, `service` dimension)
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]


def test_outputs_are_the_documented_ones(template: dict[str, Any]) -> None:
    # Given the stack's outputs
    outputs = template["Outputs"]
    # When they are listed
    # Then the CLI and operators find what they need (StateMachineArn is read by `permheal remediate`)
    assert set(outputs) == {
        "StateMachineArn",
        "NotificationTopicArn",
        "DeadLetterQueueUrl",
        "AllowlistParameterName",
        "LedgerTableName",
        "DetectorFunctionArn",
        "DashboardUrl",
    }
    assert outputs["StateMachineArn"]["Value"] == {"Ref": STATE_MACHINE}


# ------------------------------------------------------------------------------ permheal_local.template

SMALL = """\
Transform: AWS::Serverless-2016-10-31
Mappings:
  Constants:
    Names:
      Param: /x/allowed
Globals:
  Function:
    Timeout: 30
    MemorySize: 512
    Environment:
      Variables:
        SHARED: global
        OVERRIDDEN: global
        FROM_MAP: !FindInMap [Constants, Names, Param]
Resources:
  Fn::ForEach::Things:
    - Item
    - [a, b]
    - Thing&{Item}:
        Type: AWS::SNS::Topic
  Step:
    Type: AWS::Serverless::Function
    Properties:
      Handler: pkg.step.lambda_handler
      Timeout: 5
      Environment:
        Variables:
          OVERRIDDEN: function
          TARGET: !Ref Machine
          ARN: !GetAtt Step.Arn
          TEXT: !Sub "${AWS::StackName}-x"
  Plain:
    Type: AWS::Lambda::Function
    Properties:
      Handler: pkg.plain.handler
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachine/flow.asl.json
      DefinitionSubstitutions:
        StepArn: !GetAtt Step.Arn
        Param: !FindInMap [Constants, Names, Param]
"""


@pytest.fixture
def small(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return load_template(path)


def test_load_template_turns_short_form_tags_into_plain_long_form(small: dict[str, Any]) -> None:
    # Given a template written with !Ref, !GetAtt, !Sub and !FindInMap
    # When it is loaded
    variables = small["Resources"]["Step"]["Properties"]["Environment"]["Variables"]
    # Then the tags are long-form intrinsics made of plain builtins
    assert variables["TARGET"] == {"Ref": "Machine"}
    assert variables["ARN"] == {"Fn::GetAtt": ["Step", "Arn"]}
    assert variables["TEXT"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert type(small) is dict and type(variables) is dict and type(variables["TARGET"]["Ref"]) is str


def test_function_specs_merge_globals_under_the_functions_own_settings(small: dict[str, Any]) -> None:
    # Given a SAM function with Globals
    # When its spec is built
    spec = function_specs(small)["Step"]
    # Then Globals fill what the function does not set, and the function wins where both do
    assert spec.handler == "pkg.step.lambda_handler"
    assert (spec.timeout, spec.memory) == (5, 512)
    assert spec.environment["SHARED"] == "global"
    assert spec.environment["OVERRIDDEN"] == "function"


def test_function_specs_keep_intrinsics_raw_but_resolve_literal_mappings(small: dict[str, Any]) -> None:
    # Given environment values that are intrinsics
    # When the spec is built
    environment = function_specs(small)["Step"].environment
    # Then deploy-time values stay for the deployer, template constants are resolved
    assert environment["TARGET"] == {"Ref": "Machine"}
    assert environment["ARN"] == {"Fn::GetAtt": ["Step", "Arn"]}
    assert environment["TEXT"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert environment["FROM_MAP"] == "/x/allowed"


def test_function_specs_apply_globals_to_sam_functions_only(small: dict[str, Any]) -> None:
    # Given a plain AWS::Lambda::Function next to SAM Globals
    # When its spec is built
    spec = function_specs(small)["Plain"]
    # Then Lambda's own defaults apply, not the Globals
    assert spec == FunctionSpec(handler="pkg.plain.handler", environment={}, timeout=3, memory=128)


def test_function_specs_skip_other_resources_and_foreach_blocks(small: dict[str, Any]) -> None:
    # Given a template with a topic loop and a state machine besides functions
    # When specs are built
    # Then only the functions are returned
    assert set(function_specs(small)) == {"Step", "Plain"}


def test_function_specs_reject_a_handler_that_is_not_literal() -> None:
    # Given a function whose Handler is an intrinsic
    template = {
        "Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": {"Ref": "H"}}}}
    }
    # When specs are built
    # Then the template is refused with the function named
    with pytest.raises(TemplateError, match="F: Handler"):
        function_specs(template)


def test_state_machine_spec_returns_the_definition_path_and_substitutions(small: dict[str, Any]) -> None:
    # Given a template with one SAM state machine
    # When its spec is read relative to the template's folder
    path, substitutions = state_machine_spec(small, base_dir="/project")
    # Then the path is joined and the substitutions are raw, mappings resolved
    assert path == Path("/project/statemachine/flow.asl.json")
    assert substitutions == {"StepArn": {"Fn::GetAtt": ["Step", "Arn"]}, "Param": "/x/allowed"}


def test_state_machine_spec_needs_a_single_state_machine_or_its_id() -> None:
    # Given a template with two state machines
    machine = {"Type": "AWS::Serverless::StateMachine", "Properties": {"DefinitionUri": "a.json"}}
    template = {"Resources": {"A": machine, "B": {**machine, "Properties": {"DefinitionUri": "b.json"}}}}
    # When no logical id is given, then it refuses; when one is, then that one is read
    with pytest.raises(TemplateError, match="A, B"):
        state_machine_spec(template)
    assert state_machine_spec(template, "B") == (Path("b.json"), {})


def test_state_machine_spec_rejects_a_definition_stored_in_s3() -> None:
    # Given a state machine whose definition is an S3 location
    template = {
        "Resources": {
            "M": {
                "Type": "AWS::Serverless::StateMachine",
                "Properties": {"DefinitionUri": {"Bucket": "b", "Key": "k"}},
            }
        }
    }
    # When its spec is read
    # Then it is refused: the local deployer needs a file
    with pytest.raises(TemplateError, match="local file path"):
        state_machine_spec(template)


def test_resolve_mappings_refuses_a_missing_entry() -> None:
    # Given a FindInMap that names no entry
    template = {"Mappings": {"M": {"K": {"V": "value"}}}}
    # When it is resolved
    # Then the typo is reported instead of passing a dict through as a value
    with pytest.raises(TemplateError, match="names no entry"):
        resolve_mappings(template, {"Fn::FindInMap": ["M", "K", "Missing"]})
