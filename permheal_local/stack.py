"""Deploy template.yaml's runtime pieces into the local AWS, from the real files.

The functions (handler, environment), the state machine (statemachine/*.asl.json with its
DefinitionSubstitutions), the topic, the dead-letter queue and the allowlist parameter are created
as the template declares them, so the demo and the tests run what `sam deploy` would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from permheal_local import eventbridge
from permheal_local.builder import ACCOUNT, World
from permheal_local.template import function_specs, load_template, state_machine_spec
from permheal_local.template import resources as template_resources


def stack_files() -> Path:
    """The folder holding template.yaml and statemachine/: the wheel's copy, else the checkout.

    A wheel carries them as permheal_local/stack_files/ (setup.py copies them at build time); a
    checkout or an editable install reads the repository root, where SAM reads them too.
    """
    packaged = Path(str(importlib_resources.files("permheal_local") / "stack_files"))
    if (packaged / "template.yaml").is_file():
        return packaged
    return Path(__file__).resolve().parents[1]


ROOT = stack_files()
TEMPLATE = ROOT / "template.yaml"
_SUB = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")


@dataclass
class LocalStack:
    name: str
    state_machine_arn: str
    topic_arn: str
    dead_letter_queue_url: str
    functions: dict[str, str] = field(default_factory=dict)
    """Logical id → deployed function name."""
    rules: dict[str, str] = field(default_factory=dict)
    """Logical id → EventBridge rule ARN (`local.eventbridge` delivers to their Lambda targets)."""


def deploy(
    world: World, parameters: Mapping[str, str] | None = None, stack_name: str = "permheal"
) -> LocalStack:
    """Create the stack's resources with boto3 against whatever endpoint `world` talks to."""
    template = load_template(TEMPLATE)
    resources = template_resources(template)
    values = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    values.update(parameters or {})
    region = world.region
    refs: dict[str, Any] = {
        **values,
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": None,
    }
    attributes: dict[tuple[str, str], Any] = {}
    resolver = _Resolver(refs, attributes, template.get("Conditions", {}), template.get("Mappings", {}))

    topic_id = _logical(resources, "AWS::SNS::Topic")
    topic_arn = world.client("sns").create_topic(Name=f"{stack_name}-{topic_id}")["TopicArn"]
    refs[topic_id] = topic_arn
    attributes[(topic_id, "TopicArn")] = topic_arn
    queue_id = _logical(resources, "AWS::SQS::Queue")
    queue_url = world.client("sqs").create_queue(QueueName=f"{stack_name}-{queue_id}")["QueueUrl"]
    refs[queue_id] = queue_url
    attributes[(queue_id, "Arn")] = f"arn:aws:sqs:{region}:{ACCOUNT}:{stack_name}-{queue_id}"
    attributes[(queue_id, "QueueUrl")] = queue_url
    machine_id = _logical(resources, "AWS::Serverless::StateMachine")
    machine_name = f"{stack_name}-{machine_id}"
    machine_arn = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{machine_name}"
    refs[machine_id] = machine_arn
    attributes[(machine_id, "Arn")] = machine_arn
    attributes[(machine_id, "Name")] = machine_name

    for logical, spec in resources.items():
        if spec["Type"] == "AWS::DynamoDB::Table":
            props = resolver(spec["Properties"])
            table = props.get("TableName") or f"{stack_name}-{logical}"
            keys = ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
            world.client("dynamodb").create_table(
                TableName=table, **{k: props[k] for k in keys if k in props}
            )
            refs[logical] = table
            attributes[(logical, "Arn")] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"

    # Conditional functions (the proactive trigger) exist only when their condition holds.
    for logical, spec in resources.items():
        if spec["Type"] == "AWS::IAM::Role":  # not created locally (moto does not enforce IAM); named
            attributes[(logical, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{stack_name}-{logical}"
    specs = {
        logical: spec
        for logical, spec in function_specs(template).items()
        if resolver.condition(resources[logical].get("Condition"))
    }
    for logical in specs:
        name = resolver(resources[logical]["Properties"].get("FunctionName")) or f"{stack_name}-{logical}"
        refs[logical] = name
        attributes[(logical, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
    for logical, function in specs.items():
        environment = resolver(function.environment)
        world.create_function(
            refs[logical],
            handler=function.handler,
            environment={k: str(v) for k, v in environment.items() if v is not None},
            timeout=function.timeout,
            memory=function.memory,
        )

    for spec in resources.values():
        if spec["Type"] == "AWS::SSM::Parameter" and resolver.condition(spec.get("Condition")):
            props = resolver(spec["Properties"])
            world.client("ssm").put_parameter(
                Name=props["Name"], Type=props["Type"], Value=props["Value"], Overwrite=True
            )

    definition_path, substitutions = state_machine_spec(template, machine_id, ROOT)
    values_by_name = resolver(substitutions)
    definition = _SUB.sub(lambda m: str(values_by_name.get(m[1], m[0])), definition_path.read_text())
    world.client("stepfunctions").create_state_machine(
        name=machine_name, definition=definition, roleArn=world.execution_role(), type="STANDARD"
    )
    rules = {
        logical: eventbridge.put_rule(world, f"{stack_name}-{logical}", resolver(spec["Properties"]))
        for logical, spec in resources.items()
        if spec["Type"] == "AWS::Events::Rule" and resolver.condition(spec.get("Condition"))
    }
    return LocalStack(
        stack_name, machine_arn, topic_arn, queue_url, {logical: refs[logical] for logical in specs}, rules
    )


def _logical(resources: Mapping[str, Any], kind: str) -> str:
    matches = [name for name, spec in resources.items() if spec.get("Type") == kind]
    if len(matches) != 1:
        raise ValueError(f"template must declare exactly one {kind}, found {matches}")
    return matches[0]


class _Resolver:
    """Just enough of CloudFormation's intrinsic functions for the values the runtime reads."""

    def __init__(
        self,
        refs: dict[str, Any],
        attributes: dict[tuple[str, str], Any],
        conditions: dict[str, Any],
        mappings: dict[str, Any],
    ):
        self.refs, self.attributes, self.conditions, self.mappings = refs, attributes, conditions, mappings

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.refs[arg]
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.attributes[(logical, attribute)]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return _SUB.sub(lambda m: str(extra.get(m[1], self._sub(m[1]))), text)
            if key == "Fn::FindInMap":
                name, top, second = (self(a) for a in arg)
                return self.mappings[name][top][second]
            if key == "Fn::If":
                name, yes, no = arg
                return self(yes if self.condition(name) else no)
            if key == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self(items))
            if key == "Fn::Equals":
                return self(arg[0]) == self(arg[1])
            if key == "Fn::Not":
                return not self(arg[0])
            if key in ("Fn::And", "Fn::Or"):
                results = [self(a) for a in arg]
                return all(results) if key == "Fn::And" else any(results)
            if key == "Condition":
                return self.condition(arg)
        return {k: self(v) for k, v in value.items()}

    def _sub(self, name: str) -> str:
        if "." in name:
            logical, attribute = name.split(".", 1)
            return str(self.attributes[(logical, attribute)])
        return str(self.refs[name])

    def condition(self, name: str | None) -> bool:
        return True if name is None else bool(self(self.conditions[name]))
