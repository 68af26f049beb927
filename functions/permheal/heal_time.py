"""Time to heal: from the first failure (or the change that caused it) to the repair that fixed it.

The dashboard's "time to heal" metric. Pure: the summarize step passes the execution's request and
the clock. Only a `repaired` outcome heals; a run without a start time (manual) measures nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from permheal.models import Outcome


def time_to_heal(request: Any, outcome: Outcome, now: datetime) -> float | None:
    """Seconds since the detector's first failure line (or a CloudTrail event's time), when repaired."""
    if outcome is not Outcome.REPAIRED or not isinstance(request, dict):
        return None
    trigger = request.get("trigger")
    started = request.get("detectedAt") or (trigger.get("eventTime") if isinstance(trigger, dict) else None)
    if not isinstance(started, str):
        return None
    try:
        began = datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    if began.tzinfo is None:
        return None
    return max(0.0, (now - began).total_seconds())
