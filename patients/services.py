"""Writes along the patient's path: screening, eligibility, consent, enrolment and randomisation.

Each service runs in one transaction, validates before writing (nothing half-saved) and raises
``ValidationError`` with a message for the user; the reason for change goes to the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients import eligibility, status
from patients.models import (
    Allocation,
    Consent,
    EligibilityAnswer,
    EligibilityFacts,
    EmergencyUnblinding,
    Patient,
)
from patients.visit_services import visits_sync
from studies.audit import reason_for_change
from studies.models import (
    AllocationSlot,
    EligibilityCriterion,
    Membership,
    RandomisationList,
    Study,
    StudySite,
)
from studies.outbox import outbox_enqueue
from studies.randomisation import stratum_key
from studies.roles import Role


def _today() -> date:
    return timezone.localdate()


def _not_in_future(value: date | None, field: str) -> None:
    if value is not None and value > _today():
        raise ValidationError({field: _("This date is in the future.")})


# --- screening ---------------------------------------------------------------------------------


@transaction.atomic
def patient_screen(*, study_site: StudySite, by, **data: Any) -> Patient:
    """Open a screening-log entry: the patient gets the site's screening number."""
    patient = Patient(study_site=study_site, status=Patient.Status.SCREENING, **data)
    _not_in_future(patient.screened_on, "screened_on")
    if patient.local_reference and not study_site.study.local_reference_enabled:
        raise ValidationError(
            {"local_reference": _("This study does not record local references.")}
        )
    patient.status_changed_on = patient.screened_on
    if Patient.objects.filter(
        study_site=study_site, screening_number=patient.screening_number
    ).exists():
        raise ValidationError(
            {"screening_number": _("This screening number is already used at this site.")}
        )
    patient.full_clean()
    with reason_for_change("screening", user=by.pk):
        patient.save()
        EligibilityFacts.objects.create(patient=patient)
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, data: dict[str, Any], by, reason: str) -> Patient:
    for field, value in data.items():
        setattr(patient, field, value)
    _not_in_future(patient.screened_on, "screened_on")
    patient.full_clean()
    with reason_for_change(reason, user=by.pk):
        patient.save(update_fields=list(data))
    return patient


@transaction.atomic
def patient_decline(*, patient: Patient, by, reason: str) -> Patient:
    """The patient declines to take part: the screening-log entry ends as "declined"."""
    if patient.status != Patient.Status.SCREENING:
        raise ValidationError(_("Only a patient in screening can decline."))
    if not reason.strip():
        raise ValidationError({"reason": _("Say why, as the patient put it (no names).")})
    with reason_for_change("patient declined", user=by.pk):
        patient.screening_outcome = Patient.ScreeningOutcome.DECLINED
        patient.declined_reason = reason.strip()[:200]
        _move(patient, Patient.Status.SCREEN_FAILURE, _today())
        patient.save(update_fields=["screening_outcome", "declined_reason"])
    return patient


# --- eligibility -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriterionCheck:
    criterion: EligibilityCriterion
    outcome: str  # eligibility.Outcome value, or "" when the criterion has no computed rule
    detail: str


def patient_facts(patient: Patient) -> eligibility.PatientFacts:
    """Gather what was entered into the engine's plain data."""
    facts = getattr(patient, "facts", None)
    lesions = tuple(
        eligibility.LesionFacts(
            organ=lesion.organ,
            diameter_mm=lesion.diameter_mm,
            progressing=lesion.progressing,
            long_bone=lesion.long_bone,
            brain=lesion.organ.strip().lower() == "brain",
        )
        for lesion in patient.screening_lesions.all()
    )
    labs = {
        lab.analyte: eligibility.LabValue(
            value=lab.value, unit=lab.unit, sampled_on=lab.sampled_on, uln=lab.uln
        )
        for lab in patient.screening_labs.all()
    }
    allocation_day = patient.enrolled_on or _today()
    return eligibility.PatientFacts(
        age_at_consent=patient.age_at_consent,
        ecog=facts.ecog if facts else None,
        lesions=lesions,
        systemic_lines_received=facts.prior_lines if facts else None,
        current_line=facts.current_line if facts else None,
        liver_metastases=facts.liver_metastases if facts else None,
        labs=labs,
        treatment_start=facts.planned_treatment_start if facts else None,
        randomisation_date=allocation_day,
        restaging_date=facts.restaging_on if facts else None,
        childbearing_potential=facts.childbearing_potential if facts else None,
        pregnancy_test_date=facts.pregnancy_test_on if facts else None,
        pregnancy_test_negative=facts.pregnancy_test_negative if facts else None,
    )


