"""The proactive trigger's decisions, its reads and starts replaced by recorders: what it asks and starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from permheal.adapters.account import Allowlist
from permheal.errors import AwsCallError
from permheal.handlers.proactive import TriggerDeps, handle
from permheal.proactive import FunctionChange
from permheal_local.cloudtrail import cloudtrail_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
PETS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:pets"
AT = datetime(2026, 12, 5, 8, 0, 17, tzinfo=UTC)


@dataclass
class Recorder:
    allow: frozenset[str] = frozenset({"petstore"})
    names: dict[str, str] = field(default_factory=lambda: {"abc123": "petstore", "def456": "shop"})
    index: dict[str, frozenset[str]] = field(default_factory=dict)
    scanned: frozenset[str] = frozenset()
    fail_start: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)

    def start_once(self, name: str, execution_input: dict[str, Any]) -> str | None:
        self.calls.append(("start", (name, execution_input)))
        if self.fail_start:
            raise AwsCallError("StartExecution: throttled")
        if name in self.existing:
            return None
        self.existing.add(name)
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:m:{name}"

    def deps(self) -> TriggerDeps:
        def allowlist() -> Allowlist:
            self.calls.append(("allowlist", None))
            return Allowlist(self.allow)

        def api_name(api_id: str) -> str | None:
            self.calls.append(("name", api_id))
            return self.names.get(api_id)

        def routes(key: str) -> frozenset[str] | None:
            self.calls.append(("routes", key))
            return self.index.get(key)

        def scan(function: FunctionChange, allowlist: Allowlist) -> frozenset[str]:
            self.calls.append(("scan", function.name))
            return self.scanned

        return TriggerDeps("aws", ACCOUNT, REGION, self, allowlist, api_name, routes, scan)  # type: ignore[arg-type]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


def deployment(api_id: str = "abc123", at: datetime = AT) -> dict[str, Any]:
    request = {"restApiId": api_id, "createDeploymentInput": {"stageName": "prod"}}
    return cloudtrail_event("aws.apigateway", "apigateway.amazonaws.com", "CreateDeployment", request, at=at)


def alias_moved(at: datetime = AT) -> dict[str, Any]:
    request = {"functionName": "pets", "name": "live", "functionVersion": "7"}
    return cloudtrail_event("aws.lambda", "lambda.amazonaws.com", "UpdateAlias20150331", request, at=at)


def test_an_allowlisted_api_event_starts_one_named_run_with_the_contract_input() -> None:
    recorder = Recorder()
    result = handle(deployment(), recorder.deps())
    ((_, (name, document)),) = [c for c in recorder.calls if c[0] == "start"]
    assert result["apis"] == ["abc123"] and len(result["started"]) == 1
    assert name == f"proactive-abc123-{int(datetime(2026, 12, 5, 8, 0, 0, tzinfo=UTC).timestamp())}"
    assert document["source"] == "cloudtrail" and document["apiId"] == "abc123"
    assert set(document["trigger"]) == {"eventSource", "eventName", "eventTime", "eventID"}
    assert "stage" not in document  # a burst may touch several stages: the run checks them all


def test_an_event_for_an_api_outside_the_allowlist_starts_nothing() -> None:
    recorder = Recorder(allow=frozenset({"other"}))
    result = handle(deployment(), recorder.deps())
    assert (result["started"], result["notAllowlisted"]) == ([], 1)
    assert "start" not in recorder.kinds()


def test_an_empty_allowlist_costs_one_read_and_nothing_else() -> None:
    recorder = Recorder(allow=frozenset())
    assert handle(alias_moved(), recorder.deps())["started"] == []
    assert recorder.kinds() == ["allowlist"]


def test_an_api_allowlisted_by_id_needs_no_lookup() -> None:
    recorder = Recorder(allow=frozenset({"abc123"}))
    handle(deployment(), recorder.deps())
    assert recorder.kinds() == ["allowlist", "start"]


def test_a_function_event_starts_a_run_per_allowlisted_api_the_index_names() -> None:
    recorder = Recorder(
        allow=frozenset({"petstore", "shop"}), index={PETS: frozenset({"abc123", "def456", "gone99"})}
    )
    result = handle(alias_moved(), recorder.deps())
    assert result["apis"] == ["abc123", "def456"] and result["notAllowlisted"] == 1  # gone99: deleted
    assert "scan" not in recorder.kinds()
    assert ("routes", PETS) in recorder.calls


def test_a_function_the_index_never_saw_falls_back_to_the_scan() -> None:
    recorder = Recorder(scanned=frozenset({"abc123"}))
    result = handle(alias_moved(), recorder.deps())
    assert result["apis"] == ["abc123"] and ("scan", "pets") in recorder.calls


def test_a_burst_in_one_window_starts_one_run_and_the_next_window_another() -> None:
    recorder = Recorder()
    deps = recorder.deps()
    results = [handle(deployment(at=AT + timedelta(seconds=s)), deps) for s in (0, 3, 9, 12)]
    results.append(handle(deployment(at=AT + timedelta(seconds=13)), deps))  # 08:00:30: next window
    assert [len(r["started"]) for r in results] == [1, 0, 0, 0, 1]
    assert [r["suppressed"] for r in results] == [0, 1, 1, 1, 0]


def test_a_failing_start_fails_the_invocation_so_lambda_retries_the_event() -> None:
    recorder = Recorder(fail_start=True)
    with pytest.raises(AwsCallError):
        handle(deployment(), recorder.deps())


@pytest.mark.parametrize(
    "event", [None, [], "x", {"detail": {}}, {"source": "aws.lambda", "detail": {"a": 1}}]
)
def test_a_rejected_event_reads_nothing_and_starts_nothing(event: Any) -> None:
    recorder = Recorder()
    result = handle(event, recorder.deps())
    assert result["started"] == [] and result["dropped"]
    assert recorder.calls == []
