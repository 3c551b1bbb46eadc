"""RECIST 1.1 tumour response: a pure engine.

Standard library only, no Django: frozen dataclasses in, frozen dataclasses out. The Django
layer (``lesions/services.py``) builds the inputs from the eCRF and stores the results
(``TimepointResult``, ``PatientResponse``); enum values match the model choices.

Source: Eisenhauer EA et al. *New response evaluation criteria in solid tumours: revised RECIST
guideline (version 1.1)*, Eur J Cancer 2009;45:228-247 ("RECIST 1.1", sections cited below), as
specified in the project's clinical rules (RULES.md, section "RECIST 1.1"); the EORTC RECIST
Q&A (recist.eortc.org) for the conventions marked so; pharmaverse admiralonco
``derive_param_confirmed_bor`` as the reference for confirmation.

API
---
Enums (``StrEnum``, values as stored): :class:`LesionCategory`, :class:`MeasurementState`,
:class:`NonTargetStatus`, :class:`NewLesionStatus`, :class:`Response`, :class:`IssueCode`,
:class:`ProgressionCriterion`.

Inputs (they check themselves on construction: a float where a Decimal is expected is a
``TypeError``; a diameter < 0, > 500 mm or with more than 6 decimal places, an empty id or
inconsistent fields are a ``ValueError``; enum fields also accept their string values):

* ``BaselineLesion(lesion_id, organ, is_node, category, diameter_mm=None)`` -- the diameter is
  the longest diameter, or the short axis for a lymph node.
* ``Measurement(lesion_id, state, diameter_mm=None, fragments=(), coalesced_into=None)`` --
  ``diameter_mm`` for PRESENT only, ``fragments`` for SPLIT only, ``coalesced_into`` (the lesion
  measured as the coalesced mass) for COALESCED only.
* ``NewLesion(lesion_id, diameter_mm=None)`` -- a new lesion seen at a scan (its size is used
  only by :func:`lesion_progression`).
* ``Assessment(day, measurements, non_target, new_lesions, new_lesion_details=())`` -- one
  follow-up scan; ``non_target`` is ``None`` exactly when no non-target lesion was recorded.

Functions:

* :func:`organ_group` -- organ name normalised for the per-organ count (4.2).
* :func:`validate_baseline` ``-> tuple[BaselineIssue, ...]`` -- errors and warnings (3.1, 4.2).
* :func:`sum_of_diameters` ``-> Decimal`` -- the sum of one scan's target measurements (4.3.2).
* :func:`overall_response` ``-> Response`` -- time point response, Tables 1 and 2 (4.4.1).
* :func:`best_overall_response` ``-> BestResponse`` -- BOR from (day, overall) pairs (4.4.3,
  Table 3, 4.6.1).
* :func:`evaluate` ``-> Evaluation`` -- everything for one patient: per scan a
  :class:`TimepointResult` (sum, reference nadir, % changes, target / non-target / new-lesion /
  overall response), the BOR with its scan and confirmation days, the progression date, the
  nadir, the best % change from baseline and the baseline warnings.
* :func:`lesion_progression` ``-> LocalControl`` -- per-lesion progression (STOP-2 convention,
  not RECIST): per lesion a :class:`LesionCourse` (own nadir, progression day, criterion), the
  first new lesion >= 5 mm, and the first in-field (treated lesion) and out-of-field progression.

``evaluate`` raises ``ValueError`` for an invalid baseline (the error messages of
:func:`validate_baseline`), two scans on one day, a scan on or before ``baseline_day``, a
measurement of a lesion not recorded at baseline, a bad ``coalesced_into``, a new-lesion id
reused from baseline, or a non-target status given without non-targets (or missing with them:
record NE when not assessed). Assessments may come in any order; results are sorted by day.

Arithmetic
----------
Thresholds are inclusive and decimal-exact: all arithmetic is Decimal, inside a local context
that traps inexact results, so 46.0 -> 32.2 mm is exactly -30 % and PR. Reported percentages
are the exact fraction rounded to 0.1 % half away from zero (Decimal ``ROUND_HALF_UP``); the
thresholds are compared on exact values, never on the rounded percentage.

Rules (RECIST 1.1)
------------------
* Baseline (3.1.1, 3.1.2, 4.2): a non-nodal target has a longest diameter >= 10 mm, a nodal
  target a short axis >= 15 mm; at most 5 targets and 2 per organ, all lymph nodes being one
  organ and both lungs one organ; every target is measured; ids are unique. A node < 10 mm is
  normal and should not be recorded (a warning). An empty baseline is an error.
* Sum of diameters (4.3.2): longest diameters + nodal short axes (nodes keep their actual short
  axis below 10 mm); TOO_SMALL counts 5 mm, a measured value below 5 mm counts as measured,
  DISAPPEARED counts 0, SPLIT adds the fragments, COALESCED counts 0 (the mass is measured on
  the lesion named by ``coalesced_into``).
* Target response (4.3.1, 4.4.2), in order: PD if the sum of the measured targets is >= 1.2 x
  nadir and >= nadir + 5 mm (nadir = smallest complete sum on study, baseline included; so with
  a nadir of 0 any sum >= 5 mm is PD), even when some targets are not measured; else NE if some
  are not measured (NOT_EVALUABLE or absent from the scan); CR if every non-nodal target is 0 and
  every nodal target < 10 mm; PR if sum <= 0.7 x baseline sum; else SD.
* Overall response (4.4.1): Table 1 with targets, Table 2 with non-targets only, as in
  :func:`overall_response`.
* Best overall response (4.4.3, Table 3, 4.6.1): see :func:`best_overall_response`.

Conventions (documented choices where the sources leave room)
-------------------------------------------------------------
* Reappearance after CR (EORTC Q&A "Does a new lesion always result in PD?"): once an overall
  CR has been confirmed (a later overall CR >= ``confirmation_days`` after it with only CR/NE
  between, at most one NE -- whatever ``confirmation_required``), a target no longer at CR level
  (non-nodal > 0 mm, TOO_SMALL included, or node >= 10 mm) makes the target response PD.
  ``evaluate(..., cr_reappearance_is_pd=False)`` turns this off.
* Equivocal new lesions (4.3.5): EQUIVOCAL counts as "no new lesion" in Tables 1 and 2, so the
  scan is not PD. It is confirmed by a later YES reached through an unbroken run of EQUIVOCAL
  scans (a NO in between means the finding resolved; the lesion's identity is not tracked). The
  progression date is then the first scan of that run, and for the best overall response that
  scan counts as the first PD (later scans are not used). ``TimepointResult.overall`` keeps the
  response as assessed at each scan.
* ``TimepointResult.nadir_mm`` is the reference nadir for that scan (before it); sums with a
  target not measured never update the nadir; their % changes are ``None``.
* Best change from baseline: the smallest % change over the scans used for the BOR.
* Best overall response: a CR/PR that is not confirmed (when confirmation is required) counts as
  SD -- NON_CR_NON_PD for a patient without targets (4.4.1, Table 2 footnote) -- if the SD rule
  is met, per Table 3; elapsed days are ``scan day - treatment start``. Table 3's "otherwise PD"
  for a CR followed by SD before the SD minimum is not applied (RULES.md does not define it).
* Organ groups: only lymph nodes and lungs are merged (RULES.md). The EORTC Q&A also counts
  kidneys and ovaries as one organ each: add them to ``_PAIRED_ORGANS`` if a study wants it.
* Per-lesion progression: see :func:`lesion_progression`.
"""

