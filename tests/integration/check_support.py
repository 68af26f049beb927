"""Helpers for the `permheal check` tests: the corpus, writing variants, applying fixes."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from permheal.check import CheckFinding, check_paths
from permheal.check.loader import load

CORPUS = Path(__file__).resolve().parents[1] / "check_corpus"


def corpus(relative: str) -> Path:
    return CORPUS / relative


def read(relative: str) -> dict[str, Any]:
    data = load(corpus(relative)).data
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def write(template: dict[str, Any], tmp: Path, relative: str) -> Path:
    """Write a variant next to copies of the files its original refers to (api.yaml, ...)."""
    source = corpus(relative)
    folder = tmp / source.parent.name
    if not folder.exists():
        shutil.copytree(source.parent, folder)
    path = folder / source.name
    if source.suffix == ".json":
        path.write_text(json.dumps(template, indent=1) + "\n")
    else:
        path.write_text(yaml.safe_dump(template, sort_keys=False, width=1000))
    return path


def apply_fixes(path: Path, findings: list[CheckFinding]) -> Path:
    """Add every fix's resources to the template (dropping the ones a fix says it replaces)."""
    document = load(path)
    template = copy.deepcopy(document.data)
    for finding in findings:
        assert finding.fix, f"{finding.kind} has no fix"
        added = json.loads(finding.fix) if document.is_json else yaml.load(finding.fix, Loader=_loader())
        for name, resource in added.items():
            for gone in resource.get("Metadata", {}).get("permheal", {}).get("replaces", []):
                template["Resources"].pop(gone, None)
            template["Resources"][name] = resource
    fixed = path.with_name("fixed-" + path.name)
    if document.is_json:
        fixed.write_text(json.dumps(template, indent=1))
    else:
        fixed.write_text(yaml.safe_dump(template, sort_keys=False, width=1000))
    return fixed


def _loader() -> Any:
    from permheal.check.loader import _Loader

    return _Loader


def line_of(path: Path, logical_id: str) -> int:
    return load(path).lines[logical_id]


def check(path: Path) -> list[CheckFinding]:
    return check_paths([path])
