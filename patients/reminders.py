"""Imaging visit reminders: which ones are due today, and queuing each exactly once.

:func:`decide` is a pure read: for a study and the study's local date it returns the reminders to
send, one per (planned visit, kind, language).  :func:`queue` writes them to the outbox in one
transaction; the outbox's unique key (``reminder:<visit>:<kind>:<language>``) makes a second run,
two overlapping runs (two beat processes) or a re-run after a crash queue nothing twice, and the
outbox's sender task delivers each row once.

Recipients are the site's own staff with a data-entry role (investigator, sub-investigator,
planner) at the patient's study-site; sponsor-side and study-wide memberships are not emailed.
Each recipient gets the email in their own language (``UserPreference``, else the default).
The email carries the subject identifier and the visit, never a name, a local reference or an arm.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from patients.models import Patient
from patients.models_visits import PlannedVisit
from studies.models import Membership, Study, VisitDefinition
from studies.outbox import outbox_enqueue
from studies.roles import DATA_ENTRY_ROLES

logger = logging.getLogger(__name__)

UPCOMING = "upcoming"
OVERDUE = "overdue"
KEY_PREFIX = "reminder:"

#: Patients who no longer have visits to remind anyone about.
_NOT_FOLLOWED = (Patient.Status.OFF_STUDY, Patient.Status.SCREEN_FAILURE)


@dataclass(frozen=True)
class Reminder:
    visit: PlannedVisit
    kind: str  # UPCOMING or OVERDUE
    language: str
    to: tuple[str, ...]
    subject: str
    body: str

    @property
    def key(self) -> str:
        return reminder_key(self.visit.pk, self.kind, self.language)


def reminder_key(visit_pk: int, kind: str, language: str) -> str:
    return f"{KEY_PREFIX}{visit_pk}:{kind}:{language}"


def _absolute(path: str) -> str:
    return f"{getattr(settings, 'SITE_URL', '').rstrip('/')}{path}"


def patient_url(patient_pk: int) -> str:
    return _absolute(reverse("patient_detail", kwargs={"patient_pk": patient_pk}))


def _language(code: str | None) -> str:
    languages = {lang for lang, _name in settings.LANGUAGES}
    if code in languages:
        return code
    base = (code or "").split("-")[0]
    return base if base in languages else settings.LANGUAGE_CODE


def site_staff_by_language(study: Study) -> dict[int, dict[str, set[str]]]:
    """study-site pk -> language -> email addresses of its active data-entry staff (one query)."""
    return staff_by_language([study.pk])


def staff_by_language(study_ids) -> dict[int, dict[str, set[str]]]:
    """Like :func:`site_staff_by_language`, for the sites of any number of studies (one query)."""
    rows = (
        Membership.objects.active()
        .filter(study_id__in=list(study_ids), study_site__isnull=False, role__in=DATA_ENTRY_ROLES)
        .exclude(user__email="")
        .values_list("study_site_id", "user__email", "user__preference__language")
    )
    staff: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for study_site_id, email, language in rows:
        staff[study_site_id][_language(language)].add(email)
    return staff


def _due_filter(study: Study, today: date) -> Q:
    # upcoming: the window opens today or within N days; overdue: it closed before today
    opens_by = today + timedelta(days=study.reminder_days_ahead)
    return Q(patient__study_site__study=study) & (
        Q(window_start__gte=today, window_start__lte=opens_by) | Q(window_end__lt=today)
    )


def due_visits_many(days: dict[Study, date]):
    """The planned imaging visits to remind about, for many studies each on its own local
    date, in one query: (visit, kind) pairs in visit order."""
    if not days:
        return
    wanted = Q()
    for study, today in days.items():
        wanted |= _due_filter(study, today)
    visits = (
        PlannedVisit.objects.filter(
            definition__kind=VisitDefinition.Kind.IMAGING,
            state=PlannedVisit.State.PLANNED,
        )
        .exclude(patient__status__in=_NOT_FOLLOWED)
        .filter(wanted)
        .select_related("patient__study_site__site", "definition")
        .order_by("pk")
    )
    by_pk = {study.pk: (study, today) for study, today in days.items()}
    for visit in visits:
        study, today = by_pk[visit.patient.study_site.study_id]
        visit.patient.study_site.study = study  # no query per visit for the acronym
        opens_by = today + timedelta(days=study.reminder_days_ahead)
        if visit.window_end < today:
            yield visit, OVERDUE
        elif today <= visit.window_start <= opens_by:
            yield visit, UPCOMING


def due_visits(study: Study, today: date):
    """The study's planned imaging visits to remind about today: (visit, kind) pairs."""
    yield from due_visits_many({study: today})


