"""Patient status transitions (pure Python, no Django).

screening -> screen failure | enrolled (or randomised) -> on treatment -> follow-up -> off study.
Off study ends every path after enrolment (completed, consent withdrawn, lost to follow-up, death,
investigator or sponsor decision); screen failure and off study are final.
"""

from __future__ import annotations

SCREENING = "screening"
SCREEN_FAILURE = "screen_failure"
ENROLLED = "enrolled"
ON_TREATMENT = "on_treatment"
FOLLOW_UP = "follow_up"
OFF_STUDY = "off_study"

TRANSITIONS: dict[str, frozenset[str]] = {
    SCREENING: frozenset({SCREEN_FAILURE, ENROLLED}),
    ENROLLED: frozenset({ON_TREATMENT, FOLLOW_UP, OFF_STUDY}),
    ON_TREATMENT: frozenset({FOLLOW_UP, OFF_STUDY}),
    FOLLOW_UP: frozenset({OFF_STUDY}),
    SCREEN_FAILURE: frozenset(),
    OFF_STUDY: frozenset(),
}


def can_move(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def allowed_next(current: str) -> frozenset[str]:
    return TRANSITIONS.get(current, frozenset())
