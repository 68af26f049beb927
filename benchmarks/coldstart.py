"""5. Cold start, as Lambda pays it: a whole fresh process per run, next to `python -c "import boto3"`.

Each run is a new python3.12 (the runtime's version when one is installed) started with `-S` and a
sys.path of [the artifact, the SDK]: the artifact is the one `sam build` makes (functions/Makefile,
benchmarks/package.py), bytecode as shipped, read-only as /var/task is (nothing written back);
boto3/botocore come from the interpreter's own site-packages, with their bytecode, as the runtime
provides them. The environment is a Lambda's (LAMBDA_TASK_ROOT, function name, Powertools settings),
so Powertools behaves as it does on AWS.

A handler's process imports the handler module and then what its first call imports before it can
answer (FIRST_CALL): a lazy import the first call always needs is paid at the first call, so it
counts. The wall time is the whole process (interpreter start to exit), measured from outside; the
peak RSS is the child's own. Each handler run is paired with an `import boto3` run just before it
and the ratio is the median of the per-pair ratios (>= 7 pairs), so background load hits both sides.

`trace_aws_calls`: the same, with TraceAwsCalls=true: the first call also creates Powertools' Tracer
(the X-Ray SDK, wrapt, patching botocore: TRACED_FIRST_CALL), paired with the same boto3 run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import package

HANDLERS = ("detect", "resolve", "repair", "summarize", "proactive")
FIRST_CALL: dict[str, tuple[str, ...]] = {
    # the workflow and dead-letter clients (StartExecution on every incident)
    "detect": ("boto3",),
    # handlers.adapters_for, then the ports it uses (Adapters imports each on first use), then clients
    "resolve": (
        "permheal.adapters.account",
        "permheal.adapters.ports",
        "permheal.adapters.apigateway",
        "permheal.adapters.ledger",
        "boto3",
    ),
    "repair": (
        "permheal.adapters.account",
        "permheal.adapters.ports",
        "permheal.adapters.lambda_policy",
        "permheal.adapters.ledger",
        "boto3",
    ),
    # no AWS call unless Security Hub findings are on (off by default)
    "summarize": (),
    # real_deps: every adapter it wires, then the allowlist (SSM) read
    "proactive": (
        "permheal.adapters.account",
        "permheal.adapters.apigateway",
        "permheal.adapters.ledger",
        "permheal.adapters.names",
        "boto3",
    ),
}
"""What each handler's first call imports lazily before it can answer (read from the handlers)."""
TRACED_FIRST_CALL = "import permheal.observability\npermheal.observability.tracer()\n"
"""What `traced` adds to every handler's first call with PERMHEAL_TRACE_AWS_CALLS=true."""
GROUPS = {
    "boto3": "aws_sdk",
    "botocore": "aws_sdk",
    "s3transfer": "aws_sdk",
    "urllib3": "aws_sdk",
    "dateutil": "aws_sdk",
    "jmespath": "aws_sdk",
    "aws_lambda_powertools": "powertools",
    "aws_xray_sdk": "xray",
    "wrapt": "xray",
    "asyncio": "xray",
    "permheal": "permheal",
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
_REPORT = (
    "import json, sys\n"
    "third = {m.split('.')[0] for m in sys.modules} & {'permheal', 'aws_lambda_powertools', 'aws_xray_sdk'}\n"
    "print(json.dumps({'modules': len(sys.modules),"
    " 'origins': sorted({getattr(sys.modules[m], '__file__', '') or '' for m in third})}))\n"
)


def statements(handler: str) -> str:
    """The code one cold start runs: the handler module, then its first call's lazy imports."""
    return "".join(f"import {m}\n" for m in (f"permheal.handlers.{handler}", *FIRST_CALL[handler]))


def lambda_environment(artifact: Path, sdk: Path) -> dict[str, str]:
    """What a permheal function sees on AWS (template.yaml Globals), minus anything pointing at an account."""
    ours = ("AWS_", "POWERTOOLS_", "PERMHEAL_", "PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PYTHONPATH=f"{artifact}{os.pathsep}{sdk}",
        PYTHONDONTWRITEBYTECODE="1",
        LAMBDA_TASK_ROOT="/var/task",
        AWS_LAMBDA_FUNCTION_NAME="permheal-bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_SERVICE_NAME="permheal",
        POWERTOOLS_METRICS_NAMESPACE="Permheal",
        POWERTOOLS_LOG_LEVEL="INFO",
    )
    return env


def whole_process(python: str, code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall ms from spawn to exit and the child's peak RSS in MB: one cold start's imports."""
    started = time.perf_counter()
    child = subprocess.Popen([python, "-S", "-c", code], env=env, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{code!r} exited with status {status}")
    return wall * 1000, usage.ru_maxrss / 1024


def profile(python: str, code: str, env: dict[str, str]) -> dict[str, Any]:
    """One `-X importtime` run: self time by package group, modules loaded, where permheal came from."""
    done = subprocess.run(
        [python, "-S", "-X", "importtime", "-c", code + _REPORT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    by_group: Counter[str] = Counter()
    for m in map(_LINE.match, done.stderr.splitlines()):
        if m:
            by_group[GROUPS.get(m[4].split(".")[0], "stdlib_and_other")] += int(m[1])
    report["by_group_ms"] = {group: round(us / 1000, 1) for group, us in sorted(by_group.items())}
    return report


def sdk_path(python: str) -> Path:
    """Where the interpreter's boto3 lives: the runtime's SDK."""
    done = subprocess.run(
        [python, "-c", "import boto3, os; print(os.path.dirname(os.path.dirname(boto3.__file__)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip())


class Session:
    """The artifact built once, and the interpreter and environment every measured process gets."""

    def __init__(self, directory: Path) -> None:
        self.python = package.runtime_python()
        self.artifact = package.build(directory / "artifact", self.python)
        self.env = lambda_environment(self.artifact, sdk_path(self.python))
        self.run("import boto3\n")  # warm the OS file cache for every side alike

    def run(self, code: str, traced: bool = False) -> tuple[float, float]:
        env = {**self.env, "PERMHEAL_TRACE_AWS_CALLS": "true"} if traced else self.env
        return whole_process(self.python, code + (TRACED_FIRST_CALL if traced else ""), env)


def import_times(handlers: tuple[str, ...] = HANDLERS, repeats: int = 5) -> dict[str, float]:
    """Handler module -> ms a cold start spends importing (handler + first call), interpreter start excluded.

    The median whole-process wall time minus the median of a bare interpreter's (`pass`), measured
    interleaved: what a model adds to Lambda's own init constant (permheal_local.aws_model).
    """
    with tempfile.TemporaryDirectory(prefix="permheal-coldstart-") as tmp:
        session = Session(Path(tmp))
        bare: list[float] = []
        walls: dict[str, list[float]] = {h: [] for h in handlers}
        for _ in range(repeats):
            for handler in handlers:
                bare.append(session.run("pass\n")[0])
                walls[handler].append(session.run(statements(handler))[0])
    start = statistics.median(bare)
    return {f"permheal.handlers.{h}": max(0.0, statistics.median(w) - start) for h, w in walls.items()}


def run(quick: bool = False) -> dict[str, Any]:
    pairs = 1 if quick else 7
    handlers = HANDLERS[:2] if quick else HANDLERS
    with tempfile.TemporaryDirectory(prefix="permheal-coldstart-") as tmp:
        session = Session(Path(tmp))
        python, env, artifact = session.python, session.env, session.artifact
        boto3_runs: list[tuple[float, float]] = []
        bare_runs: list[float] = []
        runs: dict[str, list[tuple[float, float, float]]] = {h: [] for h in handlers}
        traced: dict[str, list[tuple[float, float]]] = {h: [] for h in handlers}
        for _ in range(pairs):  # interleaved and paired: background load hits both sides of a ratio
            bare_runs.append(session.run("pass\n")[0])
            for handler in handlers:
                base = session.run("import boto3\n")
                wall, rss = session.run(statements(handler))
                boto3_runs.append(base)
                runs[handler].append((wall / base[0], wall, rss))
                traced_wall = session.run(statements(handler), traced=True)[0]
                traced[handler].append((traced_wall / base[0], traced_wall))
        profiles = {h: profile(python, statements(h), env) for h in handlers}
        boto3_profile = profile(python, "import boto3\n", env)
        bytecode = any(artifact.rglob("*.pyc"))
    interpreter_ms = statistics.median(bare_runs)
    boto3 = {
        "wall_ms": round(statistics.median(w for w, _ in boto3_runs), 1),
        "peak_rss_mb": round(statistics.median(r for _, r in boto3_runs), 1),
        "modules_loaded": boto3_profile["modules"],
        "by_group_ms": boto3_profile["by_group_ms"],
    }
    results: dict[str, Any] = {}
    for handler, samples in runs.items():
        prof = profiles[handler]
        origins = prof["origins"]
        wall_ms = statistics.median(w for _, w, _ in samples)
        results[handler] = {
            "whole_process_ratio": round(statistics.median(r for r, _, _ in samples), 2),
            "wall_ms": round(wall_ms, 1),
            "import_ms": round(max(0.0, wall_ms - interpreter_ms), 1),
            "peak_rss_mb": round(statistics.median(m for _, _, m in samples), 1),
            "first_call_imports": list(FIRST_CALL[handler]),
            "modules_loaded": prof["modules"],
            "by_group_ms": prof["by_group_ms"],
            "from_artifact": bool(origins) and all(o.startswith(str(artifact)) for o in origins),
        }
    return {
        "environment": "Lambda-like: a fresh python -S per run, the sam build artifact, the runtime's SDK",
        "python": package.version(python),
        "pairs": pairs,
        "artifact_has_bytecode": bytecode,
        "interpreter_ms": round(interpreter_ms, 1),
        "boto3": boto3,
        "handlers": results,
        "whole_process_ratio": {h: r["whole_process_ratio"] for h, r in results.items()},
        "per_incident": per_incident(results),
        "trace_aws_calls": {
            h: {
                "whole_process_ratio": round(statistics.median(r for r, _ in samples), 2),
                "import_ms": round(max(0.0, statistics.median(w for _, w in samples) - interpreter_ms), 1),
            }
            for h, samples in traced.items()
        },
    }


def per_incident(handlers: dict[str, Any]) -> dict[str, Any]:
    """The imports an incident's sequential cold starts pay, when every function it uses is cold.

    An incident runs detect -> resolve -> repair (the Map's iterations run in parallel: one cold
    start deep) -> summarize -> SNS (a direct integration); healed once repair verified.
    """
    heal = [h for h in ("detect", "resolve", "repair") if h in handlers]
    notify = [*heal, *(["summarize"] if "summarize" in handlers else [])]
    return {
        "sequential_cold_starts_to_heal": len(heal),
        "sequential_cold_starts_to_notify": len(notify),
        "import_ms_to_heal": round(sum(handlers[h]["import_ms"] for h in heal), 1),
        "import_ms_to_notify": round(sum(handlers[h]["import_ms"] for h in notify), 1),
    }
