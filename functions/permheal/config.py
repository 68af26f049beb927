"""Every environment variable permheal reads, parsed and validated once, one settings type per entry point.

- Settings: the workflow steps (resolve, repair) and what `remediate --local` / `scan` plan with;
- DetectorSettings: the detector Lambda;
- ProactiveSettings: the proactive trigger (CloudTrail deploy events);
- SummarySettings: the summarize step (only the region, so a bad planning variable never stops on-call
  from hearing about the run);
- CliSettings: the command line (the workflow's settings plus where the deployed stack is);
- trace_aws_calls: every handler (whether Powertools' Tracer records each AWS call).

Never read at import time. The SDK's own variables (AWS_PROFILE, AWS_ENDPOINT_URL) stay with boto3
and the client factory (adapters/aws.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from permheal.errors import ConfigError
from permheal.models import Scope

E = TypeVar("E", bound=StrEnum)


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class Settings:
    """How the workflow steps behave (PERMHEAL_* variables of the resolve and repair functions)."""

    mode: Mode = Mode.ENFORCE
    scope: Scope = Scope.METHOD
    allowlist_param: str = "/permheal/allowed-apis"
    prune_stale: bool = False
    consolidate: bool = False
    max_write_attempts: int = 5
    ledger_table: str | None = None
    flap_threshold: int = 3
    flap_window_hours: int = 24
    dedupe_iac: bool = False
    """Remove redundant statements a CloudFormation/SAM/CDK stack owns (default: report them only)."""
    quota_share: float = 0.95
    """The share of each AWS control-plane quota (pacing.QUOTAS) permheal's calls may use."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            mode=_enum(Mode, env, "PERMHEAL_MODE", Mode.ENFORCE),
            scope=_enum(Scope, env, "PERMHEAL_SCOPE", Scope.METHOD),
            allowlist_param=env.get("PERMHEAL_ALLOWLIST_PARAM") or "/permheal/allowed-apis",
            prune_stale=_flag(env, "PERMHEAL_PRUNE_STALE"),
            consolidate=_flag(env, "PERMHEAL_CONSOLIDATE"),
            ledger_table=env.get("PERMHEAL_LEDGER_TABLE") or None,
            flap_threshold=_positive(env, "PERMHEAL_FLAP_THRESHOLD", 3),
            flap_window_hours=_positive(env, "PERMHEAL_FLAP_WINDOW_HOURS", 24),
            dedupe_iac=_flag(env, "PERMHEAL_DEDUPE_IAC"),
            quota_share=_share(env, "PERMHEAL_QUOTA_SHARE", 0.95),
        )

    def dry_run(self, requested: bool = False) -> bool:
        """An execution may ask to be drier than the deployment, never wetter."""
        return self.mode is Mode.DRY_RUN or requested


@dataclass(frozen=True)
class DetectorSettings:
    """What the detector starts and where rejected payloads go."""

    state_machine_arn: str
    dead_letter_queue_url: str
    incident_window_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DetectorSettings:
        from permheal.detection import DEFAULT_WINDOW_SECONDS

        env = os.environ if environ is None else environ
        state_machine, queue = _required(env, "PERMHEAL_STATE_MACHINE_ARN", "PERMHEAL_DEAD_LETTER_QUEUE_URL")
        window = _positive(env, "PERMHEAL_INCIDENT_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)
        return cls(state_machine, queue, window)


@dataclass(frozen=True)
class ProactiveSettings:
    """What the proactive trigger starts, reads and how long it debounces."""

    state_machine_arn: str
    ledger_table: str
    """The routes index (API ids per function) lives in the ledger table."""
    allowlist_param: str = "/permheal/allowed-apis"
    window_seconds: int = 30
    grace_seconds: int = 1
    own_role_arns: frozenset[str] = frozenset()
    """permheal's own roles: their calls (the repair's RemovePermission) start nothing."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProactiveSettings:
        from permheal.proactive import DEFAULT_GRACE_SECONDS, DEFAULT_WINDOW_SECONDS

        env = os.environ if environ is None else environ
        state_machine, table = _required(env, "PERMHEAL_STATE_MACHINE_ARN", "PERMHEAL_LEDGER_TABLE")
        roles = (env.get("PERMHEAL_OWN_ROLE_ARNS") or "").split(",")
        return cls(
            state_machine,
            table,
            env.get("PERMHEAL_ALLOWLIST_PARAM") or "/permheal/allowed-apis",
            _positive(env, "PERMHEAL_PROACTIVE_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS),
            _non_negative(env, "PERMHEAL_PROACTIVE_GRACE_SECONDS", DEFAULT_GRACE_SECONDS),
            frozenset(role.strip() for role in roles if role.strip()),
        )


@dataclass(frozen=True)
class SummarySettings:
    """What the summary step needs beyond the workflow state."""

    region: str = "us-east-1"
    """For the console link of the notification (Lambda sets AWS_REGION)."""
    security_hub: bool = False
    """Record what permheal cannot fix as Security Hub findings (`PERMHEAL_SECURITY_HUB`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SummarySettings:
        env = os.environ if environ is None else environ
        return cls(env.get("AWS_REGION") or "us-east-1", _flag(env, "PERMHEAL_SECURITY_HUB"))


@dataclass(frozen=True)
class CliSettings:
    """The CLI's settings: the workflow's, plus where the deployed stack is."""

    workflow: Settings
    state_machine_arn: str | None = None
    """Else the deployed stack's StateMachineArn output."""
    stack_name: str = "permheal"
    """The deployed stack whose outputs name the state machine and the ledger table."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliSettings:
        env = os.environ if environ is None else environ
        return cls(
            Settings.from_env(env),
            env.get("PERMHEAL_STATE_MACHINE_ARN") or None,
            env.get("PERMHEAL_STACK_NAME") or "permheal",
        )


def cli_debug(environ: Mapping[str, str] | None = None) -> bool:
    """PERMHEAL_DEBUG=1: the CLI prints an internal error's traceback. Read on its own, never
    failing: it is consulted while reporting an error, possibly a bad setting's."""
    env = os.environ if environ is None else environ
    return env.get("PERMHEAL_DEBUG") == "1"


def trace_aws_calls(environ: Mapping[str, str] | None = None) -> bool:
    """PERMHEAL_TRACE_AWS_CALLS=true (template parameter TraceAwsCalls): an X-Ray subsegment per AWS
    call (Powertools' Tracer). Off by default: the X-Ray SDK costs every cold start (observability.py)."""
    env = os.environ if environ is None else environ
    return _flag(env, "PERMHEAL_TRACE_AWS_CALLS")


def _enum(kind: type[E], env: Mapping[str, str], name: str, default: E) -> E:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ConfigError(f"{name}={raw!r} is not one of: {allowed}") from None


def _required(env: Mapping[str, str], first: str, second: str) -> tuple[str, str]:
    """Two variables an entry point cannot run without (the template sets them)."""
    values = env.get(first), env.get(second)
    if not values[0] or not values[1]:
        raise ConfigError(f"{first} and {second} must be set")
    return values[0], values[1]


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}={raw!r} must be true or false")
    return raw in ("true", "1", "yes")


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:  # also refuses nan
        raise ConfigError(f"{name}={raw!r} must be a number more than 0 and at most 1 (a share of the quota)")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole(env, name, default, minimum=1, what="a positive whole number")


def _non_negative(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole(env, name, default, minimum=0, what="a whole number, zero or more")


def _whole(env: Mapping[str, str], name: str, default: int, *, minimum: int, what: str) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be {what}")
    return value
