"""From a CloudWatch Logs subscription payload to incidents: one per API, stage and time window.

Pure. An execution log group (REST, WebSocket) names the API and stage (API Gateway writes it);
every other line only adds hints. A thousand failing requests in one window make one incident with
one deterministic name, which Step Functions refuses to start twice: that is the storm suppression.

Any other log group may be an HTTP API stage's access log (`permheal.accesslog`). Its lines name the
API and stage only when the user's format includes them, and anyone who can write to the group can
forge them, so an access-log incident names its *log group*: the resolve step finds the stage(s)
whose access-log destination is that group through the control plane (narrowed, never widened, by
the line's API id and stage). The detector itself makes no AWS call but StartExecution.

Speed (issue 15): a storm delivers thousands of lines that differ only in their request ids, times
and addresses, so nothing here costs a Python object or a parse per line that a batch-level pass or
a per-batch memo can replace: events stay two columns, each distinct line text is parsed once, a
storm of one-line requests is counted by C-level passes, and the pre-optimisation detector kept in
tests/reference must find exactly the same (tests/unit/test_detection_equivalence.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate, compress
from operator import itemgetter, methodcaller
from typing import Any, overload

from permheal.accesslog import (
    ACCESS_LOG_PHRASE,
    ASSUME_ROLE_PHRASE,
    AccessFailureKind,
    AccessKey,
    may_hold_access_failure,
    read_access_failures,
    route_hint,
)
from permheal.errors import ParseError
from permheal.logparse import (
    EXECUTION_LOG_GROUP_PREFIX,
    FAILURE_MARKS,
    PERMISSION_FAILURE_PHRASE,
    PREFIXED_LINE,
    LineKind,
    LogLine,
    RequestTrace,
    fold_request,
    is_execution_log_group,
    parse_log_group,
    parse_text,
    request_id_of,
)
from permheal.targets import Hint
from permheal.workflow.state import ExecutionInput

SUBSCRIPTION_FILTER_PATTERN = " ".join(
    f'?"{phrase}"' for phrase in (PERMISSION_FAILURE_PHRASE, ACCESS_LOG_PHRASE, ASSUME_ROLE_PHRASE)
)
"""The one CloudWatch Logs filter pattern (template.yaml's Constants) that delivers every line detection
uses: REST/WebSocket execution-log failures, HTTP API access-log failures (integration and authorizer:
the words after the apostrophe, which may be straight or curly) and assume-role failures (reported)."""
DEFAULT_WINDOW_SECONDS = 900
MAX_HINTS = 20
_PREFIX_LENGTHS_LIMIT = 8
_SCAN_BUDGET = 8_000_000
"""Characters of joined text to search for failing request ids before a pass per line is cheaper."""
_ORPHAN_KINDS = frozenset(
    {LineKind.PERMISSION_FAILURE, LineKind.HTTP_API_INTEGRATION_FAILURE, LineKind.ASSUME_ROLE_FAILURE}
)
_NO_HINT = Hint()
_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
_LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
"""CloudWatch Logs' own rule for log group names."""
_TIMESTAMP = itemgetter("timestamp")
_MESSAGE = itemgetter("message")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)
_LSTRIP_BLANKS = methodcaller("lstrip", " \t")


@dataclass(frozen=True)
class LogBatch:
    """One decoded CloudWatch Logs subscription payload."""

    log_group: str
    message_type: str
    events: Sequence[tuple[int, str]]
    """(timestamp in ms, message) pairs."""


class _Events(Sequence[tuple[int, str]]):
    """A decoded batch's (timestamp, message) pairs, held as two columns: no object per event.

    Equal to (and hashed as) the tuple of its pairs, so a LogBatch compares as before.
    """

    __slots__ = ("messages", "stamps")

    def __init__(self, stamps: list[int], messages: list[str]) -> None:
        self.stamps = stamps
        self.messages = messages

    def __len__(self) -> int:
        return len(self.stamps)

    @overload
    def __getitem__(self, index: int) -> tuple[int, str]: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[tuple[int, str], ...]: ...

    def __getitem__(self, index: int | slice) -> tuple[int, str] | tuple[tuple[int, str], ...]:
        if isinstance(index, slice):
            return tuple(zip(self.stamps[index], self.messages[index], strict=True))
        return self.stamps[index], self.messages[index]

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return zip(self.stamps, self.messages, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Events):
            return self.stamps == other.stamps and self.messages == other.messages
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def _columns(events: Sequence[tuple[int, str]]) -> tuple[list[int], list[str]]:
    """(timestamps, messages) of a batch's events; a decoded batch's own lists (read them only)."""
    if isinstance(events, _Events):
        return events.stamps, events.messages
    return list(map(_FIRST, events)), list(map(_SECOND, events))


