"""`permheal demo`: a broken API healed end to end on the Local AWS, no account and no Docker needed.

The loop is the production one: requests fail, API Gateway writes execution logs, the account
subscription delivers the matching lines to the detector, the detector starts the Step Functions
workflow, the workflow repairs the policies and notifies SNS; then the same requests succeed.
Nothing is short-circuited: every step is the deployed template's code, run against moto.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from permheal_local.builder import World, execute_api, function_arn
from permheal_local.demo_v2 import heal_http_api
from permheal_local.simulator import ApiGatewaySimulator, log_group_name, response_text

API_NAME = "petstore"
STAGE = "prod"
FUNCTION = "pets"
ALIAS = "live"
AUTHORIZER_FUNCTION = "pets-authorizer"
EXECUTION_TIMEOUT_SECONDS = 60
# Handler logs are Lambda's CloudWatch Logs, not the demo's output: keep them to warnings.
HANDLER_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class DemoRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


REQUESTS = (
    DemoRequest("GET", "/pets/42", {"Authorization": "Bearer demo-token"}),
    DemoRequest("POST", "/orders"),
    DemoRequest("GET", "/store/inventory"),
)


@dataclass(frozen=True)
class Petstore:
    api_id: str
    authorizer_id: str
    stage: str = STAGE
    name: str = API_NAME


def build_petstore(world: World) -> Petstore:
    """The petstore as a console user leaves it: alias via stage variable, grants in the wrong places.

    - `ANY /{proxy+}` and `GET /pets/{petId}` invoke `pets:${stageVariables.alias}` (alias `live`);
    - `GET /pets/{petId}` has a TOKEN authorizer whose function has no policy at all;
    - `pets:live` holds three identical console grants for a `beta` stage that no longer exists;
    - the unqualified `pets` holds a grant for `prod`: it does not count, API Gateway invokes
      `pets:live` and Lambda checks that alias's own policy.
    """
    world.function(FUNCTION, alias=ALIAS)
    world.function(AUTHORIZER_FUNCTION)
    api_id = world.rest_api(API_NAME)
    authorizer = world.authorizer(api_id, "token-authorizer", function_arn(AUTHORIZER_FUNCTION))
    target = function_arn(FUNCTION, "${stageVariables.alias}")
    world.method(api_id, "/{proxy+}", "ANY", target)
    world.method(api_id, "/pets/{petId}", "GET", target, authorizer_id=authorizer)
    world.deploy(api_id, STAGE, {"alias": ALIAS})
    for index in range(3):
        sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{api_id}/beta/{index}"))
        world.grant(FUNCTION, execute_api(api_id, "beta/GET/pets/*"), sid=sid, qualifier=ALIAS)
    world.grant(FUNCTION, execute_api(api_id, f"{STAGE}/*/*"), sid="console-prod-unqualified")
    return Petstore(api_id, authorizer)


# --- the timeline -------------------------------------------------------------------------------------


class Timeline:
    """Events as they happen: printed at once (text mode) and kept as data (`--json`)."""

    def __init__(self, out: TextIO, as_json: bool, progress: TextIO | None):
        self.started = time.perf_counter()
        self.events: list[dict[str, Any]] = []
        self._out = None if as_json else out
        self._progress = progress if as_json else None

    @property
    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def emit(self, event: str, text: str, details: Sequence[str] = (), **data: Any) -> None:
        at = self.elapsed_ms
        self.events.append({"atMs": at, "event": event, "text": text, **data})
        if self._out is not None:
            self._out.write(f"{at:>7,} ms  {text}\n")
            self._out.writelines(f"{'':13}{line}\n" for line in details)
            self._out.flush()
        elif self._progress is not None:
            self._progress.write(f"{at:>7,} ms  {text}\n")
            self._progress.flush()

    def note(self, text: str = "") -> None:
        if self._out is not None:
            self._out.write(f"{text}\n")
            self._out.flush()


# --- the demo -----------------------------------------------------------------------------------------


def run_demo(out: TextIO, as_json: bool) -> int:
    """Run the whole loop; exit 0 only if every request succeeds at the end."""
    progress = sys.stderr if as_json and sys.stderr.isatty() else None
    timeline = Timeline(out, as_json, progress)
    timeline.note("permheal demo: a broken API Gateway -> Lambda setup, healed by the deployed stack.")
    timeline.note("Everything runs in this process on moto: no AWS account, no Docker.\n")
    with _quiet_handlers():
        outcome = _run(timeline)
    if as_json:
        json.dump({"timeline": timeline.events, "outcome": outcome}, out, indent=2)
        out.write("\n")
    return 0 if outcome["healed"] else 1


@contextlib.contextmanager
def _quiet_handlers() -> Iterator[None]:
    """Powertools prints metrics and logs to stdout, where Lambda would ship them to CloudWatch."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        yield