from __future__ import annotations

import calendar
import enum
import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
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
from typing import Final, NamedTuple

__all__ = [
    "Assessment",
    "BaselineIssue",
    "BaselineLesion",
    "BestResponse",
    "Evaluation",
    "IssueCode",
    "LesionCategory",
    "LesionCourse",
    "LocalControl",
    "Measurement",
    "MeasurementState",
    "NewLesion",
    "NewLesionStatus",
    "NonTargetStatus",
    "ProgressionCriterion",
    "Response",
    "TimepointResult",
    "best_overall_response",
    "evaluate",
    "lesion_progression",
    "organ_group",
    "overall_response",
    "sum_of_diameters",
    "validate_baseline",
]


class LesionCategory(enum.StrEnum):
    TARGET = "target"
    NON_TARGET = "non_target"


class MeasurementState(enum.StrEnum):
    PRESENT = "present"
    DISAPPEARED = "disappeared"
    TOO_SMALL = "too_small"  # "too small to measure": counts 5 mm
    NOT_EVALUABLE = "not_evaluable"
    SPLIT = "split"
    COALESCED = "coalesced"


class NonTargetStatus(enum.StrEnum):
    CR = "CR"  # all disappeared, nodes < 10 mm
    NON_CR_NON_PD = "NON_CR_NON_PD"
    PD = "PD"  # unequivocal progression
    NE = "NE"


class NewLesionStatus(enum.StrEnum):
    NO = "NO"
    EQUIVOCAL = "EQUIVOCAL"
    YES = "YES"  # unequivocal


class Response(enum.StrEnum):
    CR = "CR"
    PR = "PR"
    SD = "SD"
    NON_CR_NON_PD = "NON_CR_NON_PD"
    PD = "PD"
    NE = "NE"


class IssueCode(enum.StrEnum):
    NO_LESIONS = "no_lesions"
    DUPLICATE_ID = "duplicate_id"
    TOO_MANY_TARGETS = "too_many_targets"
    TOO_MANY_TARGETS_IN_ORGAN = "too_many_targets_in_organ"
    MISSING_ORGAN = "missing_organ"
    TARGET_TOO_SMALL = "target_too_small"
    NODAL_TARGET_TOO_SMALL = "nodal_target_too_small"
    MISSING_MEASUREMENT = "missing_measurement"
    NORMAL_NODE = "normal_node"  # warning
    ORGAN_NODE_MISMATCH = "organ_node_mismatch"  # warning


class ProgressionCriterion(enum.StrEnum):
    RELATIVE = "relative"  # >= 1.2 x own nadir and >= 5 mm above it
    ENLARGEMENT = "enlargement"  # 2 consecutive enlargements 2-3 months apart, >= 5 mm


_MEMBERS: Final[Mapping[type[enum.Enum], Mapping[object, enum.Enum]]] = MappingProxyType(
    {
        kind: MappingProxyType({member.value: member for member in kind})
        for kind in (
            LesionCategory,
            MeasurementState,
            NonTargetStatus,
            NewLesionStatus,
            Response,
            IssueCode,
            ProgressionCriterion,
        )
    }
)

MAX_TARGETS: Final = 5
MAX_TARGETS_PER_ORGAN: Final = 2
MIN_TARGET_MM: Final = Decimal(10)
MIN_NODAL_TARGET_MM: Final = Decimal(15)
NORMAL_NODE_MM: Final = Decimal(10)
TOO_SMALL_MM: Final = Decimal(5)
MAX_DIAMETER_MM: Final = Decimal(500)
PD_FACTOR: Final = Decimal("1.2")
PD_MIN_INCREASE_MM: Final = Decimal(5)
PR_FACTOR: Final = Decimal("0.7")
NEW_LESION_MIN_MM: Final = Decimal(5)
CONFIRMATION_DAYS: Final = 28
MIN_SD_DAYS: Final = 42
MAX_NE_BETWEEN: Final = 1
NODES: Final = "lymph nodes"
LUNG: Final = "lung"

_MAX_PLACES: Final = 6
_NODE_WORDS: Final = frozenset({"node", "nodes", "nodal", "lymph", "lymphnode", "lymphnodes"})
_PAIRED_ORGANS: Final[Mapping[str, str]] = MappingProxyType({"lung": LUNG, "lungs": LUNG})
_CONTEXT: Final = Context(
    prec=60,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
_RANK: Final[Mapping[Response, int]] = MappingProxyType(
    {r: rank for rank, r in enumerate(reversed(Response))}  # NE 0 < PD < ... < CR 5
)


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


_TENTH: Final = Decimal("0.1")
_ZERO: Final = Decimal(0)


def _check_mm(name: str, value: object) -> Decimal:
    # The usual value (a Decimal with one decimal place, as the eCRF stores it) passes the same
    # checks as below without building its digit tuple: finite, 0 to 500 mm, one place.
    if type(value) is Decimal and value.same_quantum(_TENTH) and 0 <= value <= MAX_DIAMETER_MM:
        return value
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(
            f"{name} must be a Decimal (e.g. Decimal('12.3'), not a float), "
            f"got {type(value).__name__}"
        )
    number = Decimal(value)
    if not number.is_finite() or number < 0 or number > MAX_DIAMETER_MM:
        raise ValueError(f"{name} must be between 0 and {MAX_DIAMETER_MM} mm, got {value}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_PLACES:
        raise ValueError(f"{name} has more than {_MAX_PLACES} decimal places: {value}")
    return number


def _check_optional_mm(obj: object, field: str) -> None:
    value = getattr(obj, field)
    if value is not None:
        object.__setattr__(obj, field, _check_mm(field, value))


def _check_id(name: str, value: object) -> None:
    if type(value) is str and value and not value.isspace():
        return  # the usual case; ``isspace`` is what ``strip`` removes
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")


def _check_day(name: str, value: object) -> None:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a date (not a datetime), got {type(value).__name__}")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _check_params(
    treatment_start: object, confirmation_required: object, min_sd_days: int, days: int
) -> None:
    _check_day("treatment_start", treatment_start)
    _check_bool("confirmation_required", confirmation_required)
    _check_int("min_sd_days", min_sd_days, 0)
    _check_int("confirmation_days", days, 1)


def _coerce[E: enum.Enum](enum_type: type[E], value: object, name: str) -> E:
    # ``enum_type(value)`` looks the value up in a dict first: the same lookup, without the
    # call through the metaclass (the inputs of a whole portfolio make 10^5 of them).
    try:
        member = _MEMBERS[enum_type].get(value)
    except (KeyError, TypeError):  # an enum of another module, or an unhashable value
        member = None
    if member is not None:
        return member  # type: ignore[return-value]  # a member of enum_type
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


def _as_tuple[T](values: Iterable[object], kind: type[T], name: str) -> tuple[T, ...]:
    items = values if type(values) is tuple else tuple(values)
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"{name} must hold {kind.__name__} objects, got {type(item).__name__}")
    return items  # type: ignore[return-value]  # checked just above


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineLesion:
    """A lesion recorded at baseline (RECIST 1.1 section 4.2).

    ``diameter_mm``: longest diameter, or short axis for a lymph node (``is_node``); ``None``
    when not measured (an error for a target: see :func:`validate_baseline`).
    """

    lesion_id: str
    organ: str
    is_node: bool
    category: LesionCategory
    diameter_mm: Decimal | None = None

    def __post_init__(self) -> None:
        _check_id("lesion_id", self.lesion_id)
        if not isinstance(self.organ, str):
            raise TypeError(f"organ must be a str, got {type(self.organ).__name__}")
        if not isinstance(self.is_node, bool):
            raise TypeError(f"is_node must be a bool, got {type(self.is_node).__name__}")
        object.__setattr__(self, "category", _coerce(LesionCategory, self.category, "category"))
        _check_optional_mm(self, "diameter_mm")

    @property
    def organ_group(self) -> str:
        """The organ as counted for the 2-per-organ rule (see :func:`organ_group`)."""
        return _organ_group(self.organ, self.is_node)


