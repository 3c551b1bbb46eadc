"""Machine-checkable eligibility rules for the seed SBRT trials.

Pure Python (standard library only, no Django): the Django layer builds a
:class:`PatientFacts` from the eCRF, evaluates the rules a study uses and
translates the plain-English :attr:`RuleResult.detail` for display.

API
---
* :class:`Outcome` -- ``MET``, ``NOT_MET`` or ``UNKNOWN``.  ``UNKNOWN`` means the
  data needed to decide is missing; a rule never guesses.  Rules use three-valued
  (Kleene) logic: when the recorded data already decides the answer (e.g. one
  progressing lesion is 45 mm while another has no diameter, for a 40 mm
  limit), the rule answers ``NOT_MET`` rather than ``UNKNOWN``.
* :class:`RuleResult` -- ``outcome`` and a short factual ``detail`` quoting the
  values used (e.g. ``"age 17 < 18"``).
* Inputs are frozen dataclasses: :class:`PatientFacts`, :class:`LesionFacts`,
  :class:`LabValue`.  They check themselves on construction: a float where a
  :class:`~decimal.Decimal` is expected is a ``TypeError``; an out-of-range
  value (ECOG 5, a negative age or diameter) or an unknown laboratory key is a
  ``ValueError``.  Laboratory *units* and ULNs are free data checked by the rule
  that reads them: ``stereosarc_labs`` raises ``ValueError`` for a unit not in
  :data:`LAB_UNITS` or a ULN <= 0, so a bad lab never breaks the other rules.
  Bad input is rejected, never guessed.
* :data:`RULES` -- stable key -> :class:`Rule` (key, function, description,
  parameters with defaults; :data:`REQUIRED` marks a parameter without default).
  Every rule function has the signature ``(facts, params) -> RuleResult``.
* :func:`evaluate` -- looks a rule up (``KeyError`` for an unknown key), fills
  parameter defaults (``ValueError`` for an unknown or missing parameter) and
  runs it.  Parameter values of the wrong type or range are a ``ValueError``.

Lesion rules look at the lesions as recorded: an empty ``lesions`` tuple means
"no lesion recorded" and gives ``UNKNOWN``; the lesions with ``progressing=True``
are the oligoprogressive (SBRT target) lesions.  Laboratory values sampled
outside the window before treatment start are ignored, so such a lab counts as
missing (``UNKNOWN``), not as failing.  Restaging and pregnancy test dates, by
contrast, *are* the criterion: a recorded date outside the window is ``NOT_MET``.

Millimetre and laboratory thresholds are :class:`~decimal.Decimal`; comparisons
and ratios (``1.5 x ULN``) use exact decimal arithmetic, never binary floats.  A
float *parameter* (as decoded from JSON) is converted through its shortest
``repr`` (``40.1`` -> ``Decimal("40.1")``) before any comparison.

Each rule's docstring cites the seed-trial criterion it implements (trial code as
in ``studies.seed_data``, kind, number and a brief verbatim quote), in the form
``STORM-01 inclusion 13: "Patients aged 18 years or older"``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "LAB_UNITS",
    "REQUIRED",
    "RULES",
    "LabValue",
    "LesionFacts",
    "Outcome",
    "PatientFacts",
    "Rule",
    "RuleParam",
    "RuleResult",
    "evaluate",
]


class Outcome(enum.Enum):
    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"  # the data needed is missing: never guess


@dataclass(frozen=True)
class RuleResult:
    outcome: Outcome
    detail: str  # short plain English with the values used, e.g. "age 17 < 18"


# ---------------------------------------------------------------------------
# Input facts
# ---------------------------------------------------------------------------

_COUNT_TO_PER_UL: Final[Mapping[str, Decimal]] = MappingProxyType(
    {"/uL": Decimal(1), "/mcL": Decimal(1), "/mm3": Decimal(1), "10^9/L": Decimal(1000)}
)
_HB_TO_G_PER_DL: Final[Mapping[str, Decimal]] = MappingProxyType(
    {"g/dL": Decimal(1), "g/L": Decimal("0.1")}
)
_ULN_UNITS: Final = ("umol/L", "mg/dL")
_ENZYME_UNITS: Final = ("U/L", "IU/L")

#: Laboratory key -> accepted unit strings (exact, case-sensitive).
LAB_UNITS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "anc": tuple(_COUNT_TO_PER_UL),
        "platelets": tuple(_COUNT_TO_PER_UL),
        "haemoglobin": (*_HB_TO_G_PER_DL, "mmol/L"),
        "creatinine": _ULN_UNITS,
        "creatinine_clearance": ("mL/min", "mL/min/1.73m2"),  # CrCl, or GFR in its place
        "bilirubin": _ULN_UNITS,
        "direct_bilirubin": _ULN_UNITS,
        "ast": _ENZYME_UNITS,
        "alt": _ENZYME_UNITS,
    }
)


def _check_decimal(name: str, value: object, *, optional: bool, negative_ok: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or (value < 0 and not negative_ok):
        raise ValueError(f"{name} must be a finite number{'' if negative_ok else ' >= 0'}")


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bounds}, got {value}")


@dataclass(frozen=True)
class LesionFacts:
    organ: str  # e.g. "lung", "liver", "bone" (free text; compared case-insensitively)
    diameter_mm: Decimal | None
    progressing: bool = True
    long_bone: bool = False
    brain: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.organ, str):
            raise TypeError("organ must be a str")
        _check_decimal("diameter_mm", self.diameter_mm, optional=True)

    @property
    def organ_key(self) -> str:
        """Organ name normalised for comparison ("" when not recorded)."""
        return " ".join(self.organ.split()).casefold()


@dataclass(frozen=True)
class LabValue:
    value: Decimal
    unit: str  # one of LAB_UNITS[key] for the key it is stored under (checked in use)
    sampled_on: date
    uln: Decimal | None = None  # upper limit of normal, same unit as value

    def __post_init__(self) -> None:
        _check_decimal("value", self.value, optional=False)
        _check_decimal("uln", self.uln, optional=True, negative_ok=True)  # > 0: checked in use


@dataclass(frozen=True)
class PatientFacts:
    age_at_consent: int | None = None
    ecog: int | None = None  # WHO/ECOG performance status 0-4
    lesions: tuple[LesionFacts, ...] = ()
    systemic_lines_received: int | None = None  # prior lines for metastatic disease
    current_line: int | None = None  # line ongoing at oligoprogression (1 = first; 0 = none)
    liver_metastases: bool | None = None
    labs: Mapping[str, LabValue] = field(default_factory=dict)  # keys: see LAB_UNITS
    treatment_start: date | None = None  # planned first SBRT fraction
    randomisation_date: date | None = None  # or planned date of enrolment
    restaging_date: date | None = None
    childbearing_potential: bool | None = None
    pregnancy_test_date: date | None = None
    pregnancy_test_negative: bool | None = None

    def __post_init__(self) -> None:
        _check_int("age_at_consent", self.age_at_consent, 0)
        _check_int("ecog", self.ecog, 0, 4)
        _check_int("systemic_lines_received", self.systemic_lines_received, 0)
        _check_int("current_line", self.current_line, 0)
        object.__setattr__(self, "lesions", tuple(self.lesions))
        for lesion in self.lesions:
            if not isinstance(lesion, LesionFacts):
                raise TypeError("lesions must be LesionFacts")
        for key, lab in self.labs.items():
            if key not in LAB_UNITS:
                raise ValueError(f"unknown laboratory key {key!r}")
            if not isinstance(lab, LabValue):
                raise TypeError(f"labs[{key!r}] must be a LabValue")
        object.__setattr__(self, "labs", MappingProxyType(dict(self.labs)))


# ---------------------------------------------------------------------------
# Rule registry types
# ---------------------------------------------------------------------------


class _Sentinel(enum.Enum):
    REQUIRED = "required"


#: Default of a parameter that has no default and must be given.
REQUIRED: Final = _Sentinel.REQUIRED

RuleFunction = Callable[[PatientFacts, Mapping[str, Any]], RuleResult]


@dataclass(frozen=True)
class RuleParam:
    name: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Rule:
    key: str
    function: RuleFunction
    description: str
    params: tuple[RuleParam, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def resolve_params(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Given parameters plus defaults; ``ValueError`` if unknown or missing."""
        given = dict(params or {})
        unknown = sorted(set(given) - set(self.param_names))
        if unknown:
            raise ValueError(f"rule {self.key!r}: unknown parameter(s) {', '.join(unknown)}")
        resolved: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                resolved[param.name] = given[param.name]
            elif param.required:
                raise ValueError(f"rule {self.key!r}: parameter {param.name!r} is required")
            else:
                resolved[param.name] = param.default
        return resolved


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _met(detail: str) -> RuleResult:
    return RuleResult(Outcome.MET, detail)


