"""From a CloudWatch Logs subscription payload to incidents: one per API, stage and time window.

Pure. The log group names the API and stage (API Gateway writes it); every other line only adds
hints. A thousand failing requests in one window make one incident with one deterministic name,
which Step Functions refuses to start twice: that is the storm suppression.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from permheal.errors import ParseError
from permheal.logparse import (
    LineKind,
    RequestTrace,
    group_by_request,
    may_be_failure,
    parse_line,
    parse_log_group,
    request_id_of,
)
from permheal.targets import Hint
from permheal.workflow.state import ExecutionInput

DEFAULT_WINDOW_SECONDS = 900
MAX_HINTS = 20
_PREFIX_SCAN_LIMIT = 64
_ORPHAN_KINDS = frozenset(
    {LineKind.PERMISSION_FAILURE, LineKind.HTTP_API_INTEGRATION_FAILURE, LineKind.ASSUME_ROLE_FAILURE}
)
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")


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
    api_id: str
    stage: str
    window_start: int
    log_group: str
    failures: int
    first_seen_ms: int
    hints: tuple[Hint, ...] = ()

    @property
    def execution_name(self) -> str:
        """Deterministic, so every batch of the same incident asks for the same execution."""
        name = f"{self.api_id}-{self.stage}-{self.window_start}"
        if len(name) <= 80 and not _NAME_UNSAFE.search(name):
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        return f"{_NAME_UNSAFE.sub('_', self.api_id)[:30]}-{digest}-{self.window_start}"

    def execution_input(self) -> dict[str, Any]:
        return ExecutionInput(
            self.api_id,
            self.stage,
            self.hints,
            source="logs",
            by_id=True,
            log_group=self.log_group,
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
    api_id, stage = parse_log_group(batch.log_group)
    lines = [(ts, parse_line(message)) for ts, message in _failing_requests(batch.events)]
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


def _failing_requests(events: tuple[tuple[int, str], ...]) -> list[tuple[int, str]]:
    """The lines of requests that have a failure line, in order: no other line can change a detection.

    Most lines of a busy stage belong to healthy requests; a substring test per line and a prefix test
    per line of the (few) failing request ids replace a full parse of each one.
    """
    flagged = [index for index, (_, message) in enumerate(events) if may_be_failure(message)]
    if not flagged:
        return []
    if 2 * len(flagged) > len(events):  # mostly failures (a filtered storm batch): filtering saves nothing
        return list(events)
    ids = {request_id_of(events[index][1]) for index in flagged} - {None}
    keep = set(flagged)
    if len(ids) <= _PREFIX_SCAN_LIMIT:
        prefixes = tuple(f"({rid})" for rid in ids if rid is not None)
        return [
            (ts, message)
            for index, (ts, message) in enumerate(events)
            if message.startswith(prefixes)
            or index in keep
            or (message[:1].isspace() and request_id_of(message) in ids)
        ]
    return [
        (ts, message)
        for index, (ts, message) in enumerate(events)
        if index in keep or request_id_of(message) in ids
    ]


def _hints(traces: list[RequestTrace]) -> tuple[Hint, ...]:
    """Hints that narrow the search, or none when any failure is unexplained: narrowing then could miss it."""
    hints: list[Hint] = []
    for trace in traces:
        hint = Hint(
            method=None if trace.authorizer_failure else trace.method,
            resource_path=None if trace.authorizer_failure else trace.resource_path,
            authorizer_id=trace.authorizer_id if trace.authorizer_failure else None,
            function=trace.function_hint,
        )
        if hint == Hint():
            return ()
        if hint not in hints:
            hints.append(hint)
    return tuple(hints) if len(hints) <= MAX_HINTS else ()
