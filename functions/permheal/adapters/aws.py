"""boto3 client factory: one region, one retry policy and one error translation for every AWS call.

botocore's `standard` mode retries throttling (`TooManyRequestsException`, `ThrottlingException`,
...) and transient 5xx with exponential backoff and jitter, so adapters never hand-roll that.

The region is resolved here and nowhere else: `--region` (recorded with `use_region`), then
`AWS_REGION` (which boto3 alone ignores, though Lambda and the README set it), then
`AWS_DEFAULT_REGION`, then the profile. A missing region is a `ConfigError` before any client
exists, never botocore's `NoRegionError` in the middle of a run.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from permheal.errors import AwsCallError, AwsClientError, ConfigError, PermhealError, ThrottledError

RETRY_ATTEMPTS = 6
"""Attempts per call, the first included (botocore's `total_max_attempts`, as AWS_MAX_ATTEMPTS counts)."""
NO_REGION = (
    "no AWS region: pass --region, or set AWS_REGION (or AWS_DEFAULT_REGION, or region in the AWS profile)"
)
# botocore's own check of a region name, plus lower case: anything else cannot name a region.
_REGION = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

_flag_region: str | None = None


@contextmanager
def use_region(region: str | None) -> Iterator[None]:
    """Record the `--region` flag for the clients made inside (the CLI sets it once per command)."""
    global _flag_region
    previous, _flag_region = _flag_region, (checked_region(region, "--region") if region else None)
    try:
        yield
    finally:
        _flag_region = previous


def checked_region(value: str, source: str) -> str:
    """`value` if it can name a region, else a ConfigError naming where it came from."""
    region = value.strip()
    if not _REGION.fullmatch(region):
        raise ConfigError(f"{source}={value!r} is not an AWS region name (like us-east-1)")
    return region


def region() -> str:
    """The region every client uses: --region, AWS_REGION, AWS_DEFAULT_REGION, then the profile."""
    if _flag_region:
        return _flag_region
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        value = os.environ.get(name, "")
        if value.strip():
            return checked_region(value, name)
    from_profile = _session(*_session_key()).region_name or ""
    if not from_profile.strip():
        raise ConfigError(NO_REGION)
    return checked_region(from_profile, f"region of profile {_profile_name()!r}")


@cache
def _config(max_attempts: int | None = None) -> Any:
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts or RETRY_ATTEMPTS},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="permheal/0.1",
    )


def _max_attempts() -> int | None:
    """AWS_MAX_ATTEMPTS when set (botocore would let our Config override it; the user's word wins)."""
    raw = os.environ.get("AWS_MAX_ATTEMPTS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 20:
        raise ConfigError(f"AWS_MAX_ATTEMPTS={raw!r} must be a whole number from 1 to 20")
    return int(raw)


def client(service: str, region_name: str | None = None) -> Any:
    """A client for `service` in the resolved region, honouring AWS_PROFILE / AWS_ENDPOINT_URL.

    Clients are reused for the life of the process (a warm Lambda saves ~50 ms per client); the
    cache key includes region, endpoint and profile so changing any of them gets a new client.
    Made under a lock: concurrent reads (permheal.parallel) may ask for clients from several
    threads, and boto3 sessions are not thread-safe.
    """
    where = region_name or region()
    endpoint, attempts, session_key = os.environ.get("AWS_ENDPOINT_URL"), _max_attempts(), _session_key()
    with _CLIENT_LOCK:
        return _client(service, where, endpoint, attempts, session_key)


@cache
def _client(
    service: str,
    region_name: str,
    endpoint: str | None,
    max_attempts: int | None,
    session_key: tuple[str | None, str | None, str | None],
) -> Any:
    return _session(*session_key).client(service, region_name=region_name, config=_config(max_attempts))


_CLIENT_LOCK = threading.Lock()


def client_for(service: str, region_name: str, credentials: Credentials) -> Any:
    """A client signed with other credentials (an assumed role), sharing the session's loaded models.

    Not cached: the credentials expire. boto3 sessions are not thread-safe, so clients for several
    accounts are made one at a time; the clients themselves are safe to use from many threads.
    """
    with _CLIENT_LOCK:
        return _session(*_session_key()).client(
            service,
            region_name=region_name,
            config=_config(_max_attempts()),
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )


@dataclass(frozen=True)
class Credentials:
    """Temporary credentials of an assumed role (never logged, never printed)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)


def _profile_name() -> str | None:
    return os.environ.get("AWS_PROFILE") or None


def _session_key() -> tuple[str | None, str | None, str | None]:
    return _profile_name(), os.environ.get("AWS_CONFIG_FILE"), os.environ.get("AWS_SHARED_CREDENTIALS_FILE")


@cache
def _session(profile: str | None, config_file: str | None, credentials_file: str | None) -> Any:
    """One boto3 session per profile and config files: credentials (SSO, assume-role) resolve once.

    The profile stays botocore's to read from AWS_PROFILE (naming it explicitly would make botocore
    skip AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); the arguments only key the cache.
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.session.Session()
    except ProfileNotFound as exc:
        raise ConfigError(f"AWS profile {profile!r} not found ({exc})") from exc


