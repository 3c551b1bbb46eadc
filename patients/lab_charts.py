"""Server-side SVG of a patient's absolute lymphocyte count over time (standard library only).

Same conventions as ``lesions/charts.py`` (one SVG for pages and, later, PDF reports; every
text escaped).  The x axis is days from the first delivered SBRT fraction (day 0; negative
before it); the y axis is the count in 10^9/L.  Drawn:

* the CTCAE v5.0 "Lymphocyte count decreased" bands: grade 2 below 0.8, grade 3 below 0.5,
  grade 4 below 0.2 x 10^9/L (absolute bands; grade 1 is from the lab's LLN down to 0.8, drawn
  when the LLN is known);
* the SBRT period (first to last delivered fraction) shaded;
* optionally the window of the lymphopenia endpoint (e.g. 42 +/- 7 days after the end of SBRT);
* the counts, joined in date order, each dot titled with its date, value and grade.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape

from lesions.charts import BOTTOM, HEIGHT, LEFT, PALETTE, RIGHT, TOP, WIDTH

#: (upper bound in 10^9/L, grade, fill colour) of the CTCAE bands, highest bound first.
BANDS = (
    (Decimal("0.8"), 2, "#ffe5a0"),
    (Decimal("0.5"), 3, "#ffc58a"),
    (Decimal("0.2"), 4, "#f4a3a8"),
)
GRADE_1_FILL = "#fff6d6"
SBRT_FILL = "#cfe2ff"
WINDOW_FILL = "#d1e7dd"


@dataclass(frozen=True)
class CountPoint:
    day: int  # days from the first SBRT fraction (or from the first sample without SBRT)
    value: Decimal  # x 10^9/L
    label: str = ""  # e.g. "2026-03-04: 0.45 x10^9/L, grade 3"


class _Frame:
    def __init__(self, x_min: int, x_max: int, y_max: float) -> None:
        self.x_min, self.x_max = x_min, x_max if x_max > x_min else x_min + 1
        self.y_max = y_max if y_max > 0 else 1.0

    def x(self, day: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - self.x_min) / (self.x_max - self.x_min)

    def y(self, value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / self.y_max)


def _band(frame: _Frame, low: float, high: float, fill: str, label: str) -> tuple[str, str]:
    """(the band's rectangle, its label): labels are drawn last, above the shaded periods."""
    top, bottom = frame.y(min(high, frame.y_max)), frame.y(low)
    rect = (
        f'<rect x="{LEFT}" y="{top:.1f}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{bottom - top:.1f}" fill="{fill}"><title>{escape(label)}</title></rect>'
    )
    text = (
        f'<text x="{WIDTH - RIGHT - 4}" y="{bottom - 3:.1f}" text-anchor="end" '
        f'fill="#6c4a00">{escape(label)}</text>'
    )
    return rect, text


def _period(frame: _Frame, start: int, end: int, fill: str, label: str) -> str:
    # A day is drawn as [day, day + 1) so a one-day period stays visible.
    left, right = frame.x(max(start, frame.x_min)), frame.x(min(end + 1, frame.x_max))
    return (
        f'<g><title>{escape(label)}</title><rect x="{left:.1f}" y="{TOP}" '
        f'width="{max(right - left, 1):.1f}" height="{HEIGHT - TOP - BOTTOM}" fill="{fill}" '
        f'fill-opacity="0.55"/><text x="{left + 2:.1f}" y="{TOP + 11}">{escape(label)}</text></g>'
    )


def _axes(frame: _Frame, y_label: str, x_label: str) -> list[str]:
    bottom = HEIGHT - BOTTOM
    parts = [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for tick in _y_ticks(frame.y_max):
        y = frame.y(tick)
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    span = frame.x_max - frame.x_min
    step = next(s for s in (7, 14, 28, 56, 91, 182, 365, 10**6) if span / s <= 8)
    first = -(-frame.x_min // step) * step
    for day in range(first, frame.x_max + 1, step):
        x = frame.x(day)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{day}</text>'
        )
    return parts


def _y_ticks(y_max: float) -> list[float]:
    """The grade bounds, then 1, 1 + step, ... (at most about six more ticks)."""
    ticks = [t for t in (0.0, 0.2, 0.5, 0.8) if t <= y_max]
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50, 100) if (y_max - 1.0) / s <= 6)
    tick = 1.0
    while tick <= y_max:
        ticks.append(tick)
        tick += step
    return ticks


def _series(frame: _Frame, points: tuple[CountPoint, ...], colour: str) -> str:
    ordered = sorted(points, key=lambda p: p.day)
    coords = " ".join(f"{frame.x(p.day):.1f},{frame.y(float(p.value)):.1f}" for p in ordered)
    dots = "".join(
        f'<circle cx="{frame.x(p.day):.1f}" cy="{frame.y(float(p.value)):.1f}" r="3.5" '
        f'fill="{colour}"><title>{escape(p.label or f"{p.value}")}</title></circle>'
        for p in ordered
    )
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>{dots}'


def lymphocyte_chart(
    points: tuple[CountPoint, ...],
    title: str,
    *,
    sbrt: tuple[int, int] | None = None,
    window: tuple[int, int] | None = None,
    lln: Decimal | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """The absolute lymphocyte count over days from the first SBRT fraction.

    ``sbrt`` and ``window`` are (first day, last day) ranges in the same day numbering;
    ``lln`` is the lab's lower limit of normal in 10^9/L; ``labels`` overrides the English
    texts (keys: y, x, sbrt, window, grade) for translation.
    """
    text = {
        "y": "Lymphocytes (10^9/L)",
        "x": "Days from the first SBRT fraction",
        "sbrt": "SBRT",
        "window": "Endpoint window",
        "grade": "Grade",
        **(labels or {}),
    }
    days = [p.day for p in points]
    for span in (sbrt, window):
        if span:
            days.extend(span)
    x_min, x_max = min(days, default=0), max(days, default=1)
    margin = max(2, (x_max - x_min) // 20)
    values = [float(p.value) for p in points]
    y_max = max([*values, float(lln or 0), 1.0]) * 1.15
    frame = _Frame(x_min - margin, x_max + margin, y_max)
    bands = []
    if lln is not None and lln > BANDS[0][0]:
        bands.append(
            _band(frame, float(BANDS[0][0]), float(lln), GRADE_1_FILL, f"{text['grade']} 1")
        )
    for index, (high, grade, fill) in enumerate(BANDS):
        low = float(BANDS[index + 1][0]) if index + 1 < len(BANDS) else 0.0
        bands.append(_band(frame, low, float(high), fill, f"{text['grade']} {grade}"))
    body = [rect for rect, _label in bands]
    if sbrt:
        body.append(_period(frame, sbrt[0], sbrt[1], SBRT_FILL, text["sbrt"]))
    if window:
        body.append(_period(frame, window[0], window[1], WINDOW_FILL, text["window"]))
    body.extend(label for _rect, label in bands)
    body.extend(_axes(frame, text["y"], text["x"]))
    if points:
        body.append(_series(frame, points, PALETTE[0]))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )
