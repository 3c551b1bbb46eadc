"""Recording adverse events (NCI CTCAE v5.0), serious adverse events and dose-limiting toxicity.

Issue #6, parts 1 to 3 and 7. Every write runs in one transaction, validates before writing
(bad input: a message keyed to its field, nothing saved) and carries the reason for change to
the audit trail (pghistory context).

- A grade is 1 to 5 and must be one the CTCAE v5.0 term defines (a grade text of " -" in the
  CTCAE means "not defined", e.g. no grade 5 for "Lymphocyte count decreased").
- Grade 5 is "death related to the adverse event" (CTCAE v5.0): it needs the date of death, the
  outcome "fatal" and the seriousness criterion "results in death", and it moves the patient off
  study (reason death) through :func:`patients.services.patient_change_status`.
- Saving a serious event (new, or changed to serious) queues an email to the study's
  pharmacovigilance contacts in the same transaction (:func:`studies.outbox.outbox_enqueue`,
  sent once by Celery after commit, retried); an upgrade of the grade of a serious event queues
  one more. The site owes the full report within ``SafetyRules.sae_report_hours``.
- A DLT is flagged only within the study's DLT window from the first delivered SBRT fraction,
  for a grade >= 3 event related to treatment; the rule applied is stored with the flag.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patients import safety_summary
from patients.edit_checks import edit_checks_sync
from patients.models import (
    AdverseEvent,
    Attribution,
    CtcaeTerm,
    Patient,
    SaeReport,
    SafetyRules,
)
from patients.services import patient_change_status
from studies.audit import reason_for_change
from studies.models import Membership, OutboxEmail
from studies.outbox import outbox_enqueue
from studies.roles import Role

# The fields of an adverse event the site enters.
AE_FIELDS = AdverseEvent.ENTERED_FIELDS
RELATED = frozenset({Attribution.POSSIBLE, Attribution.PROBABLE, Attribution.DEFINITE})
DLT_MIN_GRADE = 3
OTHER_SPECIFY = "Other, specify"


def _today() -> date:
    return timezone.localdate()


def safety_rules(study_id: int) -> SafetyRules | None:
    return SafetyRules.objects.filter(study_id=study_id).first()


def fraction_days(patient_ids) -> dict[int, tuple[date, date]]:
    """First and last delivered SBRT fraction of each patient (one query)."""
    from treatments.models import Fraction

    rows = (
        Fraction.objects.filter(
            course__patient_id__in=list(patient_ids), status=Fraction.Status.DELIVERED
        )
        .values("course__patient_id")
        .annotate(first=Min("day"), last=Max("day"))
        .order_by()
    )
    return {row["course__patient_id"]: (row["first"], row["last"]) for row in rows}


def is_other_specify(term: CtcaeTerm) -> bool:
    return OTHER_SPECIFY in term.term


def dlt_rule_text(window_days: int) -> str:
    """The DLT rule applied, stored with the flag (protocol data, kept in English)."""
    return (
        f"grade >= {DLT_MIN_GRADE} related to treatment within {window_days} days "
        "of the first fraction"
    )


# --- validation --------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def _check_term_and_grade(ae: AdverseEvent, errors: _Errors) -> None:
    term = ae.term if ae.term_id else None
    if term is None:
        errors.add("term", _("Choose the CTCAE v5.0 term."))
    try:
        grade = int(ae.grade)
    except (TypeError, ValueError):
        grade = None
    if grade is None or not 1 <= grade <= 5:
        errors.add("grade", _("The CTCAE v5.0 grade is 1, 2, 3, 4 or 5."))
    elif term is not None and not term.defines(grade):
        errors.add(
            "grade",
            _(
                "CTCAE v5.0 does not define grade %(grade)s for “%(term)s”: "
                "it defines grade(s) %(grades)s."
            )
            % {
                "grade": grade,
                "term": term.term,
                "grades": ", ".join(str(g) for g in term.grades),
            },
        )
    if term is not None and is_other_specify(term) and not ae.term_detail.strip():
        errors.add("term_detail", _("Specify the event: the chosen term is “Other, specify”."))


def _check_dates(ae: AdverseEvent, patient: Patient, errors: _Errors) -> None:
    today = _today()
    for field in ("onset_on", "resolved_on", "death_on"):
        value = getattr(ae, field)
        if value is not None and value > today:
            errors.add(field, _("This date is in the future."))
    if ae.onset_on is None:
        errors.add("onset_on", _("Give the date of onset."))
        return
    if ae.resolved_on is not None and ae.resolved_on < ae.onset_on:
        errors.add("resolved_on", _("The resolution cannot be before the onset."))
    if ae.death_on is not None and ae.resolved_on is not None and ae.resolved_on > ae.death_on:
        errors.add("resolved_on", _("The resolution cannot be after the date of death."))
    consented_on = (
        patient.consents.order_by("consented_on").values_list("consented_on", flat=True).first()
    )
    if consented_on is not None and ae.onset_on < consented_on:
        errors.add(
            "onset_on",
            _("The onset cannot be before the patient's consent (%(date)s).")
            % {"date": consented_on.isoformat()},
        )
    off_on = patient.status_changed_on
    if patient.status == Patient.Status.OFF_STUDY and off_on and ae.onset_on > off_on:
        # The death itself may come after the patient went off study; an onset may not.
        errors.add(
            "onset_on",
            _("The patient went off study on %(date)s: the onset cannot be after that date.")
            % {"date": off_on.isoformat()},
        )


def _check_seriousness(ae: AdverseEvent, old: AdverseEvent | None, errors: _Errors) -> None:
    criteria = [f for f in AdverseEvent.SAE_CRITERIA if getattr(ae, f)]
    if ae.serious and not criteria:
        errors.add(
            "serious", _("A serious adverse event needs at least one seriousness criterion.")
        )
    if criteria and not ae.serious:
        errors.add(
            "serious",
            _("A seriousness criterion is ticked: mark the event as serious, or untick it."),
        )
    if old is not None and old.serious and not ae.serious and old.sae_reports.exists():
        errors.add("serious", _("SAE reports were sent for this event: it stays a serious event."))


def _check_death(ae: AdverseEvent, old: AdverseEvent | None, patient: Patient, errors) -> None:
    if ae.grade == 5:
        if ae.death_on is None:
            errors.add("death_on", _("A grade 5 event needs the date of death."))
        elif ae.onset_on is not None and ae.death_on < ae.onset_on:
            errors.add("death_on", _("The date of death cannot be before the onset."))
        if ae.outcome != AdverseEvent.Outcome.FATAL:
            errors.add("outcome", _("A grade 5 event (death) has the outcome “Fatal”."))
        if not ae.sae_death:
            errors.add(
                "sae_death",
                _("A grade 5 event is serious, with the criterion “results in death”."),
            )
        other = (
            AdverseEvent.objects.filter(patient=patient, grade=5)
            .exclude(pk=ae.pk)
            .values_list("death_on", flat=True)
            .first()
        )
        if other is not None and ae.death_on is not None and ae.death_on != other:
            errors.add(
                "death_on",
                _("The patient's death is already recorded on %(date)s.")
                % {"date": other.isoformat()},
            )
        return
    if ae.death_on is not None:
        errors.add("death_on", _("A date of death goes with a grade 5 event only."))
    if ae.outcome == AdverseEvent.Outcome.FATAL:
        errors.add("outcome", _("A fatal event is grade 5 (CTCAE v5.0): correct the grade."))
    if ae.sae_death:
        errors.add("sae_death", _("“Results in death” goes with a grade 5 event only."))
    if (
        old is not None
        and old.grade == 5
        and patient.status == Patient.Status.OFF_STUDY
        and patient.off_study_reason == Patient.OffStudyReason.DEATH
    ):
        errors.add(
            "grade",
            _(
                "This event recorded the patient's death and took them off study: ask the data "
                "manager to correct the patient's status before lowering the grade."
            ),
        )


def _check_dlt(ae: AdverseEvent, patient: Patient, rules, errors: _Errors) -> str:
    """Validate a DLT flag; return the rule applied ("" when not flagged)."""
    if not ae.dlt:
        return ""
    window = rules.dlt_window_days if rules else None
    if not window:
        errors.add("dlt", _("This study defines no DLT window: an event cannot be flagged DLT."))
        return ""
    first = fraction_days([patient.pk]).get(patient.pk, (None, None))[0]
    if first is None:
        errors.add(
            "dlt",
            _("No SBRT fraction has been delivered: the DLT window starts at the first fraction."),
        )
        return ""
    end = first + timedelta(days=window)
    if ae.onset_on is not None and not first <= ae.onset_on <= end:
        errors.add(
            "dlt",
            _(
                "The onset is outside the DLT window: %(days)s days from the first fraction "
                "(%(first)s to %(end)s)."
            )
            % {"days": window, "first": first.isoformat(), "end": end.isoformat()},
        )
    if isinstance(ae.grade, int) and ae.grade < DLT_MIN_GRADE:
        errors.add("dlt", _("A DLT is grade 3 or higher."))
    attributions = {ae.attribution_sbrt, ae.attribution_systemic, ae.attribution_study_drug}
    if not attributions & RELATED:
        errors.add(
            "dlt",
            _("A DLT is related to treatment (possibly, probably or definitely)."),
        )
    return dlt_rule_text(window)


# --- the serious adverse event email -----------------------------------------------------------


def sae_recipients(study_id: int, rules: SafetyRules | None) -> list[str]:
    """The study's pharmacovigilance contacts; its sponsor administrators if none is set (an
    SAE is never left without an addressee)."""
    recipients = rules.pharmacovigilance_list if rules else []
    if recipients:
        return recipients
    return list(
        Membership.objects.filter(
            study_id=study_id, role=Role.SPONSOR_ADMIN, is_active=True, user__is_active=True
        ).values_list("user__email", flat=True)
    )


def ae_url(ae: AdverseEvent) -> str:
    path = reverse("ae_edit", kwargs={"patient_pk": ae.patient_id, "ae_pk": ae.pk})
    return f"{getattr(settings, 'SITE_URL', '').rstrip('/')}{path}"


def sae_email(ae: AdverseEvent, rules: SafetyRules | None, *, upgrade: bool) -> tuple[str, str]:
    """Subject and body: identifier, site, term, grade, criteria, onset, attribution; never a
    name, never the arm."""
    patient = ae.patient
    study_site = patient.study_site
    study = study_site.study
    hours = rules.sae_report_hours if rules else 24
    with translation.override("en"):
        term = ae.term.term + (f" ({ae.term_detail})" if ae.term_detail else "")
        what = "Upgraded serious adverse event" if upgrade else "Serious adverse event"
        subject = (
            f"[OligoCRF] {study.acronym}: {what.lower()} {patient.subject_id}, "
            f"{ae.term.term} grade {ae.grade}"
        )
        lines = [
            f"{what} in {study.acronym}"
            + (f" ({study.registry_id})" if study.registry_id else "")
            + ".",
            f"Patient: {patient.subject_id}, site {study_site.number} "
            f"({study_site.site.institution}).",
            f"CTCAE v5.0 term: {term} ({ae.term.soc}).",
            f"Grade: {ae.grade} ({ae.term.grade_text(ae.grade).strip()}).",
            f"Seriousness criteria: {', '.join(ae.criteria)}.",
            f"Onset: {ae.onset_on.isoformat()}.",
        ]
        if ae.death_on:
            lines.append(f"Date of death: {ae.death_on.isoformat()}.")
        lines += [
            "Attribution: "
            f"SBRT {ae.get_attribution_sbrt_display().lower()}; "
            f"systemic therapy {ae.get_attribution_systemic_display().lower()}; "
            f"study drug {ae.get_attribution_study_drug_display().lower()}.",
            f"Outcome: {ae.get_outcome_display().lower()}; action taken: "
            f"{ae.get_action_display().lower()}.",
        ]
        if ae.dlt:
            lines.append(f"Dose-limiting toxicity ({ae.dlt_rule}).")
        lines += [
            "",
            f"The full SAE report is due from the site within {hours} hours.",
            f"Adverse event page: {ae_url(ae)}",
        ]
    return subject, "\n".join(lines)


def _queue_sae_emails(ae: AdverseEvent, old: AdverseEvent | None, rules) -> None:
    if not ae.serious:
        return
    recipients = sae_recipients(ae.patient.study_site.study_id, rules)
    if old is None or not old.serious:
        subject, body = sae_email(ae, rules, upgrade=False)
        outbox_enqueue(key=f"sae:{ae.pk}:initial", to=recipients, subject=subject, body=body)
    elif ae.grade > old.grade:
        subject, body = sae_email(ae, rules, upgrade=True)
        outbox_enqueue(
            key=f"sae:{ae.pk}:grade{ae.grade}", to=recipients, subject=subject, body=body
        )


# --- recording ---------------------------------------------------------------------------------


def _record_death(ae: AdverseEvent, patient: Patient, by, reason: str) -> None:
    """Grade 5: the patient goes off study, reason death, on the date of death."""
    if patient.status == Patient.Status.OFF_STUDY:
        if (
            patient.off_study_reason == Patient.OffStudyReason.DEATH
            and patient.status_changed_on != ae.death_on
        ):
            # The date of death of the event that took the patient off study was corrected.
            patient.status_changed_on = ae.death_on
            patient.save(update_fields=["status_changed_on"])
        return  # already off study for another reason: the death is recorded on the event
    try:
        patient_change_status(
            patient=patient,
            new_status=Patient.Status.OFF_STUDY,
            on=ae.death_on,
            by=by,
            reason=reason,
            off_study_reason=Patient.OffStudyReason.DEATH,
        )
    except ValidationError as error:
        raise ValidationError({"death_on": error.messages}) from error


@transaction.atomic
def ae_record(
    *, patient: Patient, by, data: dict[str, Any], ae: AdverseEvent | None = None, reason: str = ""
) -> AdverseEvent:
    """Create (``ae`` None) or correct an adverse event of an enrolled patient."""
    patient = (
        Patient.objects.select_for_update()
        .select_related("study_site__study", "study_site__site")
        .get(pk=patient.pk)
    )
    if patient.enrolled_on is None:
        raise ValidationError(_("Adverse events are recorded for enrolled patients only."))
    old = None
    if ae is not None:
        old = AdverseEvent.objects.select_for_update().get(pk=ae.pk, patient=patient)
        if not reason.strip():
            raise ValidationError(
                {"reason": _("Give a reason for changing saved data (audit trail).")}
            )
    unknown = set(data) - set(AE_FIELDS)
    if unknown:
        raise ValueError(f"not adverse event fields: {sorted(unknown)}")
    # A copy of the locked row: ``old`` keeps the values before the change.
    event = copy.copy(old) if old is not None else AdverseEvent()
    event.patient = patient
    for field, value in data.items():
        setattr(event, field, value)
    event.term_detail = (event.term_detail or "").strip()

    rules = safety_rules(patient.study_site.study_id)
    errors = _Errors()
    _check_term_and_grade(event, errors)
    _check_dates(event, patient, errors)
    _check_seriousness(event, old, errors)
    _check_death(event, old, patient, errors)
    event.dlt_rule = _check_dlt(event, patient, rules, errors)
    errors.raise_if_any()
    try:
        # The patient's row is locked above: no need to check that it exists.
        event.full_clean(exclude=["patient"])
    except ValidationError as error:
        raise ValidationError(error.message_dict) from error

    reason = reason.strip() or "adverse event entry"
    with reason_for_change(reason, user=by.pk):
        event.save()
        if event.grade == 5:
            _record_death(event, patient, by, reason)
    _queue_sae_emails(event, old, rules)
    edit_checks_sync(patient)  # automatic queries (patients/edit_checks.py)
    return event


@transaction.atomic
def sae_report_add(
    *, ae: AdverseEvent, by, kind: str, reported_on: date, narrative: str
) -> SaeReport:
    """Record an initial, follow-up or final report of a serious event; the final one closes
    it (no further report is accepted)."""
    ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
    errors = _Errors()
    if not ae.serious:
        raise ValidationError(_("This adverse event is not serious: it has no SAE reports."))
    kinds = set(ae.sae_reports.values_list("kind", flat=True))
    if SaeReport.Kind.FINAL in kinds:
        raise ValidationError(
            _("This SAE is closed by its final report: no further report is accepted.")
        )
    if kind not in SaeReport.Kind.values:
        errors.add("kind", _("Choose the kind of report."))
    elif kind == SaeReport.Kind.INITIAL and SaeReport.Kind.INITIAL in kinds:
        errors.add("kind", _("The initial report is recorded already: add a follow-up report."))
    elif kind != SaeReport.Kind.INITIAL and SaeReport.Kind.INITIAL not in kinds:
        errors.add("kind", _("Record the initial report first."))
    if reported_on is None:
        errors.add("reported_on", _("Give the date the report was sent."))
    elif reported_on > _today():
        errors.add("reported_on", _("This date is in the future."))
    elif reported_on < ae.onset_on:
        errors.add("reported_on", _("A report cannot be sent before the onset of the event."))
    if not (narrative or "").strip():
        errors.add("narrative", _("Write the narrative of the report."))
    errors.raise_if_any()
    report = SaeReport(
        adverse_event=ae, kind=kind, reported_on=reported_on, narrative=narrative.strip()
    )
    report.full_clean()
    with reason_for_change(f"SAE report ({kind})", user=by.pk):
        report.save()
    return report


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaeClock:
    """The site's deadline for the full report of a serious event."""

    starts_at: datetime
    hours: int
    reports: tuple[SaeReport, ...]

    @property
    def deadline(self) -> datetime:
        return self.starts_at + timedelta(hours=self.hours)

    @property
    def reported(self) -> bool:
        return bool(self.reports)

    @property
    def closed(self) -> bool:
        return any(r.kind == SaeReport.Kind.FINAL for r in self.reports)

    @property
    def overdue(self) -> bool:
        return not self.reports and timezone.now() > self.deadline


