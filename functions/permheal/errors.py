"""The errors permheal raises on purpose; anything else escaping is a bug."""

from __future__ import annotations


class PermhealError(Exception):
    """Base class: every deliberate failure of permheal is one of these."""


class ParseError(PermhealError, ValueError):
    """Input (ARN, log line, policy document, event) that cannot be understood."""


class ConfigError(PermhealError):
    """A setting or deployment parameter is missing or invalid."""


class NotFoundError(PermhealError):
    """An API, stage or function named by the caller does not exist."""


class AmbiguousApiError(PermhealError):
    """An API name is shared by several APIs; the caller must use an id."""


class ConflictError(PermhealError):
    """Concurrent writers kept changing a policy; gave up after bounded retries."""


class AwsCallError(PermhealError):
    """An AWS call failed in a way retries could not fix."""


class ThrottledError(AwsCallError):
    """AWS refused a call for its rate beyond every retry: the state machine waits longer and retries.

    Its own name, so the workflow's Retry can give throttling a longer wait than other failures.
    """


class AwsClientError(PermhealError):
    """The caller's AWS environment cannot do the job: no or rejected credentials, endpoint
    unreachable, access denied, throttled beyond retries. Retrying unchanged will not help."""