@dataclass(frozen=True)
class Measurement:
    """One lesion at one follow-up scan (RECIST 1.1 section 4.3.2).

    PRESENT needs ``diameter_mm`` (short axis for a node); SPLIT needs ``fragments``; COALESCED
    needs ``coalesced_into``, the lesion on which the coalesced mass is measured at that scan.
    The other states take none of these.
    """

    lesion_id: str
    state: MeasurementState
    diameter_mm: Decimal | None = None
    fragments: tuple[Decimal, ...] = ()
    coalesced_into: str | None = None

    def __post_init__(self) -> None:
        _check_id("lesion_id", self.lesion_id)
        object.__setattr__(self, "state", _coerce(MeasurementState, self.state, "state"))
        _check_optional_mm(self, "diameter_mm")
        if type(self.fragments) is not tuple or self.fragments:  # () stays as it is
            fragments = tuple(_check_mm("fragment", f) for f in self.fragments)
            object.__setattr__(self, "fragments", fragments)
        self._check_fields()

    def _check_fields(self) -> None:
        who, state = self.lesion_id, self.state
        if (state is MeasurementState.PRESENT) != (self.diameter_mm is not None):
            raise ValueError(f"{who}: diameter_mm is given for a PRESENT lesion, and only then")
        if (state is MeasurementState.SPLIT) != bool(self.fragments):
            raise ValueError(f"{who}: fragments are given for a SPLIT lesion, and only then")
        if (state is MeasurementState.COALESCED) != (self.coalesced_into is not None):
            raise ValueError(
                f"{who}: coalesced_into is given for a COALESCED lesion, and only then"
            )
        if self.coalesced_into is not None:
            _check_id("coalesced_into", self.coalesced_into)
            if self.coalesced_into == who:
                raise ValueError(f"{who}: a lesion cannot coalesce into itself")

    @property
    def value_mm(self) -> Decimal | None:
        """Contribution to the sum of diameters (4.3.2); ``None`` when not evaluable."""
        match self.state:
            case MeasurementState.PRESENT:
                return self.diameter_mm
            case MeasurementState.DISAPPEARED | MeasurementState.COALESCED:
                return Decimal(0)
            case MeasurementState.TOO_SMALL:
                return TOO_SMALL_MM
            case MeasurementState.SPLIT:
                return sum(self.fragments, Decimal(0))
        return None


@dataclass(frozen=True)
class NewLesion:
    """A new lesion seen at a scan (4.3.5); its size is used by :func:`lesion_progression`."""

    lesion_id: str
    diameter_mm: Decimal | None = None

    def __post_init__(self) -> None:
        _check_id("lesion_id", self.lesion_id)
        _check_optional_mm(self, "diameter_mm")


@dataclass(frozen=True)
class Assessment:
    """One follow-up scan: target measurements, non-target status (``None`` exactly when no
    non-target was recorded at baseline) and new lesions (4.3.3, 4.3.5)."""

    day: date
    measurements: tuple[Measurement, ...]
    non_target: NonTargetStatus | None
    new_lesions: NewLesionStatus
    new_lesion_details: tuple[NewLesion, ...] = ()

    def __post_init__(self) -> None:
        _check_day("day", self.day)
        measurements = _as_tuple(self.measurements, Measurement, "measurements")
        details = _as_tuple(self.new_lesion_details, NewLesion, "new_lesion_details")
        object.__setattr__(self, "measurements", measurements)
        object.__setattr__(self, "new_lesion_details", details)
        if self.non_target is not None:
            status = _coerce(NonTargetStatus, self.non_target, "non_target")
            object.__setattr__(self, "non_target", status)
        new = _coerce(NewLesionStatus, self.new_lesions, "new_lesions")
        object.__setattr__(self, "new_lesions", new)
        if details and new is NewLesionStatus.NO:
            raise ValueError(f"scan {self.day}: new lesions described but new_lesions is NO")
        for kind, ids in (("measurement", measurements), ("new lesion", details)):
            if len(ids) > 1 and len({item.lesion_id for item in ids}) != len(ids):
                raise ValueError(f"scan {self.day}: a {kind} is given twice for one lesion")


# ---------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineIssue:
    code: IssueCode
    lesion_id: str | None  # None for an issue about the whole baseline
    message: str  # English, names the rule and its RECIST 1.1 section
    is_error: bool  # False: a warning, the baseline stays usable


@dataclass(frozen=True)
class TimepointResult:
    day: date
    sum_mm: Decimal | None  # sum of the measured targets (partial if not sum_complete)
    sum_complete: bool  # every target measured (True when there are no targets)
    nadir_mm: Decimal | None  # reference nadir: smallest complete sum before this scan
    change_from_baseline_pct: Decimal | None  # 0.1 %, None if partial or no targets
    change_from_nadir_pct: Decimal | None  # 0.1 %, None if partial, no targets or nadir 0
    target: Response | None  # None without targets
    non_target: NonTargetStatus | None  # None without non-targets
    new_lesions: NewLesionStatus
    overall: Response  # as assessed at this scan


@dataclass(frozen=True)
class BestResponse:
    response: Response
    scan_day: date | None  # first scan giving that response; None for NE
    confirmation_day: date | None  # scan confirming a CR/PR when confirmation is required