def _combine(results: list[eligibility.RuleResult]) -> tuple[str, str]:
    outcomes = {r.outcome for r in results}
    for outcome in (eligibility.Outcome.NOT_MET, eligibility.Outcome.UNKNOWN):
        if outcome in outcomes:
            detail = "; ".join(r.detail for r in results if r.outcome == outcome)
            return outcome.value, detail
    return eligibility.Outcome.MET.value, "; ".join(r.detail for r in results)


def eligibility_checks(patient: Patient) -> list[CriterionCheck]:
    """Every active criterion of the study with what the entered data say about it."""
    facts = patient_facts(patient)
    criteria = (
        EligibilityCriterion.objects.filter(study_id=patient.study_site.study_id, is_active=True)
        .prefetch_related("rules")
        .order_by("-kind", "number")
    )
    checks = []
    for criterion in criteria:
        rules = list(criterion.rules.all())
        if not rules:
            checks.append(CriterionCheck(criterion, "", ""))
            continue
        try:
            results = [eligibility.evaluate(r.rule_key, facts, r.params) for r in rules]
        except ValueError as error:  # e.g. a lab unit the rule cannot compare: never guess
            results = [eligibility.RuleResult(eligibility.Outcome.UNKNOWN, str(error))]
        outcome, detail = _combine(results)
        checks.append(CriterionCheck(criterion, outcome, detail))
    return checks


@transaction.atomic
def eligibility_answer(
    *, patient: Patient, answers: dict[int, bool], by, reason: str = ""
) -> list[CriterionCheck]:
    """Record the investigator's answers; refuse any that contradict the entered data.

    Answers cover every active criterion. The screening outcome follows: eligible when every
    criterion is satisfied, else screen failure (the unsatisfied criteria are the failed ones).
    """
    if patient.status != Patient.Status.SCREENING:
        raise ValidationError(_("Eligibility can only be answered during screening."))
    checks = eligibility_checks(patient)
    errors = {}
    for check in checks:
        answer = answers.get(check.criterion.pk)
        if answer is None:
            errors[f"criterion_{check.criterion.pk}"] = _("Answer every criterion.")
        elif check.outcome == eligibility.Outcome.NOT_MET.value and answer:
            errors[f"criterion_{check.criterion.pk}"] = _(
                "The entered data contradict this answer: %(detail)s"
            ) % {"detail": check.detail}
        elif check.outcome == eligibility.Outcome.MET.value and not answer:
            errors[f"criterion_{check.criterion.pk}"] = _(
                "The entered data say this criterion is satisfied: %(detail)s"
            ) % {"detail": check.detail}
    if errors:
        raise ValidationError(errors)
    with reason_for_change(reason or "eligibility checklist", user=by.pk):
        for check in checks:
            EligibilityAnswer.objects.update_or_create(
                patient=patient,
                criterion=check.criterion,
                defaults={
                    "satisfied": answers[check.criterion.pk],
                    "answered_by": by,
                    "computed_outcome": check.outcome,
                    "computed_detail": check.detail[:300],
                },
            )
        eligible = all(answers[c.criterion.pk] for c in checks)
        patient.screening_outcome = (
            Patient.ScreeningOutcome.ELIGIBLE
            if eligible
            else Patient.ScreeningOutcome.SCREEN_FAILURE
        )
        if not eligible:
            patient.status = Patient.Status.SCREEN_FAILURE
            patient.status_changed_on = _today()
        patient.save(update_fields=["screening_outcome", "status", "status_changed_on"])
    return checks


def is_eligible(patient: Patient) -> bool:
    """The checklist was completed as eligible, and no answer is contradicted by the data now
    (eligibility data may have been corrected since the checklist was saved)."""
    answers = dict(
        EligibilityAnswer.objects.filter(patient=patient).values_list("criterion_id", "satisfied")
    )
    checks = eligibility_checks(patient)
    return patient.screening_outcome == Patient.ScreeningOutcome.ELIGIBLE and all(
        answers.get(c.criterion.pk) is True and c.outcome != eligibility.Outcome.NOT_MET.value
        for c in checks
    )


# --- consent -----------------------------------------------------------------------------------


