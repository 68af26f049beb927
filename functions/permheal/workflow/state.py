"""The workflow's wire types: what crosses Step Functions between the steps, and nothing else.

ExecutionInput is what starts an execution (the detector, the CLI and the demo write it with
`to_event`, Resolve reads it with `from_event`); Resolution is Resolve's result, whose `context`
(RepairContext) goes to every Map iteration; RepairResult is one iteration's result. Every one
keeps to its share of the state (permheal.limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from permheal.arns import ApiRef, FunctionRef
from permheal.errors import ParseError
from permheal.limits import (
    MAX_GROUPS,
    REPAIRS_BUDGET,
    REQUEST_BUDGET,
    RESOLUTION_BUDGET,
    TooLargeError,
    clip,
    fit,
    json_size,
    repair_budget,
)
from permheal.models import Change, Finding, RestApi, Target, Trigger
from permheal.targets import Hint

MAX_STATE_FINDINGS = 50


def capped(findings: Sequence[Finding], limit: int = MAX_STATE_FINDINGS) -> list[dict[str, Any]]:
    """Findings for the workflow state: at most `limit`, and never more than MAX_STATE_FINDINGS."""
    return [f.to_dict() for f in findings[: min(limit, MAX_STATE_FINDINGS)]]


def _with_omitted(data: dict[str, Any], key: str, count: int) -> dict[str, Any]:
    """`data` plus `key: count` when something was left out (a complete copy looks as before)."""
    if count:
        data[key] = count
    return data


def _omitted_count(data: dict[str, Any], key: str) -> int:
    count = int(data.get(key) or 0)
    if count < 0:
        raise ValueError(f"{key} must not be negative")
    return count


@dataclass(frozen=True)
class ExecutionInput:
    """What starts an execution: an API by id or name, an optional stage, optional log hints.

    The one writer (`to_event`: the detector, the CLI, the demo) and the one reader (`from_event`:
    Resolve), so a field one side adds is never dropped by the other. `log_group`, `detected_at`
    and `failures` say where a detected incident came from (shown in the execution's input).

    An access-log incident (`"logType": "access"`) names its log group and, when the line's format
    has them, an API id and stage: the stage whose access log that group is gets resolved first.
    """

    api: str
    stage: str | None = None
    hints: tuple[Hint, ...] = ()
    dry_run: bool = False
    source: str = "manual"
    by_id: bool = False
    """`api` is an id (the detector knows it) rather than what an operator typed (a name or an id)."""
    log_group: str | None = None
    log_type: str | None = None
    """"access" for an access-log incident (else an execution-log one, or a manual run)."""
    detected_at: str | None = None
    failures: int | None = None
    trigger: Trigger | None = None
    """The CloudTrail deploy event that started a proactive run (`source` "cloudtrail")."""
    not_before: str | None = None
    """A proactive run's debounce: the workflow waits until then (ISO 8601 UTC) before reading the API."""

    @property
    def access_log_group(self) -> str | None:
        return self.log_group if self.log_type == "access" else None

    def to_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"source": self.source}
        if self.api:  # an access-log incident may name no API: its log group does
            event["apiId" if self.by_id else "apiName"] = self.api
        if self.stage is not None:
            event["stage"] = self.stage
        if self.trigger is None or self.dry_run or self.hints:
            # a deploy event's input is the contract's proactive input: no log evidence to carry
            event.update(dryRun=self.dry_run, hints=[h.to_dict() for h in self.hints])
        optional: dict[str, Any] = {
            "logGroup": self.log_group,
            "logType": self.log_type,
            "detectedAt": self.detected_at,
            "failures": self.failures,
            "trigger": None if self.trigger is None else self.trigger.to_dict(),
            "notBefore": self.not_before,
        }
        event.update((key, value) for key, value in optional.items() if value is not None)
        return event

    @classmethod
    def from_event(cls, event: Any) -> ExecutionInput:
        if not isinstance(event, dict):
            raise ParseError("execution input must be a JSON object")
        if json_size(event) > REQUEST_BUDGET:  # the state carries the input to the end (limits.py)
            raise ParseError(f"execution input must be at most {REQUEST_BUDGET} bytes of JSON")
        api = event.get("apiId") or event.get("apiName")
        access = event.get("logType") == "access"
        if access:
            group = event.get("logGroup")
            if not isinstance(group, str) or not 0 < len(group) <= 512:
                raise ParseError('an access-log input needs "logGroup" (a log group name)')
            api = api or ""  # the stage whose access log this group is names the API (resolve)
        if not isinstance(api, str) or len(api) > 1024 or (not access and not api.strip()):
            raise ParseError('execution input needs "apiId" or "apiName" (a non-empty string)')
        stage = event.get("stage")
        if stage is not None and (not isinstance(stage, str) or not stage.strip() or len(stage) > 128):
            raise ParseError('"stage" must be a non-empty string when given')
        hints = event.get("hints") or []
        if not isinstance(hints, list) or not all(isinstance(h, dict) for h in hints):
            raise ParseError('"hints" must be a list of objects')
        dry_run = event.get("dryRun", False)
        if not isinstance(dry_run, bool):
            raise ParseError('"dryRun" must be true or false')
        failures = event.get("failures")
        if failures is not None and (not isinstance(failures, int) or isinstance(failures, bool)):
            raise ParseError('"failures" must be a whole number when given')
        trigger = event.get("trigger")
        return cls(
            api.strip(),
            stage,
            tuple(Hint.from_dict(h) for h in hints[:100]),
            dry_run,
            str(event.get("source") or "manual")[:64],
            by_id=bool(event.get("apiId")),
            log_group=_text(event, "logGroup"),
            log_type="access" if access else None,
            detected_at=_text(event, "detectedAt"),
            failures=failures,
            trigger=None if trigger is None else Trigger.from_dict(trigger),
            not_before=_text(event, "notBefore"),
        )


