"""Swimmer plot of a study and treatment timeline of a patient: server-side SVG, no Django.

One bar per patient, from day 0 (enrolment, or the first delivered SBRT fraction when there is
no enrolment date) to the end of follow-up (death, going off study, or today for patients still
followed). On it: systemic therapy lines as coloured segments labelled with their agents, SBRT
courses as short dark bars from the first to the last delivered fraction, study-drug cycles as
ticks, progression (RECIST PD) as a triangle, death as an X, and an arrow at the end of an
ongoing line or of the follow-up of a patient still on study. Rows are sorted by follow-up
length, longest first.

The caller decides what a user may see (studies/blinding.py): blinded users get rows with no arm,
no study-drug cycle and no fraction count. Every text drawn is escaped; translated labels come in
through :class:`Labels`. Drawn marks carry a class (``sw-line``, ``sw-sbrt``, ``sw-cycle``,
``sw-progression``, ``sw-death``, ``sw-arrow``, ``sw-earlier``); the legend's glyphs do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from html import escape

WIDTH = 760
RIGHT, TOP = 24, 12
MIN_LEFT, MAX_LEFT = 80, 300
ROW = 28
AXIS = 34
CHAR = 6.2  # average width of a character at font-size 11
FOLLOW_UP_COLOUR = "#adb5bd"
SBRT_COLOUR = "#212529"
CYCLE_COLOUR = "#6f42c1"
PROGRESSION_COLOUR = "#dc3545"
DEATH_COLOUR = "#000000"
ARROW_COLOUR = "#495057"
# Line 1, 2, 3...: the colour-blind-safe Okabe-Ito colours, black and yellow left out.
LINE_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")
STEPS = (7, 14, 28, 30, 60, 90, 180, 365, 730, 1461, 3652)


@dataclass(frozen=True)
class Labels:
    """Every text the pictures draw, translated by the caller (English defaults for tests).

    Texts with ``%(number)s`` are formatted with the line, course or cycle number.
    """

    title: str = "Swimmer plot"
    timeline_title: str = "Treatment timeline"
    days: str = "Days from day 0"
    follow_up: str = "Follow-up"
    line: str = "Line %(number)s"
    sbrt: str = "SBRT"
    course: str = "SBRT course %(number)s"
    study_drug: str = "Study drug"
    cycle: str = "Cycle %(number)s"
    not_given: str = "not given"
    progression: str = "Progression"
    death: str = "Death"
    ongoing: str = "Ongoing"
    earlier: str = "Started before the left edge of the plot"
    events: str = "Events"
    no_patient: str = "No patient with a day 0 yet."


@dataclass(frozen=True)
class LineBar:
    """A systemic therapy line; ``end`` None: ongoing."""

    number: int
    start: date
    end: date | None
    agents: tuple[str, ...] = ()
    stop_reason: str = ""  # translated by the caller

    @property
    def agents_text(self) -> str:
        return ", ".join(self.agents)


@dataclass(frozen=True)
class CourseBar:
    """An SBRT course as delivered: first and last delivered fraction (dates only when blinded)."""

    number: int
    first: date
    last: date
    fractions: int | None = None  # delivered fractions; None for blinded users


@dataclass(frozen=True)
class CycleTick:
    """A study-drug cycle (never built for users blinded to allocation)."""

    number: int
    day: date  # day 1 given, or planned when not given
    agent: str
    given: bool = True


@dataclass(frozen=True)
class PatientRow:
    patient_id: int
    label: str  # subject identifier
    origin: date  # day 0
    last: date  # end of follow-up
    ongoing: bool = False  # still followed: an arrow at the end of the bar
    arm: str = ""  # empty for users blinded to allocation
    blinded: bool = False  # the user may not see this patient's allocation (nor cycles)
    lines: tuple[LineBar, ...] = ()
    courses: tuple[CourseBar, ...] = ()
    cycles: tuple[CycleTick, ...] = ()
    progression: date | None = None
    death: date | None = None
    url: str = ""

    def day(self, when: date) -> int:
        return (when - self.origin).days

    @property
    def end(self) -> date:
        """The right end of the bar: the follow-up, stretched to anything recorded later."""
        dates = [self.last, self.origin, *(line.start for line in self.lines)]
        dates += [line.end for line in self.lines if line.end]
        dates += [course.last for course in self.courses] + [cycle.day for cycle in self.cycles]
        dates += [d for d in (self.progression, self.death) if d]
        return max(dates)

    @property
    def follow_up_days(self) -> int:
        return self.day(self.end)

    @property
    def first_day(self) -> int:
        """The earliest day drawn (negative for a line begun before day 0)."""
        starts = [self.day(line.start) for line in self.lines]
        starts += [self.day(course.first) for course in self.courses]
        starts += [self.day(cycle.day) for cycle in self.cycles]
        return min([0, *starts])

    @property
    def ongoing_line(self) -> bool:
        return any(line.end is None for line in self.lines)


class _Frame:
    """Days to x coordinates, right of a margin wide enough for the row labels."""

    def __init__(self, low: int, high: int, left: float) -> None:
        self.low, self.high = low, max(high, low + 1)
        self.left = left

    def x(self, day: float) -> float:
        day = min(max(day, self.low), self.high)
        return self.left + (WIDTH - self.left - RIGHT) * (day - self.low) / (self.high - self.low)


def _left_margin(texts: Iterable[str]) -> float:
    longest = max((len(t) for t in texts), default=0)
    return min(max(MIN_LEFT, CHAR * longest + 24), MAX_LEFT)


def _row_text(row: PatientRow) -> str:
    return f"{row.label} ({row.arm})" if row.arm else row.label


def _step(span: int) -> int:
    return next((s for s in STEPS if span / s <= 10), STEPS[-1])


def _axis(frame: _Frame, y: float, label: str) -> list[str]:
    step = _step(frame.high - frame.low)
    first = -(-frame.low // step) * step
    parts = [
        f'<line x1="{frame.left}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#333"/>',
        f'<text x="{(frame.left + WIDTH - RIGHT) / 2}" y="{y + 28}" text-anchor="middle">'
        f"{escape(label)}</text>",
    ]
    for tick in range(first, frame.high + 1, step):
        x = frame.x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#333"/>'
            f'<text x="{x:.1f}" y="{y + 15}" text-anchor="middle">{tick}</text>'
        )
    return parts


def _day0(frame: _Frame, top: float, bottom: float) -> str:
    x = frame.x(0)
    return (
        f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#6c757d" '
        f'stroke-dasharray="3 3"/>'
    )


def _svg(body: list[str], title: str, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _colour(number: int) -> str:
    return LINE_PALETTE[(max(number, 1) - 1) % len(LINE_PALETTE)]


def _fits(text: str, width: float) -> str:
    """As much of ``text`` as fits in ``width`` pixels at font-size 9 (about 5 px a character)."""
    room = int(width // 5)
    if room >= len(text):
        return text
    return text[: room - 1] + "…" if room > 3 else ""


def _arrow(x: float, y: float, colour: str) -> str:
    return (
        f'<path class="sw-arrow" d="M{x:.1f},{y - 5:.1f} L{x + 8:.1f},{y:.1f} '
        f'L{x:.1f},{y + 5:.1f} Z" fill="{colour}"/>'
    )


def _triangle(x: float, y: float, title: str) -> str:
    return (
        f'<path class="sw-progression" d="M{x - 5:.1f},{y - 12:.1f} L{x + 5:.1f},{y - 12:.1f} '
        f'L{x:.1f},{y - 3:.1f} Z" fill="{PROGRESSION_COLOUR}" stroke="#fff" stroke-width="0.5">'
        f"<title>{escape(title)}</title></path>"
    )


def _cross(x: float, y: float, title: str) -> str:
    return (
        f'<path class="sw-death" d="M{x - 5:.1f},{y - 5:.1f} L{x + 5:.1f},{y + 5:.1f} '
        f'M{x - 5:.1f},{y + 5:.1f} L{x + 5:.1f},{y - 5:.1f}" stroke="{DEATH_COLOUR}" '
        f'stroke-width="2.5"><title>{escape(title)}</title></path>'
    )


def _line(
    row: PatientRow, line: LineBar, frame: _Frame, y: float, labels: Labels
) -> tuple[list[str], str]:
    """The line's bar (with its arrow or clipped-start marker) and, apart, its agents' label,
    drawn last so that SBRT bars do not hide it."""
    start, end = row.day(line.start), row.day(line.end or row.end)
    x1, x2 = frame.x(start), frame.x(end)
    name = labels.line % {"number": line.number}
    until = line.end.isoformat() if line.end else labels.ongoing
    title = f"{name}: {line.agents_text} ({line.start.isoformat()} → {until})"
    colour = _colour(line.number)
    parts = [
        f'<rect class="sw-line" data-line="{line.number}" x="{x1:.1f}" y="{y - 6:.1f}" '
        f'width="{max(x2 - x1, 2):.1f}" height="12" fill="{colour}">'
        f"<title>{escape(title)}</title></rect>"
    ]
    if start < frame.low:
        parts.append(
            f'<path class="sw-earlier" d="M{x1 - 1:.1f},{y - 6:.1f} L{x1 - 7:.1f},{y:.1f} '
            f'L{x1 - 1:.1f},{y + 6:.1f} Z" fill="{colour}"><title>{escape(labels.earlier)}'
            f"</title></path>"
        )
    if line.end is None:
        parts.append(_arrow(x2 + 1, y, colour))
    text = _fits(line.agents_text, x2 - x1 - 6)
    label = (
        f'<text x="{x1 + 3:.1f}" y="{y + 3.5:.1f}" font-size="9" fill="#fff" stroke="{colour}" '
        f'stroke-width="3" paint-order="stroke">{escape(text)}</text>'
        if text
        else ""
    )
    return parts, label


def _course(row: PatientRow, course: CourseBar, frame: _Frame, y: float, labels: Labels) -> str:
    x1, x2 = frame.x(row.day(course.first)), frame.x(row.day(course.last))
    title = (
        f"{labels.course % {'number': course.number}}: "
        f"{course.first.isoformat()} → {course.last.isoformat()}"
    )
    return (
        f'<rect class="sw-sbrt" x="{x1 - 1.5:.1f}" y="{y - 9:.1f}" '
        f'width="{max(x2 - x1, 0) + 3:.1f}" height="18" fill="{SBRT_COLOUR}">'
        f"<title>{escape(title)}</title></rect>"
    )


def _cycle(
    row: PatientRow, cycle: CycleTick, frame: _Frame, y1: float, y2: float, labels: Labels
) -> str:
    x = frame.x(row.day(cycle.day))
    title = f"{labels.cycle % {'number': cycle.number}}: {cycle.agent} ({cycle.day.isoformat()})"
    if not cycle.given:
        title += f", {labels.not_given}"
    dash = "" if cycle.given else ' stroke-dasharray="2 2"'
    return (
        f'<line class="sw-cycle" x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" '
        f'stroke="{CYCLE_COLOUR}" stroke-width="2"{dash}><title>{escape(title)}</title></line>'
    )


def _row_label(row: PatientRow, frame: _Frame, y: float) -> str:
    text = escape(row.label) + (
        f' <tspan fill="#6c757d">({escape(row.arm)})</tspan>' if row.arm else ""
    )
    label = f'<text x="{frame.left - 12}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
    if row.url:
        return f'<a href="{escape(row.url)}">{label}</a>'
    return label


def _follow_up(row: PatientRow, frame: _Frame, y: float, labels: Labels, *, arrow: bool) -> list:
    x1, x2 = frame.x(0), frame.x(row.follow_up_days)
    title = f"{labels.follow_up}: {row.origin.isoformat()} → {row.end.isoformat()}"
    parts = [
        f'<rect class="sw-follow-up" x="{x1:.1f}" y="{y - 2:.1f}" width="{max(x2 - x1, 1):.1f}" '
        f'height="4" fill="{FOLLOW_UP_COLOUR}"><title>{escape(title)}</title></rect>'
    ]
    if arrow and row.ongoing:
        parts.append(_arrow(x2 + 1, y, FOLLOW_UP_COLOUR))
    return parts


def _events(row: PatientRow, frame: _Frame, y: float, labels: Labels) -> list[str]:
    parts = []
    if row.progression:
        title = f"{labels.progression}: {row.progression.isoformat()}"
        parts.append(_triangle(frame.x(row.day(row.progression)), y, title))
    if row.death:
        title = f"{labels.death}: {row.death.isoformat()}"
        parts.append(_cross(frame.x(row.day(row.death)), y, title))
    return parts


def _legend(rows: tuple[PatientRow, ...], y: float, labels: Labels) -> tuple[list[str], float]:
    """The legend (only what the rows hold, so nothing hidden is named) and the y below it."""
    if not rows:
        return [], y
    items = [(f'<rect width="18" height="4" y="-2" fill="{FOLLOW_UP_COLOUR}"/>', labels.follow_up)]
    for n in sorted({line.number for row in rows for line in row.lines}):
        glyph = f'<rect width="18" height="10" y="-5" fill="{_colour(n)}"/>'
        items.append((glyph, labels.line % {"number": n}))
    if any(row.courses for row in rows):
        glyph = f'<rect x="6" width="5" height="14" y="-7" fill="{SBRT_COLOUR}"/>'
        items.append((glyph, labels.sbrt))
    if any(row.cycles for row in rows):
        glyph = f'<line x1="9" x2="9" y1="-5" y2="5" stroke="{CYCLE_COLOUR}" stroke-width="2"/>'
        items.append((glyph, labels.study_drug))
    if any(row.progression for row in rows):
        glyph = f'<path d="M4,-4 L14,-4 L9,4 Z" fill="{PROGRESSION_COLOUR}"/>'
        items.append((glyph, labels.progression))
    if any(row.death for row in rows):
        glyph = f'<path d="M4,-5 L14,5 M4,5 L14,-5" stroke="{DEATH_COLOUR}" stroke-width="2.5"/>'
        items.append((glyph, labels.death))
    if any(row.ongoing or row.ongoing_line for row in rows):
        items.append((f'<path d="M5,-5 L13,0 L5,5 Z" fill="{ARROW_COLOUR}"/>', labels.ongoing))
    parts, x = ['<g class="sw-legend">'], 12.0
    for glyph, text in items:
        width = 24 + CHAR * len(text) + 16
        if x + width > WIDTH - RIGHT and x > 12:
            x, y = 12.0, y + 18
        parts.append(
            f'<g transform="translate({x:.1f} {y:.1f})">{glyph}'
            f'<text x="24" y="4">{escape(text)}</text></g>'
        )
        x += width
    parts.append("</g>")
    return parts, y + 14


def sort_rows(rows: Iterable[PatientRow]) -> tuple[PatientRow, ...]:
    """Longest follow-up first (then by label, for a stable order)."""
    return tuple(sorted(rows, key=lambda r: (-r.follow_up_days, r.label)))


def swimmer_svg(
    rows: Iterable[PatientRow], labels: Labels | None = None, *, min_day: int | None = -90
) -> str:
    """One bar per patient, longest follow-up on top.

    ``min_day`` clips what started long before day 0 (a line begun years earlier would squeeze
    everything else); clipped lines get a small left-pointing marker. None: no clipping.
    """
    labels = labels or Labels()
    rows = sort_rows(rows)
    low = min([r.first_day for r in rows] or [0])
    if min_day is not None:
        low = max(low, min_day)
    left = _left_margin(_row_text(r) for r in rows)
    frame = _Frame(low, max([r.follow_up_days for r in rows] or [1]), left)
    bottom = TOP + ROW * max(len(rows), 1)
    body = [_day0(frame, TOP, bottom)]
    if not rows:
        body.append(
            f'<text x="{(left + WIDTH - RIGHT) / 2}" y="{TOP + ROW / 2 + 4}" '
            f'text-anchor="middle" fill="#6c757d">{escape(labels.no_patient)}</text>'
        )
    for i, row in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        body += [f'<g class="sw-row" data-patient="{row.patient_id}">', _row_label(row, frame, y)]
        body += _follow_up(row, frame, y, labels, arrow=not row.ongoing_line)
        texts = []
        for line in sorted(row.lines, key=lambda line: (line.start, line.number)):
            bar, text = _line(row, line, frame, y, labels)
            body += bar
            texts.append(text)
        body += [_course(row, course, frame, y, labels) for course in row.courses]
        body += texts
        body += [_cycle(row, cycle, frame, y + 6, y + 13, labels) for cycle in row.cycles]
        body += [*_events(row, frame, y, labels), "</g>"]
    body += _axis(frame, bottom + 2, labels.days)
    legend, height = _legend(rows, bottom + AXIS + 14, labels)
    return _svg(body + legend, labels.title, height)


def timeline_svg(row: PatientRow, labels: Labels | None = None) -> str:
    """One patient over time: a lane per systemic line, then SBRT, study drug and events."""
    labels = labels or Labels()
    lines = sorted(row.lines, key=lambda line: (line.start, line.number))
    lanes: list[tuple[str, str, LineBar | None]] = [
        (labels.line % {"number": line.number}, "line", line) for line in lines
    ]
    if row.courses:
        lanes.append((labels.sbrt, "courses", None))
    if row.cycles:
        lanes.append((labels.study_drug, "cycles", None))
    lanes.append((labels.events, "events", None))
    frame = _Frame(row.first_day, row.follow_up_days, _left_margin(name for name, *_ in lanes))
    bottom = TOP + ROW * len(lanes)
    body = [f'<g class="sw-row" data-patient="{row.patient_id}">', _day0(frame, TOP, bottom)]
    for i, (name, kind, line) in enumerate(lanes):
        y = TOP + ROW * i + ROW / 2
        body.append(
            f'<text x="{frame.left - 12}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}</text>'
            f'<line x1="{frame.left}" y1="{y + ROW / 2:.1f}" x2="{WIDTH - RIGHT}" '
            f'y2="{y + ROW / 2:.1f}" stroke="#e9ecef"/>'
        )
        if line is not None:
            bar, text = _line(row, line, frame, y, labels)
            body += [*bar, text]
        elif kind == "courses":
            body += [_course(row, course, frame, y, labels) for course in row.courses]
        elif kind == "cycles":
            body += [_cycle(row, cycle, frame, y - 7, y + 7, labels) for cycle in row.cycles]
        else:
            body += _follow_up(row, frame, y, labels, arrow=True)
            body += _events(row, frame, y, labels)
    body.append("</g>")
    body += _axis(frame, bottom + 2, labels.days)
    legend, height = _legend((row,), bottom + AXIS + 14, labels)
    return _svg(body + legend, f"{labels.timeline_title}: {row.label}", height)
