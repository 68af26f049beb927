"""The detector's dead-letter queue: payloads it could not understand, kept for a person."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import client
from permheal.errors import AwsCallError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_MESSAGE_BYTES = 250_000


class DeadLetters:
    def __init__(self, queue_url: str, sqs: SQSClient | None = None):
        self._url = queue_url
        self._client = sqs or client("sqs")

    def send(self, reason: str, event: Any) -> None:
        body = json.dumps({"reason": reason, "event": event}, default=str)
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            body = json.dumps({"reason": reason, "truncated": True, "event": body[:200_000]})
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=body)
        except ClientError as exc:
            raise AwsCallError(f"SendMessage to the dead-letter queue: {exc}") from exc
