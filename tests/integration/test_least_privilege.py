"""Least privilege, proven on the template CloudFormation deploys: samtranslator's output, not the YAML.

SAM adds AWSLambdaBasicExecutionRole and AWSXrayWriteOnlyAccess (logs and X-Ray on every resource) to
every role it generates, and queue policies for destinations: checks on the hand-written statements
never saw them (issue 9, defect 14). Every statement of every role in the transformed template is
walked here, so a permission SAM or a new statement adds fails until it is argued for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from permheal_local.template import load_template, resolve_mappings, resources
from tests.integration.tooling import TEMPLATE, transformed_template

STATE_MACHINE = "RemediationStateMachine"
FUNCTIONS = (
    "DetectorFunction",
    "ResolveTargetsFunction",
    "RepairPolicyFunction",
    "SummarizeFunction",
    "ProactiveTriggerFunction",
)
STEP_FUNCTIONS = FUNCTIONS[1:4]
STARTERS = ("DetectorFunction", "ProactiveTriggerFunction")
"""The functions that start the workflow: from failing requests' logs, and from deploy events."""
ALLOWLIST_ARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}"
ANY_FUNCTION_ARN = {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"}
# Vended-logs delivery for the state machine: these actions have no resource-level permissions.
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# Tracing (Lambda active tracing, Step Functions tracing): X-Ray has no resource-level permissions.
XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
XRAY_SAMPLING = {"xray:GetSamplingRules", "xray:GetSamplingTargets"}
OWN_LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
BASICS = OWN_LOGS | XRAY_WRITE
IAM_KINDS = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return transformed_template()


@pytest.fixture(scope="module")
def statements(transformed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every IAM statement of the transformed template; owner = the role's user."""
    return list(_statements(transformed))


def _role_users(transformed: dict[str, Any]) -> dict[str, list[str]]:
    """Role logical id -> the functions and state machines that run with it."""
    users: dict[str, list[str]] = {}
    for logical_id, resource in transformed["Resources"].items():
        props = resource.get("Properties", {})
        role = props.get("Role") or props.get("RoleArn")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            users.setdefault(role["Fn::GetAtt"][0], []).append(logical_id)
    return users


def _statements(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    users = _role_users(transformed)

    def owner(role: str) -> str:
        found = users.get(role, [])
        return found[0] if len(found) == 1 else role

    for logical_id, resource in transformed["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::IAM::Role":
            pairs = [(owner(logical_id), p["PolicyDocument"]) for p in props.get("Policies") or []]
        elif kind in IAM_KINDS:
            roles = [r["Ref"] for r in props.get("Roles", [])]
            pairs = [(owner(roles[0]) if len(roles) == 1 else logical_id, props["PolicyDocument"])]
        else:
            continue
        for who, document in pairs:
            for statement in _as_list(document["Statement"]):
                yield who, statement


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _actions(statement: dict[str, Any]) -> list[str]:
    return _as_list(statement.get("Action", []))


def _resources(statement: dict[str, Any]) -> list[Any]:
    return _as_list(statement.get("Resource", []))


def _with_action(
    statements: list[tuple[str, dict[str, Any]]], action: str
) -> list[tuple[str, dict[str, Any]]]:
    return [(owner, s) for owner, s in statements if action in _actions(s)]


def _of_type(transformed: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in transformed["Resources"].items() if v["Type"] == kind}


# ---------------------------------------------------------------------------------------- roles


def test_no_role_carries_a_managed_policy(transformed: dict[str, Any]) -> None:
    # Given every IAM role of the transformed template
    roles = _of_type(transformed, "AWS::IAM::Role")
    # When their managed policies are listed (SAM adds AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess)
    managed = {name: role["Properties"].get("ManagedPolicyArns") for name, role in roles.items()}
    # Then there is none: every permission is an inline statement checked below
    assert roles
    assert {name: arns for name, arns in managed.items() if arns} == {}
    assert _of_type(transformed, "AWS::IAM::ManagedPolicy") == {}


def test_each_role_runs_one_function_or_the_state_machine_and_trusts_only_its_service(
    transformed: dict[str, Any],
) -> None:
    # Given every role and who runs with it
    users = _role_users(transformed)
    roles = _of_type(transformed, "AWS::IAM::Role")
    # When each role's user and trust policy are read
    trusted = {
        users[name][0]: [
            (s["Effect"], s["Action"], s["Principal"])
            for s in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        ]
        for name, role in roles.items()
    }
    # Then each role has exactly one user, which is the only service that may assume it
    assert {name: len(users.get(name, [])) for name in roles} == dict.fromkeys(roles, 1)
    lambda_trust = [("Allow", "sts:AssumeRole", {"Service": "lambda.amazonaws.com"})]
    assert trusted == {
        **dict.fromkeys(FUNCTIONS, lambda_trust),
        STATE_MACHINE: [("Allow", "sts:AssumeRole", {"Service": "states.amazonaws.com"})],
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_writes_logs_only_to_its_own_log_group(
    transformed: dict[str, Any], statements: list[tuple[str, dict[str, Any]]], function: str
) -> None:
    # Given the function's log group and its role's log statements
    log_group = transformed["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [
        s for owner, s in statements if owner == function and any(a.startswith("logs:") for a in _actions(s))
    ]
    # When their actions and resources are read
    # Then it may create streams and put events in that group only (the stack creates the group)
    assert transformed["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"
    assert [(set(_actions(s)), _resources(s)) for s in logs] == [
        (OWN_LOGS, [{"Fn::GetAtt": [log_group, "Arn"]}])
    ]


def test_no_role_may_create_log_groups(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given every statement
    # When log group creation is looked for
    # Then none allows it (AWSLambdaBasicExecutionRole would: logs:CreateLogGroup on *)
    assert _with_action(statements, "logs:CreateLogGroup") == []


def test_detector_concurrency_is_reserved_by_default(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # Given the detector, which account-policy mode feeds from every log group in the region
    props = transformed["Resources"]["DetectorFunction"]["Properties"]
    parameter = template["Parameters"]["DetectorReservedConcurrency"]
    # When its reserved concurrency is read
    # Then it is capped by a parameter (default 5), with 0 meaning no reservation rather than "throttle all"
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveDetectorConcurrency",
            {"Ref": "DetectorReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"]) == ("Number", 5, 0)
    assert template["Conditions"]["ReserveDetectorConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DetectorReservedConcurrency"}, 0]}]
    }


def test_the_foreach_block_the_transform_leaves_out_grants_nothing(template: dict[str, Any]) -> None:
    # Given the Fn::ForEach blocks (expanded by AWS::LanguageExtensions, left out of the transform above)
    blocks = {k: v for k, v in template["Resources"].items() if k.startswith("Fn::ForEach::")}
    # When the resource types they generate are listed
    kinds = {resource["Type"] for _, _, body in blocks.values() for resource in body.values()}
    # Then none is an IAM resource or carries a role
    assert kinds == {"AWS::Logs::SubscriptionFilter"}


# ---------------------------------------------------------------------------------------- statements


def test_iam_statements_are_found(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given the walk over the template's IAM policies
    # When its owners are collected
    owners = {owner for owner, _ in statements}
    # Then it saw every role, each owned by its one function or the state machine (the proofs are not vacuous)
    assert owners == {*FUNCTIONS, STATE_MACHINE}


def test_no_iam_action_contains_a_wildcard(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given every IAM statement
    # When their actions are listed
    wild = [(owner, action) for owner, s in statements for action in _actions(s) if "*" in action]
    # Then none is a pattern
    assert wild == []


def test_every_statement_allows_named_actions_on_named_resources(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given every IAM statement
    # When their shape is checked
    odd = [
        (owner, s)
        for owner, s in statements
        if s.get("Effect") != "Allow"
        or {"NotAction", "NotResource", "NotPrincipal"} & set(s)
        or not _resources(s)
    ]
    # Then each is a plain Allow of listed actions on listed resources
    assert odd == []


def test_resource_wildcard_only_for_actions_without_resource_level_permissions(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given the statements whose Resource is "*"
    unscoped = [(owner, s) for owner, s in statements if "*" in _resources(s)]
    # When their actions are listed by owner
    actions: dict[str, set[str]] = {}
    for owner, s in unscoped:
        actions.setdefault(owner, set()).update(_actions(s))
    # Then functions send traces only; the state machine also sets up log delivery and reads sampling rules
    assert actions == {
        **{function: XRAY_WRITE for function in FUNCTIONS},
        STATE_MACHINE: XRAY_WRITE | XRAY_SAMPLING | LOG_DELIVERY_ACTIONS,
    }
    assert all(_resources(s) == ["*"] for _, s in unscoped)


def test_each_role_has_exactly_the_expected_actions(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given every statement by owner
    granted: dict[str, set[str]] = {}
    for owner, s in statements:
        granted.setdefault(owner, set()).update(_actions(s))
    # When compared with what each step needs
    # Then nothing more is granted (SummarizeFunction only logs and traces, and with
    # SecurityHubFindings=true imports and reads back its Security Hub findings)
    assert granted == {
        "DetectorFunction": {*BASICS, "states:StartExecution", "sqs:SendMessage"},
        "ResolveTargetsFunction": {
            *BASICS,
            "apigateway:GET",
            "ssm:GetParameter",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
        "ProactiveTriggerFunction": {
            *BASICS,
            "states:StartExecution",
            "ssm:GetParameter",
            "apigateway:GET",
            "dynamodb:GetItem",
            "sqs:SendMessage",
        },
        "SummarizeFunction": {*BASICS, "securityhub:BatchImportFindings", "securityhub:GetFindings"},
        "RepairPolicyFunction": {
            *BASICS,
            "lambda:GetPolicy",
            "lambda:GetFunctionConfiguration",
            "lambda:AddPermission",
            "lambda:RemovePermission",
            "ssm:GetParameter",
            "dynamodb:PutItem",
            "dynamodb:Query",
        },
        STATE_MACHINE: {
            "lambda:InvokeFunction",
            "sns:Publish",
            *LOG_DELIVERY_ACTIONS,
            *XRAY_WRITE,
            *XRAY_SAMPLING,
        },
    }


@pytest.mark.parametrize("action", ["lambda:AddPermission", "lambda:RemovePermission"])
def test_policy_edits_only_for_the_apigateway_principal(
    statements: list[tuple[str, dict[str, Any]]], action: str
) -> None:
    # Given every statement that allows editing a function's resource policy
    found = _with_action(statements, action)
    # When its actions, resources and condition are read
    # Then it is the repair step's, limited to API Gateway grants on this account's functions
    assert found, f"no statement allows {action}"
    for owner, s in found:
        assert owner == "RepairPolicyFunction"
        assert set(_actions(s)) <= {"lambda:AddPermission", "lambda:RemovePermission"}
        assert _resources(s) == [ANY_FUNCTION_ARN]
        assert s.get("Condition") == {"StringEquals": {"lambda:Principal": "apigateway.amazonaws.com"}}


def test_policy_reads_only_on_this_accounts_functions(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given the statements that read function policies and configurations
    found = _with_action(statements, "lambda:GetPolicy") + _with_action(
        statements, "lambda:GetFunctionConfiguration"
    )
    # When their resources are read
    # Then they are functions (any qualifier) of this account and region only
    assert found
    assert {owner for owner, _ in found} == {"RepairPolicyFunction"}
    assert all(_resources(s) == [ANY_FUNCTION_ARN] for _, s in found)


def test_start_execution_only_on_the_remediation_state_machine(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given the statements that start executions
    found = _with_action(statements, "states:StartExecution")
    # When their resources are read
    # Then only the detector and the proactive trigger may start, and only this stack's workflow
    assert sorted(owner for owner, _ in found) == sorted(STARTERS)
    assert all(_actions(s) == ["states:StartExecution"] for _, s in found)
    assert all(_resources(s) == [{"Ref": STATE_MACHINE}] for _, s in found)


def test_ssm_access_is_only_get_parameter_on_the_allowlist(
    template: dict[str, Any], statements: list[tuple[str, dict[str, Any]]]
) -> None:
    # Given every statement with an SSM action
    found = [(owner, s) for owner, s in statements if any(a.startswith("ssm:") for a in _actions(s))]
    allowlist = resolve_mappings(template, resources(template)["AllowlistParameter"]["Properties"]["Name"])
    # When its actions and resources are read (mappings resolved)
    # Then it reads exactly the allowlist parameter, nothing else
    assert {owner for owner, _ in found} == {
        "ResolveTargetsFunction",
        "RepairPolicyFunction",
        "ProactiveTriggerFunction",
    }
    for _, s in found:
        assert _actions(s) == ["ssm:GetParameter"]
        assert resolve_mappings(template, _resources(s)) == [
            {"Fn::Sub": [ALLOWLIST_ARN, {"Name": allowlist}]}
        ]


def test_state_machine_may_invoke_only_its_three_step_functions(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given every statement that invokes Lambda functions
    found = _with_action(statements, "lambda:InvokeFunction")
    # When their owners and resources are read
    invoked = [r for _, s in found for r in _resources(s)]
    # Then only the state machine invokes, and only the three steps
    assert {owner for owner, _ in found} == {STATE_MACHINE}
    assert all(_actions(s) == ["lambda:InvokeFunction"] for _, s in found)
    assert sorted(invoked, key=str) == sorted(({"Fn::GetAtt": [f, "Arn"]} for f in STEP_FUNCTIONS), key=str)


def test_state_machine_publishes_only_to_the_notification_topic(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given every statement that publishes to SNS
    found = _with_action(statements, "sns:Publish")
    # When their owners and resources are read
    # Then only the workflow publishes, and only to the stack's topic or the hub's one it was given
    hub_or_own = {"Fn::If": ["UseHubTopic", {"Ref": "HubNotificationTopicArn"}, {"Ref": "NotificationTopic"}]}
    assert [owner for owner, _ in found] == [STATE_MACHINE]
    assert all(_resources(s) == [hub_or_own] for _, s in found)


def test_detector_sends_only_to_the_dead_letter_queue(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given every statement that sends SQS messages
    found = _with_action(statements, "sqs:SendMessage")
    # When their owners and resources are read
    # Then only the detector and the proactive trigger send (their on-failure destination), only to the DLQ
    assert sorted(owner for owner, _ in found) == sorted(STARTERS)
    assert all(_resources(s) == [{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}] for _, s in found)


def test_control_plane_reads_are_limited_to_api_listings(
    statements: list[tuple[str, dict[str, Any]]],
) -> None:
    # Given every API Gateway statement
    found = [(owner, s) for owner, s in statements if any(a.startswith("apigateway:") for a in _actions(s))]
    # When its actions and resources are read
    paths = {r["Fn::Sub"].rpartition("::")[2] for _, s in found for r in _resources(s)}
    # Then the resolver may only GET REST, HTTP and WebSocket APIs (and their sub-resources); the
    # proactive trigger the same (API names for the allowlist, the bounded scan when not indexed)
    assert {owner for owner, _ in found} == {"ResolveTargetsFunction", "ProactiveTriggerFunction"}
    assert all(_actions(s) == ["apigateway:GET"] for _, s in found)
    by_owner = {owner: {r["Fn::Sub"].rpartition("::")[2] for r in _resources(s)} for owner, s in found}
    assert by_owner == {
        "ResolveTargetsFunction": {"/restapis", "/restapis/*", "/apis", "/apis/*"},
        "ProactiveTriggerFunction": {"/restapis", "/restapis/*", "/apis", "/apis/*"},
    }
    assert paths == {"/restapis", "/restapis/*", "/apis", "/apis/*"}


def test_ledger_access_is_limited_to_its_own_table(statements: list[tuple[str, dict[str, Any]]]) -> None:
    # Given every statement that grants a DynamoDB action
    found = [(o, s) for o, s in statements if any(a.startswith("dynamodb:") for a in _actions(s))]
    # Then writes and the routes index's reads go to the ledger table only, queries to its byFunction
    # index only; only the resolver refreshes the routes index and only the trigger reads it
    assert {owner for owner, _ in found} == {
        "ResolveTargetsFunction",
        "RepairPolicyFunction",
        "ProactiveTriggerFunction",
    }
    for _, s in found:
        (action,) = _actions(s)
        expected = (
            [{"Fn::Sub": "${LedgerTable.Arn}/index/byFunction"}]
            if action == "dynamodb:Query"
            else [{"Fn::GetAtt": ["LedgerTable", "Arn"]}]
        )
        assert _resources(s) == expected
    actions = {(owner, a) for owner, s in found for a in _actions(s)}
    assert {owner for owner, action in actions if action == "dynamodb:UpdateItem"} == {
        "ResolveTargetsFunction"
    }
    assert {owner for owner, action in actions if action == "dynamodb:GetItem"} == {
        "ProactiveTriggerFunction"
    }


# ---------------------------------------------------------------------------------------- proactive trigger


def test_only_eventbridge_may_invoke_the_proactive_trigger_and_only_from_its_rule(
    transformed: dict[str, Any],
) -> None:
    # Given the resource permissions on the proactive trigger
    permissions = [
        p["Properties"]
        for p in _of_type(transformed, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": ["ProactiveTriggerFunction", "Arn"]}
    ]
    # When their principal and source are read
    # Then there is one: EventBridge, from the stack's own rule, nothing else
    assert [(p["Principal"], p["Action"], p["SourceArn"]) for p in permissions] == [
        ("events.amazonaws.com", "lambda:InvokeFunction", {"Fn::GetAtt": ["ProactiveRule", "Arn"]})
    ]


def test_only_the_proactive_rule_may_put_dead_letters_through_the_queue_policy(
    transformed: dict[str, Any],
) -> None:
    # Given the queue policies
    policies = _of_type(transformed, "AWS::SQS::QueuePolicy")
    # When their statements are read
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    # Then EventBridge may send to the dead-letter queue for the proactive rule only
    assert [(s["Principal"], s["Action"], s["Resource"], s["Condition"]) for s in statements] == [
        (
            {"Service": "events.amazonaws.com"},
            "sqs:SendMessage",
            {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
            {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ProactiveRule", "Arn"]}}},
        )
    ]


def test_proactive_mode_off_creates_none_of_the_trigger(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    # Given every resource of the transformed template that belongs to the proactive trigger
    proactive = {k: v for k, v in transformed["Resources"].items() if k.startswith("Proactive")}
    # When their conditions are read
    # Then each exists only with ProactiveMode=on (the default)
    assert set(proactive) >= {
        "ProactiveRule",
        "ProactiveTriggerFunction",
        "ProactiveTriggerFunctionRole",
        "ProactiveTriggerPermission",
        "ProactiveTriggerLogGroup",
        "ProactiveDeadLetterPolicy",
    }
    assert {k: v.get("Condition") for k, v in proactive.items()} == dict.fromkeys(
        proactive, "UseProactiveMode"
    )
    assert template["Conditions"]["UseProactiveMode"] == {"Fn::Equals": [{"Ref": "ProactiveMode"}, "on"]}
    assert template["Parameters"]["ProactiveMode"]["Default"] == "on"


def test_security_hub_access_is_optional_and_scoped_to_the_product_and_the_hub(
    transformed: dict[str, Any], statements: list[tuple[str, dict[str, Any]]]
) -> None:
    # Given every statement with a Security Hub action
    found = [(o, s) for o, s in statements if any(a.startswith("securityhub:") for a in _actions(s))]
    # Then only the summarize step has them: imports on this account's default product, reads on the hub
    assert {owner for owner, _ in found} == {"SummarizeFunction"}
    scoped = {tuple(_actions(s)): _resources(s) for _, s in found}
    account = "arn:${AWS::Partition}:securityhub:${AWS::Region}:${AWS::AccountId}"
    assert scoped == {
        ("securityhub:BatchImportFindings",): [{"Fn::Sub": f"{account}:product/${{AWS::AccountId}}/default"}],
        ("securityhub:GetFindings",): [{"Fn::Sub": f"{account}:hub/default"}],
    }
    # And the policy exists only when the SecurityHubFindings parameter asks for it
    policy = transformed["Resources"]["SummarizeSecurityHubPolicy"]
    assert policy["Condition"] == "UseSecurityHub"
    assert transformed["Conditions"]["UseSecurityHub"] == {
        "Fn::Equals": [{"Ref": "SecurityHubFindings"}, "true"]
    }


def test_the_repair_step_is_capped_at_the_concurrency_its_pacing_assumes(
    template: dict[str, Any], transformed: dict[str, Any]
) -> None:
    from permheal.pacing import REPAIR_CONCURRENCY

    # Given the repair function, whose every environment paces at 1/REPAIR_CONCURRENCY of the quotas
    props = transformed["Resources"]["RepairPolicyFunction"]["Properties"]
    parameter = template["Parameters"]["RepairReservedConcurrency"]
    # Then its reserved concurrency caps all executions' repairs together at REPAIR_CONCURRENCY by
    # default, can never be set higher (the pacing would no longer add up), and 0 means no reservation
    assert props["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveRepairConcurrency", {"Ref": "RepairReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        REPAIR_CONCURRENCY,
        0,
        REPAIR_CONCURRENCY,
    )
    assert template["Conditions"]["ReserveRepairConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RepairReservedConcurrency"}, 0]}]
    }
