"""The ways IaC breaks a working API's invoke permissions, applied to a deployed corpus template."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from permheal_local.builder import World
from tests.corpus import manifest
from tests.corpus.deployer import Deployed, Grant
from tests.corpus.judge import GATEWAY, api_prefix

OLD_API_ID = "0ld4p1d000"
OLD_STAGE = "old-stage"
OLD_AUTHORIZER = "0ld4ut"


def api_grants(deployed: Deployed, api_ids: Iterable[str]) -> list[Grant]:
    """The template's API Gateway grants for the APIs given (those that serve stages)."""
    prefixes = tuple(api_prefix(api_id) for api_id in api_ids)
    return [
        g for g in deployed.grants if g.principal == GATEWAY and str(g.source_arn or "").startswith(prefixes)
    ]


def apply(name: str, world: World, deployed: Deployed, api_ids: Iterable[str]) -> int:
    """Break the grants as `name` says; the number of grants touched."""
    grants = api_grants(deployed, api_ids)
    action: Callable[[World, Grant], None] = _ACTIONS[name]
    touched = [g for g in grants if name != manifest.UNQUALIFIED or g.qualifier is not None]
    for grant in touched:
        action(world, grant)
    return len(touched)


def _remove(world: World, grant: Grant) -> None:
    world.client("lambda").remove_permission(
        FunctionName=grant.function,
        StatementId=grant.sid,
        **({"Qualifier": grant.qualifier} if grant.qualifier else {}),
    )


def _add(world: World, grant: Grant, sid: str, source_arn: str, qualifier: str | None) -> None:
    world.client("lambda").add_permission(
        FunctionName=grant.function,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal=GATEWAY,
        SourceArn=source_arn,
        **({"Qualifier": qualifier} if qualifier else {}),
    )


def _rescope(rewrite: Callable[[str, str], str]) -> Callable[[World, Grant], None]:
    def action(world: World, grant: Grant) -> None:
        _remove(world, grant)
        prefix, _, rest = str(grant.source_arn).partition("/")
        _add(world, grant, grant.sid, rewrite(prefix, rest), grant.qualifier)

    return action


def _other_stage(prefix: str, rest: str) -> str:
    head, _, tail = rest.partition("/")
    if head == "authorizers":
        return f"{prefix}/authorizers/{OLD_AUTHORIZER}"
    return f"{prefix}/{OLD_STAGE}/{tail}"


def _old_api(prefix: str, rest: str) -> str:
    return f"{prefix.rsplit(':', 1)[0]}:{OLD_API_ID}/{rest}"


def _unqualified(world: World, grant: Grant) -> None:
    _remove(world, grant)
    _add(world, grant, grant.sid, str(grant.source_arn), None)


def _console_duplicates(world: World, grant: Grant) -> None:
    for copy in (1, 2):
        digest = hashlib.sha256(f"{grant.sid}/{copy}".encode()).hexdigest()
        sid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        _add(world, grant, sid, str(grant.source_arn), grant.qualifier)


_ACTIONS: dict[str, Callable[[World, Grant], None]] = {
    manifest.DROP: _remove,
    manifest.OTHER_STAGE: _rescope(_other_stage),
    manifest.OLD_API_ID: _rescope(_old_api),
    manifest.UNQUALIFIED: _unqualified,
    manifest.CONSOLE_DUPLICATES: _console_duplicates,
}
