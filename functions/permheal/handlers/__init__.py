"""Thin Lambda handlers, one module per function; each makes one call into the domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from permheal.adapters.ports import Adapters
    from permheal.config import Settings


def adapters_for(context: Any, settings: Settings) -> Adapters:
    """Real adapters; the account comes from the function's own ARN instead of an STS call."""
    # Imported here, not at module level: the detector imports this package but never needs the
    # adapters, and every module it loads is paid for at each cold start.
    from permheal.adapters.account import Identity
    from permheal.adapters.ports import Adapters

    adapters = Adapters.default(settings.ledger_table)
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    if len(parts) >= 5 and parts[4].isdigit():
        identity = Identity(parts[1], parts[4])
        adapters.identity = lambda: identity
    return adapters
