"""The forms of some patients: one SQL listing of every CRF form (rows, completeness and content
hashes), used by the casebook, the site worklist and signatures."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from django.db import connection

from patients.models_dm import FormKind

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

# Every form, without its content: which forms a patient has, and their dates.
FORMS_LIST_SQL = (
    "SELECT kind, patient_id, object_id, on_date, NULL, complete, NULL, 0 FROM ("
    + _union(s.select(s.complete) for s in _FORMS.values())
    + ") AS forms(kind, patient_id, object_id, on_date, complete)"
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


def form_list(patient_ids: Iterable[int]) -> list[FormRow]:
    """Every form of these patients, in one query, without hash, verification or open queries:
    which forms there are (a new query chooses one), not what they hold."""
    return _fetch(FORMS_LIST_SQL, patient_ids)


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
