"""Thin Lambda handlers, one module per function; each makes one call into the domain."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from permheal.adapters.ports import Adapters
    from permheal.config import Settings
    from permheal.pacing import Pacer

_ENVIRONMENT = threading.local()


def adapters_for(context: Any, settings: Settings) -> Adapters:
    """Real adapters; the account comes from the function's own ARN instead of an STS call."""
    # Imported here, not at module level: the detector imports this package but never needs the
    # adapters, and every module it loads is paid for at each cold start.
    from permheal.adapters.account import Identity
    from permheal.adapters.ports import Adapters

    adapters = Adapters.default(settings.ledger_table, _environment_pacer(settings.quota_share))
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    if len(parts) >= 5 and parts[4].isdigit():
        identity = Identity(parts[1], parts[4])
        adapters.identity = lambda: identity
    return adapters


def _environment_pacer(share: float) -> Pacer:
    """This execution environment's part of the account's quotas, kept across its invocations.

    A Map of REPAIR_CONCURRENCY iterations runs on as many environments at once: each paces at that
    fraction of `share`, so together they keep to it (a pacer made per invocation would let an
    environment's consecutive invocations call back to back). Per thread: Lambda runs an
    environment's invocations on one thread, the local AWS runs each environment on its own.
    """
    from permheal.pacing import REPAIR_CONCURRENCY, Pacer

    pacer: Pacer | None = getattr(_ENVIRONMENT, "pacer", None)
    if pacer is None or pacer.share != share / REPAIR_CONCURRENCY:
        pacer = _ENVIRONMENT.pacer = Pacer.one_of(REPAIR_CONCURRENCY, share)
    return pacer
