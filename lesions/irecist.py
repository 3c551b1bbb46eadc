"""iRECIST tumour response for immunotherapy arms: a pure engine on top of ``lesions.recist``.

Standard library only, no Django: frozen dataclasses in, frozen dataclasses out. RECIST 1.1 is
not re-implemented: the baseline rules, sums, nadir, target / non-target responses, Tables 1-2
and the confirmation of responses come from :mod:`lesions.recist`; this module adds the
iRECIST layer (new lesions assessed apart, iUPD / iCPD, the reset, the iBOR).

Source: Seymour L et al. *iRECIST: guidelines for response criteria for use in trials testing
immunotherapeutics*, Lancet Oncol 2017;18:e143-e152 ("Seymour 2017": Table 1, comparison with
RECIST 1.1 -- new lesions and confirmation of progression; Table 2, time point response with and
without a previous iUPD; Table 3, iBOR; text sections "New lesions", "Confirming progression",
"Best overall response"), as specified in the project's clinical rules (RULES.md, section
"iRECIST"); the EORTC iRECIST Q&A (recist.eortc.org) where noted.

API
---
Enums (``StrEnum``, values fit the 20-character model fields): :class:`IResponse` (iCR, iPR,
iSD, NON_iCR_NON_iUPD, iUPD, iCPD, NE), :class:`ICategory` (target, non_target, new_lesion),
:class:`Reason` (why a scan got its response; ``Reason.category`` for the progression reasons).

Inputs -- a small extension of the RECIST inputs (they check themselves on construction):

* ``NewLesionFinding(lesion_id, organ, is_node, category, measurement=None, status=None)`` --
  one new lesion at one scan (Seymour 2017, "New lesions"). ``category`` TARGET: a new-lesion
  target (NLT), with ``measurement`` (a :class:`lesions.recist.Measurement` of the same id, so
  TOO_SMALL, DISAPPEARED, SPLIT ... work as for targets). NON_TARGET: a new-lesion non-target
  (NLNT), with ``status`` (a :class:`lesions.recist.NonTargetStatus`): CR = gone,
  NON_CR_NON_PD = present, PD = increased since the iUPD assessment (any increase, it need not
  be unequivocal), NE = not assessed. ``organ``, ``is_node`` and ``category`` are fixed at the
  lesion's first appearance.
* ``IAssessment(recist, new_lesions=(), non_target_increase=False)`` -- one follow-up scan:
  ``recist`` is the :class:`lesions.recist.Assessment` (targets, non-target status, new-lesion
  status); ``new_lesions`` lists every new lesion followed at that scan; ``recist.new_lesions``
  must be YES exactly when one of them is present (not gone; NE counts as present), so an
  EQUIVOCAL finding is not listed until it is unequivocal. ``non_target_increase``: the
  non-target disease increased since the iUPD assessment (any increase, need not be unequivocal;
  EORTC Q&A "If iUPD is driven by non-target disease ..."); only read while an iUPD triggered
  by non-targets awaits confirmation.

Outputs: per scan an :class:`ITimepointResult` (response, reasons, the :class:`IUPDRecord` it
is about, new-lesion target sum, new lesions present, the RECIST :class:`TimepointResult`); for
the patient an :class:`IEvaluation` (time points, iBOR with its scan and confirmation days, the
first iUPD date, the iCPD date and the date of the iUPD it confirmed, the RECIST
:class:`Evaluation`, new-lesion warnings).

Functions:

* :func:`evaluate` ``-> IEvaluation`` -- everything for one patient. Same parameters as
  :func:`lesions.recist.evaluate`, plus ``new_lesions_block_reset`` (default True) and
  ``icpd_min_days`` (default 28). ``ValueError`` for what :func:`lesions.recist.evaluate`
  refuses, and for new lesions that reuse a baseline id, change organ / node / category between
  scans, or break the RECIST 1.1 target rules at their first appearance (checked with
  :func:`lesions.recist.validate_baseline`: at most 5 NLTs and 2 per organ, a non-nodal NLT
  >= 10 mm, a nodal NLT >= 15 mm short axis, measured); its warnings are returned.
* :func:`best_overall_response` ``-> IBestResponse`` -- iBOR from time point results.

Rules (RULES.md "iRECIST"; Seymour 2017)
----------------------------------------
* Each scan is first assessed by RECIST 1.1 (:func:`lesions.recist.evaluate`, nadir included).
* iUPD (Table 2, left column): the first scan meeting RECIST 1.1 PD -- target PD, unequivocal
  non-target PD, or a new lesion -- is iUPD. The :class:`IUPDRecord` keeps the categories that
  triggered it, the target sum (of the measured targets), the new-lesion target sum and the new
  lesions present at that scan.
* New lesions (Table 1) are assessed apart: never added to the target sum; NLTs have their own
  sum (:func:`lesions.recist.sum_of_diameters`).
* iCPD (Table 2, right column; text "Confirming progression"): a later scan >= ``icpd_min_days``
  (28) after the iUPD confirms it when, compared with the iUPD scan (cumulative):
  target-triggered and the target sum is >= 5 mm above its value there; non-target-triggered
  and ``non_target_increase``; new lesions (whether they triggered it or not: an untriggered
  category "now meeting RECIST 1.1 PD" is a new lesion appearing) -- the NLT sum is >= 5 mm
  above its value there, an NLNT increased (status PD), or another new lesion is present; or
  target / non-target, had they not triggered it, now meet RECIST 1.1 PD. A scan sooner than
  28 days cannot confirm (it stays iUPD, reason TOO_EARLY); later than 8 weeks still confirms.
  A partial sum (target or NLT not evaluable) confirms when it is already 5 mm above.
* Reset (Table 2, iCR/iPR/iSD rows): if instead the scan no longer meets RECIST 1.1 PD in any
  category and meets iCR, iPR, iSD or NON-iCR/NON-iUPD, the iUPD is dropped (reason RESET); a
  later progression is iUPD again before it can be iCPD. While RECIST 1.1 PD still holds
  (e.g. the target sum is still >= 1.2 x nadir), the scan stays iUPD (reason PERSISTING); an NE
  scan leaves the iUPD open.
* Time point responses without progression are RECIST Tables 1-2
  (:func:`lesions.recist.overall_response`) with the new lesions left out: CR -> iCR,
  PR -> iPR, SD -> iSD, NON_CR_NON_PD -> NON_iCR_NON_iUPD, NE -> NE.
* iBOR (Table 3; RULES.md): order iCR > iPR > iSD > NON_iCR_NON_iUPD > iUPD > iCPD > NE over
  the scans up to the first iCPD; an iUPD later confirmed counts as iCPD. iCR / iPR confirmation
  and the SD minimum reuse :func:`lesions.recist.best_overall_response` (``confirmation_required``,
  28 days, at most one NE between; an iUPD between breaks a confirmation as an SD does; an
  unconfirmed iCR / iPR counts as iSD after ``min_sd_days``).

Conventions (documented choices where the sources leave room)
-------------------------------------------------------------
* New lesions still present at a scan that would reset the bar (RULES.md **convention**, per
  study): ``new_lesions_block_reset=True`` (default; Seymour 2017 Table 2 lists iCR/iPR/iSD with
  "new lesions: no") keeps the scan iUPD (reason NEW_LESIONS_PRESENT). With False (EORTC Q&A,
  scenario B), the reset stands and the new lesions present at the reset scan become the
  reference: a later iUPD from them needs another new lesion, their NLT sum 5 mm above its value
  at the reset scan, or an NLNT increase; and while any is present an iCR is reported as iPR
  (NON_iCR_NON_iUPD without targets), as disease remains.
* Growth is cumulative since the iUPD scan (RULES.md), so two small steps add up; some rows of
  Seymour 2017 Table 2 speak of a change "from last timepoint".
* "Another new lesion": one present at the scan but not at the reference scan (the iUPD scan, or
  the reset scan as above); a new lesion that had gone and reappears counts.
* Scans after the iCPD stay iCPD (reason AFTER_ICPD) and do not enter the iBOR.
* Dates: ``IEvaluation.icpd_date`` is the confirming scan, ``confirmed_iupd_date`` the iUPD it
  confirmed (the progression date once confirmed; EORTC Q&A "Duration of i-response"),
  ``first_iupd_date`` the first iUPD
  (the first RECIST 1.1 PD as assessed at its scan: an EQUIVOCAL new lesion is not back-dated
  here, unlike ``Evaluation.progression_date``). For an iBOR of iCPD, ``scan_day`` is the iUPD
  and ``confirmation_day`` the iCPD scan; for iUPD, the first iUPD never confirmed.

Arithmetic: Decimal throughout, in a local context trapping inexact results (as the RECIST
engine); the 5 mm thresholds are inclusive (+4.9 mm does not confirm).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)
from types import MappingProxyType
from typing import Final

from lesions.recist import (
    CONFIRMATION_DAYS,
    MIN_SD_DAYS,
    PD_MIN_INCREASE_MM,
    Assessment,
    BaselineIssue,
    BaselineLesion,
    BestResponse,
    Evaluation,
    LesionCategory,
    Measurement,
    MeasurementState,
    NewLesionStatus,
    NonTargetStatus,
    Response,
    TimepointResult,
    overall_response,
    sum_of_diameters,
    validate_baseline,
)
from lesions.recist import best_overall_response as recist_best_overall_response
from lesions.recist import evaluate as recist_evaluate

__all__ = [
    "ICPD_MIN_DAYS",
    "IAssessment",
    "IBestResponse",
    "ICategory",
    "IEvaluation",
    "IResponse",
    "ITimepointResult",
    "IUPDRecord",
    "NewLesionFinding",
    "Reason",
    "best_overall_response",
    "evaluate",
]


class IResponse(enum.StrEnum):
    ICR = "iCR"
    IPR = "iPR"
    ISD = "iSD"
    NON_ICR_NON_IUPD = "NON_iCR_NON_iUPD"
    IUPD = "iUPD"
    ICPD = "iCPD"
    NE = "NE"


class ICategory(enum.StrEnum):
    TARGET = "target"
    NON_TARGET = "non_target"
    NEW_LESION = "new_lesion"


class Reason(enum.StrEnum):
    # RECIST 1.1 progression of a category: iUPD; iCPD for a category not progressed at the iUPD
    TARGET_PD = "target_pd"
    NON_TARGET_PD = "non_target_pd"  # unequivocal
    NEW_LESION = "new_lesion"  # a new lesion not present at the reference scan
    # further growth of a category since the iUPD scan: iCPD
    TARGET_SUM_INCREASE = "target_sum_increase"  # >= 5 mm
    NON_TARGET_INCREASE = "non_target_increase"  # any increase
    NEW_TARGET_SUM_INCREASE = "new_target_sum_increase"  # NLT sum >= 5 mm
    NEW_NON_TARGET_INCREASE = "new_non_target_increase"  # an NLNT increased
    # why an iUPD stands, ends or is over
    TOO_EARLY = "too_early"  # would confirm, but < icpd_min_days after the iUPD
    PERSISTING = "persisting"  # RECIST 1.1 PD still met, not confirmed
    NEW_LESIONS_PRESENT = "new_lesions_present"  # would reset, new lesions block it
    RESET = "reset"  # iCR/iPR/iSD/NON-iCR/NON-iUPD: the iUPD is dropped
    AFTER_ICPD = "after_icpd"

    @property
    def category(self) -> ICategory | None:
        """The lesion category a progression reason is about; ``None`` for the others."""
        return _REASON_CATEGORY.get(self)


_REASON_CATEGORY: Final[Mapping[Reason, ICategory]] = MappingProxyType(
    {
        Reason.TARGET_PD: ICategory.TARGET,
        Reason.TARGET_SUM_INCREASE: ICategory.TARGET,
        Reason.NON_TARGET_PD: ICategory.NON_TARGET,
        Reason.NON_TARGET_INCREASE: ICategory.NON_TARGET,
        Reason.NEW_LESION: ICategory.NEW_LESION,
        Reason.NEW_TARGET_SUM_INCREASE: ICategory.NEW_LESION,
        Reason.NEW_NON_TARGET_INCREASE: ICategory.NEW_LESION,
    }
)
ICPD_MIN_DAYS: Final = 28  # scans sooner after the iUPD do not confirm it (RULES.md)
_CONTEXT: Final = Context(  # as the RECIST engine: exact or an error
    prec=60, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact]
)
_FROM_RECIST: Final[Mapping[Response, IResponse]] = MappingProxyType(
    {
        Response.CR: IResponse.ICR,
        Response.PR: IResponse.IPR,
        Response.SD: IResponse.ISD,
        Response.NON_CR_NON_PD: IResponse.NON_ICR_NON_IUPD,
        Response.PD: IResponse.IUPD,
        Response.NE: IResponse.NE,
    }
)


def _check_type(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewLesionFinding:
    """One new lesion at one scan (Seymour 2017 Table 1 and "New lesions"): a new-lesion target
    (TARGET, with ``measurement``) or a new-lesion non-target (NON_TARGET, with ``status``:
    CR gone, NON_CR_NON_PD present, PD increased, NE not assessed)."""

    lesion_id: str
    organ: str
    is_node: bool
    category: LesionCategory
    measurement: Measurement | None = None
    status: NonTargetStatus | None = None

    def __post_init__(self) -> None:
        _check_type("lesion_id", self.lesion_id, str)
        _check_type("organ", self.organ, str)
        _check_type("is_node", self.is_node, bool)
        if not self.lesion_id.strip():
            raise ValueError("lesion_id must not be empty")
        object.__setattr__(self, "category", LesionCategory(self.category))
        if self.status is not None:
            object.__setattr__(self, "status", NonTargetStatus(self.status))
        who = self.lesion_id
        if self.category is LesionCategory.TARGET:
            _check_type(f"{who}: measurement of a new-lesion target", self.measurement, Measurement)
            if self.measurement is not None and self.measurement.lesion_id != who:
                raise ValueError(f"{who}: the measurement is of {self.measurement.lesion_id}")
            if self.status is not None:
                raise ValueError(f"{who}: a new-lesion target has a measurement, not a status")
        elif self.measurement is not None or self.status is None:
            raise ValueError(f"{who}: a new-lesion non-target has a status, not a measurement")

    @property
    def present(self) -> bool:
        """Not known to be gone (an NE or not-evaluable lesion counts as present)."""
        if self.measurement is not None:
            return self.measurement.state is not MeasurementState.DISAPPEARED
        return self.status is not NonTargetStatus.CR

    @property
    def increased(self) -> bool:
        """A new-lesion non-target that increased (any increase)."""
        return self.status is NonTargetStatus.PD


@dataclass(frozen=True)
class IAssessment:
    """One follow-up scan for iRECIST: the RECIST 1.1 assessment, every new lesion followed at
    that scan, and whether the non-target disease increased since the iUPD assessment."""

    recist: Assessment
    new_lesions: tuple[NewLesionFinding, ...] = ()
    non_target_increase: bool = False

    def __post_init__(self) -> None:
        _check_type("recist", self.recist, Assessment)
        _check_type("non_target_increase", self.non_target_increase, bool)
        findings = tuple(self.new_lesions)
        for finding in findings:
            _check_type("new_lesions item", finding, NewLesionFinding)
        object.__setattr__(self, "new_lesions", findings)
        day, ids = self.recist.day, [f.lesion_id for f in findings]
        if len(set(ids)) != len(ids):
            raise ValueError(f"scan {day}: a new lesion is given twice")
        present = any(f.present for f in findings)
        if present != (self.recist.new_lesions is NewLesionStatus.YES):
            raise ValueError(
                f"scan {day}: recist.new_lesions must be YES exactly when a listed new lesion "
                f"is present (got {self.recist.new_lesions}, present: {present})"
            )
        if self.non_target_increase and self.recist.non_target is None:
            raise ValueError(f"scan {day}: non_target_increase without non-target lesions")

    @property
    def day(self) -> date:
        return self.recist.day


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IUPDRecord:
    day: date
    triggered_by: frozenset[ICategory]
    reasons: frozenset[Reason]
    target_sum_mm: Decimal | None  # measured targets at that scan; None without targets
    new_target_sum_mm: Decimal | None  # new-lesion targets there; None if none evaluable
    new_lesions: tuple[str, ...]  # ids of the new lesions present there, sorted


@dataclass(frozen=True)
class ITimepointResult:
    day: date
    response: IResponse
    reasons: frozenset[Reason]  # empty for a scan outside any iUPD
    iupd: IUPDRecord | None  # the iUPD this scan starts, keeps open, confirms or resets
    new_target_sum_mm: Decimal | None  # NLTs evaluable at this scan; None if none
    new_lesions: tuple[str, ...]  # ids of the new lesions present, sorted
    recist: TimepointResult = field(repr=False)


@dataclass(frozen=True)
class IBestResponse:
    response: IResponse
    scan_day: date | None  # first scan giving it; for iCPD the iUPD confirmed; None for NE
    confirmation_day: date | None  # scan confirming an iCR / iPR, or the iCPD scan


@dataclass(frozen=True)
class IEvaluation:
    timepoints: tuple[ITimepointResult, ...]  # sorted by day
    best_overall_response: IResponse
    best_response_scan_day: date | None
    confirmation_scan_day: date | None
    first_iupd_date: date | None
    icpd_date: date | None  # the scan confirming progression
    confirmed_iupd_date: date | None  # the iUPD it confirmed (the progression date)
    recist: Evaluation = field(repr=False)
    new_lesion_warnings: tuple[BaselineIssue, ...] = ()


# ---------------------------------------------------------------------------
# New lesions (Seymour 2017 Table 1, "New lesions")
# ---------------------------------------------------------------------------


def _present_ids(scan: IAssessment) -> tuple[str, ...]:
    return tuple(sorted(f.lesion_id for f in scan.new_lesions if f.present))


def _new_target_sum(scan: IAssessment) -> Decimal | None:
    """Sum of the new-lesion targets evaluable at the scan (4.3.2 rules); ``None`` if none."""
    measured = [f.measurement for f in scan.new_lesions if f.measurement is not None]
    if all(m.value_mm is None for m in measured):
        return None
    return sum_of_diameters(measured, allow_partial=True)


def _grew(now: Decimal | None, then: Decimal | None) -> bool:
    return now is not None and then is not None and now - then >= PD_MIN_INCREASE_MM


@dataclass(frozen=True)
class _NewLesionReference:
    """The new lesions against which progression is judged: those present at the iUPD scan
    (or at the reset scan when new lesions do not block the reset)."""

    ids: frozenset[str] = frozenset()
    target_sum: Decimal | None = None  # None: no new-lesion target present there

    @classmethod
    def at(cls, scan: IAssessment) -> _NewLesionReference:
        present = [f for f in scan.new_lesions if f.present]
        has_targets = any(f.measurement is not None for f in present)
        return cls(
            frozenset(f.lesion_id for f in present), _new_target_sum(scan) if has_targets else None
        )

    def progression(self, scan: IAssessment) -> set[Reason]:
        reasons = set()
        if set(_present_ids(scan)) - self.ids:
            reasons.add(Reason.NEW_LESION)
        if self.target_sum is not None and _grew(_new_target_sum(scan), self.target_sum):
            reasons.add(Reason.NEW_TARGET_SUM_INCREASE)
        if any(f.increased and f.lesion_id in self.ids for f in scan.new_lesions):
            reasons.add(Reason.NEW_NON_TARGET_INCREASE)
        return reasons


def _check_new_lesions(
    scans: Sequence[IAssessment], baseline_ids: frozenset[str]
) -> tuple[BaselineIssue, ...]:
    """New lesions keep organ, node flag and category, and at their first appearance follow the
    RECIST 1.1 target rules (:func:`validate_baseline`); returns its warnings."""
    first: dict[str, NewLesionFinding] = {}
    for scan in scans:
        for finding in scan.new_lesions:
            who = finding.lesion_id
            if who in baseline_ids:
                raise ValueError(f"scan {scan.day}: new lesion reuses baseline id {who!r}")
            seen = first.setdefault(who, finding)
            if (seen.organ, seen.is_node, seen.category) != (
                finding.organ,
                finding.is_node,
                finding.category,
            ):
                raise ValueError(f"scan {scan.day}: {who} changed organ, node flag or category")
    lesions = [
        BaselineLesion(f.lesion_id, f.organ, f.is_node, f.category, _first_value(f))
        for f in first.values()
    ]
    issues = validate_baseline(lesions) if lesions else ()
    errors = [issue for issue in issues if issue.is_error]
    if errors:
        listed = "; ".join(f"[{issue.code}] {issue.message}" for issue in errors)
        raise ValueError(
            "invalid iRECIST new lesions (new-lesion targets follow the RECIST 1.1 target "
            f"rules at their first appearance, Seymour 2017 Table 1): {listed}"
        )
    return tuple(issue for issue in issues if not issue.is_error)


def _first_value(finding: NewLesionFinding) -> Decimal | None:
    return None if finding.measurement is None else finding.measurement.value_mm


# ---------------------------------------------------------------------------
# Time point responses (Seymour 2017 Table 2)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    block_reset: bool
    icpd_min_days: int

    def __post_init__(self) -> None:
        _check_type("new_lesions_block_reset", self.block_reset, bool)
        _check_type("icpd_min_days", self.icpd_min_days, int)
        if self.icpd_min_days < 1:
            raise ValueError(f"icpd_min_days must be >= 1, got {self.icpd_min_days}")


@dataclass(frozen=True)
class _State:
    pending: IUPDRecord | None = None  # the iUPD awaiting confirmation (or confirmed)
    reference: _NewLesionReference = _NewLesionReference()
    confirmed: bool = False


def _progression(
    tp: TimepointResult, scan: IAssessment, pending: IUPDRecord | None, ref: _NewLesionReference
) -> frozenset[Reason]:
    """What progressed: RECIST 1.1 PD per category, except that a category which triggered the
    pending iUPD must grow further since the iUPD scan (Table 2, right column)."""
    triggers = pending.triggered_by if pending is not None else frozenset()
    sum_at_iupd = pending.target_sum_mm if pending is not None else None
    reasons = ref.progression(scan)
    if ICategory.TARGET in triggers:
        if _grew(tp.sum_mm, sum_at_iupd):
            reasons.add(Reason.TARGET_SUM_INCREASE)
    elif tp.target is Response.PD:
        reasons.add(Reason.TARGET_PD)
    if ICategory.NON_TARGET in triggers:
        if scan.non_target_increase:
            reasons.add(Reason.NON_TARGET_INCREASE)
    elif tp.non_target is NonTargetStatus.PD:
        reasons.add(Reason.NON_TARGET_PD)
    return frozenset(reasons)


def _without_progression(tp: TimepointResult, scan: IAssessment) -> IResponse:
    """RECIST Tables 1-2 with new lesions left out; lesions still present forbid an iCR."""
    response = overall_response(tp.target, tp.non_target, NewLesionStatus.NO)
    if response is Response.CR and _present_ids(scan):
        response = Response.PR if tp.target is not None else Response.NON_CR_NON_PD
    return _FROM_RECIST[response]


def _result(
    tp: TimepointResult,
    scan: IAssessment,
    response: IResponse,
    reasons: Iterable[Reason],
    iupd: IUPDRecord | None,
) -> ITimepointResult:
    return ITimepointResult(
        day=tp.day,
        response=response,
        reasons=frozenset(reasons),
        iupd=iupd,
        new_target_sum_mm=_new_target_sum(scan),
        new_lesions=_present_ids(scan),
        recist=tp,
    )


def _open_step(
    state: _State, tp: TimepointResult, scan: IAssessment
) -> tuple[ITimepointResult, _State]:
    """No iUPD open: RECIST 1.1 PD in any category is iUPD (Table 2, left column)."""
    reasons = _progression(tp, scan, None, state.reference)
    if not reasons:
        return _result(tp, scan, _without_progression(tp, scan), (), None), state
    record = IUPDRecord(
        day=tp.day,
        triggered_by=frozenset(_REASON_CATEGORY[r] for r in reasons),
        reasons=reasons,
        target_sum_mm=tp.sum_mm,
        new_target_sum_mm=_new_target_sum(scan),
        new_lesions=_present_ids(scan),
    )
    pending = _State(pending=record, reference=_NewLesionReference.at(scan))
    return _result(tp, scan, IResponse.IUPD, reasons, record), pending


def _pending_step(
    state: _State, record: IUPDRecord, tp: TimepointResult, scan: IAssessment, rules: _Rules
) -> tuple[ITimepointResult, _State]:
    """The iUPD ``record`` open: confirm (iCPD), keep (iUPD, NE) or reset (Table 2, right
    column)."""
    reasons = _progression(tp, scan, record, state.reference)
    if reasons and (tp.day - record.day).days >= rules.icpd_min_days:
        confirmed = _State(pending=record, reference=state.reference, confirmed=True)
        return _result(tp, scan, IResponse.ICPD, reasons, record), confirmed
    if reasons:
        return _result(tp, scan, IResponse.IUPD, {*reasons, Reason.TOO_EARLY}, record), state
    if tp.target is Response.PD or tp.non_target is NonTargetStatus.PD:
        return _result(tp, scan, IResponse.IUPD, {Reason.PERSISTING}, record), state
    if rules.block_reset and _present_ids(scan):
        return _result(tp, scan, IResponse.IUPD, {Reason.NEW_LESIONS_PRESENT}, record), state
    response = _without_progression(tp, scan)
    if response is IResponse.NE:
        return _result(tp, scan, IResponse.NE, (), record), state
    reset = _State(reference=_NewLesionReference.at(scan))
    return _result(tp, scan, response, {Reason.RESET}, record), reset


def _timepoints(
    recist_timepoints: Sequence[TimepointResult], scans: Sequence[IAssessment], rules: _Rules
) -> tuple[ITimepointResult, ...]:
    state, results = _State(), []
    for tp, scan in zip(recist_timepoints, scans, strict=True):
        if state.pending is None:
            result, state = _open_step(state, tp, scan)
        elif state.confirmed:
            result = _result(tp, scan, IResponse.ICPD, {Reason.AFTER_ICPD}, state.pending)
        else:
            result, state = _pending_step(state, state.pending, tp, scan, rules)
        results.append(result)
    return tuple(results)


# ---------------------------------------------------------------------------
# Best overall response (Seymour 2017 Table 3, "Best overall response")
# ---------------------------------------------------------------------------

# For the confirmation of iCR / iPR: an iUPD between breaks it as an SD does.
_CONFIRMING: Final[Mapping[IResponse, Response]] = MappingProxyType(
    {
        IResponse.ICR: Response.CR,
        IResponse.IPR: Response.PR,
        IResponse.ISD: Response.SD,
        IResponse.NON_ICR_NON_IUPD: Response.NON_CR_NON_PD,
        IResponse.IUPD: Response.SD,
        IResponse.ICPD: Response.PD,
        IResponse.NE: Response.NE,
    }
)
# Once no iCR / iPR is confirmed: they count as iSD (Table 3 of RECIST 1.1); progression aside.
_STABLE: Final[Mapping[IResponse, Response]] = MappingProxyType(
    {
        IResponse.ICR: Response.SD,
        IResponse.IPR: Response.SD,
        IResponse.ISD: Response.SD,
        IResponse.NON_ICR_NON_IUPD: Response.NON_CR_NON_PD,
        IResponse.IUPD: Response.NE,
        IResponse.ICPD: Response.NE,
        IResponse.NE: Response.NE,
    }
)


@dataclass(frozen=True)
class _BorRules:
    treatment_start: date
    confirmation_required: bool
    min_sd_days: int
    confirmation_days: int


def _recist_bor(
    scans: Sequence[ITimepointResult], mapping: Mapping[IResponse, Response], rules: _BorRules
) -> BestResponse:
    has_targets = scans[0].recist.target is not None
    pairs = []
    for tp in scans:
        response = mapping[tp.response]
        if not has_targets and response in (Response.SD, Response.PR):
            response = Response.NON_CR_NON_PD  # Table 2 of RECIST 1.1: no PR / SD
        pairs.append((tp.day, response))
    return recist_best_overall_response(
        pairs,
        treatment_start=rules.treatment_start,
        confirmation_required=rules.confirmation_required,
        min_sd_days=rules.min_sd_days,
        confirmation_days=rules.confirmation_days,
        has_targets=has_targets,
    )


def _progression_bor(scans: Sequence[ITimepointResult]) -> IBestResponse:
    """iUPD (never confirmed) > iCPD > NE; an iUPD later confirmed counts as iCPD."""
    confirmed = {tp.iupd.day for tp in scans if tp.response is IResponse.ICPD and tp.iupd}
    for tp in scans:
        if tp.response is IResponse.IUPD and tp.iupd and tp.iupd.day not in confirmed:
            return IBestResponse(IResponse.IUPD, tp.iupd.day, None)
    for tp in scans:
        if tp.response is IResponse.ICPD and tp.iupd:
            return IBestResponse(IResponse.ICPD, tp.iupd.day, tp.day)
    return IBestResponse(IResponse.NE, None, None)


def best_overall_response(
    timepoints: Sequence[ITimepointResult],
    *,
    treatment_start: date,
    confirmation_required: bool,
    min_sd_days: int = MIN_SD_DAYS,
    confirmation_days: int = CONFIRMATION_DAYS,
) -> IBestResponse:
    """iBOR (Seymour 2017 Table 3; RULES.md): iCR > iPR > iSD > NON_iCR_NON_iUPD > iUPD > iCPD >
    NE over the scans up to the first iCPD, an iUPD later confirmed counting as iCPD.

    iCR / iPR confirmation and the SD minimum are those of
    :func:`lesions.recist.best_overall_response` (confirmation after >= ``confirmation_days``
    through CR[/PR]/NE only, at most one NE; an iUPD between breaks it), so an unconfirmed iCR /
    iPR counts as iSD (NON_iCR_NON_iUPD without targets) from ``min_sd_days``.
    """
    scans = list(timepoints)
    first_icpd = next((i for i, tp in enumerate(scans) if tp.response is IResponse.ICPD), None)
    scans = scans if first_icpd is None else scans[: first_icpd + 1]
    if not scans:
        return IBestResponse(IResponse.NE, None, None)
    rules = _BorRules(treatment_start, confirmation_required, min_sd_days, confirmation_days)
    best = _recist_bor(scans, _CONFIRMING, rules)
    if best.response in (Response.CR, Response.PR):
        return IBestResponse(_FROM_RECIST[best.response], best.scan_day, best.confirmation_day)
    best = _recist_bor(scans, _STABLE, rules)
    if best.response is not Response.NE:
        return IBestResponse(_FROM_RECIST[best.response], best.scan_day, None)
    return _progression_bor(scans)


# ---------------------------------------------------------------------------
# Evaluation of one patient
# ---------------------------------------------------------------------------


def evaluate(
    baseline_lesions: Iterable[BaselineLesion],
    assessments: Iterable[IAssessment],
    *,
    treatment_start: date,
    confirmation_required: bool,
    min_sd_days: int = MIN_SD_DAYS,
    baseline_day: date | None = None,
    confirmation_days: int = CONFIRMATION_DAYS,
    cr_reappearance_is_pd: bool = True,
    new_lesions_block_reset: bool = True,
    icpd_min_days: int = ICPD_MIN_DAYS,
) -> IEvaluation:
    """iRECIST evaluation of one patient (Seymour 2017 Tables 1-3; RULES.md "iRECIST"; rules
    and conventions in the module docstring). The RECIST 1.1 parameters are passed on to
    :func:`lesions.recist.evaluate`, whose result is ``IEvaluation.recist``."""
    rules = _Rules(new_lesions_block_reset, icpd_min_days)
    scans = _checked_assessments(assessments)
    lesions = tuple(baseline_lesions)
    result = recist_evaluate(
        lesions,
        [scan.recist for scan in scans],
        treatment_start=treatment_start,
        confirmation_required=confirmation_required,
        min_sd_days=min_sd_days,
        baseline_day=baseline_day,
        confirmation_days=confirmation_days,
        cr_reappearance_is_pd=cr_reappearance_is_pd,
    )
    with localcontext(_CONTEXT):
        warnings = _check_new_lesions(scans, frozenset(le.lesion_id for le in lesions))
        timepoints = _timepoints(result.timepoints, scans, rules)
    best = best_overall_response(
        timepoints,
        treatment_start=treatment_start,
        confirmation_required=confirmation_required,
        min_sd_days=min_sd_days,
        confirmation_days=confirmation_days,
    )
    return _evaluation(timepoints, best, result, warnings)


def _checked_assessments(assessments: Iterable[IAssessment]) -> tuple[IAssessment, ...]:
    scans = tuple(assessments)
    for scan in scans:
        _check_type("assessments item", scan, IAssessment)
    return tuple(sorted(scans, key=lambda s: s.day))


def _evaluation(
    timepoints: tuple[ITimepointResult, ...],
    best: IBestResponse,
    result: Evaluation,
    warnings: tuple[BaselineIssue, ...],
) -> IEvaluation:
    iupd = next((tp for tp in timepoints if tp.response is IResponse.IUPD), None)
    icpd = next((tp for tp in timepoints if tp.response is IResponse.ICPD), None)
    return IEvaluation(
        timepoints=timepoints,
        best_overall_response=best.response,
        best_response_scan_day=best.scan_day,
        confirmation_scan_day=best.confirmation_day,
        first_iupd_date=None if iupd is None else iupd.day,
        icpd_date=None if icpd is None else icpd.day,
        confirmed_iupd_date=None if icpd is None or icpd.iupd is None else icpd.iupd.day,
        recist=result,
        new_lesion_warnings=warnings,
    )
