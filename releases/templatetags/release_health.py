"""Release health as a person reads it: ``99.2 %``, ``1.4k``, stage badges and inline SVG charts.

The charts are drawn here, on the server: geometry in Python, markup in the templates under
``admin/releases/health/``. No JavaScript, nothing fetched from elsewhere (docs/admin.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import template
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import localtime

from releases.health.dashboard import OUTCOMES, OutcomeBucket

register = template.Library()

DASH = "—"
STAGE_LABELS = {"adopted": "Adopted", "replaced": "Replaced", "low_adoption": "Low adoption"}
OUTCOME_COLOURS = {
    "healthy": "#3d9a5c",
    "errored": "#e0a526",
    "abnormal": "#8e6bbf",
    "crashed": "#d1394a",
    "unhandled": "#e56f28",
}


@register.filter
def percent(value: float | None) -> str:
    """``99.2 %``: one decimal, rounded down (99.96 % is not 100 %); ``—`` without data."""
    if value is None:
        return DASH
    if value >= 100:
        return "100 %"
    return f"{math.floor(value * 10) / 10:.1f} %"


#: Crash-free rates under these read as a warning and as bad (docs/admin.md).
WARN_BELOW, BAD_BELOW = 99.0, 95.0


@register.filter
def rate(value: float | None) -> SafeString | str:
    """A crash-free rate as :func:`percent`, coloured: amber under 99 %, red under 95 %."""
    if value is None:
        return DASH
    level = "bad" if value < BAD_BELOW else "warn" if value < WARN_BELOW else "good"
    return format_html('<span class="rate rate-{}">{}</span>', level, percent(value))


@register.filter
def change(value: float | None) -> SafeString | str:
    """The change in crash-free sessions from the release before: ``▼ 3.1 pts`` when worse."""
    if value is None:
        return DASH
    if abs(value) < 0.05:
        return format_html('<span class="change change-same">{}</span>', "= same")
    worse = value < 0
    return format_html(
        '<span class="change change-{}">{} {} pts</span>',
        "worse" if worse else "better",
        "▼" if worse else "▲",
        f"{abs(value):.1f}",
    )


@register.filter
def compact(value: int | None) -> str:
    """``950``, ``1.4k``, ``14k``, ``2.3M``; ``—`` without data."""
    if value is None:
        return DASH
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            scaled = value / size
            text = f"{scaled:.1f}" if abs(scaled) < 10 else f"{scaled:.0f}"
            return text.removesuffix(".0") + suffix
    return str(value)


@register.filter
def seconds(value: float | None) -> str:
    """A duration: ``42 s``, ``3 min 5 s``; ``—`` without data."""
    if value is None:
        return DASH
    if value < 60:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


@register.filter
def stage_badge(stage: str | None) -> SafeString | str:
    """A coloured badge for ``low_adoption``, ``adopted`` or ``replaced``."""
    if not stage:
        return DASH
    return format_html(
        '<span class="stage-badge stage-{}" data-stage="{}">{}</span>',
        stage,
        stage,
        STAGE_LABELS.get(stage, stage),
    )


def _when(moment: datetime, hourly: bool) -> str:
    return date_format(localtime(moment), "Y-m-d H:i" if hourly else "Y-m-d")


def _tick(moment: datetime, hourly: bool, *, first: bool) -> str:
    """An axis label: ``14:00`` (with the date on the first and at midnight), or ``11-30``."""
    local = localtime(moment)
    if not hourly:
        return date_format(local, "m-d")
    return date_format(local, "m-d H:i" if first or local.hour == 0 else "H:i")


# -- The sessions chart ------------------------------------------------------------------------

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 56, 14, 44


@dataclass
class Segment:
    outcome: str
    count: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass
class Bar:
    label: str
    start: datetime
    sessions: int
    crash_free: float | None
    counts: dict[str, int]
    segments: list[Segment]


@dataclass
class Marker:
    x: float
    label: str
    when: datetime
    environment: str


def _nice_max(value: int) -> int:
    """The next 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


