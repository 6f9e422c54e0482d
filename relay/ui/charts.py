"""Small inline SVG charts: no script, no external asset; colours come from app.css classes.

Each chart is an ``<svg role="img">`` with a title and a description naming its figures;
pages add the numbers as a table for screen readers and keyboard users.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 300, 80, 2


def bars(
    values: Sequence[int], labels: Sequence[str], title: str, css: str, chart_id: str
) -> Markup:
    """One bar per value (e.g. per day), scaled to the largest; each bar has a tooltip."""
    top = max(values, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(values), 1)
    width = max(step - 1, 1)
    shapes = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = (HEIGHT - 2 * PAD) * value / top
        x, y = PAD + i * step, HEIGHT - PAD - height
        shapes.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{max(height, 0):.1f}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
    total = sum(values)
    desc = f"{total} in all; most in one day: {max(values, default=0)}"
    return Markup(
        f'<svg class="chart {escape(css)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="none">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>'
        f'<line class="axis" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}"/>'
        f"{''.join(shapes)}</svg>"
    )


def sparkline(values: Sequence[int], labels: Sequence[str], title: str, chart_id: str) -> Markup:
    """A line through the values, with a dot per point carrying its tooltip."""
    top = max(values, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    points = [
        (PAD + i * step, HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top) for i, v in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{escape(label)}: {v}</title></circle>'
        for (x, y), v, label in zip(points, values, labels, strict=True)
    )
    desc = ", ".join(f"{label}: {v}" for v, label in zip(values, labels, strict=True))
    return Markup(
        f'<svg class="chart spark" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-labelledby="{chart_id}-t {chart_id}-d">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>'
        f'<polyline points="{line}"/>{dots}</svg>'
    )
