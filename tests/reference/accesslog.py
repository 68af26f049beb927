"""The access-log reader as it was before the detector was optimised (issue 15): the reference."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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
    text = message.strip()
    fields: dict[str, str | None] = {}
    values: list[str] = [text]
    if text.startswith("{") and len(text) <= _MAX_LINE:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict):
            values = []
            for key, value in _leaves(document, _MAX_DEPTH):
                values.append(value)
                name = _field_name(key)
                if name is not None:
                    fields[name] = value if fields.get(name, value) == value else None
    kind, role = _failure(values)
    if kind is None:
        return None
    if values == [text]:  # not JSON: CLF or another space-delimited format
        fields = _clf_fields(text)
    return AccessFailure(
        kind,
        _valid(fields.get("api_id"), _API_ID),
        _valid(fields.get("stage"), _STAGE),
        _route_key(fields.get("route_key")),
        _valid(fields.get("request_id"), _REQUEST_ID),
        role,
    )


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
    """The first value that is a permission failure; an assume-role value only if none is."""
    assume: str | None = None
    for value in values:
        match = _FAILURE.search(value)
        if match is not None:
            subject = match.group(1)
            if subject != match.group(2):
                continue  # "on the integration … call the authorizer" is no message API Gateway writes
            if subject == "authorizer":
                return AccessFailureKind.AUTHORIZER, None
            return AccessFailureKind.INTEGRATION, None
        if assume is None and _ASSUME.search(value) is not None:
            assume = value
    if assume is None:
        return None, None
    arn = _ROLE_ARN.search(assume)
    return AccessFailureKind.ASSUME_ROLE, arn.group(0) if arn else None


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
    method, target = request.group(1), request.group(2).strip()
    route: str | None = None
    if target.startswith("$") or target.split(" ", 1)[0] in ("ANY", method):
        route = target  # `$context.routeKey` ($default, "GET /pets/{id}"); a raw path is not a route
    after = _CLF_AFTER_REQUEST.match(text, request.end() - 1)
    return {"route_key": route, "request_id": after.group(3) if after else None}


def _valid(value: str | None, pattern: re.Pattern[str]) -> str | None:
    """The value when well-formed; `-` is how API Gateway prints an empty variable, so it is absent."""
    return value if value is not None and value != "-" and pattern.fullmatch(value) else None


def _route_key(value: str | None) -> str | None:
    """A route key as API Gateway prints it; `-` (CLF's empty) and odd text are no route."""
    if value is None or value in ("", "-") or len(value) > 2048 or not value.isprintable():
        return None
    return value
