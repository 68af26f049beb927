"""5. Cold start: import time and peak memory of each Lambda handler module in a fresh process.

Each figure comes from a new interpreter (`python -X importtime`), next to `import boto3` alone in
the same conditions. The environment is a Lambda's: `LAMBDA_TASK_ROOT` and the function name are
set and tracing is on, so Powertools' Tracer imports the X-Ray SDK and patches what it patches on
AWS. permheal itself is imported from a fresh copy of the package with bytecode writing off, so its
modules compile from source as they do in a deployment package without `.pyc` files; the
`with_pyc` figures show the same import once the bytecode exists. Third-party packages use the
bytecode pip wrote, as they do in a `sam build` package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "functions" / "permheal"
HANDLERS = ("detect", "resolve", "repair", "summarize", "proactive")
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
    "permheal": "permheal",
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
_PROBE = (
    "import json, resource, sys, time\n"
    "{before}"
    "started = time.perf_counter()\n"
    "import {module}\n"
    "wall = time.perf_counter() - started\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(json.dumps({{'wall_ms': wall * 1000, 'maxrss_kb': peak, 'modules': len(sys.modules),"
    " 'origin': getattr(sys.modules['{top}'], '__file__', '')}}))\n"
)


def lambda_environment(source: Path) -> dict[str, str]:
    """What a permheal function sees on AWS (template.yaml Globals), minus anything pointing at an account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PERMHEAL_"))}
    env.update(
        PYTHONPATH=str(source),
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


def probe(module: str, env: dict[str, str], after_boto3: bool = False) -> dict[str, Any]:
    """Import `module` in a fresh interpreter: wall time, importtime tree by package group, peak RSS.

    With `after_boto3`, boto3 is imported first and only the module's own extra time is measured.
    """
    code = _PROBE.format(module=module, top=module, before="import boto3\n" if after_boto3 else "")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [(int(m[1]), int(m[2]), m[4]) for m in map(_LINE.match, done.stderr.splitlines()) if m]
    result["importtime_ms"] = next((cum / 1000 for _, cum, name in rows if name == module), None)
    by_group: Counter[str] = Counter()
    for self_us, _, name in rows:
        by_group[GROUPS.get(name.split(".")[0], "stdlib_and_other")] += self_us
    result["by_group_ms"] = {group: round(us / 1000, 1) for group, us in sorted(by_group.items())}
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best of the runs for time (background load only ever adds), median for memory."""
    best = min(runs, key=lambda r: r["importtime_ms"] or 0)
    return {
        "import_ms": round(best["importtime_ms"] or 0, 1),
        "import_ms_median": round(statistics.median(r["importtime_ms"] or 0 for r in runs), 1),
        "peak_rss_mb": round(statistics.median(r["maxrss_kb"] for r in runs) / 1024, 1),
        "modules_loaded": best["modules"],
        "by_group_ms": best["by_group_ms"],
        "origin": best["origin"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 1 if quick else 5
    handlers = HANDLERS[:1] if quick else HANDLERS
    with tempfile.TemporaryDirectory(prefix="permheal-coldstart-") as tmp:
        source = Path(tmp) / "src"
        shutil.copytree(PACKAGE, source / "permheal", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        env = lambda_environment(source)
        compiled_env = {**env, "PYTHONDONTWRITEBYTECODE": ""}
        modules = ["boto3", *(f"permheal.handlers.{h}" for h in handlers)]
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modules}
        pyc_runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modules[1:]}
        extra_runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modules[1:]}
        probe("json", env)  # warm the OS file cache so the first module measured is not penalised
        bare = probe("json", env)
        for _ in range(repeats):  # interleaved, so background load spreads over every module alike
            for module in modules:
                runs[module].append(probe(module, env))
            for module in modules[1:]:
                extra_runs[module].append(probe(module, env, after_boto3=True))
        probe(modules[-1], compiled_env)
        for module in modules[1:]:
            probe(module, compiled_env)  # writes the .pyc files into the copy
        for _ in range(repeats):
            for module in modules[1:]:
                pyc_runs[module].append(probe(module, compiled_env))
    boto3 = _summary(runs["boto3"])
    results: dict[str, Any] = {}
    for module in modules[1:]:
        summary = _summary(runs[module])
        compiled = _summary(pyc_runs[module])
        summary["origin_is_fresh_copy"] = str(summary.pop("origin")).startswith(str(source))
        compiled.pop("origin")
        summary["ratio_to_boto3"] = round(summary["import_ms"] / boto3["import_ms"], 2)
        summary["extra_ms_after_boto3"] = _summary(extra_runs[module])["import_ms"]
        summary["with_pyc"] = {
            "import_ms": compiled["import_ms"],
            "ratio_to_boto3": round(compiled["import_ms"] / boto3["import_ms"], 2),
            "peak_rss_mb": compiled["peak_rss_mb"],
            "by_group_ms": compiled["by_group_ms"],
        }
        results[module.rsplit(".", 1)[-1]] = summary
    boto3.pop("origin")
    return {
        "environment": "Lambda-like: LAMBDA_TASK_ROOT set, tracing on, permheal compiled from source",
        "repeats": repeats,
        "python": sys.version.split()[0],
        "bare_interpreter_rss_mb": round(bare["maxrss_kb"] / 1024, 1),
        "boto3": boto3,
        "handlers": results,
    }