@dataclass(frozen=True)
class Evaluation:
    baseline_sum_mm: Decimal | None  # None without targets
    timepoints: tuple[TimepointResult, ...]  # sorted by day
    best_overall_response: Response
    best_response_scan_day: date | None
    confirmation_scan_day: date | None
    progression_date: date | None  # first PD, back-dated for a confirmed equivocal new lesion
    nadir_mm: Decimal | None  # smallest complete sum on study, baseline included
    best_change_from_baseline_pct: Decimal | None  # smallest % change over the BOR scans
    warnings: tuple[BaselineIssue, ...]


@dataclass(frozen=True)
class LesionCourse:
    lesion_id: str
    treated: bool
    nadir_mm: Decimal | None  # own nadir: at progression the reference used, else the minimum
    progression_day: date | None
    criterion: ProgressionCriterion | None


@dataclass(frozen=True)
class LocalControl:
    lesions: tuple[LesionCourse, ...]  # in baseline order
    new_lesion_day: date | None  # first unequivocal new lesion >= 5 mm
    in_field_progression_day: date | None  # first progression of a treated lesion
    out_of_field_progression_day: date | None  # untreated lesion or new lesion


# ---------------------------------------------------------------------------
# Baseline (RECIST 1.1 sections 3.1, 4.2)
# ---------------------------------------------------------------------------


def organ_group(organ: str, *, is_node: bool = False) -> str:
    """Organ name as counted for "at most 2 target lesions per organ" (RECIST 1.1 section 4.2).

    Case-insensitive, whitespace collapsed; any lymph node (``is_node`` or a name mentioning a
    node) -> ``"lymph nodes"``; any lung ("left lung", "Right lung") -> ``"lung"``.
    """
    words = organ.casefold().replace("-", " ").replace("_", " ").split()
    if is_node or not _NODE_WORDS.isdisjoint(words):
        return NODES
    for word in words:
        if word in _PAIRED_ORGANS:
            return _PAIRED_ORGANS[word]
    return " ".join(words)


_ORGAN_GROUPS: dict[tuple[str, bool], str] = {}


def _organ_group(organ: str, is_node: bool) -> str:
    """:func:`organ_group` of a lesion's organ (a str: checked by ``BaselineLesion``), memoised:
    a portfolio names a handful of organs."""
    key = (organ, is_node)
    group = _ORGAN_GROUPS.get(key)
    if group is None:
        group = organ_group(organ, is_node=is_node)
        if len(_ORGAN_GROUPS) < 4096:
            _ORGAN_GROUPS[key] = group
    return group


def _issue(
    code: IssueCode, lesion_id: str | None, message: str, *, error: bool = True
) -> BaselineIssue:
    return BaselineIssue(code, lesion_id, message, error)


def _count_issues(lesion: BaselineLesion, number: int, in_organ: int) -> list[BaselineIssue]:
    who, group, issues = lesion.lesion_id, lesion.organ_group, []
    if number > MAX_TARGETS:
        text = f"{who}: target lesion number {number}; at most {MAX_TARGETS} target lesions"
        issues.append(_issue(IssueCode.TOO_MANY_TARGETS, who, f"{text} (RECIST 1.1 4.2)"))
    if not group:
        text = f"{who}: target lesion without an organ; the 2-per-organ rule needs it"
        issues.append(_issue(IssueCode.MISSING_ORGAN, who, f"{text} (RECIST 1.1 4.2)"))
    elif in_organ > MAX_TARGETS_PER_ORGAN:
        text = (
            f"{who}: target lesion number {in_organ} in organ '{group}'; at most "
            f"{MAX_TARGETS_PER_ORGAN} target lesions per organ, all lymph nodes counting as "
            "one organ and both lungs as one organ (RECIST 1.1 4.2)"
        )
        issues.append(_issue(IssueCode.TOO_MANY_TARGETS_IN_ORGAN, who, text))
    return issues


def _lesion_issues(lesion: BaselineLesion) -> list[BaselineIssue]:
    who, size, issues = lesion.lesion_id, lesion.diameter_mm, []
    if lesion.category is LesionCategory.TARGET:
        if size is None:
            text = f"{who}: target lesion without a baseline measurement; every target is measured"
            issues.append(_issue(IssueCode.MISSING_MEASUREMENT, who, f"{text} (RECIST 1.1 4.2)"))
        elif not lesion.is_node and size < MIN_TARGET_MM:
            text = f"{who}: non-nodal target {size} mm < {MIN_TARGET_MM} mm longest diameter"
            text += "; not measurable, record it as a non-target (RECIST 1.1 3.1.1)"
            issues.append(_issue(IssueCode.TARGET_TOO_SMALL, who, text))
        elif lesion.is_node and size < MIN_NODAL_TARGET_MM:
            text = f"{who}: nodal target short axis {size} mm < {MIN_NODAL_TARGET_MM} mm; a node "
            text += "of 10 to < 15 mm is a pathological non-target (RECIST 1.1 3.1.1, 3.1.2)"
            issues.append(_issue(IssueCode.NODAL_TARGET_TOO_SMALL, who, text))
    if lesion.is_node and size is not None and size < NORMAL_NODE_MM:
        text = f"{who}: lymph node short axis {size} mm < {NORMAL_NODE_MM} mm is normal and "
        text += "should not be recorded or followed (RECIST 1.1 4.2)"
        issues.append(_issue(IssueCode.NORMAL_NODE, who, text, error=False))
    if not lesion.is_node and _organ_group(lesion.organ, False) == NODES:
        text = f"{who}: organ '{lesion.organ}' names a lymph node but is_node is False; nodes "
        text += "are measured on their short axis (RECIST 1.1 3.1.1)"
        issues.append(_issue(IssueCode.ORGAN_NODE_MISMATCH, who, text, error=False))
    return issues


def validate_baseline(lesions: Iterable[BaselineLesion]) -> tuple[BaselineIssue, ...]:
    """Check a baseline against RECIST 1.1 sections 3.1 and 4.2: one issue per broken rule.

    Errors: no lesion at all, a duplicate id, a 6th+ target, a 3rd+ target in one organ group
    (:func:`organ_group`), a target without organ, a non-nodal target < 10 mm, a nodal target
    with short axis < 15 mm, a target without measurement. Warnings: a node < 10 mm (normal), an
    organ naming a node on a lesion not flagged ``is_node``. Issues follow the lesions' order.
    """
    lesions = _as_tuple(lesions, BaselineLesion, "baseline lesions")
    issues: list[BaselineIssue] = []
    if not lesions:
        text = "no lesion recorded at baseline: every site of disease is documented as target "
        issues.append(_issue(IssueCode.NO_LESIONS, None, text + "or non-target (RECIST 1.1 4.2)"))
    seen: set[str] = set()
    per_organ: dict[str, int] = {}
    targets = 0
    for lesion in lesions:
        if lesion.lesion_id in seen:
            text = f"{lesion.lesion_id}: lesion identifier used twice; ids are unique per patient"
            issues.append(_issue(IssueCode.DUPLICATE_ID, lesion.lesion_id, text))
        seen.add(lesion.lesion_id)
        if lesion.category is LesionCategory.TARGET:
            targets += 1
            group = lesion.organ_group
            per_organ[group] = per_organ.get(group, 0) + 1
            issues.extend(_count_issues(lesion, targets, per_organ[group]))
        issues.extend(_lesion_issues(lesion))
    return tuple(issues)


