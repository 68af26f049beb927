"""An opt-in model of AWS on top of moto: API latency, per-account quotas, Lambda cold starts.

moto answers every call in microseconds, never throttles and never starts a Lambda cold, so
benchmarks against it measure permheal's own CPU time only. With the model on, the local AWS
(in-process `mock_aws` and the `permheal local-aws` server alike: both dispatch through moto's
`BaseResponse.call_action`, which the model wraps) behaves in the ways that decide time-to-heal
and whether a scan finishes:

- **latency**: each call sleeps a per-operation round trip (`LATENCY`, every figure stated with
  its source or marked assumed) with seeded lognormal jitter; each Step Functions state entered
  sleeps a transition time;
- **quotas**: token buckets per operation *and per account and region* (`QUOTAS`, from the
  Lambda and API Gateway quota pages). An exhausted bucket answers what AWS answers: HTTP 429,
  error code `TooManyRequestsException` (Lambda adds `Reason: CallerRateLimitExceeded`,
  `Type: User`; API Gateway `{"message": "Too Many Requests"}`), which botocore classifies as a
  throttle, so its retry modes back off and retry exactly as against AWS;
- **CPU share**: a handler's own CPU time (moto's work excluded) is stretched to its memory's
  share of a vCPU (at 512 MB: 1,769/512 = 3.5× slower than one local core), as Lambda allocates it;
- **cold starts**: the first invocation of a function (and any invocation finding every
  execution environment of the function busy, or one idle past `idle_seconds`) waits the
  platform's init constant plus the handler module's import time measured in a fresh process.

Public surface (everything else is private)::

    with aws_model(seed=0, clock=None, ...) as model:   # installs; uninstalls on exit
        model.quota_for("lambda", "GetPolicy")          # -> tuple[Quota, ...] the call draws from
        model.latency_for("lambda", "GetPolicy")        # -> Latency
        model.stats()                                   # calls/throttles/sleeps per operation, cold starts
        model.invocations                               # each invocation: start time, cold start ms
        model.reset_counters(); model.make_cold()       # between benchmark phases
        model.measure_imports(modules)                  # up front, not at the first cold start
        with model.unmodelled(): ...                    # this thread's calls bypass the model
    current()                                           # the installed model, or None

Options (AwsModel's fields): `latency`, `quotas`, `cold_starts`, `handler_cpu` (each can be
switched off),
`jitter`, `latency_table`, `quota_table`, `transition`, `cold_start` (a ColdStart), `import_ms`
(handler module -> ms, e.g. from benchmarks/coldstart.py), `measure`.

`AwsModel(...)` with `FakeClock()` and no install is what the model's own tests use: buckets and
cold starts are then deterministic and nothing sleeps. Time is real otherwise: `time.sleep`, so
a modelled call really takes its latency and concurrent callers really overlap.

Known limits: the local runtime runs one handler at a time (handlers share os.environ), so
concurrent invocations queue (each `Invocation.queued_ms` says how long); quotas of services
permheal barely uses (SNS, Step Functions, CloudWatch Logs) and Lambda's invocation concurrency
are not modelled; latency figures are assumptions (AWS publishes none) and the tables can be
replaced per model. The server takes the model when
`PERMHEAL_LOCAL_AWS_MODEL=1` is set (see `permheal_local.server`).
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from permheal_local import patching

__all__ = [
    "COLD_START",
    "ENV_FLAG",
    "LATENCY",
    "QUOTAS",
    "TRANSITION",
    "VCPU_MEMORY_MB",
    "AwsModel",
    "Clock",
    "ColdStart",
    "FakeClock",
    "Invocation",
    "Latency",
    "Quota",
    "RealClock",
    "aws_model",
    "current",
    "measure_import_ms",
]

ENV_FLAG = "PERMHEAL_LOCAL_AWS_MODEL"
"""`1` makes `permheal local-aws` serve with the model on (read by permheal_local.server only)."""

_LAMBDA_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html#api-requests"
_APIGW_QUOTAS = (
    "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
    "#api-gateway-control-service-limits-table"
)


# --- the tables ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """One token bucket: `rate` tokens per second, at most `burst`; `bucket` names what shares it.

    Buckets are kept per (account, region, bucket): two operations with the same `bucket` name
    draw from the same tokens.
    """

    bucket: str
    rate: float
    burst: float
    source: str


@dataclass(frozen=True)
class Latency:
    """Median round trip of one call in milliseconds, and where the figure comes from."""

    ms: float
    source: str


_ASSUMED_RTT = (
    "assumed: AWS publishes no per-operation latency for its control-plane APIs; a same-region "
    "call on a warm HTTPS connection is tens of milliseconds"
)
_ASSUMED_WRITE = (
    "assumed: a write to a replicated control-plane store (policy, deployment) takes longer than a "
    "read; AWS publishes no figure"
)

# Lambda: "GetFunction API requests 100/s", "GetPolicy API requests 15/s", "Remainder of the control
# plane API requests (excludes invocation, GetFunction, and GetPolicy requests) 15/s" -- all "per
# Region", none can be increased. The page gives rates, not bursts: the burst is assumed to be one
# second's worth of the rate.
_LAMBDA_GET_POLICY = Quota("lambda:GetPolicy", 15, 15, f"{_LAMBDA_QUOTAS} (burst assumed = 1 s of rate)")
_LAMBDA_GET_FUNCTION = Quota(
    "lambda:GetFunction", 100, 100, f"{_LAMBDA_QUOTAS} (burst assumed = 1 s of rate)"
)
_LAMBDA_CONTROL = Quota(
    "lambda:control-plane", 15, 15, f"{_LAMBDA_QUOTAS} remainder of control plane (burst assumed)"
)
# API Gateway "quotas for creating, deploying and managing an API" (fixed, per account): "Total
# operations: 10 requests per second with a burst quota of 40 requests", plus per-action quotas.
# The table lists V2 actions (CreateVpcLink (V2)) beside REST ones, so apigatewayv2 management calls
# are taken to draw from the same per-account total.
_APIGW_TOTAL = Quota("apigateway:total", 10, 40, f"{_APIGW_QUOTAS} Total operations")


def _every(seconds: float, requests: int = 1) -> tuple[float, float]:
    """'N requests every S seconds' as (rate, burst); the burst is assumed to be the N."""
    return requests / seconds, float(requests)


_APIGW_ACTIONS: dict[str, tuple[float, float]] = {
    "CreateApiKey": (5, 5),
    "CreateDeployment": _every(5),
    "CreateDocumentationVersion": _every(20),
    "CreateDomainName": _every(30),
    "CreateResource": (5, 5),
    "CreateRestApi": _every(3),  # Regional or private API (edge-optimized: 1 every 30 s)
    "DeleteApiKey": (5, 5),
    "DeleteDomainName": _every(30),
    "DeleteResource": (5, 5),
    "DeleteRestApi": _every(30),
    "GetResources": _every(2, 5),
    "ImportDocumentationParts": _every(30),
    "ImportRestApi": _every(3),
    "PutRestApi": (1, 1),
    "UpdateAccount": _every(20),
    "UpdateDomainName": _every(30),
    "UpdateUsagePlan": _every(20),
}
_APIGWV2_ACTIONS: dict[str, tuple[float, float]] = {
    "CreateVpcLink": _every(15),
    "DeleteVpcLink": _every(30),
}


def _quotas() -> dict[tuple[str, str], tuple[Quota, ...]]:
    table: dict[tuple[str, str], tuple[Quota, ...]] = {
        ("lambda", "GetPolicy"): (_LAMBDA_GET_POLICY,),
        ("lambda", "GetFunction"): (_LAMBDA_GET_FUNCTION,),
        ("lambda", "*"): (_LAMBDA_CONTROL,),
        ("lambda", "Invoke"): (),  # invocation quotas are concurrency-based: not modelled
        ("lambda", "InvokeAsync"): (),
        ("apigateway", "*"): (_APIGW_TOTAL,),
        ("apigatewayv2", "*"): (_APIGW_TOTAL,),
    }
    for service, actions in (("apigateway", _APIGW_ACTIONS), ("apigatewayv2", _APIGWV2_ACTIONS)):
        for action, (rate, burst) in actions.items():
            own = Quota(f"{service}:{action}", rate, burst, f"{_APIGW_QUOTAS} {action}")
            table[(service, action)] = (own, _APIGW_TOTAL)
    return table


QUOTAS: Mapping[tuple[str, str], tuple[Quota, ...]] = _quotas()
"""(service, operation) -> buckets a call draws one token from (all must have one); `*` = the rest
of the service. Services without an entry are not throttled (their quotas are far above what
permheal sends: SNS Publish, Step Functions, CloudWatch Logs)."""

LATENCY: Mapping[tuple[str, str], Latency] = {
    ("*", "*"): Latency(30, _ASSUMED_RTT),
    ("lambda", "GetPolicy"): Latency(25, _ASSUMED_RTT),
    ("lambda", "GetFunction"): Latency(25, _ASSUMED_RTT),
    ("lambda", "GetAlias"): Latency(25, _ASSUMED_RTT),
    ("lambda", "AddPermission"): Latency(60, _ASSUMED_WRITE),
    ("lambda", "RemovePermission"): Latency(60, _ASSUMED_WRITE),
    ("lambda", "ListFunctions"): Latency(40, _ASSUMED_RTT + "; a page of up to 50 functions"),
    ("lambda", "Invoke"): Latency(
        15,
        "assumed: Lambda's own overhead around a warm synchronous invoke, on top of the function's "
        "duration (cold starts are modelled separately)",
    ),
    ("apigateway", "*"): Latency(35, _ASSUMED_RTT),
    ("apigateway", "GetExport"): Latency(
        120, "assumed: the OpenAPI document is rendered server-side for the whole API"
    ),
    ("apigateway", "CreateDeployment"): Latency(300, _ASSUMED_WRITE),
    ("apigatewayv2", "*"): Latency(35, _ASSUMED_RTT),
    ("sns", "Publish"): Latency(20, _ASSUMED_RTT),
    ("stepfunctions", "StartExecution"): Latency(40, _ASSUMED_RTT),
    ("sts", "*"): Latency(30, _ASSUMED_RTT),
}
"""(service, operation) -> median latency; (service, `*`) and (`*`, `*`) are the fallbacks."""

TRANSITION = Latency(
    20,
    "assumed: Step Functions publishes no state-transition latency; Standard workflows are observed "
    "to take tens of milliseconds between states",
)
"""Slept as each Step Functions state is entered (the local engine takes microseconds)."""


@dataclass(frozen=True)
class ColdStart:
    """A cold start costs `init_ms` (platform and runtime) + the handler's import time × `cpu_scale`."""

    init_ms: float = 150.0
    source: str = (
        "assumed: AWS's 'Operating Lambda: Performance optimization' (Compute Blog) puts cold starts "
        "'from under 100 ms to over 1 second' without a per-runtime constant; 150 ms stands for "
        "provisioning the environment and starting the Python runtime before the handler's imports"
    )
    cpu_scale: float = 1.0
    """Import time on Lambda / import time measured here. Assumed 1.0 (one local core ≈ what the init
    phase gets): Lambda documents CPU in proportion to memory (1 vCPU at 1,769 MB) but not for init,
    and the Init Durations reported for small functions importing boto3 (hundreds of ms at 128 MB)
    would be seconds at a 128/1,769 share, so init is taken to run on a full core."""
    idle_seconds: float | None = None
    """An environment idle longer than this is recycled (AWS does not document it; None = never)."""