def _run(timeline: Timeline) -> dict[str, Any]:
    from permheal_local.aws import local_aws

    timeline.emit("starting", "Starting the Local AWS (moto in this process) and deploying template.yaml ...")
    # A 1 s debounce window (template default 30 s): CloudTrail delivers at once here, not in ~90 s.
    with local_aws({"ProactiveWindowSeconds": "1"}, handler_env=HANDLER_ENV) as local:
        functions = ", ".join(sorted(local.stack.functions.values()))
        timeline.emit(
            "local_aws",
            f"Local AWS ready: stack '{local.stack.name}' deployed from template.yaml",
            [f"functions: {functions}", f"state machine: {local.stack.state_machine_arn}"],
            stateMachineArn=local.stack.state_machine_arn,
            functions=sorted(local.stack.functions.values()),
        )
        world = local.world
        petstore = build_petstore(world)
        timeline.emit(
            "api",
            f"Built REST API {API_NAME} ({petstore.api_id}), stage {STAGE} with alias={ALIAS}",
            [
                f"ANY /{{proxy+}}     -> {FUNCTION}:${{stageVariables.alias}}",
                f"GET /pets/{{petId}} -> {FUNCTION}:${{stageVariables.alias}}, TOKEN authorizer "
                f"{petstore.authorizer_id} -> {AUTHORIZER_FUNCTION}",
            ],
            apiId=petstore.api_id,
            stage=STAGE,
        )
        policies_before = _policies(world)
        timeline.emit(
            "permissions",
            "Permissions as the console left them (broken):",
            [
                f"{FUNCTION}:{ALIAS}: 3 identical grants, all for the old 'beta' stage",
                f"{FUNCTION} (unqualified): a grant for {STAGE}, which does not cover {FUNCTION}:{ALIAS}",
                f"{AUTHORIZER_FUNCTION}: no policy at all",
            ],
            policies=policies_before,
        )
        world.allow(API_NAME)
        timeline.emit("allowlist", f"Allowlisted {API_NAME} in /permheal/allowed-apis", apiName=API_NAME)
        queue_url = _subscribe_queue(world, local.stack.topic_arn)

        simulator = local.simulator()
        before = _send(timeline, simulator, petstore, "before")
        lines = sum(len(r["logLines"]) for r in before)
        timeline.emit(
            "execution_logs",
            f"API Gateway wrote {lines} execution-log lines to {log_group_name(petstore.api_id, STAGE)}",
            logLines=lines,
        )

        execution_arn = _detect(timeline, local)
        result: dict[str, Any] | None = None
        if execution_arn is not None:
            result = _follow_execution(timeline, world, execution_arn)
        if result is not None:
            _show_repair(timeline, result, policies_before, _policies(world))
        _show_notification(timeline, world, queue_url)

        after = _send(timeline, simulator, petstore, "after")
        http_api = heal_http_api(timeline, local, (API_NAME,), FUNCTION, ALIAS, AUTHORIZER_FUNCTION)
        finals = [r["status"] for r in after] + [r["after"] for r in http_api["requests"]]
        healed = all(status == 200 for status in finals)
        succeeded = sum(status == 200 for status in finals)
        verdict = "Healed" if healed else "NOT healed"
        timeline.emit(
            "done",
            f"{verdict}: {succeeded}/{len(finals)} requests succeed, REST and HTTP API "
            f"({timeline.elapsed_ms:,} ms in all)",
            healed=healed,
        )
        from permheal_local.demo_proactive import run_proactive

        proactive = run_proactive(timeline, local, petstore)
        return {
            "healed": healed and proactive["healed"],
            "proactive": proactive,
            "httpApi": http_api,
            "apiId": petstore.api_id,
            "stage": STAGE,
            "executionArn": execution_arn,
            "remediation": result,
            "requests": [
                {"request": b["request"], "before": b["status"], "after": a["status"]}
                for b, a in zip(before, after, strict=True)
            ],
            "elapsedMs": timeline.elapsed_ms,
        }