# ---------------------------------------------------------------------------
# Sums and time point responses (RECIST 1.1 sections 4.3, 4.4.1, 4.4.2)
# ---------------------------------------------------------------------------


def sum_of_diameters(
    measurements: Iterable[Measurement], *, allow_partial: bool = False
) -> Decimal:
    """Sum of diameters of one scan's target measurements (RECIST 1.1 section 4.3.2).

    Longest diameters plus nodal short axes as recorded; TOO_SMALL 5 mm; DISAPPEARED 0; SPLIT
    the fragments added; COALESCED 0 (the mass is measured on ``coalesced_into``, which must be
    among ``measurements`` and PRESENT or SPLIT). A NOT_EVALUABLE lesion is a ``ValueError``
    (4.4.2: no sum without every target) unless ``allow_partial``: then it is left out.
    """
    items = _as_tuple(measurements, Measurement, "measurements")
    by_id = {m.lesion_id: m for m in items}
    if len(by_id) != len(items):
        raise ValueError("a lesion is measured twice")
    for item in items:
        if item.coalesced_into is not None:
            _check_mass(item, by_id.get(item.coalesced_into))
    total = Decimal(0)
    with localcontext(_CONTEXT):
        for item in items:
            value = item.value_mm
            if value is None and not allow_partial:
                raise ValueError(
                    f"{item.lesion_id} is not evaluable: a sum of diameters needs every target "
                    "measured (RECIST 1.1 4.4.2); pass allow_partial=True for the measured ones"
                )
            total += value or Decimal(0)
    return total


def _check_mass(item: Measurement, mass: Measurement | None) -> Measurement:
    if mass is None or mass.state not in (MeasurementState.PRESENT, MeasurementState.SPLIT):
        raise ValueError(
            f"{item.lesion_id} coalesced into {item.coalesced_into!r}, which is not measured at "
            "this scan; the coalesced mass is measured once, on that lesion (RECIST 1.1 4.3.2)"
        )
    return mass


def _at_cr_level(lesion: BaselineLesion, value: Decimal) -> bool:
    """CR level for one target (4.3.1): non-nodal 0 mm, nodal short axis < 10 mm."""
    return value < NORMAL_NODE_MM if lesion.is_node else value == 0


def _meets_pd(total: Decimal, nadir: Decimal) -> bool:
    """PD rule (4.3.1): >= 20 % over the nadir and >= 5 mm over it (nadir 0: any sum >= 5 mm)."""
    return total >= PD_FACTOR * nadir and total - nadir >= PD_MIN_INCREASE_MM


class _TargetSum(NamedTuple):
    total: Decimal  # of the measured targets
    complete: bool
    above_cr_level: bool  # some measured target not at CR level


def _target_sum(targets: Sequence[BaselineLesion], scan: Assessment) -> _TargetSum:
    by_id = {m.lesion_id: m for m in scan.measurements}
    total, complete, above = _ZERO, True, False
    for lesion in targets:
        measurement = by_id.get(lesion.lesion_id)
        value = None if measurement is None else measurement.value_mm
        if value is None:
            complete = False
            continue
        total += value
        above = above or not _at_cr_level(lesion, value)
    return _TargetSum(total, complete, above)


def _target_response(
    sums: _TargetSum, nadir: Decimal, baseline: Decimal, after_confirmed_cr: bool
) -> Response:
    """Target response (4.3.1, 4.4.2) in the order of RULES.md, with the reappearance convention."""
    if after_confirmed_cr and sums.above_cr_level:
        return Response.PD  # EORTC Q&A: a target reappearing after a confirmed CR
    if _meets_pd(sums.total, nadir):
        return Response.PD  # also from a partial sum: missing targets can only add
    if not sums.complete:
        return Response.NE
    if not sums.above_cr_level:
        return Response.CR
    if sums.total <= PR_FACTOR * baseline:
        return Response.PR
    return Response.SD


def overall_response(
    target: Response | None, non_target: NonTargetStatus | None, new_lesions: NewLesionStatus
) -> Response:
    """Time point response, RECIST 1.1 section 4.4.1 Table 1 (targets) and Table 2 (non-targets
    only). EQUIVOCAL new lesions count as "no" (4.3.5).

    New lesion YES, target PD or non-target PD -> PD; else target NE -> NE; target CR with
    non-target CR or none -> CR, with NON_CR_NON_PD or NE -> PR; target PR -> PR; SD -> SD.
    Without targets: the non-target status (CR, NON_CR_NON_PD or NE).
    """
    target = None if target is None else _coerce(Response, target, "target")
    if non_target is not None:
        non_target = _coerce(NonTargetStatus, non_target, "non_target")
    return _overall(target, non_target, _coerce(NewLesionStatus, new_lesions, "new_lesions"))


def _overall(
    target: Response | None, non_target: NonTargetStatus | None, new_lesions: NewLesionStatus
) -> Response:
    """:func:`overall_response` of enum members (the engine's own values)."""
    if target is None and non_target is None:
        raise ValueError("a time point needs target or non-target lesions")
    if target is Response.NON_CR_NON_PD:
        raise ValueError("NON_CR_NON_PD is not a target response (RECIST 1.1 4.3.1)")
    if (
        new_lesions is NewLesionStatus.YES
        or target is Response.PD
        or non_target is NonTargetStatus.PD
    ):
        return Response.PD
    if target is None:
        return Response(non_target)
    if target is Response.CR:
        return Response.CR if non_target in (None, NonTargetStatus.CR) else Response.PR
    return target


# ---------------------------------------------------------------------------
# Best overall response (RECIST 1.1 sections 4.4.3, Table 3, 4.6.1)
# ---------------------------------------------------------------------------


def _confirmation_day(
    scans: Sequence[tuple[date, Response]], i: int, confirming: frozenset[Response], days: int
) -> date | None:
    """Day of the first scan >= ``days`` after scan ``i`` with a response in ``confirming``,
    reached through scans in ``confirming`` or NE only, at most one NE (4.4.3, admiralonco)."""
    start, ne = scans[i][0], 0
    for k in range(i + 1, len(scans)):
        day, response = scans[k]
        if response in confirming and (day - start).days >= days:
            return day
        if response is Response.NE:
            ne += 1
            if ne > MAX_NE_BETWEEN:
                return None
        elif response not in confirming:
            return None
    return None


_ALLOWED_WITH_TARGETS: Final = frozenset(Response) - {Response.NON_CR_NON_PD}
_ALLOWED_WITHOUT_TARGETS: Final = frozenset(Response) - {Response.PR, Response.SD}
_CONFIRMS: Final[Mapping[Response, frozenset[Response]]] = MappingProxyType(
    {
        Response.CR: frozenset({Response.CR}),
        Response.PR: frozenset({Response.CR, Response.PR}),
    }
)


