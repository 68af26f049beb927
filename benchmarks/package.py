"""Package size: the Lambda artifact `sam build` makes (functions/Makefile), zipped as Lambda stores it.

Every function of template.yaml is built from the same Makefile target, so every function's zip
is the same bytes; they are listed per function so a future split shows up here. The cold-start
benchmark imports the handlers from this same artifact.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "functions" / "Makefile"


def functions() -> list[str]:
    """The function logical ids the Makefile builds (its FUNCTIONS line)."""
    match = re.search(r"^FUNCTIONS\s*:=\s*(.+)$", MAKEFILE.read_text(), re.MULTILINE)
    return match.group(1).split() if match else []


def runtime_python() -> str:
    """python3.12 (the Lambda runtime) when there is one with the SDK, else this interpreter.

    The artifact's bytecode is only written by python3.12 (functions/Makefile): another interpreter
    builds a package without it, as `sam build` would.
    """
    for candidate in (ROOT / ".venv312" / "bin" / "python", Path(shutil.which("python3.12") or "")):
        if candidate.name and candidate.exists():
            probe = subprocess.run(
                [str(candidate), "-c", "import boto3"], capture_output=True, check=False, timeout=60
            )
            if probe.returncode == 0:
                return str(candidate)
    return sys.executable


def build(artifacts: Path, python: str | None = None) -> Path:
    """`make -C functions package` into `artifacts`, as `sam build` runs it (one target per function).

    PYTHON312 is the interpreter the Makefile compiles the bytecode with (skipped unless it is 3.12).
    """
    python = python or runtime_python()
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(MAKEFILE.parent),
            "package",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={python}",
            f"PYTHON312={python}",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return artifacts


def zip_bytes(directory: Path) -> int:
    """The deflated zip of `directory`, as `sam build`/`sam deploy` upload it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return len(buffer.getvalue())


def describe(directory: Path) -> dict[str, Any]:
    """Size of the artifact: zipped, unzipped, by top-level entry, and how much of it is bytecode."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    by_top: Counter[str] = Counter()
    for path in files:
        by_top[path.relative_to(directory).parts[0].split("-")[0]] += path.stat().st_size
    zipped = zip_bytes(directory)
    return {
        "zip_bytes": {name: zipped for name in functions()},
        "unzipped_bytes": sum(by_top.values()),
        "files": len(files),
        "bytecode_files": sum(1 for p in files if p.suffix == ".pyc"),
        "unzipped_bytes_by_entry": dict(by_top.most_common()),
    }


def run(quick: bool = False) -> dict[str, Any]:
    python = runtime_python()
    with tempfile.TemporaryDirectory(prefix="permheal-package-") as tmp:
        result = describe(build(Path(tmp) / "artifact", python))
    result["built_with"] = version(python)
    return result


def version(python: str) -> str:
    """The interpreter's Python version, like 3.12.1."""
    code = "import sys; print(sys.version.split()[0])"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()
