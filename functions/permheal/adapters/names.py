"""API names for the allowlist, REST or HTTP/WebSocket, from the id an event carries."""

from __future__ import annotations

from botocore.exceptions import ClientError

from permheal.adapters.aws import client, error_code
from permheal.errors import AwsCallError

_MISSING = ("NotFoundException", "BadRequestException")


def api_name(api_id: str, region: str) -> str | None:
    """GetRestApi, else GetApi (v2); None when neither knows the id (deleted, or never existed)."""
    try:
        return str(client("apigateway", region).get_rest_api(restApiId=api_id).get("name", ""))
    except ClientError as exc:
        if error_code(exc) not in _MISSING:
            raise AwsCallError(f"GetRestApi {api_id}: {exc}") from exc
    try:
        return str(client("apigatewayv2", region).get_api(ApiId=api_id).get("Name", ""))
    except ClientError as exc:
        if error_code(exc) not in _MISSING:
            raise AwsCallError(f"GetApi {api_id}: {exc}") from exc
    return None
