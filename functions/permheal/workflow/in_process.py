"""The whole workflow in one process, step for step what the state machine runs (`remediate --local`).

tests/integration/test_orchestrators.py runs scenarios through both and compares the results.
"""

from __future__ import annotations

from permheal.adapters.ports import Adapters
from permheal.config import Settings
from permheal.models import RemediationResult
from permheal.workflow.outcome import refused, summarize
from permheal.workflow.repair import repair_group
from permheal.workflow.resolve import resolve
from permheal.workflow.state import ExecutionInput


def remediate(adapters: Adapters, request: ExecutionInput, settings: Settings) -> RemediationResult:
    """The whole workflow in one process: what `permheal remediate --local` runs."""
    resolution = resolve(adapters, request, settings)
    if not resolution.allowed:
        return refused(resolution)
    repairs = [repair_group(adapters, resolution.context, group, settings) for group in resolution.groups]
    return summarize(resolution, repairs)
