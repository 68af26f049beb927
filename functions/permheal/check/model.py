"""What `permheal check` finds: one record per predicted failure (design.md, `permheal check`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CheckKind(StrEnum):
    MISSING_PERMISSION = "missing_permission"
    WRONG_QUALIFIER = "wrong_qualifier"
    WRONG_SOURCE_ARN = "wrong_source_arn"
    POLICY_SIZE_RISK = "policy_size_risk"
    UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class CheckFinding:
    """A call the deployed API would make that its template does not (or may not) allow."""

    kind: CheckKind
    file: str
    line: int
    api: str | None = None
    api_type: str | None = None
    stage: str | None = None
    method: str | None = None
    resource_path: str | None = None
    route_key: str | None = None
    authorizer: str | None = None
    function: str | None = None
    qualifier: str | None = None
    detail: str = ""
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "file": self.file,
            "line": self.line,
            "api": self.api,
            "apiType": self.api_type,
            "stage": self.stage,
            "method": self.method,
            "resourcePath": self.resource_path,
            "routeKey": self.route_key,
            "authorizer": self.authorizer,
            "function": self.function,
            "qualifier": self.qualifier,
            "detail": self.detail,
            "fix": self.fix,
        }

    @property
    def where(self) -> str:
        if self.authorizer and not self.method:
            return f"authorizer {self.authorizer}"
        if self.route_key:
            return self.route_key
        if self.method:
            return f"{self.method} {self.resource_path}"
        return "-"
