"""Read HTTP API (and WebSocket) access-log lines: which request failed on a Lambda permission.

HTTP APIs write no execution log; the failure shows only in the stage's access log, in a format
the user chose (aws-facts.md §1, §8). So a line is recognised by its *values*, never by its key
names or column order:

- the failure is the value that reads "The IAM role configured on the integration|authorizer or API
  Gateway doesn't have permissions to call the …" (straight or curly apostrophe): what
  `$context.integrationErrorMessage` / `$context.authorizer.error` print;
- a value about *assuming* a role is an integration-role fault that AddPermission cannot fix.

Context fields are read from JSON formats when present, under any key whose name, lower-cased and
stripped of everything but letters and digits, ends with ``apiid``, ``stage`` / ``stagename``,
``routekey`` or is ``requestid`` / ``extendedrequestid`` (so `apiId`, `api_id`, `context.apiId`,
`"stage"`, `route-key` all count), at any nesting depth up to 4. A key that appears twice with
different values is ignored (ambiguous). CLF and other space-delimited formats have no key names:
only the quoted request `"METHOD ROUTE PROTOCOL"` and the request id after the status and length are
read; API id and stage then come from the log group (resolved through the control plane).

Everything here is untrusted text (anyone who can write to the log group can forge it): the API id
and stage only say which stage to check against the control plane, the route key only narrows.
Pure and stdlib-only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from permheal.errors import AmbiguousApiError, NotFoundError

__all__ = [
    "ACCESS_LOG_FORMAT_ADVICE",
    "ACCESS_LOG_PHRASE",
    "ASSUME_ROLE_PHRASE",
    "AccessFailure",
    "AccessFailureKind",
    "AccessKey",
    "StageLog",
    "locate_stage",
    "log_group_of",
    "may_be_access_failure",
    "may_hold_access_failure",
    "parse_access_line",
    "read_access_failures",
    "route_hint",
    "stages_writing_to",
]

ACCESS_LOG_PHRASE = "have permissions to call the"
"""What the integration and the authorizer messages share, without the (straight or curly) apostrophe."""

ASSUME_ROLE_PHRASE = "assume the provided role"
"""The assume-role message's words (aws-facts.md §1): reported, never repaired."""

_MARK = "The IAM role configured on the "
_FAILURE = re.compile(
    r"The IAM role configured on the (integration|authorizer) or API Gateway doesn"
    r"(?:'|’|&#39;|&rsquo;|\\u2019|\\')t have permissions to call the (integration|authorizer)\b"
)
_ASSUME = re.compile(r"(?i)\bassume\b[^.\n]{0,60}\brole\b")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")

_API_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_STAGE = re.compile(r"\$default|[A-Za-z0-9_-]{1,128}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=_-]{6,128}")
_METHOD = re.compile(r"[A-Z]{3,7}|ANY")
_CLF_REQUEST = re.compile(r'"([A-Z]{3,7}) ([^"\s][^"]{0,2046}?) (?:HTTP|WS|WSS)/[0-9.]{1,4}"')
_CLF_AFTER_REQUEST = re.compile(r'" (\d{3}) (\S{1,20}) (\S{1,128})')
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_MAX_DEPTH = 4
_MAX_LINE = 64 * 1024
"""Longer JSON lines are read as text only: an access-log line is small, a huge one is suspect."""


class AccessFailureKind(StrEnum):
    INTEGRATION = "integration"
    AUTHORIZER = "authorizer"
    ASSUME_ROLE = "assume_role"


@dataclass(frozen=True, slots=True)
class AccessFailure:
    """One failing request as its access-log line shows it; every field but ``kind`` may be absent."""

    kind: AccessFailureKind
    api_id: str | None = None
    stage: str | None = None
    route_key: str | None = None
    request_id: str | None = None
    role_arn: str | None = None
    """Only for ASSUME_ROLE: the role named in the message, if any (reported, never used)."""


def may_be_access_failure(message: str) -> bool:
    """Cheap pre-filter: a superset of the lines parse_access_line reports."""
    return _MARK in message or _ASSUME.search(message) is not None