def _text(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is not None and not isinstance(value, str):
        raise ParseError(f'"{key}" must be a string when given')
    return value


@dataclass(frozen=True)
class FunctionGroup:
    """One function+qualifier and every target of the API that invokes it."""

    function: FunctionRef
    targets: tuple[Target, ...]

    def to_dict(self) -> dict[str, Any]:
        """The Map's item. Targets go as a table (`sites`: columns once, one row per target), half
        the bytes of a list of objects, so a 1,000-method API fits its share of the state."""
        api = self.targets[0].api
        sites = [t.site() for t in self.targets]
        columns = list(dict.fromkeys(key for site in sites for key in site))
        return {
            "functionArn": self.function.arn,
            "function": asdict(self.function),
            "api": asdict(api),
            "sites": {"columns": columns, "rows": [[site.get(c) for c in columns] for site in sites]},
        }

    @classmethod
    def from_dict(cls, data: Any) -> FunctionGroup:
        """Also reads `targets` as a list of objects: an execution started before an update carries it."""
        try:
            sites = _sites(data)
            function = FunctionRef(**data["function"])
            api = ApiRef(**data["api"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed function group: {exc!r}") from exc
        if not sites:
            raise ParseError("a function group needs a non-empty list of targets")
        return cls(function, tuple(Target.at_site(api, function, site) for site in sites))


def _sites(data: dict[str, Any]) -> list[Any]:
    if "sites" not in data:
        targets = data["targets"]
        if not isinstance(targets, list):
            raise TypeError("targets must be a list")
        return targets
    columns, rows = data["sites"]["columns"], data["sites"]["rows"]
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise TypeError("sites must have a list of columns and a list of rows")
    if not all(isinstance(row, list) and len(row) == len(columns) for row in rows):
        raise ValueError("every row of sites must have one value per column")
    return [dict(zip(columns, row, strict=True)) for row in rows]


@dataclass(frozen=True)
class RepairContext:
    """What every repair (one Map iteration) needs to know about the run: the resolution's `context`."""

    api: RestApi
    stage: str | None
    existing_api_ids: frozenset[str] | None = None
    dry_run: bool = False
    source: str = "manual"
    execution_arn: str = ""
    repair_budget: int = REPAIRS_BUDGET
    """Bytes one repair result may take in the workflow state (its share of REPAIRS_BUDGET)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiId": self.api.api_id,
            "apiName": self.api.name,
            "apiType": self.api.api_type,
            "stage": self.stage,
            "dryRun": self.dry_run,
            "existingApiIds": None if self.existing_api_ids is None else sorted(self.existing_api_ids),
            "source": self.source,
            "executionArn": self.execution_arn,
            "repairBudget": self.repair_budget,
        }

    @classmethod
    def from_dict(cls, context: Any) -> RepairContext:
        try:
            existing = context.get("existingApiIds")
            return cls(
                RestApi(
                    context["apiId"], context.get("apiName") or "", str(context.get("apiType") or "REST")
                ),
                context.get("stage"),
                None if existing is None else frozenset(existing),
                bool(context.get("dryRun")),
                str(context.get("source") or "manual"),
                str(context.get("executionArn") or ""),
                min(REPAIRS_BUDGET, int(context.get("repairBudget") or REPAIRS_BUDGET)),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed repair context: {exc!r}") from exc


@dataclass(frozen=True)
class Resolution:
    """Resolve's result: whether the API may be repaired, the work (`groups`), what it found."""

    api: RestApi
    stage: str | None
    allowed: bool
    groups: tuple[FunctionGroup, ...] = ()
    findings: tuple[Finding, ...] = ()
    existing_api_ids: frozenset[str] | None = None
    dry_run: bool = False
    source: str = "manual"
    execution_arn: str = ""
    findings_omitted: int = 0
    repair_budget: int = REPAIRS_BUDGET
    """Bytes one repair result may take in the workflow state (set by `to_dict` from the groups)."""

    @property
    def context(self) -> RepairContext:
        return RepairContext(
            self.api,
            self.stage,
            self.existing_api_ids,
            self.dry_run,
            self.source,
            self.execution_arn,
            self.repair_budget,
        )

    def to_dict(self) -> dict[str, Any]:
        """Workflow state within RESOLUTION_BUDGET: `groups` feed the Map, `context` goes to every repair.

        Groups are the work to do and are never cut: an API with more than one execution can carry is
        refused (TooLargeError) before anything changes. Findings are cut to what fits, counted.
        """
        groups = [g.to_dict() for g in self.groups]
        if len(groups) > MAX_GROUPS:
            raise self._too_large(f"{len(groups)} function+qualifier targets (at most {MAX_GROUPS})")
        context = replace(self.context, repair_budget=repair_budget(len(groups))).to_dict()

        def render(kept: int) -> dict[str, Any]:
            findings = capped(self.findings, kept)
            data = {"allowed": self.allowed, "groups": groups, "findings": findings, "context": context}
            return _with_omitted(
                data, "findingsOmitted", self.findings_omitted + len(self.findings) - len(findings)
            )

        try:
            return fit(render, RESOLUTION_BUDGET, min(len(self.findings), MAX_STATE_FINDINGS))
        except TooLargeError:
            raise self._too_large(
                f"{json_size(groups)} bytes of targets (at most {RESOLUTION_BUDGET})"
            ) from None

    def _too_large(self, what: str) -> TooLargeError:
        return TooLargeError(
            f"API {self.api.name} ({self.api.api_id}) has {what} for one workflow execution: "
            "remediate it one stage at a time (`--stage`), or in process with `permheal remediate --local`"
        )

    @classmethod
    def from_dict(cls, data: Any) -> Resolution:
        try:
            context = RepairContext.from_dict(data["context"])
            return cls(
                context.api,
                context.stage,
                bool(data["allowed"]),
                tuple(FunctionGroup.from_dict(g) for g in data.get("groups", [])),
                tuple(Finding.from_dict(f) for f in data.get("findings", [])),
                context.existing_api_ids,
                context.dry_run,
                context.source,
                context.execution_arn,
                _omitted_count(data, "findingsOmitted"),
                context.repair_budget,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed resolution: {exc!r}") from exc


@dataclass(frozen=True)
class RepairResult:
    """What repairing one function+qualifier did, and whether every target can now call it."""

    change: Change
    findings: tuple[Finding, ...] = ()
    verified: bool = True
    refusal: str | None = None
    error: str | None = None
    flapping: bool = False
    policy_before: dict[str, Any] = field(default_factory=dict)
    policy_after: dict[str, Any] = field(default_factory=dict)
    findings_omitted: int = 0

    @classmethod
    def failed(cls, function: FunctionRef, error: str) -> RepairResult:
        """A Map iteration that failed for good: its function, named in the error, changed nothing known."""
        change = Change(function.unqualified_arn, function.qualifier)
        return cls(change, verified=False, error=f"{function.label}: {error}")

    def to_dict(self, budget: int = REPAIRS_BUDGET) -> dict[str, Any]:
        """One Map iteration's result within `budget` bytes (its share of REPAIRS_BUDGET).

        Removed statements' bodies are left out and long lists cut, counted: the audit ledger holds
        the whole change (and the repair's log line, should the ledger write have failed).
        """
        text_limit = max(64, budget // 4)

        def render(kept: int) -> dict[str, Any]:
            findings = capped(self.findings, kept)
            data = {
                "change": self.change.to_dict(kept, statements=False),
                "findings": findings,
                "verified": self.verified,
                "refusal": clip(self.refusal, text_limit),
                "error": clip(self.error, text_limit),
                "flapping": self.flapping,
            }
            return _with_omitted(
                data, "findingsOmitted", self.findings_omitted + len(self.findings) - len(findings)
            )

        change = self.change
        return fit(render, budget, max(len(change.added), len(change.removed), len(self.findings)))

    @classmethod
    def from_dict(cls, data: Any) -> RepairResult:
        try:
            if "failedFunction" in data:  # the ASL's last resort: the function and the error's name
                function = FunctionRef(**data["failedFunction"])
                return cls.failed(function, f"{data['error']} (details in the execution history)")
            return cls(
                Change.from_dict(data["change"]),
                tuple(Finding.from_dict(f) for f in data.get("findings", [])),
                bool(data.get("verified", False)),
                data.get("refusal"),
                data.get("error"),
                bool(data.get("flapping", False)),
                findings_omitted=_omitted_count(data, "findingsOmitted"),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ParseError(f"malformed repair result: {exc!r}") from exc