def decode(event: Any) -> LogBatch:
    """Decode `{"awslogs": {"data": base64(gzip(json))}}`; anything malformed is a ParseError.

    The standard library directly (what Powertools' CloudWatchLogsEvent does, without its wrappers):
    this is most of the detector's time on a storm batch.
    """
    if not isinstance(event, dict) or not isinstance(event.get("awslogs"), dict):
        raise ParseError('not a CloudWatch Logs subscription event (no "awslogs" object)')
    try:
        data = zlib.decompress(base64.b64decode(event["awslogs"]["data"]), zlib.MAX_WBITS | 32)
        document = json.loads(data.decode("UTF-8"))
        log_events = document["logEvents"]
        # Two columns by C-level passes, converted (int(), str()) only when a value is not one already.
        stamps = list(map(_TIMESTAMP, log_events))
        messages = list(map(_MESSAGE, log_events))
        if set(map(type, stamps)) - {int}:
            stamps = [int(stamp) for stamp in stamps]
        if set(map(type, messages)) - {str}:
            messages = [str(message) for message in messages]
        return LogBatch(str(document["logGroup"]), str(document["messageType"]), _Events(stamps, messages))
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
    """What one batch of log lines asks for: incidents to start and failures to count."""

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
    if not is_execution_log_group(batch.log_group):
        return _detect_access(batch, window_seconds, read_access_failures(batch.events))
    # `/aws/apigateway/{a}/{b}` may also be a user's access-log group: its lines tell
    if not batch.log_group.startswith(EXECUTION_LOG_GROUP_PREFIX) and may_hold_access_failure(
        _columns(batch.events)[1]
    ):
        failures = read_access_failures(batch.events)
        if failures:
            return _detect_access(batch, window_seconds, failures)
    return _detect_execution(batch, window_seconds)


@dataclass(frozen=True, slots=True, eq=False)
class _Text:
    """One distinct line text (after its request id) of a batch, parsed once however often it repeats."""

    line: LogLine
    trace: RequestTrace
    """The trace of a request that has only this line: a storm's requests mostly do."""
    hint: Hint
    permission_failure: bool


def _text(text: str) -> _Text:
    line = parse_text(None, text)
    trace = fold_request(None, (line,))
    return _Text(line, trace, _hint(trace), line.kind is LineKind.PERMISSION_FAILURE)


@dataclass(slots=True)
class _Window:
    """The failing requests of one window so far; ``hints`` None once they cannot narrow."""

    failures: int
    first_seen_ms: int
    hints: list[Hint] | None

    def add(self, ts: int, hint: Hint, requests: int = 1) -> None:
        """More failing requests (with one hint), the first seen at `ts`."""
        self.failures += requests
        if ts < self.first_seen_ms:
            self.first_seen_ms = ts
        hints = self.hints
        if hints is not None and hint not in hints:
            if hint == _NO_HINT or len(hints) >= MAX_HINTS:
                self.hints = None  # an unexplained failure (or too many routes): narrowing could miss it
            else:
                hints.append(hint)


@dataclass(slots=True)
class _Requests:
    """A batch's lines folded per request, in first-seen order (request ids: the execution log's)."""

    first: dict[str, tuple[int, _Text]]
    """Request id → (timestamp, text) of its first line."""
    more: dict[str, list[LogLine]]
    """Request id → its later lines, for the requests that have more than one."""
    orphans: list[tuple[int, _Text]]
    """Failure lines without a request id: each is its own request."""
    failure_lines: int


