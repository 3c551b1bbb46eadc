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

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import NamedTuple

from django.db import connection
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

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


def form_url(kind: str, patient_pk: int, object_id: int | None) -> str:
    """The page where the form is entered (or read)."""
    by_object = {
        FormKind.ASSESSMENT: ("scan_edit", "scan_pk"),
        FormKind.COURSE: ("course_edit", "course_pk"),
        FormKind.LINE: ("line_edit", "line_pk"),
        FormKind.DRUG: ("cycle_edit", "cycle_pk"),
        FormKind.AE: ("ae_edit", "ae_pk"),
        FormKind.LAB: ("lab_edit", "lab_pk"),
    }
    by_patient = {
        FormKind.ELIGIBILITY: "patient_facts",
        FormKind.CONSENT: "patient_consent",
        FormKind.BASELINE: "baseline_edit",
        FormKind.OFF_STUDY: "patient_status",
    }
    if kind in by_object and object_id is not None:
        name, kwarg = by_object[kind]
        return reverse(name, kwargs={"patient_pk": patient_pk, kwarg: object_id})
    if kind in by_patient:
        return reverse(by_patient[kind], kwargs={"patient_pk": patient_pk})
    return reverse("casebook", kwargs={"patient_pk": patient_pk})


def form_label(kind: str) -> str:
    return str(FormKind(kind).label)


# --- The forms of some patients -------------------------------------------------------------

_AGG = "(SELECT coalesce(jsonb_agg(to_jsonb(c){minus} ORDER BY c.id), '[]'::jsonb) FROM {table} c WHERE {where})"


def _children(table: str, where: str, minus: str = "") -> str:
    return _AGG.format(table=table, where=where, minus=minus)


@dataclass(frozen=True)
class _FormSql:
    """How one kind of form is read from the database.

    ``source`` is the FROM and WHERE of its root rows (alias ``t``) among the patients in
    %(ids)s, reached by index; ``head`` yields (kind, patient_id, object_id, on_date);
    ``complete`` is whether the form is complete; ``content`` is the jsonb whose MD5 is the
    form's hash: the root row and its children, minus bookkeeping columns that change without
    anyone changing the data.  Child rows are reached by index from each root row (scalar
    subqueries rather than EXISTS, which the planner may turn into a scan of the whole child
    table).  Building the content is most of the cost of reading forms, so the listing of forms
    leaves it out and :func:`content_hashes` builds it only for the forms asked for.
    """

    head: str
    source: str
    content: str
    complete: str

    def select(self, *columns: str) -> str:
        return f"SELECT {self.head}, {', '.join(columns)} FROM {self.source}"

    def hash_select(self, kind: str) -> str:
        """(kind, object_id, hash) of the forms of this kind whose ids are in %(<kind>)s."""
        return (
            f"SELECT '{kind}', t.id, md5(({self.content})::text) FROM {self.source}"
            f" AND t.id = ANY(%({kind})s)"
        )