COLD_START = ColdStart()

VCPU_MEMORY_MB = 1769
"""Memory at which a function has one vCPU; CPU is proportional below it (Lambda docs,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html)."""


# --- time --------------------------------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """time.monotonic and time.sleep: what benchmarks use."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class FakeClock:
    """A clock that only moves when told to (or when slept on): the model's tests run instantly."""

    t: float = 0.0
    slept: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


# --- the model -----------------------------------------------------------------------------------------


@dataclass
class _Bucket:
    quota: Quota
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.quota.burst, self.tokens + (now - self.stamp) * self.quota.rate)
        self.stamp = now


@dataclass
class Invocation:
    """One invocation: the function, when Lambda got it (epoch seconds), its cold start (0 = warm)."""

    function: str
    started_at: float
    init_ms: float = 0.0
    queued_ms: float = 0.0
    """Time the local runtime kept it waiting for another handler (AWS would have run it at once)."""
    cpu_ms: float = 0.0
    """The handler's own CPU time here (moto's work in the same thread excluded)."""
    cpu_wait_ms: float = 0.0
    """What the function's memory-proportional CPU share added to it."""


@dataclass
class _Environments:
    """One function's execution environments: idle ones (with when they went idle) and busy count."""

    idle: list[float] = field(default_factory=list)
    busy: int = 0


