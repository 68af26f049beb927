"""`permheal demo`: the whole loop on the Local AWS heals the petstore, in text and as JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from permheal_local.demo import REQUESTS, run_demo
from permheal_local.demo_v2 import HTTP_REQUESTS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:No application metrics to publish")]

ASL = Path(__file__).resolve().parents[2] / "statemachine" / "remediation.asl.json"


def success_path(definition: dict[str, Any]) -> set[str]:
    """States reachable without a Catch, Fail states left out: what a healthy repair goes through."""
    states: dict[str, Any] = {}
    starts = [definition["StartAt"]]
    pending = [definition]
    while pending:  # flatten Map processors, whose start states run as part of their Map
        machine = pending.pop()
        states.update(machine["States"])
        for state in machine["States"].values():
            if "ItemProcessor" in state:
                pending.append(state["ItemProcessor"])
                starts.append(state["ItemProcessor"]["StartAt"])
    seen: set[str] = set()
    while starts:
        name = starts.pop()
        if name in seen or states[name]["Type"] == "Fail":
            continue
        seen.add(name)
        state = states[name]
        starts += [c["Next"] for c in state.get("Choices", [])]
        starts += [state[k] for k in ("Next", "Default") if k in state]
    return seen


SUCCESS_PATH = success_path(json.loads(ASL.read_text()))
REPAIR_STATE = "Repair the function's policy"
WAIT_STATE = "Wait for the deploy to settle"
"""Only runs started by a deploy event (source cloudtrail) wait; the logs-started run goes straight on."""


@pytest.fixture(scope="module")
def demo_json() -> Any:
    """`permheal demo --json` through the CLI, run once for the module."""
    from permheal.cli import main

    out = io.StringIO()
    code = main(["demo", "--json"], out)
    return code, json.loads(out.getvalue())


def events(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in document["timeline"] if e["event"] == kind]


def test_the_text_demo_heals_every_request_and_exits_0() -> None:
    out = io.StringIO()

    code = run_demo(out, as_json=False)

    text = out.getvalue()
    assert code == 0
    total = len(REQUESTS) + len(HTTP_REQUESTS)
    assert f"Healed: {total}/{total} requests succeed, REST and HTTP API" in text
    assert "500" in text and "200" in text
    assert "permheal-detect" in text and "SNS notification: permheal repaired" in text


def test_the_json_demo_exits_0_with_every_final_request_succeeding(demo_json: Any) -> None:
    code, document = demo_json

    outcome = document["outcome"]
    assert code == 0
    assert outcome["healed"] is True
    assert [r["before"] for r in outcome["requests"]] == [500] * len(REQUESTS)
    assert [r["after"] for r in outcome["requests"]] == [200] * len(REQUESTS)
    assert outcome["remediation"]["outcome"] == "repaired"


def test_the_json_demo_heals_an_http_api_too(demo_json: Any) -> None:
    _, document = demo_json

    http_api = document["outcome"]["httpApi"]
    assert [r["before"] for r in http_api["requests"]] == [500] * len(HTTP_REQUESTS)
    assert [r["after"] for r in http_api["requests"]] == [200] * len(HTTP_REQUESTS)
    assert http_api["remediation"]["outcome"] == "repaired"
    assert {
        (c["functionArn"].rsplit(":", 1)[-1], c["qualifier"]) for c in http_api["remediation"]["changes"]
    } == {
        ("pets", "live"),
        ("pets-authorizer", None),
    }


def test_the_json_timeline_shows_the_detector_starting_the_workflow(demo_json: Any) -> None:
    _, document = demo_json

    (subscription,) = events(document, "subscription")
    (detector,) = events(document, "detector")
    assert subscription["delivered"] == len(REQUESTS)  # one matching line per failed request
    assert detector["result"]["incidents"] == 1
    assert detector["result"]["started"] == [document["outcome"]["executionArn"]]


def test_the_json_timeline_has_every_workflow_state_entered_and_exited(demo_json: Any) -> None:
    _, document = demo_json

    entered = [e["state"] for e in events(document, "state_entered")]
    exited = [e["state"] for e in events(document, "state_exited")]
    assert set(entered) == SUCCESS_PATH - {WAIT_STATE}
    assert sorted(entered) == sorted(exited)
    repaired = {e["item"] for e in events(document, "state_entered") if e["state"] == REPAIR_STATE}
    assert repaired == {"pets:live", "pets-authorizer"}  # one Map iteration per function+qualifier
    assert all(e["elapsedMs"] >= 0 for e in events(document, "state_exited"))


def test_the_json_timeline_shows_the_repair_and_the_notification(demo_json: Any) -> None:
    _, document = demo_json

    repairs = {e["function"]: e for e in events(document, "repair")}
    (notification,) = events(document, "notification")
    alias = repairs["pets:live"]
    assert len(alias["statementsBefore"]) == 3 and len(alias["statementsAfter"]) == 1
    assert alias["change"]["policyBytesAfter"] < alias["change"]["policyBytesBefore"]
    assert notification["subject"].startswith("permheal repaired: petstore/prod")
    assert notification["attributes"]["outcome"] == "repaired"
    assert "What broke:" in notification["summary"]


def test_the_deploy_caused_break_is_healed_from_the_deploy_event_with_zero_failed_requests(
    demo_json: Any,
) -> None:
    _, document = demo_json

    proactive = document["outcome"]["proactive"]
    deliveries = events(document, "proactive_cloudtrail")
    entered = {e["state"] for e in events(document, "proactive_state_entered")}
    # The deploy's two calls reached the trigger through the rule, which started the run(s)
    assert [d["eventName"] for d in deliveries] == ["PutIntegration", "CreateDeployment"]
    assert all(d["error"] is None and d["rule"] == "permheal-ProactiveRule" for d in deliveries)
    assert sum(len(d["result"]["started"]) + d["result"]["suppressed"] for d in deliveries) == 2
    assert proactive["executions"] and "repaired" in proactive["outcomes"]
    # The run waited for the burst to end, then repaired: every request after the deploy succeeded
    assert entered == SUCCESS_PATH
    assert proactive["failedRequests"] == 0
    assert [r["status"] for r in proactive["requests"]] == [200] * len(REQUESTS)
    assert proactive["healed"] is True