def render(visit: PlannedVisit, kind: str, language: str) -> tuple[str, str]:
    """Subject and body of one reminder in ``language``: identifier and visit, never a name."""
    patient = visit.patient
    study_site = patient.study_site
    study = study_site.study
    values = {
        "study": study.acronym or study.code,
        "subject": patient.subject_id or "",
        "visit": visit.definition.name,
        "occurrence": visit.occurrence,
        "start": visit.window_start.isoformat(),
        "end": visit.window_end.isoformat(),
        "due": visit.due_on.isoformat(),
    }
    with translation.override(language):
        if kind == UPCOMING:
            subject = _(
                "[OligoCRF] %(study)s: imaging visit of %(subject)s, window opens on %(start)s"
            )
            intro = _(
                "The window of an imaging visit opens on %(start)s. Please book the examination."
            )
        else:
            subject = _(
                "[OligoCRF] %(study)s: imaging visit of %(subject)s overdue (window closed "
                "on %(end)s)"
            )
            intro = _(
                "An imaging visit is overdue: its window closed on %(end)s and it is not recorded "
                "as done, missed or not applicable."
            )
        lines = [
            intro % values,
            "",
            f"{capfirst(_('study'))}: {values['study']}",
            f"{_('Site')}: {study_site.number} ({study_site.site.institution})",
            f"{capfirst(_('subject identifier'))}: {values['subject']}",
            _("Visit: %(visit)s (occurrence %(occurrence)s)") % values,
            _("Window: %(start)s to %(end)s (target date %(due)s)") % values,
            "",
            _("Patient page: %(url)s") % {"url": patient_url(patient.pk)},
            _("Your reminders: %(url)s") % {"url": _absolute(reverse("my_reminders"))},
        ]
        return subject % values, "\n".join(lines)


def decide(study: Study, today: date) -> list[Reminder]:
    """The reminders due for ``study`` on ``today`` (the study's local date), in key order."""
    return decide_many({study: today}).get(study.pk, [])


def decide_many(days: dict[Study, date]) -> dict[int, list[Reminder]]:
    """study pk -> the reminders due for it on its own local date, for any number of studies.

    Two queries whatever the number of studies and visits: the visits and the site staff. One
    reminder per (visit, kind, language) of the patient's site staff; a site without staff (or
    without email addresses) gets none.
    """
    staff = staff_by_language(study.pk for study in days)
    reminders: dict[int, list[Reminder]] = {study.pk: [] for study in days}
    for visit, kind in due_visits_many(days):
        for language, emails in sorted(staff.get(visit.patient.study_site_id, {}).items()):
            subject, body = render(visit, kind, language)
            reminders[visit.patient.study_site.study_id].append(
                Reminder(
                    visit=visit,
                    kind=kind,
                    language=language,
                    to=tuple(sorted(emails)),
                    subject=subject,
                    body=body,
                )
            )
    return reminders


def queue(study: Study, today: date, reminders: list[Reminder] | None = None) -> int:
    """Decide and queue the study's reminders in one transaction; returns how many were new.

    Exactly once comes from the outbox's unique key: a key already queued (by an earlier run or
    by a concurrent one, which this one waits for on the unique index) is skipped; if this
    transaction fails, nothing of it is queued and the next run queues it all.  Rows are written
    in key order so that two concurrent runs never wait on each other in a cycle.
    """
    with transaction.atomic():
        if reminders is None:
            reminders = decide(study, today)
        queued = 0
        for reminder in sorted(reminders, key=lambda r: r.key):
            if outbox_enqueue(
                key=reminder.key, to=reminder.to, subject=reminder.subject, body=reminder.body
            ):
                queued += 1
    logger.info(
        "reminders for %s on %s: %d due, %d newly queued",
        study.code,
        today.isoformat(),
        len(reminders),
        queued,
    )
    return queued
