"""The detector as it was before it was optimised (issue 15): the reference the optimised one must equal.

A copy of functions/permheal/detection.py, logparse.py and accesslog.py at 89f18b0, made simpler: every
line is parsed (the pre-filter of failing requests was already an optimisation). Incident and
Detection here are its own; tests compare them field by field with the package's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from permheal.errors import ParseError
from permheal.targets import Hint
from permheal.workflow.state import ExecutionInput
from tests.reference.accesslog import (
    ACCESS_LOG_PHRASE,
    ASSUME_ROLE_PHRASE,
    AccessFailure,
    AccessFailureKind,
    parse_access_line,
    route_hint,
)
from tests.reference.logparse import (
    EXECUTION_LOG_GROUP_PREFIX,
    PERMISSION_FAILURE_PHRASE,
    LineKind,
    RequestTrace,
    group_by_request,
    is_execution_log_group,
    parse_line,
    parse_log_group,
)

SUBSCRIPTION_FILTER_PATTERN = " ".join(
    f'?"{phrase}"' for phrase in (PERMISSION_FAILURE_PHRASE, ACCESS_LOG_PHRASE, ASSUME_ROLE_PHRASE)
)
"""The one CloudWatch Logs filter pattern (template.yaml's Constants) that delivers every line detection
uses: REST/WebSocket execution-log failures, HTTP API access-log failures (integration and authorizer:
the words after the apostrophe, which may be straight or curly) and assume-role failures (reported)."""
DEFAULT_WINDOW_SECONDS = 900
MAX_HINTS = 20
_ORPHAN_KINDS = frozenset(
    {LineKind.PERMISSION_FAILURE, LineKind.HTTP_API_INTEGRATION_FAILURE, LineKind.ASSUME_ROLE_FAILURE}
)
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
_LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
"""CloudWatch Logs' own rule for log group names."""


@dataclass(frozen=True)
class LogBatch:
    log_group: str
    message_type: str
    events: tuple[tuple[int, str], ...]
    """(timestamp in ms, message) pairs."""


def decode(event: Any) -> LogBatch:
    """Decode `{"awslogs": {"data": base64(gzip(json))}}`; anything malformed is a ParseError."""
    from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent

    if not isinstance(event, dict) or not isinstance(event.get("awslogs"), dict):
        raise ParseError('not a CloudWatch Logs subscription event (no "awslogs" object)')
    try:
        data = CloudWatchLogsEvent(event).parse_logs_data()
        # The raw dicts, not a wrapper object per event: this loop is the detector's hot path.
        events = tuple((int(e["timestamp"]), str(e["message"])) for e in data.raw_event["logEvents"])
        return LogBatch(str(data.log_group), str(data.message_type), events)
    except ParseError:
        raise
    except Exception as exc:  # base64, gzip, UTF-8, JSON and shape errors all mean "cannot decode"
        raise ParseError(f"undecodable awslogs payload: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Incident:
    """Failures of one stage in one window. An access-log incident may not know its API or stage."""

    api_id: str | None
    stage: str | None
    window_start: int
    log_group: str
    failures: int
    first_seen_ms: int
    hints: tuple[Hint, ...] = ()
    access_log: bool = False

    @property
    def execution_name(self) -> str:
        """Deterministic, so every batch of the same incident asks for the same execution.

        Access-log incidents hash the log group in: a line naming another group's API must not
        suppress (or be suppressed by) the real incident of that API.
        """
        if self.access_log:
            key = f"{self.api_id or ''}\n{self.stage or ''}\n{self.log_group}"
            digest = hashlib.sha256(key.encode()).hexdigest()[:16]
            api = _NAME_UNSAFE.sub("_", self.api_id or "any")[:24]
            return f"access-{api}-{digest}-{self.window_start}"
        name = f"{self.api_id}-{self.stage}-{self.window_start}"
        if len(name) <= 80 and not _NAME_UNSAFE.search(name):
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        return f"{_NAME_UNSAFE.sub('_', self.api_id or '')[:30]}-{digest}-{self.window_start}"

    def execution_input(self) -> dict[str, Any]:
        return ExecutionInput(
            self.api_id or "",
            self.stage,
            self.hints,
            source="logs",
            by_id=True,
            log_group=self.log_group,
            log_type="access" if self.access_log else None,
            detected_at=datetime.fromtimestamp(self.first_seen_ms / 1000, UTC).isoformat(),
            failures=self.failures,
        ).to_event()


@dataclass(frozen=True)
class Detection:
    incidents: tuple[Incident, ...] = ()
    failure_lines: int = 0
    role_failures: tuple[str, ...] = field(default=())
    """IAM roles API Gateway could not assume: AddPermission cannot fix those."""


def detect(batch: LogBatch, window_seconds: int = DEFAULT_WINDOW_SECONDS) -> Detection:
    """Incidents in one delivered batch; control messages and unrelated lines yield none."""
    if batch.message_type == "CONTROL_MESSAGE":
        return Detection()
    if batch.message_type != "DATA_MESSAGE":
        raise ParseError(f"unknown messageType {batch.message_type!r}")
    if not is_execution_log_group(batch.log_group) or (
        # `/aws/apigateway/{a}/{b}` may also be a user's access-log group: its lines tell
        not batch.log_group.startswith(EXECUTION_LOG_GROUP_PREFIX)
        and any(parse_access_line(message) is not None for _, message in batch.events)
    ):
        return _detect_access(batch, window_seconds)
    api_id, stage = parse_log_group(batch.log_group)
    lines = [(ts, parse_line(message)) for ts, message in batch.events]
    # Lines without a request id only count when they are failures (each is its own trace).
    first_seen = {
        line.request_id: ts
        for ts, line in reversed(lines)
        if line.request_id is not None or line.kind in _ORPHAN_KINDS
    }
    traces = group_by_request(line for _, line in lines)
    failing = [t for t in traces if t.permission_failure]
    windows: dict[int, list[RequestTrace]] = {}
    for trace in failing:
        ts = first_seen.get(trace.request_id, batch.events[0][0] if batch.events else 0)
        windows.setdefault(ts // 1000 // window_seconds * window_seconds, []).append(trace)
    incidents = tuple(
        Incident(
            api_id,
            stage,
            window,
            batch.log_group,
            len(group),
            min(first_seen.get(t.request_id, 0) for t in group),
            _hints(group),
        )
        for window, group in sorted(windows.items())
    )
    roles = tuple(sorted({t.assume_role_failure for t in traces if t.assume_role_failure is not None}))
    failure_lines = sum(1 for _, line in lines if line.kind is LineKind.PERMISSION_FAILURE)
    return Detection(incidents, failure_lines, roles)


def _detect_access(batch: LogBatch, window_seconds: int) -> Detection:
    """Access-log lines (HTTP APIs): one incident per (API id, stage as the line says, window)."""
    failures: list[tuple[int, AccessFailure]] = []
    for ts, message in batch.events:
        found = parse_access_line(message)
        if found is not None:
            failures.append((ts, found))
    if not failures:
        # The subscription delivered something that is neither an execution log nor an access-log
        # failure: keep it for a person (dead letter), as any other payload the detector cannot use.
        raise ParseError(
            "not an API Gateway execution log group and no access-log permission failure in it: "
            + repr(batch.log_group[:200])
        )
    if _LOG_GROUP_NAME.fullmatch(batch.log_group) is None:
        raise ParseError(f"invalid log group name {batch.log_group[:200]!r}")
    roles = tuple(sorted({f.role_arn or "" for _, f in failures if f.kind is AccessFailureKind.ASSUME_ROLE}))
    groups: dict[tuple[str | None, str | None, int], list[tuple[int, AccessFailure]]] = {}
    for ts, failure in failures:
        if failure.kind is AccessFailureKind.ASSUME_ROLE:
            continue
        window = ts // 1000 // window_seconds * window_seconds
        groups.setdefault((failure.api_id, failure.stage, window), []).append((ts, failure))
    incidents = tuple(
        Incident(
            api_id,
            stage,
            window,
            batch.log_group,
            len(group),
            min(ts for ts, _ in group),
            _access_hints([failure for _, failure in group]),
            access_log=True,
        )
        for (api_id, stage, window), group in sorted(
            groups.items(), key=lambda item: (item[0][2], item[0][0] or "", item[0][1] or "")
        )
    )
    return Detection(incidents, sum(len(group) for group in groups.values()), roles)


def _access_hints(failures: list[AccessFailure]) -> tuple[Hint, ...]:
    """Route hints, or none when any failure names no route or is an authorizer's (it hides the routes)."""
    hints: list[Hint] = []
    for failure in failures:
        if failure.kind is not AccessFailureKind.INTEGRATION or failure.route_key is None:
            return ()
        method, path = route_hint(failure.route_key)
        hint = Hint(method=method, resource_path=path, route_key=failure.route_key)
        if hint not in hints:
            hints.append(hint)
    return tuple(hints) if len(hints) <= MAX_HINTS else ()


def _hints(traces: list[RequestTrace]) -> tuple[Hint, ...]:
    """Hints that narrow the search, or none when any failure is unexplained: narrowing then could miss it."""
    hints: list[Hint] = []
    for trace in traces:
        hint = Hint(
            method=None if trace.authorizer_failure else trace.method,
            resource_path=None if trace.authorizer_failure else trace.resource_path,
            authorizer_id=trace.authorizer_id if trace.authorizer_failure else None,
            function=trace.function_hint,
            route_key=None if trace.authorizer_failure else trace.route_key,
        )
        if hint == Hint():
            return ()
        if hint not in hints:
            hints.append(hint)
    return tuple(hints) if len(hints) <= MAX_HINTS else ()