@register.inclusion_tag("admin/releases/health/sessions_chart.html")
def sessions_chart(
    buckets: Sequence[OutcomeBucket], deploys: Sequence[Any], title: str, hourly: bool
) -> dict[str, Any]:
    """Bars of sessions per bucket stacked by outcome, the crash-free rate as a line (right
    axis) and the deploys as marks on the time axis; each bar carries its counts as data
    attributes and a tooltip, and a table under the chart repeats the numbers."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(1, len(buckets))
    step = plot_w / n
    top = _nice_max(max((b.sessions for b in buckets), default=0))
    rates = [b.crash_free for b in buckets if b.crash_free is not None]
    # The rate axis runs from a round figure under the lowest rate up to 100 %.
    floor_rate = max(0, math.floor((min(rates, default=100) - 1) / 10) * 10)
    bottom_y = TOP + plot_h

    bars: list[Bar] = []
    line: list[str] = []
    for i, bucket in enumerate(buckets):
        x = LEFT + i * step + step * 0.1
        y = float(bottom_y)
        segments = []
        for outcome in OUTCOMES:
            count = bucket.counts[outcome]
            if not count:
                continue
            height = count / top * plot_h
            y -= height
            segments.append(
                Segment(
                    outcome,
                    count,
                    round(x, 2),
                    round(y, 2),
                    round(step * 0.8, 2),
                    round(height, 2),
                    OUTCOME_COLOURS[outcome],
                )
            )
        bars.append(
            Bar(
                _when(bucket.start, hourly),
                bucket.start,
                bucket.sessions,
                bucket.crash_free,
                bucket.counts,
                segments,
            )
        )
        if bucket.crash_free is not None:
            rate_y = TOP + (100 - bucket.crash_free) / (100 - floor_rate) * plot_h
            line.append(f"{LEFT + (i + 0.5) * step:.2f},{rate_y:.2f}")

    markers: list[Marker] = []
    if buckets:
        start, end = buckets[0].start, buckets[-1].end
        span = (end - start).total_seconds()
        for deploy in deploys:
            when = deploy.date_finished
            if start <= when < end:
                x = LEFT + (when - start).total_seconds() / span * plot_w
                environment = deploy.environment.name if deploy.environment_id else ""
                markers.append(Marker(round(x, 2), deploy.name or "deploy", when, environment))
    every = max(1, math.ceil(n / 8))
    ticks = [
        {"x": round(LEFT + (i + 0.5) * step, 2), "label": _tick(bar.start, hourly, first=i == 0)}
        for i, bar in enumerate(bars)
        if i % every == 0
    ]
    total = sum(b.sessions for b in buckets)
    crashed = sum(b.counts["crashed"] for b in buckets)
    shown = [o for o in OUTCOMES if o != "unhandled" or any(b.counts[o] for b in buckets)]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right_x": WIDTH - RIGHT,
        "top": TOP,
        "bottom_y": bottom_y,
        "mid_y": TOP + plot_h / 2,
        "top_count": top,
        "half_count": compact(top // 2) if top > 1 else "",
        "floor_rate": floor_rate,
        "mid_rate": (100 + floor_rate) / 2,
        "bars": bars,
        "line": " ".join(line),
        "markers": markers,
        "ticks": ticks,
        "tick_y": bottom_y + 16,
        "marker_y": bottom_y + 30,
        "title": title,
        "description": (
            f"{total} sessions in {len(buckets)} {'hours' if hourly else 'buckets'}, "
            f"{crashed} crashed; {len(markers)} deploy(s) marked."
        ),
        "legend": [(o, OUTCOME_COLOURS[o]) for o in shown],
        "outcomes": shown,
        "hourly": hourly,
    }


@register.simple_tag
def sparkline(values: Sequence[int], label: str = "Sessions per day") -> SafeString:
    """A small line of ``values`` (oldest first), with its numbers as its title."""
    width, height, pad = 120, 26, 2
    top = max(values, default=0) or 1
    n = len(values)
    points = " ".join(
        f"{pad + (i * (width - 2 * pad) / max(1, n - 1)):.1f},"
        f"{height - pad - v / top * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
    )
    numbers = ", ".join(str(v) for v in values)
    return format_html(
        '<svg class="sparkline" role="img" width="{}" height="{}" viewBox="0 0 {} {}" '
        'data-values="{}"><title>{}: {}</title>'
        '<polyline points="{}" fill="none" stroke="#417893" stroke-width="1.5"/></svg>',
        width,
        height,
        width,
        height,
        numbers,
        label,
        numbers,
        points,
    )
