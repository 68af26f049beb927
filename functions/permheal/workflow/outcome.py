"""Step "Summarize for on-call": one result for the whole API, from the steps' results or the state."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from permheal.errors import ParseError
from permheal.limits import clip
from permheal.models import Finding, Outcome, RemediationResult
from permheal.workflow.state import RepairResult, Resolution


def summarize(resolution: Resolution, repairs: Sequence[RepairResult]) -> RemediationResult:
    """One result for the whole API: the outcome on-call reads first, then every change and finding.

    Any repair with an error or a refusal makes the run `failed`, a dry run too: a dry run whose
    plan would leave a call failing (denied, refused for size, function missing) predicts a failure
    that needs a human, so it exits 1 like the real run would, and its error says why.
    """
    changes = tuple(r.change for r in repairs if r.change.changed)
    types = {resolution.api.api_id: resolution.api.api_type}
    findings = tuple(
        with_api_type(f, types) for f in resolution.findings + tuple(f for r in repairs for f in r.findings)
    )
    problems = [r.error or r.refusal for r in repairs if (r.error or r.refusal) and not r.flapping]
    flapping = [r.refusal for r in repairs if r.flapping]
    if problems:
        outcome, error = Outcome.FAILED, "; ".join(str(p) for p in problems + flapping)
    elif flapping:
        outcome, error = Outcome.FLAPPING, "; ".join(str(p) for p in flapping)
    elif resolution.dry_run:
        outcome, error = Outcome.DRY_RUN, None
    else:
        outcome, error = (Outcome.REPAIRED if changes else Outcome.NO_CHANGE), None
    return RemediationResult(
        outcome, resolution.api.api_id, resolution.stage, resolution.api.name, changes, findings, error
    )


def with_api_type(finding: Finding, types: dict[str, str]) -> Finding:
    """The finding with its API's kind when it names a known API (grant findings come without one)."""
    if finding.api_type or finding.api_id not in types:
        return finding
    return replace(finding, api_type=types[str(finding.api_id)])


def refused(resolution: Resolution) -> RemediationResult:
    return RemediationResult(
        Outcome.REFUSED,
        resolution.api.api_id,
        resolution.stage,
        resolution.api.name,
        error=f"API {resolution.api.name} ({resolution.api.api_id}) is not in the allowlist; nothing changed",
    )


def result_from_state(state: Any) -> RemediationResult:
    """The remediation result from the workflow's state, on the success and on the failure path."""
    if not isinstance(state, dict):
        raise ParseError("workflow state must be an object")
    if "error" in state:
        return _crashed(state)
    resolution = Resolution.from_dict(state.get("resolution"))
    if not resolution.allowed:
        return refused(resolution)
    raw_repairs = state.get("repairs") or []
    if not isinstance(raw_repairs, list):
        raise ParseError("workflow state: repairs must be a list")
    repairs = [RepairResult.from_dict(r) for r in raw_repairs]
    result = summarize(resolution, repairs)
    omitted = resolution.findings_omitted + sum(r.findings_omitted for r in repairs)
    return replace(result, findings_omitted=result.findings_omitted + omitted)


def _crashed(state: dict[str, Any]) -> RemediationResult:
    """A step failed as a whole: name the API as resolved (or as requested) and say where changes are."""
    error = error_text(state["error"])
    with contextlib.suppress(ParseError):
        resolution = Resolution.from_dict(state.get("resolution"))
        api = resolution.api
        if resolution.allowed and resolution.groups:
            error += f" (functions may have been changed before that: `permheal history --api {api.api_id}`)"
        return RemediationResult(Outcome.FAILED, api.api_id, resolution.stage, api.name or None, error=error)
    request = state.get("request")
    if not isinstance(request, dict):
        request = {}
    api_text = request.get("apiId") or request.get("apiName")
    stage = request.get("stage")
    return RemediationResult(
        Outcome.FAILED, str(api_text) if api_text else None, str(stage) if stage else None, error=error
    )


def error_text(error: Any) -> str:
    """`Error: message` from a Step Functions Catch, unwrapping a Lambda error payload."""
    if not isinstance(error, dict):
        return clip(str(error), 2000) or ""
    name, cause = str(error.get("Error", "Error")), error.get("Cause", "")
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)
    return clip(f"{name}: {cause}", 2000) or ""
