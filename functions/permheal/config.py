"""Settings, read and validated once from the environment (never at import time)."""

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
    mode: Mode = Mode.ENFORCE
    scope: Scope = Scope.METHOD
    allowlist_param: str = "/permheal/allowed-apis"
    prune_stale: bool = False
    consolidate: bool = False
    state_machine_arn: str | None = None
    topic_arn: str | None = None
    max_write_attempts: int = 5
    ledger_table: str | None = None
    flap_threshold: int = 3
    flap_window_hours: int = 24
    dedupe_iac: bool = False
    """Remove redundant statements a CloudFormation/SAM/CDK stack owns (default: report them only)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            mode=_enum(Mode, env, "PERMHEAL_MODE", Mode.ENFORCE),
            scope=_enum(Scope, env, "PERMHEAL_SCOPE", Scope.METHOD),
            allowlist_param=env.get("PERMHEAL_ALLOWLIST_PARAM") or "/permheal/allowed-apis",
            prune_stale=_flag(env, "PERMHEAL_PRUNE_STALE"),
            consolidate=_flag(env, "PERMHEAL_CONSOLIDATE"),
            state_machine_arn=env.get("PERMHEAL_STATE_MACHINE_ARN") or None,
            topic_arn=env.get("PERMHEAL_TOPIC_ARN") or None,
            ledger_table=env.get("PERMHEAL_LEDGER_TABLE") or None,
            flap_threshold=_positive(env, "PERMHEAL_FLAP_THRESHOLD", 3),
            flap_window_hours=_positive(env, "PERMHEAL_FLAP_WINDOW_HOURS", 24),
            dedupe_iac=_flag(env, "PERMHEAL_DEDUPE_IAC"),
        )

    def dry_run(self, requested: bool = False) -> bool:
        """An execution may ask to be drier than the deployment, never wetter."""
        return self.mode is Mode.DRY_RUN or requested


def _enum(kind: type[E], env: Mapping[str, str], name: str, default: E) -> E:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise ConfigError(f"{name}={raw!r} is not one of: {allowed}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name}={raw!r} must be true or false")
    return raw in ("true", "1", "yes")


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be a positive whole number")
    return value