def _send(
    timeline: Timeline, simulator: ApiGatewaySimulator, petstore: Petstore, phase: str
) -> list[dict[str, Any]]:

    results: list[dict[str, Any]] = []
    for request in REQUESTS:
        response = simulator.request(petstore.api_id, STAGE, request.method, request.path, request.headers)
        record: dict[str, Any] = {
            "phase": phase,
            "request": request.label,
            "route": response.route,
            "status": response.status,
            "body": response.body,
            "requestId": response.request_id,
            "logLines": list(response.log_lines),
        }
        results.append(record)
        verdict = "ok" if response.ok else "FAILED"
        timeline.emit(
            "request",
            f"{request.label:<22} -> {response_text(response)}  [{verdict}]",
            **{k: v for k, v in record.items() if k != "logLines"},
        )
    return results


def _detect(timeline: Timeline, local: Any) -> str | None:
    """Deliver the matching log lines to the detector; the execution it started, if any."""
    deliveries = local.flush_logs()
    delivered = sum(len(d.messages) for d in deliveries)
    pattern = local.subscription.pattern.text
    timeline.emit(
        "subscription",
        f"Subscription {local.subscription.name} ({pattern}): {delivered} line(s) -> {local.detector}",
        [message for d in deliveries for message in d.messages],
        filterPattern=pattern,
        delivered=delivered,
        logGroups=sorted({d.log_group for d in deliveries}),
    )
    started: list[str] = []
    for delivery in deliveries:
        if delivery.error:
            timeline.emit("detector", f"{local.detector} failed: {delivery.error}", error=delivery.error)
            continue
        result = delivery.result if isinstance(delivery.result, dict) else {}
        started.extend(result.get("started", []))
        timeline.emit(
            "detector",
            f"{local.detector}: {result.get('incidents', 0)} incident(s), started "
            f"{len(result.get('started', []))} execution(s), suppressed {result.get('suppressed', 0)}",
            [arn.rsplit(":", 1)[-1] for arn in result.get("started", [])],
            result=result,
        )
    return started[0] if started else None


def _follow_execution(timeline: Timeline, world: World, execution_arn: str) -> dict[str, Any] | None:
    """Stream the workflow's state events as they appear; the result once it ends."""
    sfn = world.client("stepfunctions")
    seen = 0
    started_at: datetime | None = None
    entered: dict[tuple[str, str], datetime] = {}
    deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events = _history(sfn, execution_arn)
        for event in events[seen:]:
            started_at = started_at or event["timestamp"]
            _state_event(timeline, event, started_at, entered)
        seen = len(events)
        status = description["status"]
        if status != "RUNNING":
            break
        if time.monotonic() > deadline:
            timeline.emit(
                "execution", f"Execution still running after {EXECUTION_TIMEOUT_SECONDS}s", status=status
            )
            return None
        time.sleep(0.05)
    document = description.get("output") or description.get("cause") or "{}"
    try:
        result: dict[str, Any] = json.loads(document)
    except ValueError:
        result = {"outcome": "failed", "error": document}
    took = _ms(description["startDate"], description.get("stopDate") or description["startDate"])
    timeline.emit(
        "execution",
        f"Execution {status} in {took:,} ms: outcome {result.get('outcome')}",
        status=status,
        durationMs=took,
        outcome=result.get("outcome"),
    )
    return result


def _history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