_FORMS: dict[str, _FormSql] = {
    FormKind.ELIGIBILITY: _FormSql(
        head="'eligibility', t.patient_id, t.id, p.screened_on",
        source="""patients_eligibilityfacts t
            JOIN patients_patient p ON p.id = t.patient_id
            JOIN studies_studysite ss ON ss.id = p.study_site_id
            WHERE t.patient_id = ANY(%(ids)s) AND p.id = ANY(%(ids)s)""",
        content=f"""jsonb_build_array(to_jsonb(t),
            {_children("patients_screeninglesion", "c.patient_id = t.patient_id")},
            {_children("patients_screeninglab", "c.patient_id = t.patient_id")},
            {
            _children(
                "patients_eligibilityanswer",
                "c.patient_id = t.patient_id",
                " - 'answered_at' - 'computed_detail'",
            )
        })""",
        complete="""(SELECT count(*) FROM patients_eligibilityanswer a
                WHERE a.patient_id = t.patient_id)
            >= (SELECT count(*) FROM studies_eligibilitycriterion ec
                WHERE ec.study_id = ss.study_id)""",
    ),
    FormKind.CONSENT: _FormSql(
        head="'consent', t.patient_id, t.id, t.consented_on",
        source="patients_consent t WHERE t.patient_id = ANY(%(ids)s)",
        content="to_jsonb(t)",
        complete="true",
    ),
    FormKind.BASELINE: _FormSql(
        head="'baseline', t.patient_id, t.id, t.scan_date",
        source="lesions_imagingassessment t WHERE t.is_baseline AND t.patient_id = ANY(%(ids)s)",
        content=f"""jsonb_build_array(to_jsonb(t),
            {_children("lesions_lesion", "c.patient_id = t.patient_id AND c.category <> 'new'")},
            {_children("lesions_measurement", "c.assessment_id = t.id")})""",
        complete="""NOT EXISTS (SELECT 1 FROM lesions_lesion l WHERE l.patient_id = t.patient_id
            AND l.category = 'target' AND NOT EXISTS (SELECT 1 FROM lesions_measurement m
                WHERE m.assessment_id = t.id AND m.lesion_id = l.id))""",
    ),
    FormKind.ASSESSMENT: _FormSql(
        head="'assessment', t.patient_id, t.id, t.scan_date",
        source="""lesions_imagingassessment t
            WHERE NOT t.is_baseline AND t.patient_id = ANY(%(ids)s)""",
        content=f"""jsonb_build_array(to_jsonb(t),
            {_children("lesions_measurement", "c.assessment_id = t.id")})""",
        complete="(SELECT count(*) FROM lesions_measurement m WHERE m.assessment_id = t.id) > 0",
    ),
    FormKind.COURSE: _FormSql(
        head="'course', t.patient_id, t.id, t.planned_start",
        source="treatments_radiotherapycourse t WHERE t.patient_id = ANY(%(ids)s)",
        content=f"""jsonb_build_array(to_jsonb(t),
            {_children("treatments_prescription", "c.course_id = t.id")},
            {_children("treatments_fraction", "c.course_id = t.id")})""",
        complete="""(SELECT count(*) FROM treatments_fraction fr WHERE fr.course_id = t.id)
            >= coalesce((SELECT max(pr.fractions) FROM treatments_prescription pr
                         WHERE pr.course_id = t.id), 1)""",
    ),
    FormKind.LINE: _FormSql(
        head="'line', t.patient_id, t.id, t.start",
        source="treatments_systemicline t WHERE t.patient_id = ANY(%(ids)s)",
        content=f"""jsonb_build_array(to_jsonb(t),
            {_children("treatments_lineagent", "c.line_id = t.id")})""",
        complete="""(SELECT count(*) FROM treatments_lineagent la WHERE la.line_id = t.id) > 0
            AND (t."end" IS NULL OR t.stop_reason <> '')""",
    ),
    FormKind.DRUG: _FormSql(
        head="'drug', t.patient_id, t.id, coalesce(t.given_on, t.planned_on)",
        source="treatments_drugcycle t WHERE t.patient_id = ANY(%(ids)s)",
        content="to_jsonb(t)",
        complete="t.given_on IS NOT NULL OR t.status = 'omitted'",
    ),
    FormKind.AE: _FormSql(
        head="'ae', t.patient_id, t.id, t.onset_on",
        source="patients_adverseevent t WHERE t.patient_id = ANY(%(ids)s)",
        content=f"""jsonb_build_array(to_jsonb(t) - 'created_at',
            {_children("patients_saereport", "c.adverse_event_id = t.id", " - 'created_at'")})""",
        complete="t.outcome <> ''",
    ),
    FormKind.LAB: _FormSql(
        head="'lab', t.patient_id, t.id, t.sampled_on",
        source="patients_labresult t WHERE t.patient_id = ANY(%(ids)s)",
        content="to_jsonb(t)",
        complete="true",
    ),
    FormKind.OFF_STUDY: _FormSql(
        head="'off_study', t.id, t.id, t.status_changed_on",
        source="patients_patient t WHERE t.status = 'off_study' AND t.id = ANY(%(ids)s)",
        content="""jsonb_build_object('status', t.status, 'on', t.status_changed_on,
            'reason', t.off_study_reason)""",
        complete="true",
    ),
}


def _union(selects: Iterable[str]) -> str:
    return "\nUNION ALL\n".join(f"({sql})" for sql in selects)


_FORMS_ORDER = " ORDER BY patient_id, on_date NULLS FIRST, kind, object_id"

# Every form with its content hash (signing and verifying store the hashes they read here).
FORMS_SQL = (
    "SELECT kind, patient_id, object_id, on_date, md5(content::text), complete, NULL, 0 FROM ("
    + _union(s.select(s.content, s.complete) for s in _FORMS.values())
    + ") AS forms(kind, patient_id, object_id, on_date, content, complete)"
    + _FORMS_ORDER
)

# Every form, without its content, with what the casebook and the worklists show next to each:
# the hash stored by the source data verification (if any) and the number of queries still open
# on the form.  Both are looked up by the form's (kind, id), only among the rows of these
# patients.
_LISTING = (
    "(" + _union(s.select(s.complete) for s in _FORMS.values()) + ")"
    " AS f(kind, patient_id, object_id, on_date, complete)"
    " LEFT JOIN patients_sourceverification sv"
    " ON sv.form_kind = f.kind AND sv.object_id = f.object_id AND sv.patient_id = f.patient_id"
)
FORMS_STATUS_SQL = (
    "SELECT f.kind, f.patient_id, f.object_id, f.on_date, NULL, f.complete,"
    " sv.content_hash, coalesce(q.open, 0) FROM "
    + _LISTING
    + " LEFT JOIN (SELECT dq.form_kind, dq.object_id, count(*) AS open FROM patients_dataquery dq"
    "   WHERE dq.patient_id = ANY(%(ids)s) AND dq.status <> 'closed'"
    "   GROUP BY dq.form_kind, dq.object_id) q"
    " ON q.form_kind = f.kind AND q.object_id = f.object_id" + _FORMS_ORDER
)

