"""`permheal check` time: the largest SAM and non-SAM templates of tests/check_corpus, a 70-method API.

Figures only (never asserted). Each template is checked a few times in one process; the first run
includes importing aws-sam-translator for SAM templates, so it is reported apart from the median.

    python -m benchmarks.check [--quick]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "check_corpus"


def _largest(sam: bool) -> Path:
    """The corpus's largest template, of SAM templates (transform included) or of the others."""
    files = [p for p in CORPUS.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.name != "api.yaml"]
    return max((p for p in files if (p.suffix != ".json") == sam), key=lambda p: p.stat().st_size)


def _wide_api(folder: Path, methods: int) -> Path:
    """A plain CloudFormation REST API with `methods` Lambda methods, one per-method grant each."""
    resources: dict[str, Any] = {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}, "StageName": "prod"},
        },
    }
    uri = {
        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"
    }
    for index in range(methods):
        resources[f"R{index}"] = {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": f"r{index}",
            },
        }
        resources[f"M{index}"] = {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": {"Ref": f"R{index}"},
                "HttpMethod": "GET",
                "Integration": {"Type": "AWS_PROXY", "Uri": uri},
            },
        }
        resources[f"P{index}"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": "Fn"},
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}"
                    + f"/*/GET/r{index}"
                },
            },
        }
    path = folder / f"wide-{methods}.template.json"
    path.write_text(json.dumps({"Resources": resources}))
    return path


def _time(path: Path, repeats: int) -> dict[str, Any]:
    from permheal.check import check_paths

    runs = []
    findings = 0
    for _ in range(repeats):
        started = time.perf_counter()
        findings = len(check_paths([path]))
        runs.append(time.perf_counter() - started)
    return {
        "template": path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name,
        "bytes": path.stat().st_size,
        "first_ms": round(runs[0] * 1000, 1),
        "median_ms": round(statistics.median(runs[1:] or runs) * 1000, 1),
        "findings": findings,
    }


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="permheal-check-bench-") as tmp:
        wide = _wide_api(Path(tmp), 20 if quick else 70)
        rows = [_time(_largest(sam=True), repeats), _time(_largest(sam=False), repeats), _time(wide, repeats)]
    return {"templates": rows}


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    for row in result["templates"]:
        print(
            f"{row['template']:<80} {row['bytes']:>8} B  first {row['first_ms']:>8} ms  "
            f"median {row['median_ms']:>8} ms  findings {row['findings']}"
        )
