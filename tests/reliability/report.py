"""The reliability report: rows recorded by the `record` fixture, printed as one table at session end.

Rows travel on each test's `user_properties`, which pytest-xdist ships from its workers to the
controller, so the same plugin works with and without `-n`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

PROPERTY = "reliability"
REPORT_FILE = "reliability-report.json"


@dataclass(frozen=True)
class Row:
    case: str
    outcome: str
    runs: int
    lost: int


def rows_of(properties: Iterable[tuple[str, Any]]) -> list[Row]:
    return [Row(**value) for name, value in properties if name == PROPERTY]


def summarize(rows: Iterable[Row]) -> list[Row]:
    """One line per (case, outcome): runs and statements lost added up, in first-seen order."""
    merged: dict[tuple[str, str], Row] = {}
    for row in rows:
        seen = merged.get((row.case, row.outcome))
        merged[(row.case, row.outcome)] = (
            row if seen is None else Row(row.case, row.outcome, seen.runs + row.runs, seen.lost + row.lost)
        )
    return sorted(merged.values(), key=lambda r: (r.case.split(":", 1)[0], r.case, r.outcome))


def render(rows: list[Row]) -> str:
    headers = ("fault or input", "runs", "outcome", "statements lost")
    cells = [headers, *((r.case, str(r.runs), r.outcome, str(r.lost)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class ReliabilityReport:
    """Collects rows on the controller (or the only process) and reports them once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[Row] = []
        self.failed_tests: list[str] = []

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":  # the last report of a test carries every row it recorded
            self.rows.extend(rows_of(report.user_properties))
        if report.failed and any(name == PROPERTY for name, _ in report.user_properties):
            self.failed_tests.append(report.nodeid)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput"):
            return
        rows = summarize(self.rows)
        lost = sum(r.lost for r in rows)
        write = terminalreporter.write_line
        terminalreporter.section("reliability report")
        write(render(rows) if rows else "no reliability rows were recorded (run with -m reliability)")
        write("")
        write(
            f"{len(rows)} cases, {sum(r.runs for r in rows)} runs, {lost} statements lost"
            + (f", {len(set(self.failed_tests))} failing test(s)" if self.failed_tests else "")
        )
        path = Path(str(self.config.rootpath)) / REPORT_FILE
        path.write_text(
            json.dumps(
                {
                    "rows": [asdict(r) for r in rows],
                    "statementsLost": lost,
                    "failingTests": sorted(set(self.failed_tests)),
                },
                indent=2,
            )
            + "\n"
        )
        write(f"written to {path}")