@dataclass(eq=False)
class AwsModel:
    """Latency, quotas and cold starts, with counters a benchmark can read. Thread-safe."""

    seed: int = 0
    clock: Clock = field(default_factory=RealClock)
    latency: bool = True
    quotas: bool = True
    cold_starts: bool = True
    handler_cpu: bool = True
    """Run handlers at their memory's CPU share: a 512 MB function gets 512/1,769 of a vCPU."""
    jitter: float = 0.3
    """σ of the lognormal spread around each median (assumed: p95 ≈ 1.6× median)."""
    latency_table: Mapping[tuple[str, str], Latency] = field(default_factory=lambda: dict(LATENCY))
    quota_table: Mapping[tuple[str, str], tuple[Quota, ...]] = field(default_factory=lambda: dict(QUOTAS))
    transition: Latency = TRANSITION
    cold_start: ColdStart = COLD_START
    import_ms: dict[str, float] = field(default_factory=dict)
    """Handler module -> import time in a fresh process (ms); measured on first need when absent."""
    measure: Callable[[str], float] | None = None
    """How to measure a missing import time (default: `measure_import_ms`)."""

    def __post_init__(self) -> None:
        self._local = threading.local()
        self.invocations: list[Invocation] = []
        """Every modelled invocation since the last reset, in start order: timelines for benchmarks."""
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._environments: dict[str, _Environments] = defaultdict(_Environments)
        self.reset_counters()

    @contextmanager
    def unmodelled(self) -> Iterator[None]:
        """Calls from this thread skip the model: stand-ins for AWS's own data plane (a simulated
        request reading the API's configuration) must not pay latency or spend the account's quotas."""
        previous = getattr(self._local, "off", False)
        self._local.off = True
        try:
            yield
        finally:
            self._local.off = previous

    @property
    def active(self) -> bool:
        """Whether calls from this thread are modelled."""
        return not getattr(self._local, "off", False)

    # --- reading the tables

    def quota_for(self, service: str, operation: str) -> tuple[Quota, ...]:
        """The buckets one call of `operation` draws from (empty: never throttled)."""
        table = self.quota_table
        return table.get((service, operation), table.get((service, "*"), ()))

    def latency_for(self, service: str, operation: str) -> Latency:
        table = self.latency_table
        return table.get((service, operation)) or table.get((service, "*")) or table[("*", "*")]

    # --- counters

    def reset_counters(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.throttles: Counter[str] = Counter()
            self.latency_ms: defaultdict[str, float] = defaultdict(float)
            self.transitions = 0
            self.transition_ms = 0.0
            self.cold: Counter[str] = Counter()
            self.warm: Counter[str] = Counter()
            self.init_ms: defaultdict[str, float] = defaultdict(float)
            self.cpu_wait_ms: defaultdict[str, float] = defaultdict(float)
            self.invocations = []

    def stats(self) -> dict[str, Any]:
        """Counters since the last reset, keyed `service:Operation` and by function name."""
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttles": dict(self.throttles),
                "latency_ms": {k: round(v, 1) for k, v in self.latency_ms.items()},
                "transitions": self.transitions,
                "transition_ms": round(self.transition_ms, 1),
                "cold_starts": dict(self.cold),
                "warm_starts": dict(self.warm),
                "init_ms": {k: round(v, 1) for k, v in self.init_ms.items()},
                "cpu_wait_ms": {k: round(v, 1) for k, v in self.cpu_wait_ms.items()},
            }

    # --- quotas and latency: one API call

    def admit(self, service: str, operation: str, account: str, region: str) -> bool:
        """Take a token from every bucket the call draws from; False (nothing taken) if one is empty."""
        key = f"{service}:{operation}"
        with self._lock:
            self.calls[key] += 1
            if not self.quotas:
                return True
            now = self.clock.now()
            buckets = []
            for quota in self.quota_for(service, operation):
                bucket = self._buckets.get((account, region, quota.bucket))
                if bucket is None:
                    bucket = self._buckets[(account, region, quota.bucket)] = _Bucket(quota, quota.burst, now)
                bucket.refill(now)
                buckets.append(bucket)
            if any(b.tokens < 1 for b in buckets):
                self.throttles[key] += 1
                return False
            for bucket in buckets:
                bucket.tokens -= 1
            return True

    def delay(self, service: str, operation: str) -> float:
        """Sleep one round trip of `operation` (jittered); the seconds slept."""
        if not self.latency:
            return 0.0
        seconds = self._sample(self.latency_for(service, operation).ms) / 1000
        with self._lock:
            self.latency_ms[f"{service}:{operation}"] += seconds * 1000
        self.clock.sleep(seconds)
        return seconds

    def state_entered(self) -> None:
        """Sleep one Step Functions state transition."""
        if not self.latency:
            return
        seconds = self._sample(self.transition.ms) / 1000
        with self._lock:
            self.transitions += 1
            self.transition_ms += seconds * 1000
        self.clock.sleep(seconds)

    def _sample(self, median_ms: float) -> float:
        if not self.jitter:
            return median_ms
        with self._lock:
            return median_ms * math.exp(self._random.gauss(0.0, self.jitter))

    # --- cold starts

    def start_invocation(self, function: str, handler_module: str) -> Invocation:
        """Take an execution environment of `function` (sleeping a cold start if none is idle).

        Returns the invocation's record (`init_ms` 0 when warm). Pair with `end_invocation`.
        """
        record = Invocation(function, time.time())
        with self._lock:
            self.invocations.append(record)
            now = self.clock.now()
            pool = self._environments[function]
            idle_limit = self.cold_start.idle_seconds
            if idle_limit is not None:
                pool.idle = [t for t in pool.idle if now - t <= idle_limit]
            pool.busy += 1
            if pool.idle:
                pool.idle.pop()
                self.warm[function] += 1
                return record
            if not self.cold_starts:
                self.warm[function] += 1
                return record
        ms = self.cold_start.init_ms + self._import_ms(handler_module) * self.cold_start.cpu_scale
        with self._lock:
            self.cold[function] += 1
            self.init_ms[function] += ms
            record.init_ms = ms
        self.clock.sleep(ms / 1000)
        return record

    @staticmethod
    def cpu_mark() -> tuple[float, float, float]:
        """This thread's CPU time, moto's share of it and the reads' threads' CPU so far: for `cpu_since`."""
        return time.thread_time(), getattr(_MOTO_CPU, "seconds", 0.0), _READS_CPU.seconds

    @staticmethod
    def cpu_since(mark: tuple[float, float, float]) -> float:
        """CPU seconds spent since `mark` outside moto by this thread (the handler and its SDK calls)
        and by the threads its reads made at once ran in (permheal.parallel): the local runtime runs
        one handler at a time, so theirs is the handler's."""
        own = time.thread_time() - mark[0] - (getattr(_MOTO_CPU, "seconds", 0.0) - mark[1])
        return max(0.0, own + _READS_CPU.seconds - mark[2])

    def slow_to_memory(self, record: Invocation, memory_mb: int, cpu_seconds: float) -> float:
        """Sleep what `cpu_seconds` of handler work costs more at `memory_mb`'s CPU share; seconds slept.

        Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB (VCPU_MEMORY_MB); one local
        core is taken as one vCPU. More memory than that does not speed up a single-threaded handler.
        """
        record.cpu_ms = cpu_seconds * 1000
        if not self.handler_cpu or memory_mb <= 0:
            return 0.0
        extra = cpu_seconds * (max(1.0, VCPU_MEMORY_MB / memory_mb) - 1)
        record.cpu_wait_ms = extra * 1000
        with self._lock:
            self.cpu_wait_ms[record.function] += extra * 1000
        self.clock.sleep(extra)
        return extra

    def end_invocation(self, function: str) -> None:
        with self._lock:
            pool = self._environments[function]
            pool.busy = max(0, pool.busy - 1)
            pool.idle.append(self.clock.now())

    def make_cold(self) -> None:
        """Recycle every idle execution environment: the next invocation of each function is cold."""
        with self._lock:
            for pool in self._environments.values():
                pool.idle.clear()

    def measure_imports(self, modules: Iterable[str]) -> None:
        """Measure now the import times not known yet, so no invocation waits for a measurement."""
        if not self.cold_starts:
            return
        for module in modules:
            self._import_ms(module)

    def _import_ms(self, module: str) -> float:
        with self._lock:
            known = self.import_ms.get(module)
        if known is None:
            known = (self.measure or measure_import_ms)(module)
            with self._lock:
                self.import_ms.setdefault(module, known)
        return known

    # --- install into moto

    def install(self) -> None:
        """Wrap moto's dispatch, the Step Functions engine and the local Lambda runtime."""
        global _CURRENT
        with _INSTALL_LOCK:
            if _CURRENT is not None and _CURRENT is not self:
                raise RuntimeError("another AwsModel is installed")
            _CURRENT = self
            patching.apply(_patches(), _ORIGINALS, _PATCH_LOCK)

    def uninstall(self) -> None:
        global _CURRENT
        with _INSTALL_LOCK:
            if _CURRENT is self:
                _CURRENT = None
                patching.restore(_ORIGINALS, _PATCH_LOCK)