def _state_event(
    timeline: Timeline, event: dict[str, Any], started_at: datetime, entered: dict[tuple[str, str], datetime]
) -> None:
    kind = event["type"]
    if kind.endswith("StateEntered"):
        details = event["stateEnteredEventDetails"]
        name, label = details["name"], _label(details.get("input"), entering=True)
        entered[(name, label)] = event["timestamp"]
        at = _ms(started_at, event["timestamp"])
        where = f" [{label}]" if label else ""
        timeline.emit(
            "state_entered", f"  +{at:>5,} ms  > {name}{where}", state=name, item=label or None, elapsedMs=at
        )
    elif kind.endswith("StateExited"):
        details = event["stateExitedEventDetails"]
        name, label = details["name"], _label(details.get("output"), entering=False)
        began = entered.pop((name, label), None) or entered.pop((name, ""), None) or event["timestamp"]
        at, took = _ms(started_at, event["timestamp"]), _ms(began, event["timestamp"])
        where = f" [{label}]" if label else ""
        timeline.emit(
            "state_exited",
            f"  +{at:>5,} ms  < {name}{where} ({took:,} ms)",
            state=name,
            item=label or None,
            elapsedMs=at,
            durationMs=took,
        )
    elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
        timeline.emit("state_failed", f"  {kind}", type=kind)


def _label(document: Any, *, entering: bool) -> str:
    """The function a Map iteration repairs, so parallel iterations can be told apart."""
    try:
        data = json.loads(document or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    if entering and isinstance(data.get("group"), dict):
        function = data["group"].get("function") or {}
        name, qualifier = function.get("name"), function.get("qualifier")
        return f"{name}:{qualifier}" if name and qualifier else str(name or "")
    if not entering and isinstance(data.get("change"), dict):
        change = data["change"]
        name = str(change.get("functionArn", "")).rsplit(":", 1)[-1]
        return f"{name}:{change['qualifier']}" if change.get("qualifier") else name
    return ""


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _policies(world: World) -> dict[str, list[dict[str, Any]]]:
    return {
        f"{FUNCTION}:{ALIAS}": world.statements(FUNCTION, ALIAS),
        FUNCTION: world.statements(FUNCTION),
        AUTHORIZER_FUNCTION: world.statements(AUTHORIZER_FUNCTION),
    }


def _show_repair(
    timeline: Timeline,
    result: dict[str, Any],
    before: dict[str, list[dict[str, Any]]],
    after: dict[str, list[dict[str, Any]]],
) -> None:
    from permheal.policy import policy_size

    for change in result.get("changes", []):
        name = str(change["functionArn"]).rsplit(":", 1)[-1]
        label = f"{name}:{change['qualifier']}" if change.get("qualifier") else name
        old, new = before.get(label, []), after.get(label, [])
        details = [f"before: {len(old)} statement(s), {policy_size(old) if old else 0:,} bytes"]
        details += [f"  {_statement_text(s)}" for s in old]
        details += [f"after:  {len(new)} statement(s), {policy_size(new) if new else 0:,} bytes"]
        details += [f"  {_statement_text(s)}" for s in new]
        details += [f"+ {a['sid']}  {a['sourceArn']}" for a in change.get("added", [])]
        details += [f"- {r['sid']}  ({r['reason']})" for r in change.get("removed", [])]
        timeline.emit(
            "repair",
            f"Repaired {label}: +{len(change.get('added', []))} / -{len(change.get('removed', []))} "
            f"statement(s), policy {change['policyBytesBefore']:,} -> {change['policyBytesAfter']:,} bytes",
            details,
            function=label,
            change=change,
            statementsBefore=old,
            statementsAfter=new,
        )


def _statement_text(statement: dict[str, Any]) -> str:
    source = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn", "(any source)")
    return f"{statement.get('Sid')}: {source}"


def _subscribe_queue(world: World, topic_arn: str) -> str:
    """An SQS queue on the notification topic: what on-call's mailbox would receive."""
    sqs = world.client("sqs")
    queue_url: str = sqs.create_queue(QueueName="permheal-demo-oncall")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    world.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def _show_notification(timeline: Timeline, world: World, queue_url: str) -> None:
    messages = (
        world.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    if not messages:
        timeline.emit("notification", "No SNS notification arrived", subject=None)
        return
    for message in messages:
        body = json.loads(message["Body"])
        text = str(body.get("Message", ""))
        summary = text.split("\n\nResult (JSON):", 1)[0]
        attributes = {k: v.get("Value") for k, v in (body.get("MessageAttributes") or {}).items()}
        timeline.emit(
            "notification",
            f"SNS notification: {body.get('Subject')}",
            summary.splitlines(),
            subject=body.get("Subject"),
            summary=summary,
            attributes=attributes,
        )
