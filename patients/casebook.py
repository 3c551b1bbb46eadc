"""A patient's casebook: every case report form instance, its status and a hash of its content.

One SQL query lists the forms of any number of patients and whether each is complete; the hash
of a form is the MD5 of its content (the root row and its child rows as ``jsonb``, whose text
form is canonical), computed in the database.  Because the hash is computed from what is in the
database now, a verification or a signature that stored an older hash shows as "changed since"
whatever path changed the data: our forms, the admin, ``QuerySet.update()`` or raw SQL.  Pages
compute the hashes of the verified and signed forms only (one more query), the only ones they
compare with anything.

Status of a form, highest first: locked, signed, verified (source data verified), complete,
in progress; a form the protocol expects but nobody has entered is "not started".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache

from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import formats
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from patients.casebook_forms import (  # noqa: F401 - also re-exported as casebook.<name>
    FORMS_SQL,
    FORMS_STATUS_SQL,
    FORMS_WORKLIST_SQL,
    FormRow,
    compared_hashes,
    content_hashes,
    current_hashes,
    form_list,
    form_rows,
    form_rows_status,
    signature_hash,
    worklist_rows,
)
from patients.models_dm import FormKind

#: The model holding each kind of form's root row (queries name fields of it).
FORM_MODELS: dict[str, str] = {
    FormKind.ELIGIBILITY: "patients.EligibilityFacts",
    FormKind.CONSENT: "patients.Consent",
    FormKind.BASELINE: "lesions.ImagingAssessment",
    FormKind.ASSESSMENT: "lesions.ImagingAssessment",
    FormKind.COURSE: "treatments.RadiotherapyCourse",
    FormKind.LINE: "treatments.SystemicLine",
    FormKind.DRUG: "treatments.DrugCycle",
    FormKind.AE: "patients.AdverseEvent",
    FormKind.LAB: "patients.LabResult",
    FormKind.OFF_STUDY: "patients.Patient",
}

#: Forms whose mere presence can reveal the arm (study drug in one arm only): hidden from
#: users who may not see the allocation (``studies.blinding.sees_allocation``).
ARM_REVEALING_KINDS = frozenset({FormKind.DRUG})


#: The page of each kind of form kept per record: (URL name, its keyword for the record).
_BY_OBJECT = {
    FormKind.ASSESSMENT: ("scan_edit", "scan_pk"),
    FormKind.COURSE: ("course_edit", "course_pk"),
    FormKind.LINE: ("line_edit", "line_pk"),
    FormKind.DRUG: ("cycle_edit", "cycle_pk"),
    FormKind.AE: ("ae_edit", "ae_pk"),
    FormKind.LAB: ("lab_edit", "lab_pk"),
}
#: The page of each kind of form kept once per patient.
_BY_PATIENT = {
    FormKind.ELIGIBILITY: "patient_facts",
    FormKind.CONSENT: "patient_consent",
    FormKind.BASELINE: "baseline_edit",
    FormKind.OFF_STUDY: "patient_status",
}
#: Stand for the keys while a form's URL is reversed once (:func:`_url_template`).
_PATIENT_MARK, _OBJECT_MARK = 918273645, 546372819


@lru_cache(maxsize=64)
def _url_template(name: str, kwarg: str | None, _prefix: str, _urlconf) -> str:
    """The URL of ``name`` with ``{patient}`` (and ``{record}``) for its keys: reversed once per
    URL name, script prefix and URLconf (a casebook links each of its ~100 forms twice, and
    ``reverse()`` is some tens of microseconds)."""
    kwargs = {"patient_pk": _PATIENT_MARK}
    if kwarg:
        kwargs[kwarg] = _OBJECT_MARK
    url = reverse(name, kwargs=kwargs)
    return url.replace(str(_PATIENT_MARK), "{patient}").replace(str(_OBJECT_MARK), "{record}")


def patient_url(name: str, kwarg: str | None, patient_pk: int, object_id: int | None = None) -> str:
    """``reverse(name, kwargs={"patient_pk": patient_pk, kwarg: object_id})`` (``kwarg`` None: the
    patient's page), from the URL reversed once per name: for pages that link every row."""
    template = _url_template(name, kwarg, get_script_prefix(), get_urlconf())
    return template.format(patient=int(patient_pk), record=int(object_id or 0))


def form_url(kind: str, patient_pk: int, object_id: int | None) -> str:
    """The page where the form is entered (or read)."""
    if kind in _BY_OBJECT and object_id is not None:
        return patient_url(*_BY_OBJECT[kind], patient_pk, object_id)
    if kind in _BY_PATIENT:
        return patient_url(_BY_PATIENT[kind], None, patient_pk)
    return patient_url("casebook", None, patient_pk)


@lru_cache(maxsize=4096)
def _short_date(value: date, _language: str | None) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT")


def short_date(value: date | None) -> str:
    """``value|date:"SHORT_DATE_FORMAT"`` in the active language, formatted once per date and
    language ("" for no date): a casebook shows some hundred dates, many of them the same."""
    return "" if value is None else _short_date(value, get_language())


def form_label(kind: str) -> str:
    return str(FormKind(kind).label)


# --- Status ---------------------------------------------------------------------------------

NOT_STARTED, IN_PROGRESS, COMPLETE, VERIFIED, SIGNED, LOCKED = (
    "not_started",
    "in_progress",
    "complete",
    "verified",
    "signed",
    "locked",
)
STATUS_LABELS = {
    NOT_STARTED: _("Not started"),
    IN_PROGRESS: _("In progress"),
    COMPLETE: _("Complete"),
    VERIFIED: _("Verified"),
    SIGNED: _("Signed"),
    LOCKED: _("Locked"),
}
#: Bootstrap colour of each status in the matrix.
STATUS_COLOURS = {
    NOT_STARTED: "light text-dark border",
    IN_PROGRESS: "warning text-dark",
    COMPLETE: "info text-dark",
    VERIFIED: "success",
    SIGNED: "primary",
    LOCKED: "dark",
}

#: Visit kinds recorded by a form of ours (others are shown by their visit state only).
VISIT_FORM_KIND = {"imaging": FormKind.ASSESSMENT, "labs": FormKind.LAB}


@dataclass(frozen=True)
class FormStatus:
    row: FormRow
    verified: bool = False
    changed_since_verification: bool = False
    signed: bool = False
    needs_resigning: bool = False
    locked: bool = False
    open_queries: int = 0

    @property
    def status(self) -> str:
        if self.locked:
            return LOCKED
        if self.signed:
            return SIGNED
        if self.verified:
            return VERIFIED
        return COMPLETE if self.row.complete else IN_PROGRESS

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def colour(self) -> str:
        return STATUS_COLOURS[self.status]

    @cached_property  # the casebook shows each form's kind and link twice: reverse() once
    def kind_label(self) -> str:
        return form_label(self.row.kind)

    @property
    def token(self) -> str:
        return f"{self.row.kind}:{self.row.object_id}"

    @cached_property
    def url(self) -> str:
        return form_url(self.row.kind, self.row.patient_id, self.row.object_id)

    @cached_property  # shown twice too
    def date_text(self) -> str:
        return short_date(self.row.on_date)


@dataclass(frozen=True)
class SignatureState:
    signature: object  # patients.Signature
    valid: bool
    changed: tuple[str, ...]  # "kind:id" of forms changed or deleted since signing


@dataclass(frozen=True)
class MatrixRow:
    label: str
    window: tuple[date, date] | None
    visit_status: str
    cells: dict[str, list]  # form kind -> [FormStatus | NOT_STARTED]

    @property
    def window_text(self) -> tuple[str, str] | None:
        return (
            None
            if self.window is None
            else (short_date(self.window[0]), short_date(self.window[1]))
        )


@dataclass
class Casebook:
    patient: object
    forms: list[FormStatus]
    signatures: list[SignatureState]
    lock: object | None  # the DataLock covering the whole patient, if any
    form_locks: list = field(default_factory=list)
    matrix: list[MatrixRow] = field(default_factory=list)
    kinds: list[tuple[str, str]] = field(default_factory=list)

    @property
    def valid_signature(self) -> SignatureState | None:
        return next((s for s in self.signatures if s.valid), None)

    @property
    def needs_resigning(self) -> bool:
        """Signed once, but no signature still matches the data."""
        return bool(self.signatures) and self.valid_signature is None

    def counts(self) -> dict[str, int]:
        result = dict.fromkeys(STATUS_LABELS, 0)
        for form in self.forms:
            result[form.status] += 1
        return result


def signature_states(signatures, hashes: dict[tuple[str, int], str]) -> list[SignatureState]:
    """Each signature with whether every form it covers still has the signed content."""
    states = []
    for signature in signatures:
        changed = tuple(
            f"{kind}:{object_id}"
            for kind, object_id, digest in signature.forms
            if hashes.get((kind, int(object_id))) != digest
        )
        intact = signature_hash(signature.forms) == signature.content_hash
        states.append(SignatureState(signature, valid=intact and not changed, changed=changed))
    return states


def build(patient, *, user, today: date | None = None) -> Casebook:
    """The patient's casebook as ``user`` may see it, in a fixed number of queries."""
    from django.utils import timezone

    from patients import locking
    from patients.models_dm import DataLock, Signature
    from studies.blinding import sees_allocation

    today = today or timezone.localdate()
    study = patient.study_site.study
    rows = form_rows_status([patient.pk])
    if not sees_allocation(user, study, patient.study_site_id, patient_id=patient.pk):
        rows = [r for r in rows if r.kind not in ARM_REVEALING_KINDS]
    verified = {r.key: r.verified_hash for r in rows if r.verified_hash is not None}
    signed = list(Signature.objects.filter(patient=patient).order_by("-signed_at"))
    hashes = compared_hashes(rows, signed)
    signatures = signature_states(signed, hashes)
    signed_valid = {(k, int(i)) for s in signatures if s.valid for k, i, _h in s.signature.forms}
    signed_ever = {(k, int(i)) for s in signatures for k, i, _h in s.signature.forms}
    locks = list(
        DataLock.objects.filter(locking.patient_lock_q(patient) | Q_form_locks(patient)).order_by(
            "locked_at"
        )
    )
    whole = next((lk for lk in locks if lk.level != DataLock.Level.FORM), None)
    form_locked = {(lk.form_kind, lk.object_id) for lk in locks if lk.level == DataLock.Level.FORM}
    forms = [
        FormStatus(
            row=r,
            verified=r.key in verified and verified[r.key] == hashes.get(r.key),
            changed_since_verification=r.key in verified and verified[r.key] != hashes.get(r.key),
            signed=r.key in signed_valid,
            needs_resigning=r.key in signed_ever and r.key not in signed_valid,
            locked=whole is not None or r.key in form_locked,
            open_queries=r.open_queries,
        )
        for r in rows
    ]
    book = Casebook(
        patient=patient,
        forms=forms,
        signatures=signatures,
        lock=whole,
        form_locks=[lk for lk in locks if lk.level == DataLock.Level.FORM],
    )
    _fill_matrix(book, today)
    return book


def Q_form_locks(patient):  # noqa: N802 - reads as the Q it returns
    from django.db.models import Q

    return Q(released_at__isnull=True, level="form", patient_id=patient.pk)


_SCREENING_KINDS = (FormKind.ELIGIBILITY, FormKind.CONSENT, FormKind.BASELINE)
_VISIT_KINDS = (FormKind.ASSESSMENT, FormKind.LAB)
_EVENT_KINDS = (FormKind.COURSE, FormKind.LINE, FormKind.DRUG, FormKind.AE, FormKind.OFF_STUDY)


def expected_screening_forms(patient) -> list[str]:
    """Forms every patient at this stage must have: eligibility once screened; consent and the
    baseline lesions once enrolled."""
    expected = [FormKind.ELIGIBILITY]
    if patient.enrolled_on is not None:
        expected += [FormKind.CONSENT, FormKind.BASELINE]
    return expected


def _fill_matrix(book: Casebook, today: date) -> None:
    """Rows: screening and baseline, each planned visit, then treatment and safety forms (not
    bound to a visit) and unscheduled visits; columns: the kinds of form."""
    from patients import schedule
    from patients.models_visits import PlannedVisit

    by_kind: dict[str, list[FormStatus]] = defaultdict(list)
    for form in book.forms:
        by_kind[form.row.kind].append(form)
    present = {form.row.kind for form in book.forms}
    book.kinds = [
        (kind, form_label(kind))
        for kind in FormKind.values
        if kind in present or kind not in (FormKind.DRUG, FormKind.OFF_STUDY)
    ]
    screening = {kind: list(by_kind.get(kind, [])) for kind in _SCREENING_KINDS}
    for kind in expected_screening_forms(book.patient):
        if not screening[kind]:
            screening[kind] = [NOT_STARTED]
    book.matrix.append(MatrixRow(str(_("Screening and baseline")), None, "", screening))

    visits = PlannedVisit.objects.filter(patient=book.patient).select_related("definition")
    placed: set[tuple[str, int]] = set()
    scans = {f"scan:{f.row.object_id}": f for f in by_kind.get(FormKind.ASSESSMENT, [])}
    for visit in visits.order_by("due_on", "definition__name"):
        state = schedule.status(visit.state, visit.window_start, visit.window_end, today)
        expected_kind = VISIT_FORM_KIND.get(visit.definition.kind)
        cells: dict[str, list] = {}
        if visit.done_form in scans:
            cells[FormKind.ASSESSMENT] = [scans[visit.done_form]]
            placed.add(scans[visit.done_form].row.key)
        elif expected_kind is not None:
            found = [
                f
                for f in by_kind.get(expected_kind, [])
                if f.row.key not in placed
                and f.row.on_date is not None
                and visit.window_start <= f.row.on_date <= visit.window_end
            ]
            placed.update(f.row.key for f in found)
            if found:
                cells[expected_kind] = found
            elif state in (schedule.DUE, schedule.OVERDUE):
                cells[expected_kind] = [NOT_STARTED]
        window = (visit.window_start, visit.window_end)
        label = f"{visit.definition.name} #{visit.occurrence}"
        book.matrix.append(MatrixRow(label, window, state, cells))

    events = {kind: by_kind[kind] for kind in _EVENT_KINDS if by_kind.get(kind)}
    if events:
        book.matrix.append(MatrixRow(str(_("Treatment and safety")), None, "", events))
    unscheduled = {
        kind: [f for f in by_kind.get(kind, []) if f.row.key not in placed] for kind in _VISIT_KINDS
    }
    unscheduled = {kind: forms for kind, forms in unscheduled.items() if forms}
    if unscheduled:
        book.matrix.append(MatrixRow(str(_("Unscheduled")), None, "", unscheduled))


# --- Sites and studies ----------------------------------------------------------------------

MISSING, LATE, INCOMPLETE, CHANGED = "missing", "late", "incomplete", "changed"
ISSUE_LABELS = {
    MISSING: _("Missing"),
    LATE: _("Late (visit window closed)"),
    INCOMPLETE: _("In progress"),
    CHANGED: _("Changed since verification or signature"),
}


@dataclass(frozen=True)
class Completeness:
    expected: int = 0
    missing: int = 0
    in_progress: int = 0
    complete: int = 0
    verified: int = 0
    signed: int = 0


@dataclass(frozen=True)
class FormIssue:
    patient_id: int
    subject: str
    kind: str
    object_id: int | None
    issue: str
    on_date: date | None
    detail: str = ""

    @property
    def kind_label(self) -> str:
        return form_label(self.kind)

    @property
    def issue_label(self) -> str:
        return str(ISSUE_LABELS[self.issue])

    @property
    def url(self) -> str:
        return form_url(self.kind, self.patient_id, self.object_id)


@dataclass
class _Portfolio:
    patients: list
    rows: list[FormRow]
    verified: dict[tuple[str, int], str]
    hashes: dict[tuple[str, int], str]  # current hashes of the verified and signed forms
    signed: dict[tuple[str, int], bool]  # form -> covered by a still-valid signature
    late_visits: list  # (patient_id, form kind, visit label, window_end)

    def verified_now(self, key: tuple[str, int]) -> bool:
        return key in self.verified and self.verified[key] == self.hashes.get(key)

    def changed_since_verification(self, key: tuple[str, int]) -> bool:
        return key in self.verified and self.verified[key] != self.hashes.get(key)


def _portfolio(
    patients, today: date, *, hide_kinds=frozenset(), worklist: bool = False
) -> _Portfolio:
    """What the worklists and counts need of these patients' forms; with ``worklist``, only the
    forms that can make an issue (:func:`worklist_rows`), else every form."""
    from patients.models_dm import Signature
    from patients.models_visits import PlannedVisit

    patients = list(patients)
    ids = [p.pk for p in patients]
    signatures = list(Signature.objects.filter(patient_id__in=ids))
    listed = worklist_rows(ids, signatures) if worklist else form_rows_status(ids)
    rows = [r for r in listed if r.kind not in hide_kinds]
    verified = {r.key: r.verified_hash for r in rows if r.verified_hash is not None}
    hashes = compared_hashes(rows, signatures)
    signed: dict[tuple[str, int], bool] = {}
    for state in signature_states(signatures, hashes):
        for kind, object_id, _digest in state.signature.forms:
            key = (kind, int(object_id))
            signed[key] = signed.get(key, False) or state.valid
    late = []
    # A patient's visits in their default order (due date, then the schedule's), without the
    # joins to patients, sites and studies that the default ordering would add.
    overdue = (
        PlannedVisit.objects.filter(
            patient_id__in=ids,
            state=PlannedVisit.State.PLANNED,
            window_end__lt=today,
            definition__kind__in=list(VISIT_FORM_KIND),
        )
        .order_by("patient_id", "due_on", "definition__anchor", "definition__offset_days")
        .values_list(
            "patient_id", "definition__kind", "definition__name", "occurrence", "window_end"
        )
    )
    for patient_id, visit_kind, name, occurrence, window_end in overdue:
        late.append((patient_id, VISIT_FORM_KIND[visit_kind], f"{name} #{occurrence}", window_end))
    return _Portfolio(patients, rows, verified, hashes, signed, late)


def _issues(p: _Portfolio) -> list[FormIssue]:
    subjects = {pt.pk: pt.subject_id or pt.screening_number for pt in p.patients}
    present: dict[int, set[str]] = defaultdict(set)
    issues: list[FormIssue] = []
    for r in p.rows:
        present[r.patient_id].add(r.kind)
        if not r.complete:
            issues.append(
                FormIssue(
                    r.patient_id, subjects[r.patient_id], r.kind, r.object_id, INCOMPLETE, r.on_date
                )
            )
        elif p.changed_since_verification(r.key) or p.signed.get(r.key) is False:
            issues.append(
                FormIssue(
                    r.patient_id, subjects[r.patient_id], r.kind, r.object_id, CHANGED, r.on_date
                )
            )
    for pt in p.patients:
        for kind in expected_screening_forms(pt):
            if kind not in present[pt.pk]:
                issues.append(FormIssue(pt.pk, subjects[pt.pk], kind, None, MISSING, None))
    for patient_id, kind, label, window_end in p.late_visits:
        issues.append(
            FormIssue(patient_id, subjects[patient_id], kind, None, LATE, window_end, label)
        )
    issues.sort(key=lambda i: (i.subject, i.on_date or date.min, i.kind))
    return issues


def site_worklist(study_site, *, user, today: date | None = None) -> list[FormIssue]:
    """Missing, late, unfinished and changed forms of a site's patients (fixed query count)."""
    from django.utils import timezone

    from patients.models import Patient
    from studies.blinding import sees_allocation

    today = today or timezone.localdate()
    hide = (
        frozenset()
        if sees_allocation(user, study_site.study, study_site.pk)
        else ARM_REVEALING_KINDS
    )
    patients = (
        Patient.objects.filter(study_site=study_site)
        .exclude(status=Patient.Status.SCREEN_FAILURE)
        .order_by("pk")  # the issues are sorted: no need of the default ordering's joins
    )
    return _issues(_portfolio(patients, today, hide_kinds=hide, worklist=True))


def completeness_by_site(
    study_id: int, today: date | None = None, *, study_site_ids: Iterable[int] | None = None
) -> dict[int, Completeness]:
    """Per study-site: forms expected, missing, in progress, complete, verified and signed.

    ``study_site_ids`` limits the count to those sites (the ones the reader sees): only their
    patients' forms are read.
    """
    from django.utils import timezone

    from patients.models import Patient

    today = today or timezone.localdate()
    patients = Patient.objects.filter(study_site__study_id=study_id).exclude(
        status=Patient.Status.SCREEN_FAILURE
    )
    if study_site_ids is not None:
        patients = patients.filter(study_site_id__in=list(study_site_ids))
    p = _portfolio(patients, today, hide_kinds=ARM_REVEALING_KINDS)
    site_of = {pt.pk: pt.study_site_id for pt in p.patients}
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in p.rows:
        c = counts[site_of[r.patient_id]]
        c["expected"] += 1
        if not r.complete:
            c["in_progress"] += 1
            continue
        c["complete"] += 1
        c["verified"] += p.verified_now(r.key)
        c["signed"] += p.signed.get(r.key) is True
    for issue in _issues(p):
        if issue.issue in (MISSING, LATE):
            counts[site_of[issue.patient_id]]["expected"] += 1
            counts[site_of[issue.patient_id]]["missing"] += 1
    return {site: Completeness(**values) for site, values in counts.items()}
