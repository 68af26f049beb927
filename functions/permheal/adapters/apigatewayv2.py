"""API Gateway v2 control plane (HTTP and WebSocket APIs): what their routes invoke.

Calls per API are constant whatever its size: GetApi, GetRoutes, GetIntegrations, GetStages (or
GetStage) and, when a route is behind an authorizer or an export names one, GetAuthorizers, each
paginated by 500 items (a page per 500 routes), plus one ExportApi per HTTP stage with auto-deploy
off (what it serves: its deployment, which may lag the API).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.aws import call_error, client, error_code, throttled
from permheal.apiv2 import (
    HTTP,
    V2Spec,
    V2Stage,
    authorizer_from,
    integration_from,
    route_from,
    served_from_export,
    stage_from,
)
from permheal.errors import AwsCallError, NotFoundError, ParseError
from permheal.pacing import Pacer, unlimited
from permheal.parallel import gather, run_all

if TYPE_CHECKING:
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client

PAGE_SIZE = "500"


@dataclass(frozen=True)
class V2Api:
    """An HTTP or WebSocket API, as GetApis returns it."""

    api_id: str
    name: str
    protocol: str
    """HTTP or WEBSOCKET."""


@dataclass(frozen=True)
class V2Definition:
    """Everything about one HTTP or WebSocket API that resolving its Lambda targets needs."""

    api_id: str
    name: str
    spec: V2Spec
    stages: tuple[V2Stage, ...]
    stage_filter: str | None = None


class ApiGatewayV2:
    def __init__(
        self, apigwv2: ApiGatewayV2Client | None = None, region: str | None = None, pacer: Pacer | None = None
    ):
        self._client = apigwv2 or client("apigatewayv2", region)
        self._pacer = pacer or unlimited()
        self._apis: list[V2Api] | None = None

    def list_apis(self) -> list[V2Api]:
        """Every HTTP and WebSocket API in the region, cached for this adapter's life."""
        if self._apis is None:
            self._apis = [_api(item) for item in self._pages("GetApis", self._client.get_apis)]
        return self._apis

    def get_api(self, api_id: str) -> V2Api | None:
        """The API with this id, or None when there is none (or the id is not a v2 id)."""
        try:
            return _api(self._paced("GetApi", self._client.get_api, ApiId=api_id))
        except ClientError as exc:
            if error_code(exc) in ("NotFoundException", "BadRequestException"):
                return None
            raise AwsCallError(f"GetApi {api_id}: {exc}") from exc

    def definition(self, api: V2Api, stage: str | None = None) -> V2Definition:
        """Routes, integrations, authorizers (only when a route or an export needs them) and the stage(s).

        The stage(s), routes and integrations are read together (permheal.parallel), their failures
        taken in that order; GetAuthorizers after them, as only they tell whether it is needed; then
        the exports of the stages that need one, together.
        """
        api_id = api.api_id
        stages_read, routes_read, integrations_read = run_all(
            lambda: self._stages(api_id, stage),
            lambda: [route_from(r) for r in self._pages("GetRoutes", self._client.get_routes, ApiId=api_id)],
            lambda: [
                integration_from(i)
                for i in self._pages("GetIntegrations", self._client.get_integrations, ApiId=api_id)
            ],
        )
        stages: list[V2Stage] = stages_read.get()
        routes = tuple(routes_read.get())
        integrations = integrations_read.get()
        exported = api.protocol == HTTP
        exports = exported and any(not s.auto_deploy and s.deployment_id for s in stages)
        # No route behind an authorizer and no export to match authorizers by name: none is needed.
        authorizers = (
            [
                authorizer_from(a)
                for a in self._pages("GetAuthorizers", self._client.get_authorizers, ApiId=api_id)
            ]
            if exports or any(route.authorizer_id for route in routes)
            else []
        )
        spec = V2Spec(
            api.protocol,
            routes,
            {i.integration_id: i for i in integrations},
            {a.authorizer_id: a for a in authorizers},
        )
        served = gather(
            [
                partial(self._served, api_id, item.name, spec)
                for item in stages
                if exported and not item.auto_deploy and item.deployment_id
            ]
        )
        replaced = iter(served)
        stages = [
            replace(item, served=next(replaced))
            if exported and not item.auto_deploy and item.deployment_id
            else item
            for item in stages
        ]
        return V2Definition(api_id, api.name, spec, tuple(stages), stage)

    def _stages(self, api_id: str, stage: str | None) -> list[V2Stage]:
        """GetStages, or GetStage when one stage is asked for (a missing one is a NotFoundError)."""
        if stage is None:
            return [
                stage_from(item) for item in self._pages("GetStages", self._client.get_stages, ApiId=api_id)
            ]
        try:
            return [
                stage_from(self._paced("GetStage", self._client.get_stage, ApiId=api_id, StageName=stage))
            ]
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                raise NotFoundError(f"API {api_id} has no stage {stage!r}") from exc
            raise AwsCallError(f"GetStage {api_id}/{stage}: {exc}") from exc

    def _served(self, api_id: str, stage: str, current: V2Spec) -> V2Spec:
        """What an HTTP stage with auto-deploy off serves: its deployment, from its OAS 3.0 export."""
        try:
            response = self._paced(
                "ExportApi",
                self._client.export_api,
                ApiId=api_id,
                Specification="OAS30",
                OutputType="JSON",
                StageName=stage,
                IncludeExtensions=True,
            )
            document = json.loads(response["body"].read())
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                raise NotFoundError(f"ExportApi {api_id}/{stage}: {exc}") from exc
            raise AwsCallError(f"ExportApi {api_id}/{stage}: {exc}") from exc
        except (ValueError, KeyError) as exc:
            raise AwsCallError(f"ExportApi {api_id}/{stage}: not a JSON document ({exc})") from exc
        try:
            return served_from_export(document, current)
        except ParseError as exc:
            raise AwsCallError(f"ExportApi {api_id}/{stage}: {exc}") from exc

    def _paced(self, name: str, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """One call under the account's API Gateway quotas (botocore errors pass through)."""
        return self._pacer.call("apigatewayv2", name, lambda: operation(**kwargs), throttled)

    def _pages(self, name: str, operation: Callable[..., Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            try:
                page = self._paced(
                    name, operation, MaxResults=PAGE_SIZE, **kwargs, **({"NextToken": token} if token else {})
                )
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    raise NotFoundError(str(exc)) from exc
                raise call_error(str(exc), exc) from exc
            yield from page.get("Items", [])
            token = page.get("NextToken")
            if not token:
                return


def _api(item: Mapping[str, Any]) -> V2Api:
    return V2Api(str(item["ApiId"]), str(item.get("Name") or ""), str(item.get("ProtocolType") or "HTTP"))
