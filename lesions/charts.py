"""Server-side SVG pictures of tumour response (standard library only, no Django).

The same SVG goes into pages and, later, PDF reports. Three pictures:

* :func:`burden_curve` -- one patient's sum of target diameters over time, with the nadir and
  the RECIST 1.1 progression threshold (max(1.2 x nadir, nadir + 5 mm), section 4.3.1) drawn;
* :func:`spider_plot` -- percent change from baseline over time, one line per patient;
* :func:`waterfall_plot` -- best percent change per patient, sorted, with the -30 % (PR) and
  +20 % (PD) lines.

Series carry an optional ``group`` (e.g. the arm, for unblinded users only: the caller decides);
colours are assigned per group. All text is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
PALETTE = ("#0d6efd", "#d63384", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d")


@dataclass(frozen=True)
class Point:
    day: int  # days from the reference date (baseline or treatment start)
    value: Decimal


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]
    group: str = ""


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    group: str = ""


class _Frame:
    """Maps data coordinates to the drawing area."""

    def __init__(self, x_max: float, y_min: float, y_max: float) -> None:
        self.x_max = max(x_max, 1.0)
        self.y_min, self.y_max = y_min, y_max if y_max > y_min else y_min + 1.0

    def x(self, value: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * value / self.x_max

    def y(self, value: float) -> float:
        span = self.y_max - self.y_min
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - self.y_min) / span)


def _svg(body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _axes(frame: _Frame, y_label: str, x_label: str) -> list[str]:
    bottom, top = HEIGHT - BOTTOM, TOP
    parts = [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for tick in _ticks(frame.y_min, frame.y_max):
        y = frame.y(tick)
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    return parts


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / count or 1.0
    return [round(low + step * i, 1) for i in range(count + 1)]


def _hline(frame: _Frame, value: float, colour: str, label: str) -> str:
    y = frame.y(value)
    return (
        f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{colour}" '
        f'stroke-dasharray="4 3"/><text x="{WIDTH - RIGHT - 2}" y="{y - 3:.1f}" '
        f'text-anchor="end" fill="{colour}">{escape(label)}</text>'
    )


def _polyline(frame: _Frame, points: tuple[Point, ...], colour: str, label: str) -> str:
    coords = " ".join(f"{frame.x(p.day):.1f},{frame.y(float(p.value)):.1f}" for p in points)
    dots = "".join(
        f'<circle cx="{frame.x(p.day):.1f}" cy="{frame.y(float(p.value)):.1f}" r="3" '
        f'fill="{colour}"/>'
        for p in points
    )
    return (
        f'<g><title>{escape(label)}</title><polyline points="{coords}" fill="none" '
        f'stroke="{colour}" stroke-width="2"/>{dots}</g>'
    )


def _colours(groups: list[str]) -> dict[str, str]:
    return {group: PALETTE[i % len(PALETTE)] for i, group in enumerate(dict.fromkeys(groups))}


def burden_curve(
    points: tuple[Point, ...],
    nadir: Decimal | None,
    title: str,
    y_label: str = "Sum of diameters (mm)",
    x_label: str = "Days",
) -> str:
    """One patient's tumour burden, with the nadir and the PD threshold."""
    values = [float(p.value) for p in points] or [0.0]
    threshold = float(max(nadir * Decimal("1.2"), nadir + 5)) if nadir is not None else None
    top = max([*values, threshold or 0.0]) * 1.1 or 10.0
    frame = _Frame(max((p.day for p in points), default=1), 0.0, top)
    body = _axes(frame, y_label, x_label)
    if nadir is not None and threshold is not None:
        body.append(_hline(frame, float(nadir), "#198754", f"nadir {nadir} mm"))
        body.append(_hline(frame, threshold, "#dc3545", f"PD threshold {threshold:.1f} mm"))
    if points:
        body.append(_polyline(frame, points, PALETTE[0], title))
    return _svg(body, title)


def spider_plot(
    series: tuple[Series, ...],
    title: str,
    y_label: str = "Change from baseline (%)",
    x_label: str = "Days",
) -> str:
    """Percent change from baseline over time, one line per patient."""
    values = [float(p.value) for s in series for p in s.points] or [0.0]
    frame = _Frame(
        max((p.day for s in series for p in s.points), default=1),
        min(-100.0, min(values)),
        max(40.0, max(values)),
    )
    body = _axes(frame, y_label, x_label)
    body.append(_hline(frame, 20.0, "#dc3545", "+20 %"))
    body.append(_hline(frame, -30.0, "#198754", "-30 %"))
    colours = _colours([s.group for s in series])
    body.extend(_polyline(frame, s.points, colours[s.group], s.label) for s in series if s.points)
    return _svg(body, title)


def waterfall_plot(
    bars: tuple[Bar, ...], title: str, y_label: str = "Best change from baseline (%)"
) -> str:
    """Best percent change per patient, largest increase first."""
    ordered = sorted(bars, key=lambda b: b.value, reverse=True)
    values = [float(b.value) for b in ordered] or [0.0]
    frame = _Frame(max(len(ordered), 1), min(-100.0, min(values)), max(40.0, max(values)))
    body = _axes(frame, y_label, "")
    body.append(_hline(frame, 20.0, "#dc3545", "+20 %"))
    body.append(_hline(frame, -30.0, "#198754", "-30 %"))
    colours = _colours([b.group for b in ordered])
    width = (WIDTH - LEFT - RIGHT) / max(len(ordered), 1) * 0.8
    zero = frame.y(0.0)
    for i, bar in enumerate(ordered):
        y = frame.y(float(bar.value))
        body.append(
            f'<rect x="{frame.x(i + 0.1):.1f}" y="{min(y, zero):.1f}" width="{width:.1f}" '
            f'height="{abs(zero - y):.1f}" fill="{colours[bar.group]}">'
            f"<title>{escape(bar.label)}: {bar.value} %</title></rect>"
        )
    return _svg(body, title)


def days_between(start: date, day: date) -> int:
    return (day - start).days