_CURRENT: AwsModel | None = None
_MOTO_CPU = threading.local()


class _ThreadsCpu:
    """CPU seconds (outside moto) of the threads permheal.parallel runs reads in, all together."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.lock = threading.Lock()
        self.measuring = threading.local()

    def add(self, seconds: float) -> None:
        with self.lock:
            self.seconds += max(0.0, seconds)


_READS_CPU = _ThreadsCpu()
_INSTALL_LOCK = threading.Lock()
_PATCH_LOCK = threading.RLock()
_ORIGINALS: patching.Originals = {}


def current() -> AwsModel | None:
    """The installed model, or None (moto unchanged)."""
    return _CURRENT


@contextmanager
def aws_model(seed: int = 0, clock: Clock | None = None, **options: Any) -> Iterator[AwsModel]:
    """Install a model for the duration of the block (options: the AwsModel fields)."""
    model = AwsModel(seed=seed, clock=clock or RealClock(), **options)
    model.install()
    try:
        yield model
    finally:
        model.uninstall()


# --- throttling answers, as AWS gives them ---------------------------------------------------------------


def throttle_response(service: str) -> tuple[int, dict[str, str], str]:
    """HTTP 429 `TooManyRequestsException` in the service's own error shape (rest-json)."""
    if service == "lambda":
        body: dict[str, str] = {
            "Reason": "CallerRateLimitExceeded",
            "Type": "User",
            "message": "Rate exceeded",
        }
    else:  # apigateway / apigatewayv2
        body = {"message": "Too Many Requests"}
    headers = {
        "status": "429",
        "x-amzn-ErrorType": "TooManyRequestsException",
        "Content-Type": "application/json",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return 429, headers, json.dumps(body)


# --- patches ---------------------------------------------------------------------------------------------


def _patches() -> tuple[patching.Patch, ...]:
    from moto.core.responses import BaseResponse
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original_call = BaseResponse.call_action
    original_state = CommonStateField._eval_body

    def call_action(self: Any) -> Any:
        model = _CURRENT
        if model is None or not model.active:
            return original_call(self)
        try:
            operation = self._get_action()
        except Exception:  # moto cannot name it: let moto answer as it would
            operation = None
        if not operation:
            return original_call(self)
        service = self.boto3_service_name
        model.delay(service, operation)
        if not model.admit(service, operation, self.current_account, self.region):
            return throttle_response(service)
        started = time.thread_time()
        try:
            return original_call(self)
        finally:  # AWS's work, not the calling handler's: see AwsModel.cpu_since
            _MOTO_CPU.seconds = getattr(_MOTO_CPU, "seconds", 0.0) + time.thread_time() - started

    def eval_body(self: Any, env: Any) -> None:
        model = _CURRENT
        if model is not None and model.active:
            model.state_entered()
        original_state(self, env)

    from permheal import parallel

    original_capture = parallel.capture

    def capture(call: Any) -> Any:
        """permheal.parallel's call in a reads thread, its CPU counted for the handler (see cpu_since)."""
        measuring = _READS_CPU.measuring
        outermost = threading.current_thread().name.startswith(parallel.THREAD_PREFIX) and not getattr(
            measuring, "on", False
        )
        if not outermost:
            return original_capture(call)
        measuring.on = True
        started, moto = time.thread_time(), getattr(_MOTO_CPU, "seconds", 0.0)
        try:
            return original_capture(call)
        finally:
            measuring.on = False
            _READS_CPU.add(time.thread_time() - started - (getattr(_MOTO_CPU, "seconds", 0.0) - moto))

    return (
        (BaseResponse, "call_action", call_action),
        (CommonStateField, "_eval_body", eval_body),
        (cast(Any, parallel), "capture", capture),
    )


# --- measuring a handler's import time -------------------------------------------------------------------

_PROBE = (
    "import time\nstarted = time.perf_counter()\nimport {module}\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


def measure_import_ms(module: str, repeats: int = 3) -> float:
    """Wall time of `import module` in a fresh interpreter with a Lambda-like environment (best of N).

    The environment is what the function sees on AWS (tracing on, the task root set), so the import
    pays what it pays there; benchmarks/coldstart.py measures the same thing in more detail.
    """
    functions = Path(__file__).resolve().parents[1] / "functions"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PERMHEAL_"))}
    env.update(
        PYTHONPATH=str(functions) if (functions / "permheal").is_dir() else env.get("PYTHONPATH", ""),
        LAMBDA_TASK_ROOT="/var/task",
        AWS_LAMBDA_FUNCTION_NAME="permheal-model",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="permheal",
    )
    best = math.inf
    for _ in range(max(1, repeats)):
        done = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        best = min(best, float(done.stdout.strip().splitlines()[-1]))
    return best
