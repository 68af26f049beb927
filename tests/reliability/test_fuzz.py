"""Property-based fuzzing of every parser permheal runs on input it does not control.

Each returns a result or raises a `permheal.errors.PermhealError` subclass, never anything else:
log lines and log groups, function ARNs and integration URIs, policy documents (parsed, evaluated
and planned over), execution inputs and workflow state, subscription payloads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from permheal import arns, detection, logparse
from permheal.errors import PermhealError
from permheal.models import RestApi, Scope
from permheal.openapi import authorizers_from_list, from_resources
from permheal.planner import PlanOptions, plan_repair, policy_after
from permheal.policy import InvokeRequest, Policy, evaluate, gateway_grant, invoke_statement
from permheal.targets import Hint, stage_targets
from permheal.workflow.outcome import result_from_state
from permheal.workflow.resolve import group_by_function
from permheal.workflow.state import ExecutionInput, FunctionGroup, Resolution
from permheal_local.aws import awslogs_payload
from tests.reliability.conftest import Record
from tests.reliability.support import lost_grants

pytestmark = pytest.mark.reliability

ACCOUNT = "123456789012"
EXAMPLES = 200

# ------------------------------------------------------------------------------------ strategies

# Text that is mostly near the formats: real fragments glued to arbitrary, often hostile, text.
hostile = (
    st.text(max_size=80)
    | st.text(alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl", "Zp", "Co"]), max_size=20)
    | st.sampled_from(
        ["", " ", "\n", "\x00", "\ud800", "\udcff", "*", "?", "%", "%2F", "${", "}", "/", ":", "(", ")"]
    )
)

LOG_FRAGMENTS = [
    "(7c5a4c46-2d4b-4f8b-9a53-1f0b7b5f2a11) ",
    "(Qk5xYF2wIAMFZ7g=) ",
    "(",
    "Execution failed due to configuration error: ",
    "Invalid permissions on Lambda function",
    "Authorizer error",
    "API Gateway does not have permission to assume the provided role ",
    "Sending request to https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/",
    "Endpoint request URI: https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/",
    "arn:aws:lambda:us-east-1:123456789012:function:pets:live",
    "/invocations",
    "HTTP Method: ",
    ", Resource Path: ",
    "/pets/{petId}",
    "Starting execution for request",
    "Starting authorizer: ",
    "Successfully completed authorizer execution",
    "Gateway response type: ",
    " with status code: ",
    "AUTHORIZER_CONFIGURATION_ERROR",
    "Method completed with status: ",
    "500",
    "The IAM role configured on the ",
    "integration or API Gateway doesn’t have permissions to call the integration.",
    "authorizer",
]
ARN_FRAGMENTS = [
    "arn:",
    "aws",
    "aws-cn",
    ":lambda:",
    "us-east-1",
    ":",
    "123456789012",
    "function:",
    "pets",
    ":live",
    ":$LATEST",
    ":42",
    "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/",
    "${stageVariables.alias}",
    "${stageVariables.",
    "/invocations",
    "API-Gateway-Execution-Logs_",
    "a1b2c3d4e5",
    "/prod",
]


def glued(fragments: list[str]) -> st.SearchStrategy[str]:
    piece = st.sampled_from(fragments) | hostile
    return st.lists(piece, max_size=8).map("".join)


# Well-formed inputs, so each property is checked on inputs the parser accepts, not only refused.


def half_valid(valid: st.SearchStrategy[Any], fuzzed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Half the examples from each (`|` would weigh every branch of a nested one_of alike)."""
    return st.booleans().flatmap(lambda ok: valid if ok else fuzzed)


API_IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=10, max_size=10)
STAGE_NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)
log_groups = st.builds(lambda api, stage: f"API-Gateway-Execution-Logs_{api}/{stage}", API_IDS, STAGE_NAMES)
FUNCTION_NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
QUALIFIERS = (
    st.none()
    | st.just("$LATEST")
    | st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True)
    | st.from_regex(r"[A-Za-z_-][A-Za-z0-9_-]{0,30}", fullmatch=True)
)


