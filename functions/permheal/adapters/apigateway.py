"""API Gateway control plane: the only source of truth for what an API invokes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from permheal.adapters.apigatewayv2 import ApiGatewayV2, V2Api, V2Definition
from permheal.adapters.aws import call_error, client, error_code, throttled
from permheal.errors import AmbiguousApiError, AwsCallError, NotFoundError, ParseError
from permheal.models import RestApi
from permheal.openapi import (
    AUTHORIZED,
    AUTHORIZER,
    ApiSpec,
    Authorizer,
    Canary,
    authorizers_from_list,
    from_export,
    from_resources,
)
from permheal.pacing import Pacer, unlimited
from permheal.parallel import run_all

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client

PAGE_SIZE = 500


@dataclass(frozen=True)
class Stage:
    """A REST API stage: its variables, logging and what its deployment serves."""

    name: str
    variables: dict[str, str] = field(default_factory=dict)
    logging_level: str | None = None
    served: ApiSpec = field(default_factory=ApiSpec)
    """What the stage invokes: its deployment's snapshot, read from the stage's export."""
    deployment_id: str | None = None
    canary: Canary | None = None


@dataclass(frozen=True)
class ApiDefinition:
    """Everything about one API that resolving its Lambda targets needs, in O(1) calls per stage."""

    api: RestApi
    stages: tuple[Stage, ...]
    working_copy: ApiSpec = field(default_factory=ApiSpec)
    """The undeployed definition (GetResources): only compared with what stages serve, never granted."""
    stage_filter: str | None = None
    """The one stage asked for, or None when every stage was read."""


class ApiGateway:
    def __init__(
        self,
        apigw: APIGatewayClient | None = None,
        apigwv2: ApiGatewayV2Client | None = None,
        pacer: Pacer | None = None,
    ):
        self._client = apigw or client("apigateway")
        self._v2_client = apigwv2
        self._pacer = pacer or unlimited()
        self._v2_adapter: ApiGatewayV2 | None = None
        self._apis: list[RestApi] | None = None

    @property
    def v2(self) -> ApiGatewayV2:
        """The HTTP/WebSocket control plane, created on first use (a REST-only run never needs it)."""
        if self._v2_adapter is None:
            self._v2_adapter = ApiGatewayV2(self._v2_client, self.region, self._pacer)
        return self._v2_adapter

    @property
    def region(self) -> str:
        return str(self._client.meta.region_name)

    def list_apis(self) -> list[RestApi]:
        """Every REST, HTTP and WebSocket API in the region (a call per 500), cached here.

        The two lists are read at once (permheal.parallel); a failure of the REST one comes first.
        """
        if self._apis is None:
            v2 = self.v2  # built here, before its list is read in a thread
            rest, v2_apis = run_all(self._rest_apis, v2.list_apis)
            self._apis = rest.get() + [_v1(api) for api in v2_apis.get()]
        return self._apis

    def _rest_apis(self) -> list[RestApi]:
        items = self._items("GetRestApis", self._client.get_rest_apis)
        return [RestApi(item["id"], item.get("name", "")) for item in items]

    def find_api(self, name_or_id: str) -> RestApi:
        """Find an API of any kind by id, else by name; a name several APIs share is an error listing them."""
        try:
            item = self._paced("GetRestApi", self._client.get_rest_api, restApiId=name_or_id)
            return RestApi(item["id"], item.get("name", ""))
        except ClientError as exc:
            if error_code(exc) not in ("NotFoundException", "BadRequestException"):
                raise AwsCallError(f"GetRestApi {name_or_id}: {exc}") from exc
        v2 = self.v2.get_api(name_or_id)
        if v2 is not None:
            return _v1(v2)
        matches = [api for api in self.list_apis() if api.name == name_or_id]
        if not matches:
            raise NotFoundError(
                f"no REST API, HTTP API or WebSocket API with id or name {name_or_id!r} in {self.region}"
            )
        if len(matches) > 1:
            ids = ", ".join(f"{api.api_id} ({api.api_type})" for api in matches)
            raise AmbiguousApiError(f"{len(matches)} APIs are named {name_or_id!r}: {ids}; pass an id")
        return matches[0]

    def all_api_ids(self) -> frozenset[str] | None:
        """REST, HTTP and WebSocket API ids, to tell stale grants; None if any list is unreadable."""
        try:
            return frozenset(api.api_id for api in self.list_apis())
        except (ClientError, AwsCallError, NotFoundError):
            return None

    def definition(self, api: RestApi, stage: str | None = None) -> ApiDefinition | V2Definition:
        """What the API's stages invoke: `_rest_definition` for REST, `ApiGatewayV2` for the others."""
        if api.api_type != "REST":
            return self.v2.definition(V2Api(api.api_id, api.name, api.api_type), stage)
        return self._rest_definition(api, stage)

    def _rest_definition(self, api: RestApi, stage: str | None = None) -> ApiDefinition:
        """Per stage what it serves (one GetExport each); authorizers, stages, working copy once.

        Calls: GetStages (or GetStage), one GetExport per stage, GetResources (per 500 items), and
        GetAuthorizers only when a method or an export uses an authorizer (the ids of theirs come
        from it), whatever the number of methods. API Gateway allows an account 10 such calls a
        second: at account scale, each call saved per API is a tenth of a second.
        """
        api_id = api.api_id
        # Reads made together (permheal.parallel), their failures taken in the order a sequential
        # run met them (stage(s), exports, resources); GetAuthorizers comes after, as only they tell
        # whether it is needed.
        stages_read, resources_read, *exports_read = run_all(
            lambda: self._stages(api_id, stage),
            lambda: self._items(
                "GetResources", self._client.get_resources, restApiId=api_id, embed=["methods"]
            ),
            *([] if stage is None else [lambda: self._export(api_id, stage)]),
        )
        items: list[Any] = stages_read.get()
        if stage is None:  # the stages' names were needed first
            exports_read = list(
                run_all(*(partial(self._export, api_id, item["stageName"]) for item in items))
            )
        exports = [exported.get() for exported in exports_read]
        resources: list[Any] = resources_read.get()
        uses_authorizers = any(map(_uses_authorizer, resources)) or any(map(_declares_authorizer, exports))
        known = authorizers_from_list(self._authorizers(api_id)) if uses_authorizers else ()
        stages = tuple(
            Stage(
                item["stageName"],
                dict(item.get("variables") or {}),
                (item.get("methodSettings") or {}).get("*/*", {}).get("loggingLevel"),
                _served(api_id, item["stageName"], document, known),
                item.get("deploymentId"),
                Canary.from_settings(item.get("canarySettings")),
            )
            for item, document in zip(items, exports, strict=True)
        )
        working_copy = from_resources(resources, known)
        return ApiDefinition(api, stages, working_copy, stage)

    def _stages(self, api_id: str, stage: str | None) -> list[Any]:
        """GetStages, or GetStage when one stage is asked for (a missing one is a NotFoundError)."""
        if stage is None:
            return list(self._call("GetStages", self._client.get_stages, restApiId=api_id)["item"])
        try:
            return [self._paced("GetStage", self._client.get_stage, restApiId=api_id, stageName=stage)]
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                raise NotFoundError(f"API {api_id} has no stage {stage!r}") from exc
            raise AwsCallError(f"GetStage {api_id}/{stage}: {exc}") from exc

    def _export(self, api_id: str, stage: str) -> Any:
        """The stage's deployment as its OAS 3.0 export shows it, with integrations and authorizers."""
        response = self._call(
            "GetExport",
            self._client.get_export,
            restApiId=api_id,
            stageName=stage,
            exportType="oas30",
            parameters={"extensions": "integrations,authorizers"},
            accepts="application/json",
        )
        try:
            return json.loads(response["body"].read())
        except (ValueError, KeyError) as exc:
            raise AwsCallError(f"GetExport {api_id}/{stage}: not a JSON document ({exc})") from exc

    def _authorizers(self, api_id: str) -> list[dict[str, Any]]:
        return self._items("GetAuthorizers", self._client.get_authorizers, restApiId=api_id)

    def _items(self, name: str, operation: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a paginated listing, a paced call per page of 500."""
        items: list[dict[str, Any]] = []
        position: str | None = None
        while True:
            page = self._call(
                name, operation, limit=PAGE_SIZE, **kwargs, **({"position": position} if position else {})
            )
            items.extend(page.get("items", []))
            position = page.get("position")
            if not position:
                return items

    def _paced(self, name: str, operation: Any, **kwargs: Any) -> Any:
        """One call under the account's API Gateway quotas (botocore errors pass through)."""
        return self._pacer.call("apigateway", name, lambda: operation(**kwargs), throttled)

    def _call(self, name: str, operation: Any, **kwargs: Any) -> Any:
        try:
            return self._paced(name, operation, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                raise NotFoundError(str(exc)) from exc
            raise call_error(str(exc), exc) from exc


def _served(api_id: str, stage: str, document: Any, known: Sequence[Authorizer]) -> ApiSpec:
    try:
        return from_export(document, known)
    except ParseError as exc:
        raise AwsCallError(f"GetExport {api_id}/{stage}: {exc}") from exc


def _uses_authorizer(resource: Mapping[str, Any]) -> bool:
    """Whether a working-copy resource has a method behind an authorizer (whose id needs GetAuthorizers)."""
    methods = resource.get("resourceMethods") or {}
    return any(isinstance(m, Mapping) and m.get("authorizationType") in AUTHORIZED for m in methods.values())


def _declares_authorizer(document: Any) -> bool:
    """Whether an export declares an authorizer (matched to its id by name, from GetAuthorizers)."""
    if not isinstance(document, Mapping):
        return False
    components = document.get("components")
    schemes = (
        components.get("securitySchemes") if isinstance(components, Mapping) else None
    ) or document.get("securityDefinitions")
    return isinstance(schemes, Mapping) and any(
        isinstance(scheme, Mapping) and AUTHORIZER in scheme for scheme in schemes.values()
    )


def _v1(api: V2Api) -> RestApi:
    return RestApi(api.api_id, api.name, api.protocol)
