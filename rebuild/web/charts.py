"""The overview's trend chart, drawn on the server as SVG: no script, no chart library, nothing to load.

One stacked bar per period (reproduced, not reproduced, could not rebuild) and the reproduced rate as a
line over them. The SVG is made of numbers and fixed words only; every text is escaped all the same, and
colours come from classes in the page's stylesheet (the pages' CSP allows no inline style).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from rebuild.web.queries import COULD_NOT_REBUILD, NOT_REPRODUCED, REPRODUCED, Bucket

SERIES = ((REPRODUCED, "bar-reproduced"), (NOT_REPRODUCED, "bar-not-reproduced"),
          (COULD_NOT_REBUILD, "bar-could-not"))  # fmt: skip
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 44, 28, 12


def _label(start: float, width: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M" if width < 86400 else "%Y-%m-%d", time.gmtime(start))


def trend_svg(buckets: Sequence[Bucket]) -> str:
    """The chart as an ``<svg>`` element (empty-state text when nothing has finished yet)."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-labelledby="trend-title">')  # fmt: skip
    if not buckets:
        empty = f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle">no verdict yet</text>'
        return f'{head}<title id="trend-title">No verdict yet</title>{empty}</svg>'
    totals = [sum(b.counts.get(name, 0) for name, _ in SERIES) for b in buckets]
    top = max(max(totals), 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / len(buckets)
    bar = max(slot * 0.7, 1.0)
    first, last = buckets[0], buckets[-1]
    title = f"Verdicts per period, {_label(first.start, first.end - first.start)} to {_label(last.end, 86400)}"
    parts = [head, f'<title id="trend-title">{escape(title)}</title>']
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>')
    for value in sorted({0, top // 2, top}):
        y = TOP + plot_h - plot_h * value / top
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>')
    points = []
    for i, (b, total) in enumerate(zip(buckets, totals, strict=True)):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        tip = ", ".join(f"{b.counts.get(name, 0)} {name}" for name, _ in SERIES)
        parts.append(f"<g><title>{escape(_label(b.start, b.end - b.start))}: {escape(tip)}</title>")
        for name, css in SERIES:
            h = plot_h * b.counts.get(name, 0) / top
            if h > 0:
                y -= h
                parts.append(f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}"/>')
        parts.append("</g>")
        if total:
            rate = b.counts.get(REPRODUCED, 0) / total
            points.append(f"{x + bar / 2:.1f},{TOP + plot_h - plot_h * rate:.1f}")
    if len(points) > 1:
        parts.append(f'<polyline class="rate" points="{" ".join(points)}"/>')
    for i in sorted({0, len(buckets) - 1}):
        b = buckets[i]
        anchor = "start" if i == 0 else "end"
        x = LEFT if i == 0 else WIDTH - 8
        parts.append(f'<text class="tick" x="{x}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                     f"{escape(_label(b.start, b.end - b.start))}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)
