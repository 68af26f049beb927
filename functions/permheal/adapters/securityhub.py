"""Security Hub: import permheal's findings (ASFF) and read back the ones it holds for an API.

Only BatchImportFindings (on the account's default product ARN) and GetFindings (on the hub) are
called. Filters narrow the read on AWS; the result is filtered again here, since not every
implementation applies them (moto does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import client
from permheal.errors import AwsCallError
from permheal.hub_findings import Where, batches, to_import
from permheal.models import RemediationResult


class SecurityHub:
    def __init__(self, securityhub: Any = None):  # no mypy_boto3_securityhub stubs are installed
        self._client = securityhub or client("securityhub")

    def findings_for(self, product_arn: str, api_id: str) -> list[dict[str, Any]]:
        """permheal's findings for one API, whatever their record state."""
        filters: dict[str, Any] = {
            "ProductArn": [{"Value": product_arn, "Comparison": "EQUALS"}],
            "ProductFields": [{"Key": "permheal/apiId", "Value": api_id, "Comparison": "EQUALS"}],
        }
        found: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                page = self._client.get_findings(
                    Filters=filters, MaxResults=100, **({"NextToken": token} if token else {})
                )
                found.extend(dict(f) for f in page.get("Findings", []))
                token = page.get("NextToken")
                if not token:
                    break
        except ClientError as exc:
            raise AwsCallError(f"GetFindings: {exc}") from exc
        return [
            f
            for f in found
            if f.get("ProductArn") == product_arn
            and (f.get("ProductFields") or {}).get("permheal/apiId") == api_id
        ]

    def import_findings(self, findings: Sequence[dict[str, Any]]) -> int:
        """Import in batches of 100; a finding Security Hub rejects is an error naming it."""
        imported = 0
        for batch in batches(findings):
            try:
                response = self._client.batch_import_findings(Findings=batch)
            except ClientError as exc:
                raise AwsCallError(f"BatchImportFindings: {exc}") from exc
            if response.get("FailedCount"):
                failed = response.get("FailedFindings", [])[:3]
                raise AwsCallError(
                    f"BatchImportFindings rejected {response['FailedCount']} finding(s): {failed}"
                )
            imported += int(response.get("SuccessCount", len(batch)))
        return imported


def record_findings(
    hub: SecurityHub, result: RemediationResult, where: Where, examined: Iterable[str], now: str
) -> int:
    """Create, update and resolve this run's findings; the number imported."""
    if not result.api_id:
        return 0
    existing = hub.findings_for(where.product_arn, result.api_id)
    findings = to_import(result, where, examined, existing, now)
    return hub.import_findings(findings) if findings else 0
