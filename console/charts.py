"""Bar charts drawn as SVG on the server.

Why SVG from the server rather than a chart library in the browser: the page needs two
small bar charts, which take fifty lines here; a library would add a build step, a
bundled asset to keep up to date and script the CSP must allow. The charts work without
JavaScript, are read by screen readers (a title and a table-like description), and the
live refresh only swaps the SVG fragment the server draws again.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from accounts.usage_queries import Bucket

__all__ = ["bar_chart"]

WIDTH = 720
HEIGHT = 180
LEFT = 40
BOTTOM = 22
TOP = 8


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... at or above `value`: the axis' top."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def bar_chart(buckets: Sequence[Bucket], *, unit: str, title: str) -> Markup:
    """Requests per bucket (failures drawn over them in the second colour)."""
    count = max(1, len(buckets))
    top = _nice_top(max((b.requests for b in buckets), default=0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / count
    bar = max(1.0, slot * 0.8)
    total = sum(b.requests for b in buckets)
    failed = sum(b.failures for b in buckets)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: {total} requests, {failed} failed">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 4}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = 4 if unit == "hour" else 10
    for index, bucket in enumerate(buckets):
        x = LEFT + index * slot + (slot - bar) / 2
        label = bucket.start.strftime("%H:00" if unit == "hour" else "%H:%M")
        tip = f"{label} UTC: {bucket.requests} requests, {bucket.failures} failed"
        if bucket.requests:
            height = plot_h * bucket.requests / top
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}"><title>{tip}</title></rect>'
            )
        if bucket.failures:
            height = plot_h * bucket.failures / top
            parts.append(
                f'<rect class="bar-failed" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" '
                f'width="{bar:.1f}" height="{height:.1f}"><title>{tip}</title></rect>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text class="tick" x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" '
                f'text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