def _not_met(detail: str) -> RuleResult:
    return RuleResult(Outcome.NOT_MET, detail)


def _unknown(detail: str) -> RuleResult:
    return RuleResult(Outcome.UNKNOWN, detail)


def _verdict(ok: bool, met_detail: str, not_met_detail: str) -> RuleResult:
    return _met(met_detail) if ok else _not_met(not_met_detail)


def _int_param(params: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"parameter {name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def _mm_param(params: Mapping[str, Any], name: str) -> Decimal:
    value = params[name]
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, float):
            value = repr(value)  # shortest round-trip text, as written in JSON
        number = Decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        raise ValueError(f"parameter {name!r} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"parameter {name!r} must be a finite number >= 0, got {value!r}")
    return number


def _all(checks: Iterable[RuleResult], met_detail: str) -> RuleResult:
    """Kleene AND: NOT_MET if any check fails, else UNKNOWN if any is unknown."""
    checks = tuple(checks)
    parts = []
    for outcome, label in ((Outcome.NOT_MET, "not met"), (Outcome.UNKNOWN, "unknown")):
        details = [check.detail for check in checks if check.outcome is outcome]
        if details:
            parts.append(f"{label}: {'; '.join(details)}")
    if any(check.outcome is Outcome.NOT_MET for check in checks):
        return _not_met(" | ".join(parts))
    if parts:
        return _unknown(" | ".join(parts))
    return _met(met_detail)


def _either(first: RuleResult, second: RuleResult) -> RuleResult:
    """Kleene OR of two alternatives of one criterion."""
    if first.outcome is Outcome.MET:
        return first
    detail = f"{first.detail}; {second.detail}"
    if second.outcome is Outcome.MET:
        return _met(detail)
    if Outcome.UNKNOWN in (first.outcome, second.outcome):
        return _unknown(detail)
    return _not_met(detail)


def _progressing(facts: PatientFacts) -> tuple[LesionFacts, ...]:
    return tuple(lesion for lesion in facts.lesions if lesion.progressing)


_NO_LESIONS: Final = "no lesion recorded"


# ---------------------------------------------------------------------------
# Rules: patient
# ---------------------------------------------------------------------------


def min_age(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Age at consent >= ``minimum`` years.

    STORM-01 inclusion 13: "Patients aged 18 years or older";
    STEREOSARC inclusion 4: "Be ≥ 18 years of age on day of signing informed consent.";
    STOP-2 inclusion 1: "Age 19 or older" (``minimum=19``).
    """
    minimum = _int_param(params, "minimum")
    age = facts.age_at_consent
    if age is None:
        return _unknown("age at consent not recorded")
    return _verdict(age >= minimum, f"age {age} >= {minimum}", f"age {age} < {minimum}")


def max_ecog(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """WHO/ECOG performance status <= ``maximum``.

    STORM-01 inclusion 10: "Good general condition (WHO performance status ≤ 2)";
    STEREOSARC inclusion 5: "Have a performance status of 0 or 1 on the ECOG Performance
    Scale." (``maximum=1``); STOP-2 inclusion 5: "ECOG performance status 0-2".
    """
    maximum = _int_param(params, "maximum")
    ecog = facts.ecog
    if ecog is None:
        return _unknown("performance status not recorded")
    return _verdict(ecog <= maximum, f"ECOG {ecog} <= {maximum}", f"ECOG {ecog} > {maximum}")


def systemic_line(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Ongoing systemic line is one of ``allowed_lines`` (0 = no ongoing line).

    STORM-01 inclusion 4: "Patients treated in first or second line systemic therapy";
    STEREOSARC inclusion 3: "First or second metastatic line".
    """
    raw = params["allowed_lines"]
    if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
        raise ValueError(f"parameter 'allowed_lines' must be a sequence of ints, got {raw!r}")
    allowed = tuple(raw)
    if not allowed or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in allowed):
        raise ValueError(f"parameter 'allowed_lines' must hold ints >= 1, got {raw!r}")
    line = facts.current_line
    if line is None:
        return _unknown("current systemic line not recorded")
    shown = ", ".join(str(n) for n in sorted(set(allowed)))
    return _verdict(line in allowed, f"line {line} in ({shown})", f"line {line} not in ({shown})")


def max_prior_lines(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Prior lines of systemic therapy for metastatic disease <= ``maximum``.

    STORM-01 exclusion 3: "Patients who received 3 or more lines of systemic therapy"
    (``maximum=2``).
    """
    maximum = _int_param(params, "maximum")
    received = facts.systemic_lines_received
    if received is None:
        return _unknown("number of prior systemic lines not recorded")
    return _verdict(
        received <= maximum,
        f"{received} prior lines <= {maximum}",
        f"{received} prior lines > {maximum}",
    )


# ---------------------------------------------------------------------------
# Rules: lesions
# ---------------------------------------------------------------------------


def progressing_lesion_count(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Number of progressing lesions within [``minimum``, ``maximum``].

    STORM-01 inclusion 6: "emergence or progression of 1 to 3 metastases";
    STORM-01 exclusion 1: "More than 3 progressive metastases";
    STEREOSARC inclusion 2: "1-5 synchronous macroscopic metastases";
    STOP-2 inclusion 7: "Progression meeting RECIST criteria in up to 5 individual lesions".
    """
    minimum = _int_param(params, "minimum")
    maximum = _int_param(params, "maximum")
    if minimum > maximum:
        raise ValueError(f"minimum {minimum} > maximum {maximum}")
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    count = len(_progressing(facts))
    if count < minimum:
        return _not_met(f"{count} progressing lesion(s) < {minimum}")
    return _verdict(
        count <= maximum,
        f"{count} progressing lesion(s) within {minimum}-{maximum}",
        f"{count} progressing lesion(s) > {maximum}",
    )


def progressing_organ_count(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Distinct organs with a progressing lesion <= ``maximum`` (names compared
    case-insensitively after stripping).

    STORM-01 inclusion 6: "progression localized in up to 2 organs".
    """
    maximum = _int_param(params, "maximum")
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    keys = [lesion.organ_key for lesion in _progressing(facts)]
    organs = sorted(set(filter(None, keys)))
    blanks = keys.count("")
    shown = f"{len(organs)} organ(s) ({', '.join(organs)})"
    if len(organs) > maximum:
        return _not_met(f"{shown} > {maximum}")
    if len(organs) + blanks > maximum:  # each unnamed organ could be another one
        return _unknown(f"{shown}; organ not recorded for {blanks} progressing lesion(s)")
    return _met(f"{shown} <= {maximum}")


def max_lesion_diameter(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Every progressing lesion's diameter <= ``maximum_mm``.

    STORM-01 inclusion 9: "All oligoprogressive target lesions measuring ≤ 4 cm";
    STORM-01 exclusion 6: "At least 1 oligoprogressive target lesion measuring > 4 cm".
    """
    maximum = _mm_param(params, "maximum_mm")
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    lesions = _progressing(facts)
    diameters = [lesion.diameter_mm for lesion in lesions if lesion.diameter_mm is not None]
    too_big = [diameter for diameter in diameters if diameter > maximum]
    if too_big:
        shown = ", ".join(f"{diameter} mm" for diameter in too_big)
        return _not_met(f"progressing lesion(s) {shown} > {maximum} mm")
    if len(diameters) < len(lesions):
        missing = len(lesions) - len(diameters)
        return _unknown(f"diameter not recorded for {missing} progressing lesion(s)")
    if not diameters:
        return _met("no progressing lesion")
    return _met(f"largest progressing lesion {max(diameters)} mm <= {maximum} mm")


def one_lesion_smaller_than(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """At least one progressing (i.e. to be irradiated) lesion with diameter < ``limit_mm``
    (strictly less).

    STEREOSARC inclusion 6: "Have at least one lesion mesurable by RECIST 1.1 for
    irradiation with a size of < 5 cm."
    """
    limit = _mm_param(params, "limit_mm")
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    lesions = _progressing(facts)
    diameters = [lesion.diameter_mm for lesion in lesions if lesion.diameter_mm is not None]
    smallest = min(diameters, default=None)
    if smallest is not None and smallest < limit:
        return _met(f"progressing lesion of {smallest} mm < {limit} mm")
    if len(diameters) < len(lesions):
        return _unknown("no progressing lesion known to be smaller; diameter not recorded")
    if smallest is None:
        return _not_met("no progressing lesion")
    return _not_met(f"smallest progressing lesion {smallest} mm >= {limit} mm")


def max_cumulated_diameter(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Sum of the diameters of the progressing lesions <= ``maximum_mm``.

    STEREOSARC inclusion 2: "maximal cumulated diameter 10 cm".  This is the
    eligibility limit at inclusion; the separate 6 cm constraint on the volume
    actually irradiated by SBRT is a treatment-planning constraint, not eligibility.
    """
    maximum = _mm_param(params, "maximum_mm")
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    lesions = _progressing(facts)
    total = sum((lesion.diameter_mm or Decimal(0) for lesion in lesions), Decimal(0))
    if total > maximum:  # diameters are >= 0, so missing ones cannot lower the sum
        return _not_met(f"cumulated diameter {total} mm > {maximum} mm")
    missing = sum(1 for lesion in lesions if lesion.diameter_mm is None)
    if missing:
        return _unknown(f"diameter not recorded for {missing} progressing lesion(s)")
    return _met(f"cumulated diameter {total} mm <= {maximum} mm")


def _is_brain(lesion: LesionFacts) -> bool:
    return lesion.brain or lesion.organ_key == "brain"


def no_brain_metastases(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """No lesion flagged ``brain`` (or with organ "brain"), progressing or not.

    STORM-01 exclusion 7: "Presence of brain metastases";
    STORM-01 inclusion 3: "Extracerebral metastatic disease documented with imagery".
    """
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    count = sum(1 for lesion in facts.lesions if _is_brain(lesion))
    return _verdict(count == 0, "no brain metastasis", f"{count} brain metastases")


def no_long_bone_progression(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """No progressing lesion flagged ``long_bone``.

    STORM-01 exclusion 9: "Progressing metastasis in a long bone".
    """
    if not facts.lesions:
        return _unknown(_NO_LESIONS)
    count = sum(1 for lesion in _progressing(facts) if lesion.long_bone)
    return _verdict(
        count == 0,
        "no progressing long-bone metastasis",
        f"{count} progressing long-bone metastases",
    )


# ---------------------------------------------------------------------------
# Rules: laboratory (STEREOSARC)
# ---------------------------------------------------------------------------


def _lab_in_window(facts: PatientFacts, key: str, window_days: int) -> tuple[LabValue | None, str]:
    """The lab if sampled 0..window_days days before treatment start, else why not."""
    lab = facts.labs.get(key)
    if lab is None:
        return None, f"{key} not recorded"
    if facts.treatment_start is None:
        return None, f"{key}: treatment start date not recorded"
    days = (facts.treatment_start - lab.sampled_on).days
    if days < 0:
        return None, f"{key} sampled {-days} days after treatment start"
    if days > window_days:
        return None, f"{key} sampled {days} days before treatment start (> {window_days})"
    return lab, ""


def _at_least(value: Decimal, minimum: Decimal, unit: str, shown: str) -> RuleResult:
    return _verdict(value >= minimum, f"{shown} >= {minimum} {unit}", f"{shown} < {minimum} {unit}")


def _count_check(facts: PatientFacts, key: str, minimum: Decimal, window: int) -> RuleResult:
    lab, why = _lab_in_window(facts, key, window)
    if lab is None:
        return _unknown(why)
    factor = _COUNT_TO_PER_UL[lab.unit]
    value = lab.value * factor
    shown = f"{key} {lab.value} {lab.unit}" + ("" if factor == 1 else f" (= {value} /uL)")
    return _at_least(value, minimum, "/uL", shown)


def _haemoglobin_check(facts: PatientFacts, window: int) -> RuleResult:
    lab, why = _lab_in_window(facts, "haemoglobin", window)
    if lab is None:
        return _unknown(why)
    shown = f"haemoglobin {lab.value} {lab.unit}"
    if lab.unit == "mmol/L":
        return _at_least(lab.value, Decimal("5.6"), "mmol/L", shown)
    factor = _HB_TO_G_PER_DL[lab.unit]
    value = lab.value * factor
    if factor != 1:
        shown += f" (= {value} g/dL)"
    return _at_least(value, Decimal(9), "g/dL", shown)


def _clearance_check(facts: PatientFacts, window: int) -> RuleResult:
    lab, why = _lab_in_window(facts, "creatinine_clearance", window)
    if lab is None:
        return _unknown(why)
    shown = f"creatinine_clearance {lab.value} {lab.unit}"
    return _at_least(lab.value, Decimal(50), lab.unit, shown)


def _uln_check(facts: PatientFacts, key: str, factor: Decimal, window: int) -> RuleResult:
    lab, why = _lab_in_window(facts, key, window)
    if lab is None:
        return _unknown(why)
    if lab.uln is None:
        return _unknown(f"{key}: upper limit of normal not recorded")
    limit = factor * lab.uln
    shown = f"{key} {lab.value} {lab.unit}"
    bound = f"{limit} {lab.unit} ({factor} x ULN {lab.uln})"
    return _verdict(lab.value <= limit, f"{shown} <= {bound}", f"{shown} > {bound}")


def _transaminase_check(facts: PatientFacts, key: str, window: int) -> RuleResult:
    """<= 2.5 x ULN, or <= 5 x ULN with liver metastases."""
    if facts.liver_metastases is not None:
        factor = Decimal(5) if facts.liver_metastases else Decimal("2.5")
        return _uln_check(facts, key, factor, window)
    strict = _uln_check(facts, key, Decimal("2.5"), window)
    if strict.outcome is not Outcome.NOT_MET:
        return strict  # met with or without liver metastases, or data missing
    loose = _uln_check(facts, key, Decimal(5), window)
    if loose.outcome is Outcome.NOT_MET:
        return loose
    return _unknown(f"{strict.detail} and liver metastases status not recorded")


def _check_labs(labs: Mapping[str, LabValue]) -> None:
    """``ValueError`` for a unit not in LAB_UNITS or a ULN that is not positive."""
    for key, lab in labs.items():
        if lab.unit not in LAB_UNITS[key]:
            accepted = ", ".join(LAB_UNITS[key])
            raise ValueError(f"unknown unit {lab.unit!r} for {key} (accepted: {accepted})")
        if lab.uln is not None and lab.uln <= 0:
            raise ValueError(f"{key}: upper limit of normal must be positive, got {lab.uln}")


def stereosarc_labs(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Adequate organ function, every lab sampled 0..``window_days`` days before
    treatment start (a stale or later lab is ignored, i.e. missing -> UNKNOWN).

    STEREOSARC inclusion 7: "Absolute neutrophil count (ANC) ≥1,500 /mcL";
    STEREOSARC inclusion 7: "Platelets ≥100,000 / mcL";
    STEREOSARC inclusion 7: "Hemoglobin ≥9 g/dL or ≥5.6 mmol/L";
    STEREOSARC inclusion 7: "Serum creatinine ≤1.5 X upper limit of normal (ULN) OR measured
    or calculated creatinine clearance";
    STEREOSARC inclusion 7: "≥50 mL/min for subject with creatinine levels > 1.5 X
    institutional ULN";
    STEREOSARC inclusion 7: "Serum total bilirubin ≤ 1.5 X ULN OR Direct bilirubin ≤ ULN";
    STEREOSARC inclusion 7: "AST (SGOT) and ALT (SGPT) ≤ 2.5 X ULN OR ≤ 5 X ULN for
    subjects with liver metastases";
    STEREOSARC inclusion 7: "All screening labs should be performed within 15 days of
    treatment initiation."
    """
    window = _int_param(params, "window_days")
    _check_labs(facts.labs)
    checks = (
        _count_check(facts, "anc", Decimal(1500), window),
        _count_check(facts, "platelets", Decimal(100000), window),
        _haemoglobin_check(facts, window),
        _either(
            _uln_check(facts, "creatinine", Decimal("1.5"), window),
            _clearance_check(facts, window),
        ),
        _either(
            _uln_check(facts, "bilirubin", Decimal("1.5"), window),
            _uln_check(facts, "direct_bilirubin", Decimal(1), window),
        ),
        _transaminase_check(facts, "ast", window),
        _transaminase_check(facts, "alt", window),
    )
    return _all(checks, f"all laboratory values adequate within {window} days before treatment")


# ---------------------------------------------------------------------------
# Rules: dates
# ---------------------------------------------------------------------------


def restaging_within(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Restaging 0..``weeks`` x 7 days before randomisation (or planned enrolment).

    STOP-2 inclusion 13: "Restaging completed within 12 weeks prior to randomization".
    """
    limit = _int_param(params, "weeks") * 7
    if facts.restaging_date is None:
        return _unknown("restaging date not recorded")
    if facts.randomisation_date is None:
        return _unknown("randomisation date not recorded")
    days = (facts.randomisation_date - facts.restaging_date).days
    if days < 0:
        return _not_met(f"restaging {-days} days after randomisation")
    return _verdict(
        days <= limit,
        f"restaging {days} days before randomisation <= {limit}",
        f"restaging {days} days before randomisation > {limit}",
    )


def _pregnancy_test_timing(facts: PatientFacts, limit: int) -> RuleResult:
    if facts.pregnancy_test_date is None:
        return _unknown("pregnancy test date not recorded")
    if facts.treatment_start is None:
        return _unknown("treatment start date not recorded")
    days = (facts.treatment_start - facts.pregnancy_test_date).days
    if days < 0:
        return _not_met(f"pregnancy test {-days} days after treatment start")
    return _verdict(
        days <= limit,
        f"pregnancy test {days} days before treatment start <= {limit}",
        f"pregnancy test {days} days before treatment start > {limit}",
    )


def pregnancy_test_within(facts: PatientFacts, params: Mapping[str, Any]) -> RuleResult:
    """Negative pregnancy test 0..``days`` days before treatment start when of
    childbearing potential; MET (not applicable) otherwise.

    STOP-2 inclusion 14: "Negative urine pregnancy test for People of Child-Bearing
    Potential (POCBP) within 4 weeks of radiotherapy start date."  Not used for
    STEREOSARC inclusion 8: "within 72 hours prior to receiving the first dose of study
    medication", which is anchored on the study drug rather than on SBRT start.
    """
    limit = _int_param(params, "days")
    potential = facts.childbearing_potential
    if potential is None:
        return _unknown("childbearing potential not recorded")
    if not potential:
        return _met("not applicable: no childbearing potential")
    negative = facts.pregnancy_test_negative
    if negative is None:
        result = _unknown("pregnancy test result not recorded")
    else:
        result = _verdict(negative, "test negative", "pregnancy test not negative")
    timing = _pregnancy_test_timing(facts, limit)
    return _all((result, timing), f"negative pregnancy test; {timing.detail}")


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


def _rule(key: str, function: RuleFunction, description: str, **defaults: Any) -> Rule:
    params = tuple(RuleParam(name, default) for name, default in defaults.items())
    return Rule(key, function, description, params)


_RULE_LIST: Final = (
    _rule("min_age", min_age, "Age at consent at least `minimum` years", minimum=18),
    _rule("max_ecog", max_ecog, "WHO/ECOG performance status at most `maximum`", maximum=REQUIRED),
    _rule(
        "progressing_lesion_count",
        progressing_lesion_count,
        "Between `minimum` and `maximum` progressing lesions",
        minimum=1,
        maximum=REQUIRED,
    ),
    _rule(
        "progressing_organ_count",
        progressing_organ_count,
        "Progressing lesions in at most `maximum` organs",
        maximum=2,
    ),
    _rule(
        "max_lesion_diameter",
        max_lesion_diameter,
        "Every progressing lesion at most `maximum_mm` mm",
        maximum_mm=Decimal(40),
    ),
    _rule(
        "one_lesion_smaller_than",
        one_lesion_smaller_than,
        "At least one progressing lesion smaller than `limit_mm` mm",
        limit_mm=Decimal(50),
    ),
    _rule(
        "max_cumulated_diameter",
        max_cumulated_diameter,
        "Cumulated diameter of progressing lesions at most `maximum_mm` mm",
        maximum_mm=Decimal(100),
    ),
    _rule(
        "systemic_line",
        systemic_line,
        "Ongoing systemic line is one of `allowed_lines`",
        allowed_lines=(1, 2),
    ),
    _rule(
        "max_prior_lines",
        max_prior_lines,
        "At most `maximum` prior lines of systemic therapy",
        maximum=2,
    ),
    _rule("no_brain_metastases", no_brain_metastases, "No brain metastasis"),
    _rule(
        "no_long_bone_progression",
        no_long_bone_progression,
        "No progressing metastasis in a long bone",
    ),
    _rule(
        "stereosarc_labs",
        stereosarc_labs,
        "Adequate organ function (STEREOSARC), labs within `window_days` days before treatment",
        window_days=15,
    ),
    _rule(
        "restaging_within",
        restaging_within,
        "Restaging within `weeks` weeks before randomisation",
        weeks=12,
    ),
    _rule(
        "pregnancy_test_within",
        pregnancy_test_within,
        "Negative pregnancy test within `days` days before treatment, if applicable",
        days=28,
    ),
)

#: Stable rule key -> :class:`Rule`.
RULES: Final[Mapping[str, Rule]] = MappingProxyType({rule.key: rule for rule in _RULE_LIST})


def evaluate(
    rule_key: str, facts: PatientFacts, params: Mapping[str, Any] | None = None
) -> RuleResult:
    """Run rule ``rule_key`` on ``facts`` with ``params`` completed by the defaults.

    ``KeyError`` for an unknown rule key; ``ValueError`` for an unknown or missing
    parameter or an invalid parameter value.
    """
    try:
        rule = RULES[rule_key]
    except KeyError:
        raise KeyError(f"unknown eligibility rule {rule_key!r}") from None
    return rule.function(facts, rule.resolve_params(params))