def forget_clients() -> None:
    """Drop cached clients and sessions (a new local AWS or test double starts from fresh ones)."""
    _client.cache_clear()
    _session.cache_clear()


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError, '' for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


# ------------------------------------------------------------------ botocore errors -> domain errors

ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnauthorizedException",
        "AuthorizationError",
        "AuthorizationErrorException",
        "Forbidden",
        "ForbiddenException",
    }
)
BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "UnrecognizedClient",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "AuthFailure",
    }
)
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "BandwidthLimitExceeded",
    }
)


def throttled(exc: BaseException) -> bool:
    """Whether AWS refused the call for its rate (the pacer then pauses and tries again)."""
    return error_code(exc) in THROTTLED


def call_error(message: str, exc: BaseException) -> AwsCallError:
    """The adapters' wrapper of a failed call: a ThrottledError when AWS refused it for its rate."""
    return ThrottledError(message) if throttled(exc) else AwsCallError(message)


READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Search", "Lookup")


def translate(exc: BaseException) -> PermhealError | None:
    """The domain error a botocore failure means (also one an AwsCallError wraps), else None.

    Errors of the caller's environment (no region, no or bad credentials, endpoint unreachable,
    access denied while reading) become ConfigError / AwsClientError with one line saying what to
    fix; any other AWS error (throttled beyond retries, denied writing) becomes an AwsCallError.
    """
    from botocore import exceptions as bx

    if isinstance(exc, PermhealError):  # an adapter's generic wrapper says no more than its cause
        cause = exc.__cause__
        wrapped = isinstance(exc, AwsCallError) and isinstance(cause, bx.BotoCoreError | bx.ClientError)
        return translate(cause) if wrapped and cause is not None else None
    if isinstance(exc, bx.ClientError):
        return _client_error(exc)
    if not isinstance(exc, bx.BotoCoreError):
        return None
    text = _one_line(str(exc))
    if isinstance(exc, bx.NoRegionError):
        return ConfigError(NO_REGION)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AwsClientError(
            f"no AWS credentials ({text}): set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "or sign in (aws sso login)"
        )
    if isinstance(
        exc,
        bx.CredentialRetrievalError
        | bx.SSOError
        | bx.TokenRetrievalError
        | bx.UnauthorizedSSOTokenError
        | bx.RefreshWithMFAUnsupportedError,
    ):
        return AwsClientError(f"cannot get AWS credentials: {text}")
    if isinstance(exc, bx.ProfileNotFound | bx.ConfigNotFound | bx.ConfigParseError | bx.InvalidConfigError):
        return ConfigError(f"AWS configuration: {text}")
    if isinstance(exc, bx.InvalidRegionError):
        return ConfigError(f"{text} (pass --region or set AWS_REGION)")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionError | bx.HTTPClientError):
        return AwsClientError(f"cannot reach the AWS endpoint: {text}")
    if isinstance(exc, bx.ParamValidationError):
        return ConfigError(f"invalid argument: {text}")
    return AwsCallError(text)


def _client_error(exc: Any) -> PermhealError:
    code = error_code(exc)
    operation = getattr(exc, "operation_name", "") or "call"
    message = _one_line(str(exc.response.get("Error", {}).get("Message") or exc))
    if code in ACCESS_DENIED or code.endswith("AccessDeniedException"):
        denied = f"access denied: {operation} ({code}): {message}; the credentials need that permission"
        # Denied reading: nothing can be known, fix the credentials. Denied writing: a failed call
        # of a run that may already have changed other functions, so the run reports it as failed.
        return AwsClientError(denied) if operation.startswith(READ_PREFIXES) else AwsCallError(denied)
    if code in BAD_CREDENTIALS:
        return AwsClientError(f"AWS rejected the credentials: {operation} ({code}): {message}")
    if code in THROTTLED:  # a failed call (a run reports it as failed), not a broken environment
        return AwsCallError(
            f"throttled by AWS beyond retries: {operation} ({code}); "
            "try again later or raise AWS_MAX_ATTEMPTS"
        )
    return AwsCallError(_one_line(str(exc)))


def _one_line(text: str) -> str:
    return " ".join(text.split())
