"""The PDF of a site or study report (reportlab platypus), from a :class:`ReportData`.

Imports no models and runs no queries: everything comes from ``studies/reports/selectors.py``,
which has already applied the reader's scope and blinding. Every text goes through gettext in
the report's language (``translation.override``); dates use the language's formats.

Layout: a cover, then one section per topic, each made of small tables (at most
``CHUNK`` rows, headers repeated when a table runs over a page), charts drawn with
``reportlab.graphics``, and "Page n of m" at the foot of every page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from html import escape

from django.utils import formats, translation
from django.utils.translation import gettext as _
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdfcanvas
from reportlab.platypus import (
    CondPageBreak,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from studies.reports.selectors import (
    LATE_VISIT,
    MISSING_BASELINE,
    MISSING_SBRT,
    SBRT_EXPECTED_WITHIN_DAYS,
    STUDY,
    ReportData,
)

#: Rows per table: many small tables rather than one long one.
CHUNK = 20
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN
PRIMARY = colors.HexColor("#0d6efd")
HEADER_BG = colors.HexColor("#e9ecef")
GRID = colors.HexColor("#adb5bd")
RED, GREEN, GREY = (
    colors.HexColor("#dc3545"),
    colors.HexColor("#198754"),
    colors.HexColor("#6c757d"),
)

_BASE = getSampleStyleSheet()
STYLES = {
    "title": ParagraphStyle("ocrf-title", parent=_BASE["Title"], fontSize=22, leading=28),
    "subtitle": ParagraphStyle(
        "ocrf-subtitle", parent=_BASE["Heading2"], alignment=TA_CENTER, textColor=GREY
    ),
    "h1": ParagraphStyle(
        "ocrf-h1", parent=_BASE["Heading1"], fontSize=15, textColor=PRIMARY, spaceBefore=14
    ),
    "h2": ParagraphStyle("ocrf-h2", parent=_BASE["Heading3"], fontSize=11, spaceBefore=8),
    "body": ParagraphStyle("ocrf-body", parent=_BASE["BodyText"], fontSize=9, leading=12),
    "small": ParagraphStyle("ocrf-small", parent=_BASE["BodyText"], fontSize=7.5, leading=9.5),
    "cell": ParagraphStyle("ocrf-cell", parent=_BASE["BodyText"], fontSize=8, leading=10),
    "head": ParagraphStyle(
        "ocrf-head", parent=_BASE["BodyText"], fontSize=8, leading=10, fontName="Helvetica-Bold"
    ),
}


def section_titles() -> list[str]:
    """The section titles, in the active language (in this order in every report)."""
    return [
        _("Enrolment"),
        _("Screening log"),
        _("Patient status"),
        _("Visits due and overdue"),
        _("Data completeness"),
        _("Toxicity"),
        _("Tumour response"),
        _("SBRT delivery"),
    ]


# --- small helpers -----------------------------------------------------------------------------


def _d(value: date | None) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else "—"


def _p(text: object, style: str = "cell") -> Paragraph:
    return Paragraph(escape(str(text)), STYLES[style])


def _pct(part: int, whole: int | None) -> str:
    if not whole:
        return "—"
    return f"{100 * part / whole:.0f} %"


def _table(
    header: Sequence[object], rows: Iterable[Sequence[object]], widths: Sequence[float] | None
) -> Table:
    data = [[_p(h, "head") for h in header]]
    data += [[c if isinstance(c, Paragraph) else _p(c) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
                ("GRID", (0, 0), (-1, -1), 0.4, GRID),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _tables(
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    widths: Sequence[float] | None = None,
) -> list:
    """Rows split into tables of at most CHUNK rows, each with its header."""
    out = []
    for start in range(0, len(rows), CHUNK):
        out += [_table(header, rows[start : start + CHUNK], widths), Spacer(1, 4)]
    return out


def _widths(*fractions: float) -> list[float]:
    return [FRAME_WIDTH * f for f in fractions]


def _none(text: str | None = None) -> Paragraph:
    return _p(text or _("Nothing to report."), "body")


def period_label(period: str) -> str:
    """ "2026-W48" -> "Week 48, 2026"; "2026-11" -> "November 2026" (localised)."""
    if "-W" in period:
        year, week = period.split("-W", 1)
        return _("Week %(week)s, %(year)s") % {"week": int(week), "year": year}
    parts = period.split("-")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return formats.date_format(date(int(parts[0]), int(parts[1]), 1), "F Y")
    return period or _("On demand")


def _numbered_canvas(footer: str):
    """A canvas that writes "Page n of m" once the number of pages is known."""

    class NumberedCanvas(pdfcanvas.Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont("Helvetica", 7.5)
                self.setFillColor(GREY)
                self.drawString(MARGIN, 10 * mm, footer)
                self.drawRightString(
                    PAGE_WIDTH - MARGIN,
                    10 * mm,
                    _("Page %(n)s of %(total)s") % {"n": number, "total": total},
                )
                super().showPage()
            super().save()

    return NumberedCanvas


# --- charts ------------------------------------------------------------------------------------


def _monthly_chart(months: Sequence[tuple[str, int]]) -> Drawing:
    drawing = Drawing(FRAME_WIDTH, 170)
    chart = VerticalBarChart()
    width = min(FRAME_WIDTH - 40, 30 * len(months) + 20)
    chart.x, chart.y, chart.width, chart.height = 30, 45, width, 110
    chart.data = [tuple(n for _m, n in months)]
    step = max(1, len(months) // 18)
    chart.categoryAxis.categoryNames = [
        m if i % step == 0 else "" for i, (m, _n) in enumerate(months)
    ]
    chart.categoryAxis.labels.angle = 45
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.categoryAxis.labels.fontSize = 7
    top = max((n for _m, n in months), default=0)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(top, 1) + (1 if top < 5 else top // 5)
    chart.valueAxis.valueStep = max(1, (chart.valueAxis.valueMax + 4) // 5)
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = PRIMARY
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    drawing.add(String(0, 160, _("Patients enrolled per month"), fontSize=8, fillColor=GREY))
    return drawing


def _waterfall_chart(bars: Sequence[tuple[str, float]]) -> Drawing:
    """Best change of the sum of target diameters per patient, sorted; -30 % and +20 % lines."""
    drawing = Drawing(FRAME_WIDTH, 220)
    chart = VerticalBarChart()
    width = min(FRAME_WIDTH - 70, 24 * len(bars) + 20)
    chart.x, chart.y, chart.width, chart.height = 40, 60, width, 140
    values = [v for _s, v in bars]
    low = min(-100.0, min(values, default=0.0))
    high = max(40.0, max(values, default=0.0))
    low, high = 10 * int(low // 10), 10 * int(-(-high // 10))
    chart.data = [tuple(values)]
    chart.valueAxis.valueMin, chart.valueAxis.valueMax = low, high
    chart.valueAxis.valueStep = 20 if high - low <= 200 else 50
    chart.valueAxis.labels.fontSize = 7
    chart.categoryAxis.categoryNames = [s if len(bars) <= 40 else "" for s, _v in bars]
    chart.categoryAxis.labels.angle = 90
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.categoryAxis.labels.fontSize = 6
    chart.categoryAxis.visibleTicks = False
    chart.categoryAxis.labelAxisMode = "low"
    chart.barSpacing = 1
    chart.bars.strokeColor = None
    for i, value in enumerate(values):
        chart.bars[(0, i)].fillColor = RED if value >= 20 else GREEN if value <= -30 else GREY
    drawing.add(chart)
    for threshold in (-30, 20):
        y = chart.y + (threshold - low) / (high - low) * chart.height
        drawing.add(
            Line(
                chart.x,
                y,
                chart.x + chart.width,
                y,
                strokeColor=GREY,
                strokeDashArray=[3, 2],
                strokeWidth=0.6,
            )
        )
        drawing.add(String(chart.x + chart.width + 2, y - 2, f"{threshold:+d}%", fontSize=6))
    drawing.add(String(0, 210, _("Best change in the sum of target diameters (%)"), fontSize=8))
    return drawing


# --- the builder -------------------------------------------------------------------------------


class ReportBuilder:
    """Turns one :class:`ReportData` into PDF bytes in one language."""

    def __init__(self, data: ReportData, *, progress: Callable[[int], None] | None = None) -> None:
        self.data = data
        self._progress = progress or (lambda _pct: None)
        self._sites = {s.pk: s for s in data.sites}

    # -- public --

    def render(self, language: str) -> bytes:
        with translation.override(language):
            return self._render()

    # -- layout --

    def _render(self) -> bytes:
        data = self.data
        buffer = io.BytesIO()
        title = self._title()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN,
            title=title,
            author="OligoCRF",
            subject=f"{data.study.acronym} {data.period}".strip(),
        )
        sections: list[Callable[[], list]] = [
            self._enrolment,
            self._screening,
            self._patient_status,
            self._visits,
            self._completeness,
            self._toxicity,
            self._response,
            self._sbrt,
        ]
        story = self._cover()
        if data.kind == STUDY:
            story += self._comparison()
        for n, section in enumerate(sections, start=1):
            story += section()
            self._progress(50 + 40 * n // len(sections))
        footer = f"OligoCRF · {title} · {period_label(data.period)}"
        doc.build(story, canvasmaker=_numbered_canvas(footer))
        return buffer.getvalue()

    def _title(self) -> str:
        data = self.data
        if data.kind == STUDY:
            return _("Study report: %(study)s") % {"study": data.study.acronym}
        return _("Site report: %(study)s, site %(site)s") % {
            "study": data.study.acronym,
            "site": data.site.number if data.site else "",
        }

    def _heading(self, text: str) -> list:
        return [CondPageBreak(60 * mm), Paragraph(escape(text), STYLES["h1"])]

    def _site_heading(self, site_id: int) -> list:
        if self.data.kind != STUDY:
            return []
        site = self._sites.get(site_id)
        label = site.label if site else str(site_id)
        return [Paragraph(escape(_("Site %(site)s") % {"site": label}), STYLES["h2"])]

    def _by_site(self, items, render_rows: Callable[[list], list]) -> list:
        """Per site (study report) or at once (site report): tables of the items."""
        out = []
        for site in self.data.sites:
            mine = [i for i in items if i.site_id == site.pk]
            if not mine:
                continue
            out += self._site_heading(site.pk) + render_rows(mine)
        return out

    # -- sections --

    def _cover(self) -> list:
        data = self.data
        rows = [
            (_("Study"), f"{data.study.acronym} ({data.study.code})"),
            (_("Title"), data.study.title),
        ]
        if data.study.registry_id:
            rows.append((_("Registry"), data.study.registry_id))
        if data.site:
            rows += [
                (_("Site"), data.site.label),
                (_("Country"), data.site.country),
                (_("Recruitment status"), data.site.recruitment_status),
            ]
        else:
            rows.append((_("Sites"), str(len(data.sites))))
        rows += [
            (_("Period"), period_label(data.period)),
            (_("Data as of"), _d(data.today)),
            (
                _("Generated at"),
                f"{formats.date_format(data.generated_at, 'SHORT_DATETIME_FORMAT')} "
                f"({data.study.time_zone})",
            ),
        ]
        if data.viewer:
            rows.append((_("Prepared for"), data.viewer))
        cover = [
            Spacer(1, 30 * mm),
            Paragraph(escape(self._title()), STYLES["title"]),
            Paragraph(escape(period_label(data.period)), STYLES["subtitle"]),
            Spacer(1, 12 * mm),
            _table([_("Item"), _("Value")], rows, _widths(0.3, 0.7)),
            Spacer(1, 8 * mm),
        ]
        if data.study.blinded_design and not data.shows_arms:
            cover.append(
                _p(
                    _(
                        "Blinded report: it shows no allocation, treatment dose or "
                        "fractionation, and nothing else that could reveal a patient's arm."
                    ),
                    "body",
                )
            )
        cover.append(
            _p(
                _(
                    "Contents: %(sections)s. Patients are identified by their subject "
                    "identifier only."
                )
                % {"sections": ", ".join(section_titles())},
                "small",
            )
        )
        cover.append(PageBreak())
        return cover

    def _comparison(self) -> list:
        rows = self.data.comparison()
        out = self._heading(_("Per-site comparison"))
        if not rows:
            return [*out, _none()]
        widths = _widths(0.4, *([0.1] * 6))
        out += [Paragraph(escape(_("Recruitment")), STYLES["h2"])]
        out += _tables(
            [
                _("Site"),
                _("Screened"),
                _("Enrolled"),
                _("Target"),
                _("% of target"),
                _("Active"),
                _("Off study"),
            ],
            [
                (
                    f"{r.site.number} · {r.site.institution}",
                    r.screened,
                    r.enrolled,
                    r.target or "—",
                    _pct(r.enrolled, r.target),
                    r.active,
                    r.off_study,
                )
                for r in rows
            ],
            widths,
        )
        out += [Paragraph(escape(_("Follow-up, data quality and safety")), STYLES["h2"])]
        out += _tables(
            [
                _("Site"),
                _("Visits due"),
                _("Visits overdue"),
                _("Missing or late forms"),
                _("Patients with grade 3-5 AE"),
                _("SBRT courses"),
                _("With deviations"),
            ],
            [
                (
                    f"{r.site.number} · {r.site.institution}",
                    r.due,
                    r.overdue,
                    r.missing,
                    r.grade3_plus,
                    r.courses,
                    r.courses_with_deviations,
                )
                for r in rows
            ],
            widths,
        )
        return out

    def _enrolment(self) -> list:
        data = self.data
        enrolled = len(data.enrolled)
        out = self._heading(_("Enrolment"))
        out.append(
            _table(
                [_("Enrolled"), _("Target"), _("% of target")],
                [(enrolled, data.target or "—", _pct(enrolled, data.target))],
                _widths(0.2, 0.2, 0.2),
            )
        )
        arms = data.arm_counts()
        if arms:
            out += [
                Spacer(1, 4),
                _table(
                    [_("Arm"), _("Enrolled")],
                    [(a.arm, a.enrolled) for a in arms],
                    _widths(0.5, 0.2),
                ),
            ]
        months = [(m.month, m.enrolled) for m in data.monthly_enrolment()]
        if months:
            out += [Spacer(1, 6), _monthly_chart(months)]
            out += _tables(
                [_("Month"), _("Enrolled"), _("Cumulative")],
                _cumulative(months),
                _widths(0.2, 0.15, 0.15),
            )
        else:
            out.append(_none(_("No patient enrolled yet.")))
        return out

    def _screening(self) -> list:
        out = self._heading(_("Screening log"))
        s = self.data.screening()
        out.append(
            _table(
                [
                    _("Screened"),
                    _("Pending"),
                    _("Eligible"),
                    _("Screen failures"),
                    _("Declined"),
                    _("Enrolled"),
                ],
                [(s.screened, s.pending, s.eligible, s.screen_failures, s.declined, s.enrolled)],
                _widths(*([1 / 6] * 6)),
            )
        )
        if s.declined_reasons:
            out += [Paragraph(escape(_("Reasons for declining")), STYLES["h2"])]
            out += _tables(
                [_("Reason"), _("Patients")],
                [(reason or _("Not given"), n) for reason, n in s.declined_reasons],
                _widths(0.7, 0.15),
            )
        return out

    def _patient_status(self) -> list:
        data = self.data
        out = self._heading(_("Patient status"))
        counts = data.status_counts()
        if not counts:
            return [*out, _none(_("No patient yet."))]
        out += [
            _table([_("Status"), _("Patients")], counts, _widths(0.4, 0.15)),
            Spacer(1, 6),
        ]
        header = [_("Subject"), _("Status"), _("Screening date"), _("Enrolment date")]
        if data.shows_arms:
            header.append(_("Arm"))
        header.append(_("Reason for going off study"))

        def rows(patients):
            table = []
            for p in patients:
                row = [p.subject, p.status_label, _d(p.screened_on), _d(p.enrolled_on)]
                if data.shows_arms:
                    row.append(p.arm or "—")
                row.append(p.off_study_reason or "")
                table.append(row)
            widths = (
                _widths(0.18, 0.16, 0.14, 0.14, 0.18, 0.2)
                if data.shows_arms
                else _widths(0.2, 0.2, 0.16, 0.16, 0.28)
            )
            return _tables(header, table, widths)

        return out + self._by_site(data.patients, rows)

    def _visits(self) -> list:
        data = self.data
        out = self._heading(_("Visits due and overdue"))
        totals = []
        for site in data.sites:
            c = data.visit_counts.get(site.pk)
            visits = [v for v in data.visits if v.site_id == site.pk]
            totals.append(
                (
                    site.number,
                    c.planned if c else 0,
                    c.done if c else 0,
                    c.missed if c else 0,
                    sum(1 for v in visits if not v.overdue),
                    sum(1 for v in visits if v.overdue),
                )
            )
        out.append(
            _table(
                [_("Site"), _("Planned"), _("Done"), _("Missed"), _("Due"), _("Overdue")],
                totals,
                _widths(*([1 / 6] * 6)),
            )
        )
        if not data.visits:
            return [*out, Spacer(1, 4), _none(_("No visit is due or overdue."))]

        def rows(visits):
            return _tables(
                [_("Subject"), _("Visit"), _("Kind"), _("Due"), _("Window"), _("Status")],
                [
                    (
                        v.subject,
                        v.visit,
                        v.kind,
                        _d(v.due_on),
                        f"{_d(v.window_start)} – {_d(v.window_end)}",
                        _("Overdue") if v.overdue else _("Due"),
                    )
                    for v in visits
                ],
                _widths(0.16, 0.22, 0.14, 0.12, 0.24, 0.12),
            )

        return [*out, Spacer(1, 4), *self._by_site(data.visits, rows)]

    def _completeness(self) -> list:
        out = self._heading(_("Data completeness"))
        items = self.data.missing()
        labels = {
            MISSING_BASELINE: _("Baseline imaging missing"),
            MISSING_SBRT: _("No SBRT course %(days)s days after enrolment")
            % {"days": SBRT_EXPECTED_WITHIN_DAYS},
            LATE_VISIT: _("Visit overdue"),
        }
        counts = [(labels[k], sum(1 for i in items if i.what == k)) for k in labels]
        out.append(_table([_("Missing or late form"), _("Number")], counts, _widths(0.6, 0.15)))
        if not items:
            return [*out, Spacer(1, 4), _none(_("No missing or late form."))]

        def rows(found):
            return _tables(
                [_("Subject"), _("Missing or late form"), _("Detail")],
                [(i.subject, labels[i.what], i.detail) for i in found],
                _widths(0.2, 0.45, 0.35),
            )

        return [*out, Spacer(1, 4), *self._by_site(items, rows)]

    def _toxicity(self) -> list:
        data = self.data
        out = self._heading(_("Toxicity"))
        population = len(data.enrolled)
        out.append(
            _p(
                _(
                    "Worst CTCAE v5.0 grade per patient per term, all enrolled patients "
                    "(%(with)s of %(population)s with at least one adverse event)."
                )
                % {"with": data.patients_with_event(), "population": population},
                "body",
            )
        )
        rows = data.toxicity()
        if not rows:
            return [*out, _none(_("No adverse event recorded."))]
        header = [
            _("Term"),
            *(_("G%(grade)s") % {"grade": g} for g in range(1, 6)),
            _("Patients"),
            _("Grade 3-5"),
        ]
        table = [
            (
                _p(f"{r.term}", "cell"),
                *r.by_grade,
                r.patients,
                f"{r.grade3_plus} ({_pct(r.grade3_plus, population)})",
            )
            for r in rows
        ]
        return out + _tables(header, table, _widths(0.36, *([0.07] * 5), 0.1, 0.19))

    def _response(self) -> list:
        data = self.data
        out = self._heading(_("Tumour response"))
        counts = data.response_counts()
        if not counts:
            return [*out, _none(_("No response assessed yet."))]
        total = sum(n for _c, _l, n in counts)
        out.append(
            _table(
                [_("Best overall response"), _("Patients"), "%"],
                [(f"{label} ({code})", n, _pct(n, total)) for code, label, n in counts],
                _widths(0.45, 0.15, 0.15),
            )
        )
        bars = data.waterfall()
        if bars:
            out += [
                Spacer(1, 6),
                KeepTogether(
                    [
                        Paragraph(escape(_("Waterfall plot")), STYLES["h2"]),
                        _waterfall_chart(bars),
                        _p(
                            _(
                                "Dashed lines: -30 % (partial response) and +20 % "
                                "(progression) of RECIST 1.1."
                            ),
                            "small",
                        ),
                    ]
                ),
            ]
        return out

    def _sbrt(self) -> list:
        data = self.data
        out = self._heading(_("SBRT delivery"))
        courses = data.courses
        with_deviations = sum(1 for c in courses if c.deviations)
        out.append(
            _table(
                [_("SBRT courses"), _("Per protocol"), _("With deviations")],
                [(len(courses), len(courses) - with_deviations, with_deviations)],
                _widths(0.2, 0.2, 0.2),
            )
        )
        if not data.shows_arms:
            out.append(
                _p(
                    _(
                        "Blinded report: doses, fractionation and deviations that would "
                        "reveal the allocation are not shown."
                    ),
                    "small",
                )
            )
        if not courses:
            return [*out, Spacer(1, 4), _none(_("No SBRT course recorded."))]
        if data.shows_arms:
            header = [
                _("Subject"),
                _("Course"),
                _("First fraction"),
                _("Last fraction"),
                _("Fractions delivered"),
                _("Prescription"),
                _("Deviations"),
            ]
            widths = _widths(0.17, 0.1, 0.12, 0.12, 0.1, 0.16, 0.21)
        else:
            header = [_("Subject"), _("Course"), _("First fraction"), _("Deviations")]
            widths = _widths(0.18, 0.1, 0.17, 0.55)

        def rows(found):
            table = []
            for c in found:
                deviations = "; ".join(c.deviations) or _("None")
                if data.shows_arms:
                    table.append(
                        (
                            c.subject,
                            c.number,
                            _d(c.first_fraction),
                            _d(c.last_fraction),
                            c.delivered_fractions,
                            ", ".join(c.prescriptions) or "—",
                            deviations,
                        )
                    )
                else:
                    table.append((c.subject, c.number, _d(c.first_fraction), deviations))
            return _tables(header, table, widths)

        return [*out, Spacer(1, 4), *self._by_site(courses, rows)]


def _cumulative(months: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    total, rows = 0, []
    for month, n in months:
        total += n
        rows.append((month, n, total))
    return rows


def render_report(data: ReportData, language: str, progress=None) -> bytes:
    return ReportBuilder(data, progress=progress).render(language)


__all__ = ["ReportBuilder", "period_label", "render_report", "section_titles"]