def _detect_execution(batch: LogBatch, window_seconds: int) -> Detection:
    """REST and WebSocket execution logs: one incident per window of the log group's API and stage.

    A storm of one-line requests is counted by batch-level passes; anything else is read line by line
    (each distinct text parsed once) and each request folded into its window, in first-seen order.
    """
    api_id, stage = parse_log_group(batch.log_group)
    selected = _failing_requests(batch.events)
    texts: dict[str, _Text] = {}
    storm = _detect_storm(selected, window_seconds, texts)
    if storm is not None:
        start, window, storm_lines, storm_roles = storm
        hints = () if window.hints is None else tuple(window.hints)
        found = Incident(api_id, stage, start, batch.log_group, window.failures, window.first_seen_ms, hints)
        return Detection((found,) if window.failures else (), storm_lines, storm_roles)
    requests = _requests(selected, texts)
    span = window_seconds * 1000
    windows: dict[int, _Window] = {}
    roles: set[str] = set()
    window = _Window(0, 0, None)
    low = high = 0  # the window of the previous failure: consecutive ones mostly share it
    for request_id, (ts, entry) in requests.first.items():
        more = requests.more.get(request_id)
        if more is None:
            trace, hint = entry.trace, entry.hint
        else:
            trace = fold_request(request_id, (entry.line, *more))
            hint = _hint(trace)
        if trace.assume_role_failure is not None:
            roles.add(trace.assume_role_failure)
        if trace.permission_failure:
            if not low <= ts < high:
                low = ts // span * span
                high = low + span
                window = windows.setdefault(low, _Window(0, ts, []))
            window.add(ts, hint)
    if requests.orphans:
        orphan_ms = requests.orphans[0][0]  # every orphan is dated by the first one
        for _, entry in requests.orphans:
            if entry.trace.assume_role_failure is not None:
                roles.add(entry.trace.assume_role_failure)
            if entry.trace.permission_failure:
                low = orphan_ms // span * span
                windows.setdefault(low, _Window(0, orphan_ms, [])).add(orphan_ms, entry.hint)
    incidents = tuple(
        Incident(
            api_id,
            stage,
            start // 1000,
            batch.log_group,
            found.failures,
            found.first_seen_ms,
            () if found.hints is None else tuple(found.hints),
        )
        for start, found in sorted(windows.items())
    )
    return Detection(incidents, requests.failure_lines, tuple(sorted(roles)))


def _requests(selected: Sequence[tuple[int, str]], texts: dict[str, _Text]) -> _Requests:
    """Split each line into request id and text, parse each distinct text once, group by request."""
    found = _Requests({}, {}, [], 0)
    first, more, orphans = found.first, found.more, found.orphans
    failure_lines = 0
    split = PREFIXED_LINE.match
    previous_message: str | None = None
    request_id: str | None = None
    entry = _NO_TEXT
    for ts, message in selected:
        if message != previous_message:  # the same line again (a duplicate delivery) reads the same
            previous_message = message
            stripped = message.strip()
            prefixed = split(stripped)
            request_id, text = (None, stripped) if prefixed is None else prefixed.groups()
            known = texts.get(text)
            if known is None:
                known = texts[text] = _text(text)
            entry = known
        if entry.permission_failure:
            failure_lines += 1
        if request_id is None:
            if entry.line.kind in _ORPHAN_KINDS:
                orphans.append((ts, entry))
            continue
        pair = (ts, entry)
        seen = first.setdefault(request_id, pair)
        if seen is not pair:
            # A line repeating its request's previous line changes nothing (folding is idempotent).
            lines = more.get(request_id)
            if lines is None:
                if entry is not seen[1]:
                    more[request_id] = [entry.line]
            elif lines[-1] is not entry.line:
                lines.append(entry.line)
    found.failure_lines = failure_lines
    return found


@dataclass(slots=True)
class _AccessGroup:
    """The failures of one (API id, stage, window) so far; ``routes`` None once they cannot narrow."""

    failures: int
    first_seen_ms: int
    routes: dict[str, None] | None