def parse_access_line(message: str) -> AccessFailure | None:
    """The failure a line reports, or None: an access line that is not a permission failure."""
    if not isinstance(message, str) or not may_be_access_failure(message):
        return None
    found = _read(message.strip())
    return None if found is None else AccessFailure(*found)


AccessKey = tuple[AccessFailureKind, str | None, str | None, str | None, str | None]
"""(kind, API id, stage, route key, role ARN): an AccessFailure without its request id (detection's)."""


def may_hold_access_failure(messages: list[str]) -> bool:
    """Cheap pre-filter for a whole batch: False only when no line can be an access-log failure."""
    try:
        joined = "\n".join(messages)
    except TypeError:  # not all strings: line by line
        return any(isinstance(message, str) and may_be_access_failure(message) for message in messages)
    if _MARK in joined:
        return True
    if joined.isascii():  # ASCII text: `(?i)assume` is exactly a lower-cased "assume" (no ſ, no K)
        return "assume" in joined.lower() and _ASSUME.search(joined) is not None
    return any(_ASSUME.search(message) is not None for message in messages)


def read_access_failures(events: Iterable[tuple[int, str]]) -> list[tuple[int, AccessKey]]:
    """(timestamp, what parse_access_line reads but the request id) of each failure line, in order.

    Faster on a batch: a storm repeats a few failure messages and requests under fresh request ids,
    times and addresses. A CLF line's route and failure depend only on its first quoted part and the
    text from the failure message on, so each such pair is read once per batch; JSON lines are parsed
    once each, their key names and failure values classified once per batch.
    """
    memo: dict[str, dict[str, AccessKey | None]] = {}
    """Text from the failure message on → first quoted part → what the line reads."""
    interned: dict[AccessKey, AccessKey] = {}
    found: list[tuple[int, AccessKey]] = []
    append = found.append
    suffix = ""  # the previous CLF line's text from the failure message on: a storm repeats it
    requests = memo.setdefault(suffix, {})
    for ts, message in events:
        if not isinstance(message, str):
            continue
        at = message.find(_MARK)
        if at >= 0:
            text = message.strip()
            if text[:1] != "{":
                if text is not message:
                    at = text.find(_MARK)
                opening = text.find('"')
                closing = text.find('"', opening + 1) if opening >= 0 else -1
                if at >= 0 and closing >= 0:
                    if len(text) - at != len(suffix) or not text.endswith(suffix):
                        suffix = text[at:]
                        requests = memo.setdefault(suffix, {})
                    segment = text[opening : closing + 1]
                    try:
                        known = requests[segment]
                    except KeyError:
                        read_clf = _read_clf(text, opening, closing, at)
                        if read_clf is False:
                            known = _read_key(text, interned)
                        else:
                            known = requests[segment] = read_clf
                    if known is not None:
                        append((ts, known))
                    continue
        elif _ASSUME.search(message) is None:
            continue
        known = _read_key(message.strip(), interned)
        if known is not None:
            append((ts, known))
    return found


def _read_key(text: str, interned: dict[AccessKey, AccessKey]) -> AccessKey | None:
    """_read without the request id; equal failures are one object (cheap to group)."""
    read = _read(text, request_id=False)
    if read is None:
        return None
    key = (read[0], read[1], read[2], read[3], read[5])
    return interned.setdefault(key, key)


def _read_clf(text: str, opening: int, closing: int, at: int) -> AccessKey | Literal[False] | None:
    """A CLF line read from its first quoted part and its failure message alone, or False when the
    rest of the line could change the reading (the failure is not where the message starts, or the
    first quoted part is no request)."""
    match = _FAILURE.search(text, at)
    request = _CLF_REQUEST.fullmatch(text, opening, closing + 1)
    if match is None or request is None:
        return False
    kind = _failure_kind(match)
    if kind is None:
        return None
    return (kind, None, None, _route_key(_clf_route(request)), None)


_Read = tuple[AccessFailureKind, str | None, str | None, str | None, str | None, str | None]
"""AccessFailure's fields in order."""