def _candidate(
    scans: Sequence[tuple[date, Response]],
    i: int,
    *,
    start: date,
    confirm: bool,
    days: tuple[int, int],
    has_targets: bool,
) -> BestResponse | None:
    """What scan ``i`` contributes to the best overall response, if anything."""
    day, response = scans[i]
    min_sd_days, confirmation_days = days
    if response is Response.PD:
        return BestResponse(Response.PD, day, None)
    if response in _CONFIRMS:
        if not confirm:
            return BestResponse(response, day, None)
        confirmed = _confirmation_day(scans, i, _CONFIRMS[response], confirmation_days)
        if confirmed is not None:
            return BestResponse(response, day, confirmed)
    if response is Response.NE or (day - start).days < min_sd_days:
        return None
    if response is Response.NON_CR_NON_PD or not has_targets:
        return BestResponse(Response.NON_CR_NON_PD, day, None)
    return BestResponse(Response.SD, day, None)  # SD, or a CR/PR not confirmed (Table 3)


def _checked_responses(
    responses: Iterable[tuple[date, Response]], has_targets: bool
) -> list[tuple[date, Response]]:
    scans = [(day, _coerce(Response, response, "response")) for day, response in responses]
    allowed = _ALLOWED_WITH_TARGETS if has_targets else _ALLOWED_WITHOUT_TARGETS
    for index, (day, response) in enumerate(scans):
        _check_day("scan day", day)
        if index and day <= scans[index - 1][0]:
            raise ValueError(
                f"scan days must be strictly increasing: {day} after {scans[index - 1][0]}"
            )
        if response not in allowed:
            kind = "with" if has_targets else "without"
            raise ValueError(f"{response} is not an overall response {kind} target lesions")
    return scans


def best_overall_response(
    responses: Iterable[tuple[date, Response]],
    *,
    treatment_start: date,
    confirmation_required: bool,
    min_sd_days: int = MIN_SD_DAYS,
    confirmation_days: int = CONFIRMATION_DAYS,
    has_targets: bool = True,
) -> BestResponse:
    """Best overall response from (scan day, overall response) pairs sorted by day
    (RECIST 1.1 section 4.4.3 and Table 3; confirmation and SD duration 4.6.1).

    Only scans up to and including the first PD count. With ``confirmation_required`` a CR
    counts when a later CR >= ``confirmation_days`` after it follows with only CR/NE between,
    and a PR when a later CR/PR follows so with only CR/PR/NE between -- at most one NE, no SD;
    otherwise every CR/PR counts. SD and NON_CR_NON_PD count only at a scan >= ``min_sd_days``
    after ``treatment_start``; so does a CR/PR not confirmed, as SD (as NON_CR_NON_PD without
    targets). Order CR > PR > SD > NON_CR_NON_PD > PD > NE; ties go to the earliest scan; no
    scan -> NE. ``ValueError`` for days not strictly increasing or a response impossible with
    (NON_CR_NON_PD) or without (PR, SD) target lesions.
    """
    _check_params(treatment_start, confirmation_required, min_sd_days, confirmation_days)
    _check_bool("has_targets", has_targets)
    return _best_response(
        _checked_responses(responses, has_targets),
        treatment_start=treatment_start,
        confirmation_required=confirmation_required,
        min_sd_days=min_sd_days,
        confirmation_days=confirmation_days,
        has_targets=has_targets,
    )


def _best_response(
    scans: list[tuple[date, Response]],
    *,
    treatment_start: date,
    confirmation_required: bool,
    min_sd_days: int,
    confirmation_days: int,
    has_targets: bool,
) -> BestResponse:
    """:func:`best_overall_response` of checked values (those of :func:`evaluate`: sorted
    distinct days, responses possible with or without targets)."""
    first_pd = next((i for i, (_, r) in enumerate(scans) if r is Response.PD), len(scans) - 1)
    scans = scans[: first_pd + 1]
    best = BestResponse(Response.NE, None, None)
    for i in range(len(scans)):
        if _RANK[scans[i][1]] <= _RANK[best.response]:
            continue  # a scan never contributes more than its own response
        candidate = _candidate(
            scans,
            i,
            start=treatment_start,
            confirm=confirmation_required,
            days=(min_sd_days, confirmation_days),
            has_targets=has_targets,
        )
        if candidate is not None and _RANK[candidate.response] > _RANK[best.response]:
            best = candidate
    return best


# ---------------------------------------------------------------------------
# Evaluation of one patient
# ---------------------------------------------------------------------------


def _percent(delta: Decimal, reference: Decimal) -> Decimal:
    """``delta / reference`` in % rounded to 0.1 % half away from zero, from the exact value."""
    # Exact integer arithmetic (the same as Fraction, ten times faster over a whole portfolio):
    # tenths = (dn / dd) * 1000 / (rn / rd); rounded = floor(|tenths| + 1/2).
    dn, dd = delta.as_integer_ratio()
    rn, rd = reference.as_integer_ratio()
    num, den = dn * rd * 1000, dd * rn
    if den < 0:
        num, den = -num, -den
    rounded = (2 * abs(num) + den) // (2 * den)
    return _tenths(rounded if num >= 0 else -rounded)


@functools.lru_cache(maxsize=1 << 16)  # percentages repeat: build each Decimal once
def _tenths(tenths: int) -> Decimal:
    return Decimal(tenths).scaleb(-1)


def _check_mass_in_scan(
    scan: Assessment, item: Measurement, lesions: Mapping[str, BaselineLesion]
) -> None:
    mass = _check_mass(
        item, next((m for m in scan.measurements if m.lesion_id == item.coalesced_into), None)
    )
    if lesions[mass.lesion_id].category is not lesions[item.lesion_id].category:
        raise ValueError(
            f"scan {scan.day}: {item.lesion_id} coalesced into {mass.lesion_id}, a lesion of "
            "another category; targets coalesce into targets (RECIST 1.1 4.3.2)"
        )


def _check_scan(scan: Assessment, lesions: Mapping[str, BaselineLesion]) -> None:
    for item in scan.measurements:
        if item.lesion_id not in lesions:
            raise ValueError(
                f"scan {scan.day}: measurement of lesion {item.lesion_id!r}, which was not "
                "recorded at baseline (new lesions go in new_lesions / new_lesion_details)"
            )
    for item in scan.measurements:
        if item.coalesced_into is not None:
            if item.coalesced_into not in lesions:
                raise ValueError(
                    f"scan {scan.day}: {item.lesion_id} coalesced into unknown lesion "
                    f"{item.coalesced_into!r}"
                )
            _check_mass_in_scan(scan, item, lesions)
    for new in scan.new_lesion_details:
        if new.lesion_id in lesions:
            raise ValueError(f"scan {scan.day}: new lesion reuses baseline id {new.lesion_id!r}")


_DAY: Final = operator.attrgetter("day")