def sae_clocks(aes: list[AdverseEvent], rules: SafetyRules | None) -> dict[int, SaeClock]:
    """The SAE clock of each serious event of ``aes`` (their ``sae_reports`` prefetched).

    The clock starts when the event became serious, i.e. when its first SAE email was queued
    (the outbox row), else when the event was entered."""
    serious = [ae for ae in aes if ae.serious]
    if not serious:
        return {}
    # Events read with ``sae_queued_at`` (the outbox row's time, or None) need no query.
    unread = [ae for ae in serious if not hasattr(ae, "sae_queued_at")]
    queued = (
        dict(
            OutboxEmail.objects.filter(
                key__in=[f"sae:{ae.pk}:initial" for ae in unread]
            ).values_list("key", "created_at")
        )
        if unread
        else {}
    )
    for ae in serious:
        if hasattr(ae, "sae_queued_at") and ae.sae_queued_at is not None:
            queued[f"sae:{ae.pk}:initial"] = ae.sae_queued_at
    hours = rules.sae_report_hours if rules else 24
    return {
        ae.pk: SaeClock(
            starts_at=queued.get(f"sae:{ae.pk}:initial", ae.created_at),
            hours=hours,
            reports=tuple(ae.sae_reports.all()),
        )
        for ae in serious
    }


def phase_of(ae: AdverseEvent, last_fraction_on: date | None, rules: SafetyRules | None) -> str:
    """Acute or late (derived on display, never stored): see patients/safety_summary.py."""
    late_after = rules.late_after_days if rules else 90
    return safety_summary.phase_of(ae.onset_on, last_fraction_on, late_after)
