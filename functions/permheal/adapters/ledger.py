"""The audit ledger (DynamoDB): every applied change, refusal and revert, with the policy before/after.

Table: partition key `changeId`; GSI `byFunction` (functionKey, changeId) for history and the flap
breaker; GSI `byApi` (apiId, changeId). Change ids start with the UTC time, so they sort by time.
The same table keeps the routes index (`route#{function ARN}` -> API ids invoking it) for the proactive
trigger; those items carry neither functionKey nor apiId, so no index and no history sees them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import client, error_code
from permheal.arns import FunctionRef
from permheal.errors import AwsCallError, NotFoundError
from permheal.parallel import gather

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class EntryKind:
    REPAIR = "repair"
    REFUSAL = "refusal"
    REVERT = "revert"
    FLAPPING = "flapping"
    CLEARED = "cleared"


@dataclass(frozen=True)
class LedgerEntry:
    """One audit record: what permheal did (or refused) to one function for one API."""

    kind: str
    api_id: str
    function_key: str
    execution_arn: str = ""
    trigger: str = "manual"
    api_name: str = ""
    stage: str = ""
    added: tuple[dict[str, Any], ...] = ()
    removed: tuple[dict[str, Any], ...] = ()
    policy_before: dict[str, Any] = field(default_factory=dict)
    policy_after: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    revert_of: str = ""
    change_id: str = ""
    at: str = ""

    def to_item(self) -> dict[str, Any]:
        values = {
            "changeId": self.change_id,
            "kind": self.kind,
            "apiId": self.api_id or "-",
            "functionKey": self.function_key or "-",
            "at": self.at,
            "executionArn": self.execution_arn,
            "trigger": self.trigger,
            "apiName": self.api_name,
            "stage": self.stage,
            "added": json.dumps(list(self.added)),
            "removed": json.dumps(list(self.removed)),
            "policyBefore": json.dumps(self.policy_before),
            "policyAfter": json.dumps(self.policy_after),
            "detail": self.detail,
            "revertOf": self.revert_of,
        }
        return {key: {"S": str(value)} for key, value in values.items()}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerEntry:
        value = {key: attr.get("S", "") for key, attr in item.items()}
        return cls(
            kind=value["kind"],
            api_id=value.get("apiId", ""),
            function_key=value.get("functionKey", ""),
            execution_arn=value.get("executionArn", ""),
            trigger=value.get("trigger", ""),
            api_name=value.get("apiName", ""),
            stage=value.get("stage", ""),
            added=tuple(json.loads(value.get("added") or "[]")),
            removed=tuple(json.loads(value.get("removed") or "[]")),
            policy_before=json.loads(value.get("policyBefore") or "{}"),
            policy_after=json.loads(value.get("policyAfter") or "{}"),
            detail=value.get("detail", ""),
            revert_of=value.get("revertOf", ""),
            change_id=value["changeId"],
            at=value.get("at", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "changeId": self.change_id,
            "at": self.at,
            "kind": self.kind,
            "apiId": self.api_id,
            "apiName": self.api_name,
            "stage": self.stage,
            "function": self.function_key,
            "trigger": self.trigger,
            "executionArn": self.execution_arn,
            "added": list(self.added),
            "removed": list(self.removed),
            "detail": self.detail,
            "revertOf": self.revert_of,
        }


ROUTE_PREFIX = "route#"


def function_key(function: FunctionRef) -> str:
    return function.arn


class Ledger:
    def __init__(self, table: str, dynamodb: DynamoDBClient | None = None, clock: Any = None):
        self.table = table
        self._client = dynamodb or client("dynamodb")
        self._now = clock or (lambda: datetime.now(UTC))

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        now = self._now()
        change_id = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}"
        stamped = LedgerEntry(**{**entry.__dict__, "change_id": change_id, "at": now.isoformat()})
        item = stamped.to_item()
        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(changeId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            # The SDK retries a PutItem whose answer was lost (5xx); if the first attempt landed, the
            # retry fails the condition on our own item: that is success, not a collision.
            landed = error_code(exc) == "ConditionalCheckFailedException" and exc.response.get("Item") == item
            if not landed:
                raise AwsCallError(f"ledger PutItem: {exc}") from exc
        return stamped

    def get(self, change_id: str) -> LedgerEntry:
        try:
            item = self._client.get_item(TableName=self.table, Key={"changeId": {"S": change_id}}).get("Item")
        except ClientError as exc:
            raise AwsCallError(f"ledger GetItem: {exc}") from exc
        if not item:
            raise NotFoundError(f"no ledger entry {change_id!r}")
        return LedgerEntry.from_item(item)

    def history(self, api_id: str | None = None, function: str | None = None) -> list[LedgerEntry]:
        """Entries newest first, for one API, one function key, or everything."""
        if function:
            items = self._query("byFunction", "functionKey", function)
        elif api_id:
            items = self._query("byApi", "apiId", api_id)
        else:
            items = self._scan()
        entries = [LedgerEntry.from_item(item) for item in items]
        return sorted(entries, key=lambda e: e.change_id, reverse=True)

    def recent_repairs(self, key: str, window: timedelta) -> list[LedgerEntry]:
        """Repairs of one function+qualifier since `window` ago and since an operator last cleared it."""
        since = (self._now() - window).strftime("%Y%m%dT%H%M%S.%fZ")
        entries = sorted(
            (LedgerEntry.from_item(i) for i in self._query("byFunction", "functionKey", key, since)),
            key=lambda e: e.change_id,
        )
        repairs: list[LedgerEntry] = []
        for entry in entries:
            if entry.kind == EntryKind.CLEARED:
                repairs = []
            elif entry.kind == EntryKind.REPAIR and entry.added:
                repairs.append(entry)
        return repairs

    def remember_routes(self, api_id: str, functions: Iterable[str]) -> None:
        """Add `api_id` to the routes index of each function (unqualified ARN); resolve refreshes it.

        One UpdateItem per function, made at once (permheal.parallel): each adds to its own item.
        """
        gather([partial(self._remember_route, api_id, function) for function in sorted(set(functions))])

    def _remember_route(self, api_id: str, function: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table,
                Key={"changeId": {"S": ROUTE_PREFIX + function}},
                UpdateExpression="ADD #apis :api SET #kind = :kind, #at = :at",
                ExpressionAttributeNames={"#apis": "apis", "#kind": "kind", "#at": "at"},
                ExpressionAttributeValues={
                    ":api": {"SS": [api_id]},
                    ":kind": {"S": "route"},
                    ":at": {"S": self._now().isoformat()},
                },
            )
        except ClientError as exc:
            raise AwsCallError(f"ledger UpdateItem: {exc}") from exc

    def apis_invoking(self, function: str) -> frozenset[str] | None:
        """API ids a resolve saw invoking `function` (unqualified ARN); None = never indexed."""
        try:
            item = self._client.get_item(
                TableName=self.table, Key={"changeId": {"S": ROUTE_PREFIX + function}}
            ).get("Item")
        except ClientError as exc:
            raise AwsCallError(f"ledger GetItem: {exc}") from exc
        if not item:
            return None
        return frozenset(item.get("apis", {}).get("SS", []))

    def _query(self, index: str, key: str, value: str, since: str | None = None) -> Iterator[dict[str, Any]]:
        condition = "#k = :v" + (" AND changeId >= :since" if since else "")
        values: dict[str, Any] = {":v": {"S": value}}
        if since:
            values[":since"] = {"S": since}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#k": key},
            "ExpressionAttributeValues": values,
        }
        try:
            for page in self._client.get_paginator("query").paginate(**kwargs):
                yield from page.get("Items", [])
        except ClientError as exc:
            raise AwsCallError(f"ledger Query: {exc}") from exc

    def _scan(self) -> Iterator[dict[str, Any]]:
        try:
            for page in self._client.get_paginator("scan").paginate(TableName=self.table):
                yield from (
                    i for i in page.get("Items", []) if not i["changeId"]["S"].startswith(ROUTE_PREFIX)
                )
        except ClientError as exc:
            raise AwsCallError(f"ledger Scan: {exc}") from exc
