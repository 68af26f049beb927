"""`make dashboard-png`: template.yaml's CloudWatch dashboard drawn from a seeded week in the local AWS.

Each widget sits where the dashboard body puts it (24-column grid) and shows the series
`metrics.dashboard_data` read back from the local CloudWatch, one point per day. Needs the `docs`
extra (matplotlib); CI does not: the tested path is the text table (`make dashboard`).
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

from permheal_local.metrics import Series, Week, seeded_week

GRID_COLUMNS = 24
_ARN_NAME = re.compile(r"^([A-Za-z0-9]+)\.Arn$")


def render(week: Week, path: Path) -> None:
    """Write the dashboard of `week` as a PNG at `path`."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    pyplot: Any = importlib.import_module("matplotlib.pyplot")

    widgets = week.body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    figure = pyplot.figure(figsize=(18, rows * 0.75), dpi=100)
    series_by_title = dict(week.data)
    days = week.days
    labels = [f"-{days - 1 - day}d" if day < days - 1 else "today" for day in range(days)]
    for widget in widgets:
        x, y, width, height = (widget[k] for k in ("x", "y", "width", "height"))
        # The widget's cell in the 24-column grid, less room for its title above and ticks below
        left, top = x / GRID_COLUMNS, 1 - y / rows
        axes = figure.add_axes(
            (left + 0.025, top - height / rows + 0.045, width / GRID_COLUMNS - 0.035, height / rows - 0.09)
        )
        props = widget.get("properties", {})
        if widget["type"] == "metric":
            _metric(axes, props, series_by_title.get(props.get("title", ""), []), labels)
        elif widget["type"] == "alarm":
            _alarms(axes, props)
        else:
            _text(axes, props.get("markdown", ""), width)
    first = (week.now - timedelta(days=days - 1)).date()
    figure.suptitle(
        f"permheal's dashboard (template.yaml) in the local AWS: the EMF of one day (a healed incident, "
        f"a refused run, an undecodable payload) replayed over {days} days from {first}; "
        "one point per day (widgets: 1 h)",
        fontsize=11,
        x=0.01,
        y=1.04,
        ha="left",
    )
    figure.savefig(path, bbox_inches="tight")
    pyplot.close(figure)


def _metric(
    axes: Any, props: dict[str, Any], rows: list[tuple[Series, list[float] | None]], labels: list[str]
) -> None:
    axes.set_title(props.get("title", ""), loc="left", fontsize=10, fontweight="bold")
    positions = list(range(len(labels)))
    missing = []
    stacked_values, stacked_labels = [], []
    for series, per_day in rows:
        label = series.label.rsplit(" (", 1)[0]
        if per_day is None:
            missing.append(f"{label}: percentile, not computed by moto")
        elif not per_day:
            missing.append(f"{label}: no data ({series.namespace})")
        elif props.get("stacked"):
            stacked_values.append(per_day)
            stacked_labels.append(label)
        else:
            axes.plot(positions, per_day, marker="o", markersize=3, linewidth=1.4, label=label)
    if stacked_values:
        axes.stackplot(positions, *stacked_values, labels=stacked_labels, alpha=0.8)
    axes.set_xticks(positions, labels, fontsize=7)
    axes.tick_params(axis="y", labelsize=7)
    axes.grid(alpha=0.3)
    axes.set_ylim(0, max(axes.get_ylim()[1], 1) * 1.3)  # room for the legend above the lines
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=6.5, loc="upper left", framealpha=0.7)
    if missing:
        axes.text(
            0.99,
            0.02,
            "\n".join(missing),
            transform=axes.transAxes,
            fontsize=6,
            ha="right",
            va="bottom",
            color="0.35",
        )


def _alarms(axes: Any, props: dict[str, Any]) -> None:
    axes.set_title(props.get("title", "Alarms"), loc="left", fontsize=10, fontweight="bold")
    axes.axis("off")
    names = [m[1] if (m := _ARN_NAME.match(alarm)) else alarm for alarm in props.get("alarms", [])]
    text = "\n".join(names) + "\n(no states here: moto does not evaluate alarms)"
    axes.text(0.0, 1.0, text, transform=axes.transAxes, fontsize=8, va="top", family="monospace")


def _text(axes: Any, markdown: str, columns: int) -> None:
    axes.axis("off")
    plain = re.sub(r"^#+\s*", "", markdown, flags=re.MULTILINE).replace("`", "")
    title, _, rest = plain.partition("\n")
    axes.text(0.0, 1.0, title, transform=axes.transAxes, fontsize=11, fontweight="bold", va="top")
    axes.text(0.0, 0.6, textwrap.fill(rest, columns * 8), transform=axes.transAxes, fontsize=8.5, va="top")


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "docs/dashboard.png")
    week = seeded_week()
    render(week, path)
    print(f"wrote {path}")
    return 0 if week.documents else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
