"""Make moto's API Gateway v2 list authorizers and paginate lists, like AWS.

moto 5.2.5's apigatewayv2 has no GetAuthorizers (a list: NotImplementedError) and ignores
``MaxResults``/``NextToken`` on GetApis, GetRoutes, GetIntegrations and GetStages (aws-facts.md §8).
AWS pages every one of them, so an adapter that reads only the first page looks right on moto and
misses routes on AWS. :func:`install` patches moto in-process, class-level (``mock_aws`` and a
``ThreadedMotoServer`` in this process both see it), as `faithful_apigateway` does for REST:

- GetAuthorizers returns the API's authorizers (the same items GetAuthorizer returns);
- the five lists honour ``maxResults`` (AWS's default page is 25 items here too, at most 500) and
  ``nextToken``, answering ``nextToken`` while items remain.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from moto.apigatewayv2.exceptions import BadRequestException
from moto.apigatewayv2.responses import ApiGatewayV2Response

__all__ = ["DEFAULT_PAGE", "install", "is_installed", "uninstall"]

DEFAULT_PAGE = 25
MAX_PAGE = 500
_LOCK = threading.RLock()
_ORIGINALS: dict[str, Any] = {}

Response = tuple[int, dict[str, Any], str]


def _page(self: ApiGatewayV2Response, items: Sequence[dict[str, Any]]) -> Response:
    """One page of `items` as AWS answers it: `items` and, while more remain, `nextToken`."""
    try:
        size = int(self._get_param("maxResults") or DEFAULT_PAGE)
        start = int(self._get_param("nextToken") or 0)
    except ValueError as exc:
        raise BadRequestException(f"Invalid pagination parameter: {exc}") from exc
    if not 1 <= size <= MAX_PAGE or start < 0:
        raise BadRequestException("maxResults must be between 1 and 500")
    body: dict[str, Any] = {"items": list(items[start : start + size])}
    if start + size < len(items):
        body["nextToken"] = str(start + size)
    return 200, {}, json.dumps(body)


def _api_id(self: ApiGatewayV2Response) -> str:
    return str(self.path.split("/")[-2])


def _get_apis(self: ApiGatewayV2Response) -> Response:
    return _page(self, [api.to_json() for api in self.apigatewayv2_backend.get_apis()])


def _get_routes(self: ApiGatewayV2Response) -> Response:
    return _page(self, [route.to_json() for route in self.apigatewayv2_backend.get_routes(_api_id(self))])


def _get_integrations(self: ApiGatewayV2Response) -> Response:
    items = self.apigatewayv2_backend.get_integrations(_api_id(self))
    return _page(self, [integration.to_json() for integration in items])


def _get_stages(self: ApiGatewayV2Response) -> Response:
    return _page(self, [stage.to_json() for stage in self.apigatewayv2_backend.get_stages(_api_id(self))])


def _get_authorizers(self: ApiGatewayV2Response) -> Response:
    api = self.apigatewayv2_backend.get_api(_api_id(self))  # NotFoundException for an unknown API
    return _page(self, [authorizer.to_json() for authorizer in api.authorizers.values()])


_PATCHES: tuple[tuple[str, Callable[[ApiGatewayV2Response], Response]], ...] = (
    ("get_apis", _get_apis),
    ("get_routes", _get_routes),
    ("get_integrations", _get_integrations),
    ("get_stages", _get_stages),
    ("get_authorizers", _get_authorizers),
)


def install() -> None:
    """Patch moto's API Gateway v2; calling it again does nothing."""
    with _LOCK:
        if _ORIGINALS:
            return
        for name, replacement in _PATCHES:
            _ORIGINALS[name] = ApiGatewayV2Response.__dict__.get(name)
            setattr(ApiGatewayV2Response, name, replacement)


def uninstall() -> None:
    """Restore moto's own methods (and remove the ones moto does not have)."""
    with _LOCK:
        for name, original in _ORIGINALS.items():
            if original is None:
                delattr(ApiGatewayV2Response, name)
            else:
                setattr(ApiGatewayV2Response, name, original)
        _ORIGINALS.clear()


def is_installed() -> bool:
    """Whether :func:`install` is in effect."""
    return bool(_ORIGINALS)
