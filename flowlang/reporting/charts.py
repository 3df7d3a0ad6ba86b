"""Small, dependency-free SVG charts for simulations and reports.

    svg = step_chart({"Retail": [(0, 0), (60, 3), (120, 1)]}, title="Waiting", y_label="...")

Each series is a list of (x, y) points in x order; a step chart holds each y until the next x,
which is how a queue length behaves. The SVG is self-contained (no scripts, no fonts to load)
so it can be inlined in HTML or opened on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
Series = Mapping[str, Sequence[tuple[float, float]]]


def step_chart(
    series: Series,
    *,
    title: str,
    x_label: str = "",
    y_label: str = "",
    x_format: Callable[[float], str] = lambda x: f"{x:g}",
    x_ticks: Sequence[float] | None = None,
    x_range: tuple[float, float] | None = None,
    width: int = 760,
    height: int = 320,
) -> str:
    """A chart of step lines, one per series, with axes, ticks and a legend. The x axis spans
    `x_range` (else the data's range) and is labelled at `x_ticks` (those within it), else at
    six even steps."""
    return _chart(series, title, x_label, y_label, x_format, x_ticks, x_range, width, height)


def _chart(
    series: Series,
    title: str,
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
    x_ticks: Sequence[float] | None,
    x_range: tuple[float, float] | None,
    width: int,
    height: int,
) -> str:
    left, right, top, bottom = 56, 150, 34, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    points = [p for values in series.values() for p in values]
    x_min = min((x for x, _ in points), default=0.0)
    x_max = max((x for x, _ in points), default=1.0)
    if x_range is not None:
        x_min, x_max = x_range
    y_max = max((y for _, y in points), default=0.0)
    y_top = _nice_ceiling(y_max)
    x_span = (x_max - x_min) or 1.0

    def sx(x: float) -> float:
        return left + (x - x_min) / x_span * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y / y_top) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):
        value = y_top * i / 4
        y = sy(value)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    ticks = (
        [x for x in x_ticks if x_min <= x <= x_max]
        if x_ticks is not None
        else [x_min + x_span * i / 5 for i in range(6)]
    )
    for x_value in ticks:
        x = sx(x_value)
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(x_format(x_value))}</text>"
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>'
    )
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>')
    if x_label:
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
        )
    if y_label:
        out.append(
            f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
        )
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        coords: list[str] = []
        previous_y: float | None = None
        for x, y in values:
            if previous_y is not None:
                coords.append(f"{sx(x):.1f},{sy(previous_y):.1f}")
            coords.append(f"{sx(x):.1f},{sy(y):.1f}")
            previous_y = y
        out.append(
            f'<polyline class="series" data-series="{escape(name)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5" points="{" ".join(coords)}"/>'
        )
        legend_y = top + 14 * index + 6
        out.append(
            f'<rect x="{left + plot_w + 12}" y="{legend_y - 8}" width="10" height="10" '
            f'fill="{colour}"/>'
        )
        out.append(f'<text x="{left + plot_w + 26}" y="{legend_y + 1}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below `value` (at least 1)."""
    if value <= 1:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)