def _read(text: str, request_id: bool = True) -> _Read | None:
    """The fields of the failure a stripped line reports (JSON by key names, else CLF), or None.

    Without `request_id` the request id is not read (None): detection does not use it.
    """
    fields: dict[str, str | None] = {}
    values: list[str] = [text]
    if text.startswith("{") and len(text) <= _MAX_LINE:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            values = list(document.values())
            if set(map(type, values)) == {str}:  # flat and all text, as most formats: one plan per key set
                for index, field in _plan(tuple(document)):
                    value = values[index]
                    fields[field] = value if fields.get(field, value) == value else None
            else:
                values = []
                for key, value in _top_leaves(document):
                    values.append(value)
                    name = _field_name(key)
                    if name is not None:
                        fields[name] = value if fields.get(name, value) == value else None
    kind, role = _failure(values)
    if kind is None:
        return None
    if values == [text]:  # not JSON: CLF or another space-delimited format
        fields = _clf_fields(text)
    return (
        kind,
        _valid_api_id(fields.get("api_id")),
        _valid_stage(fields.get("stage")),
        _route_key(fields.get("route_key")),
        _valid(fields.get("request_id"), _REQUEST_ID) if request_id else None,
        role,
    )


@lru_cache(maxsize=256)
def _plan(keys: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """(position, context field) of the keys that name one, for a document with these keys in order."""
    named = ((index, _field_name(key)) for index, key in enumerate(keys))
    return tuple((index, name) for index, name in named if name is not None)


@lru_cache(maxsize=1024)
def _valid_api_id(value: str | None) -> str | None:
    return _valid(value, _API_ID)


@lru_cache(maxsize=1024)
def _valid_stage(value: str | None) -> str | None:
    return _valid(value, _STAGE)


def route_hint(route_key: str | None) -> tuple[str | None, str | None]:
    """(method, resourcePath) that an HTTP route key names, as v2 findings carry them; else (None, None).

    `$default` is method ANY, resourcePath `$default` (design.md "API kinds"); WebSocket route keys
    (`$connect`, `sendmessage`) name no method or path.
    """
    if route_key is None:
        return None, None
    if route_key == "$default":
        return "ANY", "$default"
    method, space, path = route_key.partition(" ")
    if space and _METHOD.fullmatch(method) and path.startswith("/") and " " not in path:
        return method, path
    return None, None


def _failure(values: list[str]) -> tuple[AccessFailureKind | None, str | None]:
    """The first value that is a permission failure; an assume-role value only if none is.

    A value whose failure message names two different subjects is no failure and no assume-role value.
    Only values holding the message's first words can be failures, so the others are searched for an
    assume-role message only when no value is a failure.
    """
    mismatched: set[int] = set()
    for index, value in enumerate(values):
        if _MARK in value:
            match = _FAILURE.search(value)
            if match is not None:
                kind = _failure_kind(match)
                if kind is not None:
                    return kind, None
                mismatched.add(index)
    for index, value in enumerate(values):
        if index not in mismatched and _ASSUME.search(value) is not None:
            arn = _ROLE_ARN.search(value)
            return AccessFailureKind.ASSUME_ROLE, arn.group(0) if arn else None
    return None, None


def _failure_kind(match: re.Match[str]) -> AccessFailureKind | None:
    """The failure a message names; None for "on the integration … call the authorizer" (no such message)."""
    subject = match.group(1)
    if subject != match.group(2):
        return None
    return AccessFailureKind.AUTHORIZER if subject == "authorizer" else AccessFailureKind.INTEGRATION


def _top_leaves(document: dict[str, Any]) -> list[tuple[str, str]]:
    """_leaves of a whole document, the top level unrolled: access-log formats are (nearly) flat."""
    leaves: list[tuple[str, str]] = []
    for key, value in document.items():
        kind = type(value)
        if kind is str:
            leaves.append((key, value))
        elif kind is dict or kind is list:
            leaves.extend(_leaves(value, _MAX_DEPTH - 1, str(key)))
        elif kind is int or kind is float:
            leaves.append((key, str(value)))
    return leaves


def _leaves(value: Any, depth: int, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, text) for every scalar in a JSON document, nested objects up to `depth` levels."""
    if isinstance(value, dict):
        if depth > 0:
            for child_key, child in value.items():
                yield from _leaves(child, depth - 1, str(child_key))
    elif isinstance(value, list):
        if depth > 0:
            for child in value:
                yield from _leaves(child, depth - 1, key)
    elif isinstance(value, str):
        yield key, value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield key, str(value)


@lru_cache(maxsize=512)
def _field_name(key: str) -> str | None:
    """Which context field a JSON key names (see the module docstring), or None."""
    name = _NON_ALNUM.sub("", key.lower())
    if name.endswith("apiid"):
        return "api_id"
    if name.endswith("routekey"):
        return "route_key"
    if name in ("requestid", "contextrequestid", "extendedrequestid", "contextextendedrequestid"):
        return "request_id"
    if name.endswith("stagename") or (name.endswith("stage") and not name.endswith("apistage")):
        return "stage"
    return None


def _clf_fields(text: str) -> dict[str, str | None]:
    """Route key and request id from a CLF-like line: `"GET $default HTTP/1.1" 500 35 AqCi...=`."""
    request = _CLF_REQUEST.search(text)
    if request is None:
        return {}
    after = _CLF_AFTER_REQUEST.match(text, request.end() - 1)
    return {"route_key": _clf_route(request), "request_id": after.group(3) if after else None}


def _clf_route(request: re.Match[str]) -> str | None:
    """`$context.routeKey` ($default, "GET /pets/{id}") from a CLF request; a raw path is not a route."""
    method, target = request.group(1), request.group(2).strip()
    if target.startswith("$") or target.split(" ", 1)[0] in ("ANY", method):
        return target
    return None


def _valid(value: str | None, pattern: re.Pattern[str]) -> str | None:
    """The value when well-formed; `-` is how API Gateway prints an empty variable, so it is absent."""
    return value if value is not None and value != "-" and pattern.fullmatch(value) else None


def _route_key(value: str | None) -> str | None:
    """A route key as API Gateway prints it; `-` (CLF's empty) and odd text are no route."""
    if value is None or value in ("", "-") or len(value) > 2048 or not value.isprintable():
        return None
    return value


@dataclass(frozen=True, slots=True)
class StageLog:
    """One API stage and where its access log goes (`AccessLogSettings.DestinationArn`), if anywhere."""

    api_id: str
    stage: str
    destination_arn: str | None


def log_group_of(destination_arn: str | None) -> str | None:
    """`arn:aws:logs:{region}:{account}:log-group:{name}[:*]` → name; None for anything else (Firehose…)."""
    if not destination_arn or ":log-group:" not in destination_arn:
        return None
    head, _, name = destination_arn.partition(":log-group:")
    if not head.startswith("arn:") or ":logs:" not in head:
        return None
    name = name.removesuffix(":*")
    return name or None


def stages_writing_to(
    stages: Iterable[StageLog], log_group: str, api_id: str | None = None, stage: str | None = None
) -> tuple[StageLog, ...]:
    """The stages whose access log is `log_group`, narrowed by the API id and stage a line names.

    The control plane decides: a line's API id or stage that no stage writing to this group has
    matches nothing (a forged or stale line), it never adds a stage.
    """
    return tuple(
        s
        for s in stages
        if log_group_of(s.destination_arn) == log_group
        and (api_id is None or s.api_id == api_id)
        and (stage is None or s.stage == stage)
    )


ACCESS_LOG_FORMAT_ADVICE = (
    "add $context.apiId and $context.stage to the access-log format (JSON keys apiId and stage)"
)


def locate_stage(
    stages: Iterable[StageLog], log_group: str, api_id: str | None = None, stage: str | None = None
) -> StageLog:
    """The one stage an access-log incident is about; NotFoundError / AmbiguousApiError otherwise."""
    found = stages_writing_to(stages, log_group, api_id, stage)
    said = "".join(f" {label} {value!r}" for label, value in (("API", api_id), ("stage", stage)) if value)
    if not found:
        raise NotFoundError(f"no API stage{said} writes its access log to log group {log_group!r}")
    if len(found) > 1:
        names = ", ".join(f"{s.api_id}/{s.stage}" for s in found[:10])
        raise AmbiguousApiError(
            f"{len(found)} API stages write their access logs to {log_group!r} ({names}); "
            + ACCESS_LOG_FORMAT_ADVICE
        )
    return found[0]