@transaction.atomic
def consent_record(*, patient: Patient, consented_on: date, form_version: str, by) -> Consent:
    _not_in_future(consented_on, "consented_on")
    allocation = Allocation.objects.filter(patient=patient).first()
    if allocation is not None:
        allocated_on = timezone.localtime(allocation.allocated_at).date()
        # A re-consent (new form version) after randomisation is normal; a patient randomised
        # with no consent dated on or before the randomisation is not.
        consented_before = patient.consents.filter(consented_on__lte=allocated_on).exists()
        if consented_on > allocated_on and not consented_before:
            raise ValidationError(
                {"consented_on": _("Consent cannot be dated after the patient's randomisation.")}
            )
    consent = Consent(
        patient=patient, consented_on=consented_on, form_version=form_version, obtained_by=by
    )
    consent.full_clean()
    with reason_for_change("consent", user=by.pk):
        consent.save()
    return consent


def active_consent(patient: Patient) -> Consent | None:
    return (
        Consent.objects.filter(patient=patient, withdrawn_on__isnull=True)
        .order_by("-consented_on")
        .first()
    )


@transaction.atomic
def consent_withdraw(*, consent: Consent, withdrawn_on: date, scope: str, by, reason: str) -> None:
    _not_in_future(withdrawn_on, "withdrawn_on")
    if withdrawn_on < consent.consented_on:
        raise ValidationError({"withdrawn_on": _("Withdrawal cannot precede consent.")})
    with reason_for_change(reason, user=by.pk):
        consent.withdrawn_on = withdrawn_on
        consent.withdrawal_scope = scope
        consent.full_clean()
        consent.save(update_fields=["withdrawn_on", "withdrawal_scope"])
        patient = consent.patient
        if scope == Consent.WithdrawalScope.ALL and patient.status != Patient.Status.SCREENING:
            _move(
                patient,
                Patient.Status.OFF_STUDY,
                withdrawn_on,
                off_study_reason=Patient.OffStudyReason.CONSENT_WITHDRAWN,
            )
            visits_sync(patient)  # later visits become not applicable


# --- status ------------------------------------------------------------------------------------


def _move(patient: Patient, new_status: str, on: date, *, off_study_reason: str = "") -> None:
    if not status.can_move(patient.status, new_status):
        raise ValidationError(
            _("A patient cannot go from “%(old)s” to “%(new)s”.")
            % {"old": patient.get_status_display(), "new": Patient.Status(new_status).label}
        )
    if patient.status_changed_on and on < patient.status_changed_on:
        raise ValidationError(_("The new status cannot be dated before the current one."))
    if new_status == Patient.Status.OFF_STUDY and not off_study_reason:
        raise ValidationError({"off_study_reason": _("Give the reason for going off study.")})
    patient.status = new_status
    patient.status_changed_on = on
    if new_status == Patient.Status.OFF_STUDY:
        patient.off_study_reason = off_study_reason
    patient.save(update_fields=["status", "status_changed_on", "off_study_reason"])


@transaction.atomic
def patient_change_status(
    *, patient: Patient, new_status: str, on: date, by, reason: str, off_study_reason: str = ""
) -> Patient:
    _not_in_future(on, "on")
    with reason_for_change(reason, user=by.pk):
        _move(patient, new_status, on, off_study_reason=off_study_reason)
        visits_sync(patient)
    return patient


# --- enrolment and randomisation ---------------------------------------------------------------


def _check_enrollable(patient: Patient) -> None:
    if hasattr(patient, "allocation"):
        raise ValidationError(_("This patient is already enrolled."))
    if patient.status != Patient.Status.SCREENING:
        raise ValidationError(_("Only a patient in screening can be enrolled."))
    if active_consent(patient) is None:
        raise ValidationError(_("Record the patient's informed consent before enrolment."))
    if not is_eligible(patient):
        raise ValidationError(
            _("The eligibility checklist is incomplete or the patient is not eligible.")
        )


def _next_subject_id(study_site: StudySite) -> str:
    """PREFIX-SITE-SEQUENCE; the caller holds the study-site row lock."""
    taken = Patient.objects.filter(study_site=study_site, subject_id__isnull=False).count()
    return f"{study_site.study.prefix}-{study_site.number}-{taken + 1:03d}"


def _take_slot(study: Study, stratum: str) -> AllocationSlot:
    # Serialise randomisations of the study on its active list's row: two investigators
    # randomising at once get distinct, consecutive slots, and none is skipped.
    rlist = (
        RandomisationList.objects.select_for_update().filter(study=study, is_active=True).first()
    )
    if rlist is None:
        raise ValidationError(_("No randomisation list is active for this study yet."))
    slot = (
        AllocationSlot.objects.filter(rlist=rlist, stratum=stratum, taken_at__isnull=True)
        .order_by("sequence")
        .select_related("arm")
        .first()
    )
    if slot is None:
        raise ValidationError(_("The randomisation list has no free slot left in this stratum."))
    slot.taken_at = timezone.now()
    slot.save(update_fields=["taken_at"])
    return slot