def _checked_scans(
    lesions: Mapping[str, BaselineLesion],
    assessments: Iterable[Assessment],
    baseline_day: date | None,
) -> tuple[Assessment, ...]:
    scans = sorted(_as_tuple(assessments, Assessment, "assessments"), key=_DAY)
    if baseline_day is not None:
        _check_day("baseline_day", baseline_day)
    for index, scan in enumerate(scans):
        if index and scan.day == scans[index - 1].day:
            raise ValueError(f"two assessments on {scan.day}: one scan per day")
        if baseline_day is not None and scan.day <= baseline_day:
            raise ValueError(f"scan {scan.day} is not after the baseline scan ({baseline_day})")
        _check_scan(scan, lesions)
    return tuple(scans)


def _lesion_index(lesions: Sequence[BaselineLesion]) -> dict[str, BaselineLesion]:
    index = {lesion.lesion_id: lesion for lesion in lesions}
    if len(index) != len(lesions):
        raise ValueError("lesion identifiers must be unique per patient")
    return index


def _checked_baseline(
    baseline_lesions: Iterable[BaselineLesion],
) -> tuple[tuple[BaselineLesion, ...], tuple[BaselineIssue, ...]]:
    lesions = _as_tuple(baseline_lesions, BaselineLesion, "baseline lesions")
    issues = validate_baseline(lesions)
    errors = [issue for issue in issues if issue.is_error]
    if errors:
        listed = "; ".join(f"[{issue.code}] {issue.message}" for issue in errors)
        raise ValueError(f"invalid RECIST 1.1 baseline: {listed}")
    return lesions, tuple(issue for issue in issues if not issue.is_error)


def _check_non_target_status(scans: Sequence[Assessment], has_non_targets: bool) -> None:
    for scan in scans:
        if has_non_targets and scan.non_target is None:
            raise ValueError(
                f"scan {scan.day}: non-target status missing although non-target lesions were "
                "recorded at baseline (record NE when they were not assessed)"
            )
        if not has_non_targets and scan.non_target is not None:
            raise ValueError(
                f"scan {scan.day}: non-target status given but no non-target lesion was "
                "recorded at baseline"
            )


def _latest_confirms_cr(results: Sequence[TimepointResult], days: int) -> bool:
    """Whether the latest scan confirms an earlier overall CR (same rule as for the BOR)."""
    last = results[-1]
    if last.overall is not Response.CR:
        return False
    ne = 0
    for k in range(len(results) - 2, -1, -1):
        earlier = results[k]
        if earlier.overall is Response.NE:
            ne += 1
            if ne > MAX_NE_BETWEEN:
                return False
        elif earlier.overall is not Response.CR:
            return False
        elif (last.day - earlier.day).days >= days:
            return True
    return False


def _timepoint(
    scan: Assessment,
    targets: Sequence[BaselineLesion],
    reference: tuple[Decimal, Decimal] | None,
    after_confirmed_cr: bool,
) -> TimepointResult:
    """One scan; ``reference`` is (baseline sum, nadir), ``None`` without targets."""
    target = total = pct_baseline = pct_nadir = nadir = None
    complete = True
    if reference is not None:
        baseline, nadir = reference
        sums = _target_sum(targets, scan)
        target = _target_response(sums, nadir, baseline, after_confirmed_cr)
        total, complete = sums.total, sums.complete
        if complete:
            pct_baseline = _percent(total - baseline, baseline)
            if nadir == baseline:  # the same numbers (until the sum first falls)
                pct_nadir = pct_baseline if nadir else None
            else:
                pct_nadir = _percent(total - nadir, nadir) if nadir else None
    return TimepointResult(
        day=scan.day,
        sum_mm=total,
        sum_complete=complete,
        nadir_mm=nadir,
        change_from_baseline_pct=pct_baseline,
        change_from_nadir_pct=pct_nadir,
        target=target,
        non_target=scan.non_target,
        new_lesions=scan.new_lesions,
        overall=_overall(target, scan.non_target, scan.new_lesions),
    )


def _timepoints(
    targets: Sequence[BaselineLesion],
    baseline: Decimal,
    scans: Sequence[Assessment],
    *,
    confirmation_days: int,
    cr_reappearance_is_pd: bool,
) -> tuple[TimepointResult, ...]:
    nadir = baseline
    results: list[TimepointResult] = []
    cr_confirmed = False
    for scan in scans:
        reference = (baseline, nadir) if targets else None
        result = _timepoint(scan, targets, reference, cr_reappearance_is_pd and cr_confirmed)
        results.append(result)
        if result.sum_mm is not None and result.sum_complete:
            nadir = min(nadir, result.sum_mm)
        cr_confirmed = cr_confirmed or _latest_confirms_cr(results, confirmation_days)
    return tuple(results)


def _progression_index(timepoints: Sequence[TimepointResult]) -> int | None:
    """First PD, moved back to the first scan of an unbroken run of EQUIVOCAL new lesions
    ending at the first YES (4.3.5: progression dated from the scan where it first appeared)."""
    first_pd = next((i for i, tp in enumerate(timepoints) if tp.overall is Response.PD), None)
    if first_pd is None:
        return None
    yes = NewLesionStatus.YES
    first = next((i for i, tp in enumerate(timepoints) if tp.new_lesions is yes), first_pd)
    while first > 0 and timepoints[first - 1].new_lesions is NewLesionStatus.EQUIVOCAL:
        first -= 1
    return min(first_pd, first)


def evaluate(
    baseline_lesions: Iterable[BaselineLesion],
    assessments: Iterable[Assessment],
    *,
    treatment_start: date,
    confirmation_required: bool,
    min_sd_days: int = MIN_SD_DAYS,
    baseline_day: date | None = None,
    confirmation_days: int = CONFIRMATION_DAYS,
    cr_reappearance_is_pd: bool = True,
) -> Evaluation:
    """RECIST 1.1 evaluation of one patient (sections 4.3, 4.4, 4.6; conventions in the module
    docstring). ``ValueError`` for an invalid baseline or inconsistent scans (see the module
    docstring); warnings of :func:`validate_baseline` are returned in ``Evaluation.warnings``.
    """
    _check_params(treatment_start, confirmation_required, min_sd_days, confirmation_days)
    _check_bool("cr_reappearance_is_pd", cr_reappearance_is_pd)
    lesions, warnings = _checked_baseline(baseline_lesions)
    targets = tuple(le for le in lesions if le.category is LesionCategory.TARGET)
    with localcontext(_CONTEXT):
        scans = _checked_scans(_lesion_index(lesions), assessments, baseline_day)
        _check_non_target_status(scans, len(targets) < len(lesions))
        baseline = sum((t.diameter_mm or Decimal(0) for t in targets), Decimal(0))
        timepoints = _timepoints(
            targets,
            baseline,
            scans,
            confirmation_days=confirmation_days,
            cr_reappearance_is_pd=cr_reappearance_is_pd,
        )
        bor, progression = _bor_and_progression(
            timepoints,
            treatment_start=treatment_start,
            confirmation_required=confirmation_required,
            days=(min_sd_days, confirmation_days),
            has_targets=bool(targets),
        )
        used = timepoints if progression is None else timepoints[: progression + 1]
        changes = [c for tp in used if (c := tp.change_from_baseline_pct) is not None]
        sums = [tp.sum_mm for tp in timepoints if tp.sum_complete and tp.sum_mm is not None]
        return Evaluation(
            baseline_sum_mm=baseline if targets else None,
            timepoints=timepoints,
            best_overall_response=bor.response,
            best_response_scan_day=bor.scan_day,
            confirmation_scan_day=bor.confirmation_day,
            progression_date=None if progression is None else timepoints[progression].day,
            nadir_mm=min([baseline, *sums]) if targets else None,
            best_change_from_baseline_pct=min(changes, default=None),
            warnings=warnings,
        )