@st.composite
def function_texts(draw: st.DrawFn) -> str:
    """A function as integrations and users write it: name, partial ARN or full ARN, maybe qualified."""
    name, qualifier = draw(FUNCTION_NAMES), draw(QUALIFIERS)
    region = draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1"]))
    text = draw(
        st.sampled_from(
            [name, f"{ACCOUNT}:function:{name}", f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"]
        )
    )
    return text if qualifier is None else f"{text}:{qualifier}"


not_text = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
)

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | hostile
IAM_KEYS = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "Condition",
    "Service",
    "AWS",
    "ArnLike",
    "ArnLikeIfExists",
    "ArnEquals",
    "ArnNotLike",
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "NumericEquals",
    "AWS:SourceArn",
    "aws:sourcearn",
    "AWS:SourceAccount",
    "Statement",
    "Version",
    "Id",
]
IAM_VALUES = [
    "Allow",
    "Deny",
    "*",
    "apigateway.amazonaws.com",
    "events.amazonaws.com",
    "lambda:InvokeFunction",
    "lambda:*",
    "arn:aws:lambda:us-east-1:123456789012:function:pets",
    "arn:aws:lambda:us-east-1:123456789012:function:pets:live",
    "arn:aws:lambda:us-east-1:123456789012:function:*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*/GET/pets/*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/pets/{petId}",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*",
    "arn:aws:execute-api:us-east-1:123456789012:*",
    "arn:aws:execute-api:us-east-1:123456789012:other/*/*/*",
    "123456789012",
    "210987654321",
]
json_values = st.recursive(
    json_scalars | st.sampled_from(IAM_VALUES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(IAM_KEYS) | hostile, children, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plausible statements, often subtly wrong: a realistic core with fuzzed parts."""
    statement: dict[str, Any] = {
        "Sid": draw(st.sampled_from(["a", "b", "c", "dup", "permheal-x"]) | hostile),
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"]) | json_values),
        "Principal": draw(st.sampled_from([{"Service": "apigateway.amazonaws.com"}, "*"]) | json_values),
        "Action": draw(st.sampled_from(["lambda:InvokeFunction"]) | json_values),
        "Resource": draw(
            st.sampled_from(
                [
                    "arn:aws:lambda:us-east-1:123456789012:function:pets:live",
                    "arn:aws:lambda:us-east-1:123456789012:function:pets",
                ]
            )
            | json_values
        ),
    }
    condition = draw(
        st.sampled_from(
            [{"ArnLike": {"AWS:SourceArn": v}} for v in IAM_VALUES if v.startswith("arn:aws:execute-api")]
        )
        | st.dictionaries(st.sampled_from(IAM_KEYS), json_values, max_size=3)
        | json_values
    )
    if draw(st.booleans()):
        statement["Condition"] = condition
    for key in draw(st.lists(st.sampled_from(list(statement)), max_size=2)):
        statement.pop(key, None)
    if draw(st.booleans()):
        statement[draw(st.sampled_from(IAM_KEYS) | hostile)] = draw(json_values)
    return statement


GRANT_PATTERNS = [
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*/GET/pets/*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/pets/*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/pets/{petId}",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*/*/*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*",
    "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/authorizers/abc",
    "arn:aws:execute-api:us-east-1:123456789012:gone0000/*/GET/x",
    "arn:aws:execute-api:us-east-1:123456789012:*/*/GET/pets/*",
]


@st.composite
def plain_grants(draw: st.DrawFn) -> dict[str, Any]:
    """What AddPermission writes for API Gateway: the only statements permheal may remove."""
    statement = invoke_statement(
        draw(st.sampled_from(["g1", "g2", "g3", "g4", "permheal-x"])),
        draw(
            st.sampled_from(
                ["arn:aws:lambda:us-east-1:123456789012:function:pets:live"] * 3 + [IAM_VALUES[7]]
            )
        ),
        draw(st.sampled_from(GRANT_PATTERNS)),
    )
    if draw(st.booleans()):
        statement["Condition"]["StringEquals"] = {"AWS:SourceAccount": draw(st.sampled_from(IAM_VALUES[-2:]))}
    return statement


plain_policies = st.builds(
    lambda s: json.dumps({"Version": "2012-10-17", "Statement": s}), st.lists(plain_grants(), max_size=6)
)
policy_documents = st.one_of(
    st.builds(
        lambda s: json.dumps({"Version": "2012-10-17", "Statement": s}),
        st.lists(plain_grants() | statements(), max_size=6),
    ),
    st.builds(json.dumps, json_values),
    hostile,
)


def run_fuzz(
    record: Record,
    case: str,
    strategy: st.SearchStrategy[Any],
    check: Callable[[Any], int | None],
    min_accepted: float,
    examples: int = EXAMPLES,
) -> None:
    """Run `check` over the strategy; it returns statements lost (or None). Record one report row.

    `min_accepted` is the share of generated inputs that must be accepted (no PermhealError): a
    parser that rejects everything, or a strategy that only produces garbage, would otherwise pass
    every property without exercising one.
    """
    runs = lost = 0
    rejected = 0

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(value: Any) -> None:
        nonlocal runs, lost, rejected
        runs += 1
        try:
            lost += check(value) or 0
        except PermhealError:
            rejected += 1
            event("rejected with a PermhealError")
        else:
            event("accepted")

    fuzz()
    accepted = runs - rejected
    record(f"fuzz: {case}", f"result or PermhealError only ({accepted}/{runs} accepted)", lost, runs=runs)
    assert runs > 0
    assert accepted >= min_accepted * runs, f"only {accepted} of {runs} inputs accepted"
    assert lost == 0


# ------------------------------------------------------------------------------------- logs


def test_log_line_parser_returns_a_line_or_a_typed_error(record: Record) -> None:
    def check(message: Any) -> None:
        line = logparse.parse_line(message)
        assert isinstance(line, logparse.LogLine)
        logparse.group_by_request([line, line])
        assert isinstance(logparse.is_permission_failure(message), bool)

    run_fuzz(
        record,
        "logparse.parse_line + group_by_request",
        glued(LOG_FRAGMENTS) | not_text,
        check,
        min_accepted=0.1,
    )


def test_log_group_parser_returns_an_api_and_stage_or_a_typed_error(record: Record) -> None:
    def check(name: Any) -> None:
        api_id, stage = logparse.parse_log_group(name)
        assert name == f"API-Gateway-Execution-Logs_{api_id}/{stage}"
        assert api_id.isascii() and api_id.isalnum() and stage.isascii() and stage.isprintable()

    run_fuzz(
        record,
        "logparse.parse_log_group",
        half_valid(log_groups, glued(ARN_FRAGMENTS) | not_text),
        check,
        min_accepted=0.2,
    )


# ------------------------------------------------------------------------------------- ARNs


def test_function_arn_parser_returns_a_function_or_a_typed_error(record: Record) -> None:
    def check(text: Any) -> None:
        ref = arns.parse_function(text, partition="aws", region="us-east-1", account=ACCOUNT)
        assert arns.parse_function(ref.arn, partition="x", region="y", account="z") == ref
        assert ref.qualifier != "$LATEST"

    run_fuzz(
        record,
        "arns.parse_function",
        half_valid(function_texts(), glued(ARN_FRAGMENTS) | not_text),
        check,
        min_accepted=0.2,
    )


def test_integration_uri_parsers_return_a_function_none_or_a_typed_error(record: Record) -> None:
    variables = st.dictionaries(
        st.sampled_from(["alias", "fn", "x"]) | hostile, glued(ARN_FRAGMENTS), max_size=3
    )

    uris = st.builds(
        "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations".format,
        function_texts() | st.builds("{}:${{stageVariables.alias}}".format, function_texts()),
    )
    resolved = 0

    def check(case: tuple[Any, dict[str, str]]) -> None:
        nonlocal resolved
        uri, stage_variables = case
        parsed = arns.parse_integration_uri(uri)
        if parsed is None:
            return
        ref = arns.resolve_integration_function(parsed, stage_variables, ACCOUNT)
        assert "${" not in ref.arn
        resolved += 1

    run_fuzz(
        record,
        "arns.parse_integration_uri + resolve_integration_function",
        st.tuples(
            half_valid(uris, glued(ARN_FRAGMENTS) | not_text),
            half_valid(st.just({"alias": "live"}), variables),
        ),
        check,
        min_accepted=0.2,
    )
    assert resolved >= 0.15 * EXAMPLES, f"only {resolved} URIs resolved to a function"


# ---------------------------------------------------------------------------------- policies


def test_policy_parser_and_evaluation_return_a_decision_or_a_typed_error(record: Record) -> None:
    requests = st.sampled_from(
        [
            InvokeRequest(
                "arn:aws:lambda:us-east-1:123456789012:function:pets:live",
                "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/pets/{petId}",
                ACCOUNT,
            ),
            InvokeRequest(
                "arn:aws:lambda:us-east-1:123456789012:function:pets",
                "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/authorizers/abc",
                ACCOUNT,
            ),
        ]
    )

    def check(case: tuple[Any, InvokeRequest]) -> None:
        document, request = case
        policy = Policy.from_json(document, "rev")
        assert evaluate(policy, request).decision in ("allow", "deny", "not_allowed")
        assert policy.size_bytes >= 0
        for index, statement in enumerate(policy.statements):
            gateway_grant(statement, index, request.resource_arn)

    run_fuzz(
        record,
        "policy.Policy.from_json + evaluate",
        st.tuples(half_valid(plain_policies, policy_documents | not_text), requests),
        check,
        min_accepted=0.25,
    )


def petstore_targets() -> tuple[Any, ...]:
    """GET /pets/{petId} on pets:live behind authorizer abc, as the control plane describes them."""
    api = arns.ApiRef("aws", "us-east-1", ACCOUNT, "a1b2c3d4e5")
    uri = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{}/invocations"
    found = stage_targets(
        api,
        "petstore",
        "prod",
        {},
        "INFO",
        from_resources(
            [
                {
                    "path": "/pets/{petId}",
                    "resourceMethods": {
                        "GET": {
                            "authorizationType": "CUSTOM",
                            "authorizerId": "abc",
                            "methodIntegration": {
                                "type": "AWS_PROXY",
                                "uri": uri.format("arn:aws:lambda:us-east-1:123456789012:function:pets:live"),
                            },
                        }
                    },
                }
            ],
            authorizers_from_list(
                [
                    {
                        "id": "abc",
                        "type": "TOKEN",
                        "authorizerUri": uri.format(
                            "arn:aws:lambda:us-east-1:123456789012:function:pets:live"
                        ),
                    }
                ]
            ),
        ),
    )
    return found.targets


def test_planning_over_any_policy_removes_only_plain_grants_and_never_loses_a_call(record: Record) -> None:
    targets = petstore_targets()
    function = targets[0].function
    options = st.builds(
        PlanOptions,
        scope=st.sampled_from(list(Scope)),
        prune_stale=st.booleans(),
        consolidate=st.booleans(),
        existing_api_ids=st.none() | st.just(frozenset({"a1b2c3d4e5"})),
        removable_apis=st.none() | st.just(frozenset({targets[0].api})),
        dedupe_iac=st.booleans(),
    )

    removals = 0

    def check(case: tuple[list[dict[str, Any]], PlanOptions]) -> int:
        nonlocal removals
        statements, plan_options = case
        policy = Policy(tuple(statements), "rev")
        plan = plan_repair(function, policy, targets, plan_options)
        after = policy_after(plan)
        removals += len(plan.removals)
        for removal in plan.removals:
            removed = [s for s in statements if s.get("Sid") == removal.sid]
            assert len(removed) == 1 and gateway_grant(removed[0], 0, function.arn) is not None
        if plan.refusal is None:
            for target in targets:  # whatever was allowed before, or missing, is allowed after (or denied)
                verdict = evaluate(after, InvokeRequest(function.arn, target.source_arn, ACCOUNT))
                assert verdict.decision in ("allow", "deny")
        stale = {r.sid for r in plan.removals if "no longer exists" in r.reason}
        kept = [s for s in statements if not (isinstance(s.get("Sid"), str) and s["Sid"] in stale)]
        return lost_grants(kept, after.statements, function.arn, [t.source_arn for t in targets])

    run_fuzz(
        record,
        "planner.plan_repair over fuzzed policies (removals are plain grants, calls kept)",
        st.tuples(
            st.lists(
                plain_grants() | statements(),
                max_size=6,
                unique_by=lambda s: json.dumps(s.get("Sid"), default=str),
            ),
            options,
        ),
        check,
        min_accepted=0.5,
        examples=120,
    )
    assert removals > 0  # the property was exercised on plans that remove statements


# ------------------------------------------------------------------------------- events, state


def test_execution_input_parser_returns_a_request_or_a_typed_error(record: Record) -> None:
    inputs = st.fixed_dictionaries(
        {},
        optional={
            "apiId": json_values,
            "apiName": json_values | hostile,
            "stage": json_values | hostile,
            "hints": st.lists(
                st.dictionaries(
                    st.sampled_from(["method", "resourcePath", "authorizerId", "function"]), json_values
                ),
                max_size=3,
            )
            | json_values,
            "dryRun": json_values,
            "source": json_values,
        },
    )

    hint_dicts = st.builds(
        lambda *values: Hint(*values).to_dict(),
        st.none() | st.sampled_from(["GET", "POST", "ANY"]),
        st.none() | st.sampled_from(["/pets", "/pets/{petId}", "/{proxy+}"]),
        st.none() | API_IDS,
        st.none() | function_texts(),
    )
    wellformed = st.builds(
        lambda key, api, rest: {key: api, **rest},
        st.sampled_from(["apiId", "apiName"]),
        API_IDS | st.sampled_from(["petstore", " petstore ", "ペットストア"]),
        st.fixed_dictionaries(
            {},
            optional={
                "stage": STAGE_NAMES,
                "hints": st.lists(hint_dicts, max_size=3),
                "dryRun": st.booleans(),
                "source": st.sampled_from(["logs", "manual", "cloudtrail"]),
            },
        ),
    )

    def check(event: Any) -> None:
        request = ExecutionInput.from_event(event)
        assert request.api.strip() == request.api and request.api
        json.dumps([h.to_dict() for h in request.hints])

    run_fuzz(
        record,
        "workflow.ExecutionInput.from_event",
        half_valid(wellformed, inputs | json_values),
        check,
        min_accepted=0.2,
    )


def test_workflow_state_parsers_return_a_value_or_a_typed_error(record: Record) -> None:
    parsers = {
        "result_from_state": lambda state: result_from_state(state).to_dict(),
        "Resolution.from_dict": Resolution.from_dict,
        "FunctionGroup.from_dict": FunctionGroup.from_dict,
    }
    accepted_by = dict.fromkeys(parsers, 0)

    def check(state: Any) -> None:
        """Each parser returns a value or a PermhealError; the input counts as accepted by any one."""
        refusals: list[PermhealError] = []
        for name, parse in parsers.items():
            try:
                parse(state)
            except PermhealError as exc:
                refusals.append(exc)
            else:
                accepted_by[name] += 1
        if len(refusals) == len(parsers):
            raise refusals[0]

    states = st.fixed_dictionaries(
        {},
        optional={
            "error": json_values,
            "resolution": st.fixed_dictionaries(
                {"allowed": json_values, "context": json_values | st.fixed_dictionaries({"apiId": hostile})},
                optional={"groups": json_values, "findings": json_values},
            ),
            "repairs": json_values,
            "request": json_values,
            "targets": json_values,
            "function": json_values,
            "api": json_values,
        },
    )
    groups = group_by_function(petstore_targets())
    resolutions = st.builds(
        lambda stage, allowed, dry_run: Resolution(
            RestApi("a1b2c3d4e5", "petstore"), stage, allowed, groups, dry_run=dry_run
        ).to_dict(),
        st.none() | STAGE_NAMES,
        st.booleans(),
        st.booleans(),
    )
    wellformed = st.sampled_from(
        [
            resolutions,
            resolutions.map(lambda r: {"resolution": r, "repairs": []}),
            st.builds(  # varied, or hypothesis would try the one valid group once
                lambda group, name, qualifier, api_id: {
                    **group,
                    "function": {**group["function"], "name": name, "qualifier": qualifier},
                    "api": {**group["api"], "api_id": api_id},
                },
                st.sampled_from([g.to_dict() for g in groups]),
                FUNCTION_NAMES,
                st.none() | st.sampled_from(["live", "7", "blue"]),
                API_IDS,
            ),
            st.builds(lambda error, request: {"error": error, "request": request}, json_values, json_values),
        ]
    ).flatmap(lambda strategy: strategy)
    run_fuzz(
        record,
        "result_from_state / Resolution / FunctionGroup.from_dict",
        half_valid(wellformed, states | json_values),
        check,
        min_accepted=0.2,
    )
    assert all(count >= 0.03 * EXAMPLES for count in accepted_by.values()), accepted_by


def test_subscription_payload_decoder_returns_a_batch_or_a_typed_error(record: Record) -> None:
    log_events = st.lists(
        st.fixed_dictionaries(
            {
                "id": json_values,
                "timestamp": st.integers(0, 2**45) | json_values,
                "message": glued(LOG_FRAGMENTS) | json_values,
            }
        ),
        max_size=5,
    )
    documents = st.fixed_dictionaries(
        {},
        optional={
            "messageType": st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE"]) | json_values,
            "owner": json_values,
            "logGroup": glued(ARN_FRAGMENTS) | json_values,
            "logStream": json_values,
            "subscriptionFilters": json_values,
            "logEvents": log_events | json_values,
        },
    )
    wellformed = st.fixed_dictionaries(
        {
            "messageType": st.just("DATA_MESSAGE"),
            "owner": st.just(ACCOUNT),
            "logGroup": log_groups,
            "logStream": st.just("0123456789abcdef"),
            "subscriptionFilters": st.just(["permheal"]),
            "logEvents": st.lists(
                st.fixed_dictionaries(
                    {
                        "id": st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                        "timestamp": st.integers(0, 2**45),
                        "message": glued(LOG_FRAGMENTS),
                    }
                ),
                max_size=8,
            ),
        }
    )
    fuzzed = (
        documents.map(awslogs_payload)
        | json_values
        | st.builds(lambda b: {"awslogs": {"data": base64.b64encode(b).decode()}}, st.binary(max_size=200))
        | st.builds(
            awslogs_payload,
            st.binary(max_size=200),
        )
        | st.builds(lambda t: {"awslogs": {"data": t}}, hostile)
    )

    def check(event: Any) -> None:
        batch = detection.decode(event)
        found = detection.detect(batch)
        for incident in found.incidents:
            assert len(incident.execution_name) <= 80
            json.dumps(incident.execution_input()).encode()  # StartExecution input must be valid UTF-8

    events = half_valid(wellformed.map(awslogs_payload), fuzzed)
    run_fuzz(record, "detection.decode + detect", events, check, min_accepted=0.2)
