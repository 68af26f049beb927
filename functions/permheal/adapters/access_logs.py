"""Which API Gateway v2 stages write their access logs where: the control plane behind an access-log incident.

An HTTP API's failure is seen in a log group the user chose; only the stage's `AccessLogSettings`
say which stage that group belongs to. Read once per remediation run (never by the detector):
GetStages of the API a line names, or GetApis + GetStages per API when the format names none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.accesslog import StageLog, locate_stage
from permheal.adapters.aws import client, error_code
from permheal.errors import AwsCallError

if TYPE_CHECKING:
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client

PAGE_SIZE = "500"


class AccessLogStages:
    def __init__(self, apigwv2: ApiGatewayV2Client | None = None, region: str | None = None):
        self._client = apigwv2 or client("apigatewayv2", region)

    def stages(self, api_id: str | None = None) -> list[StageLog]:
        """Every v2 stage with its access-log destination: of one API, or of every API in the region."""
        api_ids = [api_id] if api_id is not None else [item["ApiId"] for item in self._pages("get_apis")]
        found: list[StageLog] = []
        for current in api_ids:
            try:
                items = self._pages("get_stages", ApiId=current)
            except AwsCallError as exc:
                if error_code(exc.__cause__) == "NotFoundException":
                    continue  # a line may name an API that does not exist: it matches no stage
                raise
            for item in items:
                settings = item.get("AccessLogSettings") or {}
                found.append(StageLog(current, item["StageName"], settings.get("DestinationArn")))
        return found

    def locate(self, log_group: str, api_id: str | None = None, stage: str | None = None) -> StageLog:
        """The one stage whose access log is `log_group` (narrowed by what the line says)."""
        return locate_stage(self.stages(api_id), log_group, api_id, stage)

    def _pages(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                page = getattr(self._client, operation)(
                    MaxResults=PAGE_SIZE, **kwargs, **({"NextToken": token} if token else {})
                )
                items.extend(page.get("Items", []))
                token = page.get("NextToken")
                if not token:
                    return items
        except ClientError as exc:
            raise AwsCallError(f"{operation} {kwargs or ''}: {exc}") from exc