# The forms a site's worklist may show (see _issues), without their open queries: those in
# progress, verified or signed (%(signed)s: "kind:id"), and the screening forms whose absence it
# shows.  A site has thousands of complete forms and no use for them.
FORMS_WORKLIST_SQL = (
    "SELECT f.kind, f.patient_id, f.object_id, f.on_date, NULL, f.complete, sv.content_hash, 0"
    " FROM " + _LISTING + " WHERE NOT f.complete OR sv.content_hash IS NOT NULL"
    f" OR f.kind IN ('{FormKind.ELIGIBILITY}', '{FormKind.CONSENT}', '{FormKind.BASELINE}')"
    " OR f.kind || ':' || f.object_id = ANY(%(signed)s::text[])" + _FORMS_ORDER
)

_HASH_SELECTS = {kind: s.hash_select(kind) for kind, s in _FORMS.items()}


class FormRow(NamedTuple):
    """One form (a named tuple: a site has thousands, made faster than a dataclass)."""

    kind: str
    patient_id: int
    object_id: int
    on_date: date | None
    hash: str | None  # None in the rows of form_rows_status: see compared_hashes
    complete: bool
    verified_hash: str | None = None  # the content hash a monitor verified (form_rows_status)
    open_queries: int = 0  # queries not closed on this form (form_rows_status)

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.object_id)


def form_rows(patient_ids: Iterable[int]) -> list[FormRow]:
    """Every form of these patients with its content hash, in one query."""
    return _fetch(FORMS_SQL, patient_ids)


def form_rows_status(patient_ids: Iterable[int]) -> list[FormRow]:
    """Every form of these patients with its verified hash and open queries, in one query.

    The rows carry no content hash (``hash`` is None): most forms have nothing to compare one
    with, so :func:`compared_hashes` computes only those a verification or a signature needs.
    """
    return _fetch(FORMS_STATUS_SQL, patient_ids)


def worklist_rows(patient_ids: Iterable[int], signatures) -> list[FormRow]:
    """The forms of these patients that may be on a worklist, in one query: those in progress,
    verified or covered by one of ``signatures``, and the screening forms (whether they exist
    matters); as in :func:`form_rows_status`, without hash, and without open queries (0)."""
    signed = sorted({f"{kind}:{int(i)}" for s in signatures for kind, i, _digest in s.forms})
    return _fetch(FORMS_WORKLIST_SQL, patient_ids, signed=signed)


def _fetch(sql: str, patient_ids: Iterable[int], **params) -> list[FormRow]:
    ids = list(patient_ids)
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": ids, **params})
        return list(map(FormRow._make, cursor.fetchall()))


def content_hashes(
    patient_ids: Iterable[int], keys: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], str]:
    """The current content hash of these forms of these patients, in one query (none if no key).

    The same hashes as :func:`form_rows`; keys of an unknown kind or of no such form are left out.
    """
    by_kind: dict[str, list[int]] = defaultdict(list)
    for kind, object_id in keys:
        if kind in _HASH_SELECTS:
            by_kind[kind].append(int(object_id))
    ids = list(patient_ids)
    if not by_kind or not ids:
        return {}
    sql = _union(_HASH_SELECTS[kind] for kind in _HASH_SELECTS if kind in by_kind)
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": ids, **by_kind})
        return {(kind, object_id): digest for kind, object_id, digest in cursor.fetchall()}


def compared_hashes(rows: list[FormRow], signatures) -> dict[tuple[str, int], str]:
    """Current hashes of the forms among ``rows`` that a verification or one of ``signatures``
    compares with: the hash of any other form cannot change what is shown, so is not computed.

    A signed form missing from ``rows`` (deleted, or hidden from the reader) gets no hash, so the
    signature shows as changed, as when every hash was computed.
    """
    patient_of = {r.key: r.patient_id for r in rows}
    wanted = {r.key for r in rows if r.verified_hash is not None}
    for signature in signatures:
        wanted.update(
            key
            for kind, object_id, _digest in signature.forms
            if (key := (kind, int(object_id))) in patient_of
        )
    return content_hashes({patient_of[key] for key in wanted}, wanted)


def current_hashes(patient_id: int) -> dict[tuple[str, int], str]:
    return {row.key: row.hash for row in form_rows([patient_id])}


def signature_hash(forms: list[list]) -> str:
    """SHA-256 of the signed list of [kind, id, hash], in a canonical order."""
    canonical = json.dumps(sorted([str(k), int(i), str(h)] for k, i, h in forms))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