def _allocate(patient: Patient, study: Study, strata: dict[str, str], by) -> Allocation:
    if study.design == Study.Design.SINGLE_ARM:
        return Allocation(
            patient=patient, arm=study.arms.get(), part=Allocation.Part.SINGLE_ARM, allocated_by=by
        )
    if study.design == Study.Design.RUN_IN_RANDOMISED:
        run_in_done = Allocation.objects.filter(
            patient__study_site__study=study, part=Allocation.Part.RUN_IN
        ).count()
        if study.run_in_size is None:
            raise ValidationError(_("The sponsor has not set the size of the safety run-in."))
        if run_in_done < study.run_in_size:
            return Allocation(
                patient=patient,
                arm=study.arms.get(code=study.run_in_arm_code),
                part=Allocation.Part.RUN_IN,
                allocated_by=by,
            )
    factors = {f.name: f.level_list for f in study.strat_factors.all()}
    missing = [name for name, levels in factors.items() if strata.get(name) not in levels]
    if missing:
        raise ValidationError(
            _("Give every stratification factor: %(names)s") % {"names": ", ".join(missing)}
        )
    key = stratum_key(patient.study_site.number, {name: strata[name] for name in factors})
    slot = _take_slot(study, key)
    return Allocation(
        patient=patient,
        arm=slot.arm,
        slot=slot,
        part=Allocation.Part.RANDOMISED,
        stratum=key,
        allocated_by=by,
    )


@transaction.atomic
def patient_enrol(*, patient: Patient, by, strata: dict[str, str] | None = None) -> Allocation:
    """Enrol (and, where the design says so, randomise) an eligible, consented patient."""
    study_site = (
        StudySite.objects.select_for_update().select_related("study").get(pk=patient.study_site_id)
    )
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    _check_enrollable(patient)
    study = study_site.study
    with reason_for_change("enrolment", user=by.pk):
        allocation = _allocate(patient, study, strata or {}, by)
        patient.subject_id = _next_subject_id(study_site)
        patient.enrolled_on = _today()
        _move(patient, Patient.Status.ENROLLED, patient.enrolled_on)
        patient.save(update_fields=["subject_id", "enrolled_on"])
        allocation.save()
        visits_sync(patient)
    return allocation


# --- emergency unblinding ----------------------------------------------------------------------


@transaction.atomic
def emergency_unblind(*, patient: Patient, by, password: str, reason: str) -> EmergencyUnblinding:
    """Show the arm to the requesting investigator for this patient only, and tell the sponsor.

    The investigator re-enters their password (21 CFR 11.200 style re-authentication). The
    unblinding row, its audit event and the email to the sponsor's administrators are written in
    one transaction; the email names the patient and the requester, never the arm.
    """
    if not by.check_password(password):
        raise ValidationError({"password": _("This password is not correct.")})
    if not reason.strip():
        raise ValidationError({"reason": _("Give the medical reason for unblinding.")})
    if not hasattr(patient, "allocation"):
        raise ValidationError(_("This patient has not been randomised."))
    study = patient.study_site.study
    with reason_for_change(reason, user=by.pk):
        unblinding = EmergencyUnblinding.objects.create(
            patient=patient, requested_by=by, reason=reason
        )
    recipients = Membership.objects.filter(
        study=study, role=Role.SPONSOR_ADMIN, is_active=True, user__is_active=True
    ).values_list("user__email", flat=True)
    outbox_enqueue(
        key=f"emergency-unblinding-{unblinding.pk}",
        to=recipients,
        subject=f"[OligoCRF] {study.acronym}: emergency unblinding of {patient.subject_id}",
        body=(
            f"Emergency unblinding in {study.acronym} ({study.registry_id}).\n"
            f"Patient: {patient.subject_id}, site {patient.study_site.number} "
            f"({patient.study_site.site.institution}).\n"
            f"Requested by: {by.get_full_name() or by.get_username()} at "
            f"{timezone.localtime(unblinding.requested_at):%Y-%m-%d %H:%M %Z}.\n"
            f"Reason: {reason}\n\n"
            "The arm was shown to the requesting investigator only, for this patient only."
        ),
    )
    return unblinding
