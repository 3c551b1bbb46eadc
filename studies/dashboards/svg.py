"""Server-side SVG of the study dashboard (standard library only, no Django).

Same conventions as ``lesions/charts.py`` and ``patients/lab_charts.py``: one ``<svg>`` string
per picture, every text escaped, English defaults that the caller overrides with translations.

* :func:`km_chart` -- Kaplan-Meier step functions (one per series: per arm for unblinded
  statisticians, one pooled series otherwise; the caller decides), a tick at every censoring,
  and an optional dashed landmark (e.g. 6 months);
* :func:`enrolment_chart` -- cumulative enrolment by month, one line per series, each series'
  target as a dashed line of the same colour;
* :func:`bar_chart` -- horizontal bars, optionally stacked (e.g. query age buckets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
PALETTE = ("#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d")
#: Colours of stacked segments when the caller gives none (green, amber, red, then the palette).
SEGMENT_COLOURS = ("#198754", "#ffc107", "#dc3545", *PALETTE)


def _svg(body: Sequence[str], title: str, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _nice_step(span: float, candidates: Sequence[float], most: int) -> float:
    return next((s for s in candidates if span / s <= most), candidates[-1])


class _Frame:
    def __init__(self, x_max: float, y_max: float, height: int = HEIGHT) -> None:
        self.x_max = x_max if x_max > 0 else 1.0
        self.y_max = y_max if y_max > 0 else 1.0
        self.height = height

    def x(self, value: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * value / self.x_max

    def y(self, value: float) -> float:
        return TOP + (self.height - TOP - BOTTOM) * (1 - value / self.y_max)


def _axes(frame: _Frame, x_label: str, y_label: str) -> list[str]:
    bottom = frame.height - BOTTOM
    return [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{(WIDTH + LEFT) / 2}" y="{frame.height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{frame.height / 2}" transform="rotate(-90 12 {frame.height / 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]


def _x_tick(frame: _Frame, value: float, label: str) -> str:
    bottom, x = frame.height - BOTTOM, frame.x(value)
    anchor = "end" if x > WIDTH - RIGHT - 24 else "middle"  # keep the last label inside
    return (
        f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#333"/>'
        f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="{anchor}">{escape(label)}</text>'
    )


def _y_tick(frame: _Frame, value: float, label: str) -> str:
    y = frame.y(value)
    return (
        f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
        f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
    )


def _legend(
    labels: Sequence[str],
    colours: Sequence[str],
    *,
    x: float,
    y: float,
    dashed_label: str = "",
) -> list[str]:
    """Colour keys from (x, y) down; KM curves leave the lower left free, rising lines the
    upper left."""
    parts = []
    for index, label in enumerate(labels):
        top = y + 14 * index
        parts.append(
            f'<g data-legend="{index}"><rect x="{x}" y="{top}" width="10" height="10" '
            f'fill="{colours[index % len(colours)]}"/><text x="{x + 14}" y="{top + 9}">'
            f"{escape(label)}</text></g>"
        )
    if dashed_label:
        top = y + 14 * len(labels) + 5
        parts.append(
            f'<line x1="{x}" y1="{top}" x2="{x + 10}" y2="{top}" stroke="#333" '
            f'stroke-dasharray="3 2"/><text x="{x + 14}" y="{top + 4}">'
            f"{escape(dashed_label)}</text>"
        )
    return parts


# --- Kaplan-Meier --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KmSeries:
    """One curve: ``steps`` are (time, S just after it) in time order, ``censored`` the times
    (with S there) of censorings, ``end`` the longest follow-up (the curve is drawn to it)."""

    label: str
    steps: tuple[tuple[float, float], ...]
    censored: tuple[tuple[float, float], ...] = ()
    end: float = 0.0


def _km_path(frame: _Frame, series: KmSeries) -> str:
    """S = 1 from time 0, then across to each time and down to S after it (a step function)."""
    commands = [f"M{frame.x(0):.1f},{frame.y(1.0):.1f}"]
    for time, survival in series.steps:
        commands.append(f"H{frame.x(time):.1f}V{frame.y(survival):.1f}")
    end = max([series.end, *(t for t, _s in series.steps)], default=0.0)
    commands.append(f"H{frame.x(end):.1f}")
    return "".join(commands)


def _km_ticks(frame: _Frame, series: KmSeries, colour: str) -> str:
    return "".join(
        f'<line class="censor" x1="{frame.x(t):.1f}" y1="{frame.y(s) - 4:.1f}" '
        f'x2="{frame.x(t):.1f}" y2="{frame.y(s) + 4:.1f}" stroke="{colour}" stroke-width="1.5"/>'
        for t, s in series.censored
    )


def km_chart(
    series: Sequence[KmSeries],
    title: str,
    *,
    x_max: float | None = None,
    landmark: tuple[float, str] | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Kaplan-Meier curves, survival 0-100 % against time (in the unit of the series' times).

    ``landmark`` = (time, label) draws a dashed vertical line (e.g. 6 months); ``labels``
    overrides the English texts (keys: x, y, censored).
    """
    text = {"x": "Months", "y": "Survival (%)", "censored": "censored", **(labels or {})}
    longest = max(
        [s.end for s in series] + [t for s in series for t, _v in (*s.steps, *s.censored)],
        default=0.0,
    )
    frame = _Frame(x_max or max(longest * 1.05, landmark[0] * 1.1 if landmark else 0, 1.0), 1.0)
    body = [_y_tick(frame, v, f"{v * 100:.0f}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    body += _axes(frame, text["x"], text["y"])
    step = _nice_step(frame.x_max, (1, 3, 6, 12, 24, 60, 120, 10**6), 10)
    tick = 0.0
    while tick <= frame.x_max:
        body.append(_x_tick(frame, tick, f"{tick:g}"))
        tick += step
    if landmark is not None:
        x = frame.x(landmark[0])
        body.append(
            f'<g class="landmark"><line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#6c757d" stroke-dasharray="4 3"/>'
            f'<text x="{x + 3:.1f}" y="{TOP + 10}" fill="#6c757d">{escape(landmark[1])}</text></g>'
        )
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        body.append(
            f'<g class="km-series" data-series="{index}"><title>{escape(one.label)}</title>'
            f'<path d="{_km_path(frame, one)}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f"{_km_ticks(frame, one, colour)}</g>"
        )
    legend_top = HEIGHT - BOTTOM - 8 - 14 * len(series)
    body += _legend([s.label for s in series], PALETTE, x=LEFT + 10, y=legend_top)
    return _svg(body, title)


# --- enrolment -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineSeries:
    """Cumulative counts, one per month (aligned with the chart's months), and a target."""

    label: str
    values: tuple[int, ...]
    target: int | None = None


def enrolment_chart(
    months: Sequence[str],
    series: Sequence[LineSeries],
    title: str,
    *,
    labels: dict[str, str] | None = None,
) -> str:
    """Cumulative enrolment by month, each series with its target dashed in the same colour.

    ``months`` labels the x axis (e.g. "2026-03"); ``labels`` overrides the English texts
    (keys: x, y, target).
    """
    text = {"x": "Month", "y": "Patients enrolled", "target": "target", **(labels or {})}
    count = max(len(months), 1)
    peak = max(
        [v for s in series for v in s.values] + [s.target or 0 for s in series] + [1], default=1
    )
    height = max(HEIGHT, TOP + 14 * (len(series) + 2) + BOTTOM)  # room for the legend
    frame = _Frame(max(count - 1, 1), peak * 1.1, height)
    y_step = _nice_step(peak, (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**6), 6)
    body = [_y_tick(frame, v, f"{v:g}") for v in range(0, int(peak * 1.1) + 1, int(y_step))]
    body += _axes(frame, text["x"], text["y"])
    every = max(1, -(-count // 8))
    body += [_x_tick(frame, i, months[i]) for i in range(0, len(months), every)]
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        if len(one.values) == 1:
            x, y = frame.x(0), frame.y(one.values[0])
            line = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
        else:
            points = " ".join(
                f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in enumerate(one.values)
            )
            line = f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
        target = ""
        if one.target:
            y = frame.y(one.target)
            target = (
                f'<line class="target" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" '
                f'y2="{y:.1f}" stroke="{colour}" stroke-dasharray="6 4">'
                f"<title>{escape(one.label)}: {escape(text['target'])} {one.target}</title></line>"
            )
        body.append(
            f'<g class="enrolment-series" data-series="{index}">'
            f"<title>{escape(one.label)}</title>{line}{target}</g>"
        )
    dashed = text["target"] if any(s.target for s in series) else ""
    body += _legend([s.label for s in series], PALETTE, x=LEFT + 10, y=TOP + 4, dashed_label=dashed)
    return _svg(body, title, height)


# --- horizontal bars -----------------------------------------------------------------------------

BAR_ROW = 22
LABEL_WIDTH = 220
BAR_LABEL_CHARS = 36


@dataclass(frozen=True)
class Bar:
    """One bar: ``values`` are its stacked segments, left to right (one value: a plain bar)."""

    label: str
    values: tuple[int, ...]


def _short(label: str) -> str:
    return label if len(label) <= BAR_LABEL_CHARS else label[: BAR_LABEL_CHARS - 1] + "…"


def bar_chart(
    bars: Sequence[Bar],
    title: str,
    *,
    segments: Sequence[str] = (),
    colours: Sequence[str] = SEGMENT_COLOURS,
) -> str:
    """Horizontal bars, longest scale = the largest total; ``segments`` names stacked parts."""
    height = TOP + BAR_ROW * max(len(bars), 1) + (BAR_ROW if segments else 0) + 8
    peak = max([sum(b.values) for b in bars] + [1])
    span = WIDTH - RIGHT - LABEL_WIDTH - 40
    body = []
    for row, bar in enumerate(bars):
        y = TOP + BAR_ROW * row
        body.append(
            f'<g class="bar" data-row="{row}"><title>{escape(bar.label)}: '
            f"{sum(bar.values)}</title>"
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(_short(bar.label))}</text>"
        )
        x = float(LABEL_WIDTH)
        for index, value in enumerate(bar.values):
            width = span * value / peak
            if value:
                body.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{BAR_ROW - 6}" '
                    f'fill="{colours[index % len(colours)]}"/>'
                )
            x += width
        body.append(f'<text x="{x + 4:.1f}" y="{y + 14}">{sum(bar.values)}</text></g>')
    if segments:
        y = TOP + BAR_ROW * len(bars) + 6
        x = LABEL_WIDTH
        for index, name in enumerate(segments):
            body.append(
                f'<rect x="{x}" y="{y}" width="10" height="10" '
                f'fill="{colours[index % len(colours)]}"/>'
                f'<text x="{x + 14}" y="{y + 9}">{escape(name)}</text>'
            )
            x += 24 + 7 * len(name)
    return _svg(body, title, height)