def _bor_and_progression(
    timepoints: Sequence[TimepointResult],
    *,
    treatment_start: date,
    confirmation_required: bool,
    days: tuple[int, int],
    has_targets: bool,
) -> tuple[BestResponse, int | None]:
    """The BOR, with the (possibly back-dated) progression scan counting as the first PD."""
    progression = _progression_index(timepoints)
    responses = [
        (tp.day, Response.PD if i == progression else tp.overall) for i, tp in enumerate(timepoints)
    ]
    bor = _best_response(  # checked by evaluate: sorted distinct days, possible responses
        responses,
        treatment_start=treatment_start,
        confirmation_required=confirmation_required,
        min_sd_days=days[0],
        confirmation_days=days[1],
        has_targets=has_targets,
    )
    return bor, progression


# ---------------------------------------------------------------------------
# Per-lesion progression (convention from the STOP-2 eligibility text, not RECIST 1.1)
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a pure function of few distinct scan days
def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _lesion_series(
    lesions: Sequence[BaselineLesion], scans: Sequence[Assessment]
) -> dict[str, list[tuple[date, Decimal]]]:
    """Each lesion's own values by scan: as in the sum (4.3.2), but a COALESCED lesion (no
    longer measurable on its own), a NOT_EVALUABLE one or one absent from a scan is skipped.
    ``scans`` are checked (:func:`_checked_scans`): they measure known lesions only."""
    series: dict[str, list[tuple[date, Decimal]]] = {le.lesion_id: [] for le in lesions}
    for scan in scans:
        for item in scan.measurements:
            if item.state is not MeasurementState.COALESCED:
                value = item.value_mm
                if value is not None:
                    series[item.lesion_id].append((scan.day, value))
    return series


def _lesion_course(
    lesion: BaselineLesion,
    series: Sequence[tuple[date, Decimal]],
    treated: bool,
    months: tuple[int, int],
) -> LesionCourse:
    baseline = nadir = previous = lesion.diameter_mm
    grew_on: date | None = None  # day of the previous value if it had grown over its own previous
    for day, value in series:
        grew = previous is not None and value > previous
        criterion = None
        # (a value not above its nadir never meets the PD rule: the cheap test first)
        if nadir is not None and value > nadir and _meets_pd(value, nadir):
            criterion = ProgressionCriterion.RELATIVE
        elif (
            grew
            and grew_on is not None
            and _add_months(grew_on, months[0]) <= day <= _add_months(grew_on, months[1])
            and baseline is not None
            and value - baseline >= PD_MIN_INCREASE_MM
        ):
            criterion = ProgressionCriterion.ENLARGEMENT
        if criterion is not None:
            return LesionCourse(lesion.lesion_id, treated, nadir, day, criterion)
        grew_on = day if grew else None
        previous = value
        if nadir is None or value < nadir:  # min(nadir, value), without the call
            nadir = value
    return LesionCourse(lesion.lesion_id, treated, nadir, None, None)


def _new_lesion_day(scans: Sequence[Assessment]) -> date | None:
    for scan in scans:
        if scan.new_lesions is not NewLesionStatus.YES:
            continue
        sizes = [new.diameter_mm for new in scan.new_lesion_details]
        if any(size is not None and size >= NEW_LESION_MIN_MM for size in sizes):
            return scan.day
        if not sizes or any(size is None for size in sizes):
            raise ValueError(
                f"scan {scan.day}: new lesions YES without the size of each one; per-lesion "
                f"progression counts a new lesion only when >= {NEW_LESION_MIN_MM} mm"
            )
    return None


def lesion_progression(
    baseline_lesions: Iterable[BaselineLesion],
    assessments: Iterable[Assessment],
    *,
    treated: Iterable[str] = (),
    baseline_day: date | None = None,
    min_months: int = 2,
    max_months: int = 3,
) -> LocalControl:
    """Per-lesion progression for local control of irradiated lesions (**convention**: STOP-2
    inclusion 7, "Progression meeting RECIST criteria in up to 5 individual lesions"; not a
    RECIST 1.1 concept). A lesion (target or non-target) progresses at the first scan where:

    1. ``RELATIVE``: its value >= 1.2 x its own nadir and >= 5 mm above it (nadir = smallest of
       its baseline and earlier values; nadir 0: any value >= 5 mm); or
    2. ``ENLARGEMENT``: it has grown over its previous value at two consecutive evaluable scans
       ``min_months`` to ``max_months`` calendar months apart (inclusive), and the second is
       >= 5 mm above its baseline diameter.

    Values are taken as in the sum (4.3.2; TOO_SMALL 5 mm); COALESCED and NOT_EVALUABLE scans
    are skipped. A new lesion counts at the first YES scan with a new lesion >= 5 mm
    (``NewLesion.diameter_mm``; EQUIVOCAL never counts); a YES scan whose sizes cannot decide is
    a ``ValueError``. ``treated``: ids of irradiated lesions, giving in-field progression;
    out-of-field is an untreated lesion or a new lesion. The RECIST baseline rules are not
    applied (a treated lesion may be a non-target), but ids must be unique and known.
    """
    lesions = _as_tuple(baseline_lesions, BaselineLesion, "baseline lesions")
    index = _lesion_index(lesions)
    if isinstance(treated, str):
        raise TypeError("treated must be a collection of lesion ids, not a str")
    treated_ids = frozenset(treated)
    unknown = sorted(treated_ids - index.keys())
    if unknown:
        raise ValueError(f"treated lesions not recorded at baseline: {', '.join(unknown)}")
    _check_int("min_months", min_months, 0)
    _check_int("max_months", max_months, max(min_months, 1))
    with localcontext(_CONTEXT):
        scans = _checked_scans(index, assessments, baseline_day)
        series = _lesion_series(lesions, scans)
        courses = tuple(
            _lesion_course(
                lesion,
                series[lesion.lesion_id],
                lesion.lesion_id in treated_ids,
                (min_months, max_months),
            )
            for lesion in lesions
        )
        new_day = _new_lesion_day(scans)
    elsewhere = [c.progression_day for c in courses if not c.treated and c.progression_day]
    return LocalControl(
        lesions=courses,
        new_lesion_day=new_day,
        in_field_progression_day=min(
            (c.progression_day for c in courses if c.treated and c.progression_day), default=None
        ),
        out_of_field_progression_day=min(
            [*elsewhere, *([new_day] if new_day else [])], default=None
        ),
    )