def _detect_access(batch: LogBatch, window_seconds: int, failures: list[tuple[int, AccessKey]]) -> Detection:
    """Access-log lines (HTTP APIs): one incident per (API id, stage as the line says, window)."""
    if not failures:
        # The subscription delivered something that is neither an execution log nor an access-log
        # failure: keep it for a person (dead letter), as any other payload the detector cannot use.
        raise ParseError(
            "not an API Gateway execution log group and no access-log permission failure in it: "
            + repr(batch.log_group[:200])
        )
    if _LOG_GROUP_NAME.fullmatch(batch.log_group) is None:
        raise ParseError(f"invalid log group name {batch.log_group[:200]!r}")
    roles: set[str] = set()
    groups: dict[tuple[str | None, str | None, int], _AccessGroup] = {}
    span = window_seconds * 1000
    low = high = 0
    window: dict[int, _AccessGroup] = {}
    """id(failure) → its group in the current window: a storm repeats a few (interned) failures."""
    for ts, failure in failures:
        if not low <= ts < high:
            low = ts // span * span
            high = low + span
            window = {}
        group = window.get(id(failure))
        if group is None:
            kind, api_id, stage, route_key, role_arn = failure
            if kind is AccessFailureKind.ASSUME_ROLE:
                roles.add(role_arn or "")
                continue
            key = (api_id, stage, low // 1000)
            group = groups.get(key)
            if group is None:
                group = groups[key] = _AccessGroup(0, ts, {})
            if group.routes is not None:
                # Route hints, or none when any failure names no route or is an authorizer's (it hides
                # the routes).
                if kind is not AccessFailureKind.INTEGRATION or route_key is None:
                    group.routes = None
                else:
                    group.routes[route_key] = None
            window[id(failure)] = group
        group.failures += 1
        if ts < group.first_seen_ms:
            group.first_seen_ms = ts
    incidents = tuple(
        Incident(
            api_id,
            stage,
            window,
            batch.log_group,
            group.failures,
            group.first_seen_ms,
            _access_hints(group.routes),
            access_log=True,
        )
        for (api_id, stage, window), group in sorted(
            groups.items(), key=lambda item: (item[0][2], item[0][0] or "", item[0][1] or "")
        )
    )
    return Detection(incidents, sum(group.failures for group in groups.values()), tuple(sorted(roles)))


def _access_hints(routes: dict[str, None] | None) -> tuple[Hint, ...]:
    """One hint per route (in first-seen order), or none when they cannot narrow."""
    if routes is None or len(routes) > MAX_HINTS:
        return ()
    return tuple(Hint(*route_hint(route), route_key=route) for route in routes)


def _detect_storm(
    selected: Sequence[tuple[int, str]], window_seconds: int, texts: dict[str, _Text]
) -> tuple[int, _Window, int, tuple[str, ...]] | None:
    """A storm batch without a loop per line, or None when the batch is not one; same result as the loop.

    A storm batch is one line per request, every line `(request id) text` with ids of one length (UUIDs,
    extended ids), in one window, and few distinct texts (they differ in their request ids): so the
    request ids, the texts and their counts come out of C-level passes, and each distinct text is parsed
    and folded once. Returns (window start, its failures, failure lines, role failures).
    """
    if not selected:
        return None
    stamps, messages = _columns(selected)
    span = window_seconds * 1000
    if min(stamps) // span != max(stamps) // span:
        return None
    stripped = list(map(str.strip, messages))
    head = PREFIXED_LINE.match(stripped[0])
    if head is None:
        return None
    end = head.end(1) + 1  # just after ")"
    heads = "".join(map(itemgetter(slice(0, end)), stripped))
    if len(heads) != end * len(stripped) or _uniform_prefixes(end - 2).fullmatch(heads) is None:
        return None
    request_ids = set(map(itemgetter(slice(1, end - 1)), stripped))
    if len(request_ids) != len(stripped):
        return None  # a request with several lines: the general fold
    tail = stripped[0][end:]
    if min(map(len, stripped)) == max(map(len, stripped)) and all(
        map(methodcaller("endswith", tail), stripped)
    ):
        counts = Counter({tail.lstrip(" \t"): len(stripped)})  # one text: the usual storm
    else:
        counts = Counter(map(_LSTRIP_BLANKS, map(itemgetter(slice(end, None)), stripped)))
    first_ms = min(stamps)
    window = _Window(0, first_ms, [])
    failure_lines = 0
    roles: set[str] = set()
    for text, count in counts.items():  # in first-seen order
        entry = texts.get(text)
        if entry is None:
            entry = texts[text] = _text(text)
        if entry.permission_failure:
            failure_lines += count
        if entry.trace.assume_role_failure is not None:
            roles.add(entry.trace.assume_role_failure)
        if entry.trace.permission_failure:
            window.add(first_ms, entry.hint, count)
    if window.failures and window.failures != len(stripped):
        return None  # some requests did not fail: the first failure's timestamp needs the lines
    return stamps[0] // span * window_seconds, window, failure_lines, tuple(sorted(roles))


@lru_cache(maxsize=8)
def _uniform_prefixes(length: int) -> re.Pattern[str]:
    """`(id)(id)…`: every line's request id prefix of one length, checked in one match over all of them."""
    return re.compile(rf"(?:\([A-Za-z0-9+/=_-]{{{length}}}\))*")


def _failing_requests(events: Sequence[tuple[int, str]]) -> Sequence[tuple[int, str]]:
    """The lines of requests that have a failure line, in order: no other line can change a detection.

    Most lines of a busy stage belong to healthy requests: a substring search over the joined batch
    finds the (few) failure lines, and a prefix test per line of the failing request ids replaces a
    full parse of each one. A batch of mostly failures (a filtered storm) is returned as it is.
    """
    messages = _columns(events)[1]
    try:
        joined = "".join(messages)
    except TypeError as exc:
        raise ParseError(f"log messages must be strings: {exc}") from exc
    if not messages:
        return ()
    first = FAILURE_MARKS[0]
    # Mostly failures (a filtered storm: it starts with one): filtering would save nothing.
    if first in messages[0] and 2 * joined.count(first) > len(messages):
        return events
    ends = list(accumulate(map(len, messages)))
    flagged: set[int] = set()
    for mark in FAILURE_MARKS:
        at = joined.find(mark)
        while at >= 0:
            index = bisect_right(ends, at)
            if mark in messages[index]:  # not a match straddling two lines
                flagged.add(index)
            at = joined.find(mark, at + 1)
    if not flagged:
        return ()
    ids = {request_id_of(messages[index]) for index in flagged} - {None}
    prefixes = {f"({rid})" for rid in ids}
    lengths = {len(prefix) for prefix in prefixes}
    keep = set(flagged)
    if len(prefixes) * len(joined) <= _SCAN_BUDGET:
        # Few failing requests: find their `(id)` in the joined text, keep the lines it starts.
        for prefix in prefixes:
            at = joined.find(prefix)
            while at >= 0:
                index = bisect_right(ends, at)
                if messages[index].lstrip().startswith(prefix):
                    keep.add(index)
                at = joined.find(prefix, at + 1)
    elif len(lengths) <= _PREFIX_LENGTHS_LIMIT:
        # Lines that start (after blanks, as parse_line reads them) with a failing request's `(id)`:
        # one C-level pass per id length (UUIDs: one).
        indexes = range(len(messages))
        for length in lengths:
            heads = map(itemgetter(slice(0, length)), map(str.lstrip, messages))
            keep.update(compress(indexes, map(prefixes.__contains__, heads)))
    else:
        keep.update(index for index, message in enumerate(messages) if request_id_of(message) in ids)
    return [events[index] for index in sorted(keep)]


def _hint(trace: RequestTrace) -> Hint:
    """What a failing request's lines say; an authorizer's failure names the authorizer, not a route."""
    return Hint(
        method=None if trace.authorizer_failure else trace.method,
        resource_path=None if trace.authorizer_failure else trace.resource_path,
        authorizer_id=trace.authorizer_id if trace.authorizer_failure else None,
        function=trace.function_hint,
        route_key=None if trace.authorizer_failure else trace.route_key,
    )


_NO_TEXT = _text("")
"""A placeholder before the first line (never read)."""
