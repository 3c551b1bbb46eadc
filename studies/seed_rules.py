"""Which seed-trial criteria the app can compute from entered data, and with which parameters.

Our reading of the registry criteria (studies/seed_data.py), kept apart from the verbatim text.
Keys are (trial code, "inclusion"|"exclusion", criterion number); rules are keys of
patients.eligibility.RULES with their parameters. Rules always state the condition for the
patient to be eligible (for an exclusion criterion: that the patient is free of it).
"""

from __future__ import annotations

from typing import Any

Rule = tuple[str, dict[str, Any]]

SEED_RULES: dict[tuple[str, str, int], tuple[Rule, ...]] = {
    # GETUG-StORM-01
    ("STORM-01", "inclusion", 4): (("systemic_line", {"allowed_lines": [1, 2]}),),
    ("STORM-01", "inclusion", 6): (
        ("progressing_lesion_count", {"minimum": 1, "maximum": 3}),
        ("progressing_organ_count", {"maximum": 2}),
    ),
    ("STORM-01", "inclusion", 9): (("max_lesion_diameter", {"maximum_mm": 40}),),
    ("STORM-01", "inclusion", 10): (("max_ecog", {"maximum": 2}),),
    ("STORM-01", "inclusion", 13): (("min_age", {"minimum": 18}),),
    ("STORM-01", "exclusion", 1): (("progressing_lesion_count", {"minimum": 0, "maximum": 3}),),
    ("STORM-01", "exclusion", 3): (("max_prior_lines", {"maximum": 2}),),
    ("STORM-01", "exclusion", 6): (("max_lesion_diameter", {"maximum_mm": 40}),),
    ("STORM-01", "exclusion", 7): (("no_brain_metastases", {}),),
    ("STORM-01", "exclusion", 9): (("no_long_bone_progression", {}),),
    # STEREOSARC
    ("STEREOSARC", "inclusion", 2): (
        ("progressing_lesion_count", {"minimum": 1, "maximum": 5}),
        ("max_cumulated_diameter", {"maximum_mm": 100}),
    ),
    ("STEREOSARC", "inclusion", 3): (("systemic_line", {"allowed_lines": [1, 2]}),),
    ("STEREOSARC", "inclusion", 4): (("min_age", {"minimum": 18}),),
    ("STEREOSARC", "inclusion", 5): (("max_ecog", {"maximum": 1}),),
    ("STEREOSARC", "inclusion", 6): (("one_lesion_smaller_than", {"limit_mm": 50}),),
    ("STEREOSARC", "inclusion", 7): (("stereosarc_labs", {"window_days": 15}),),
    ("STEREOSARC", "exclusion", 20): (("min_age", {"minimum": 18}),),
    # STOP-2
    ("STOP-2", "inclusion", 1): (("min_age", {"minimum": 19}),),
    ("STOP-2", "inclusion", 5): (("max_ecog", {"maximum": 2}),),
    ("STOP-2", "inclusion", 7): (("progressing_lesion_count", {"minimum": 1, "maximum": 5}),),
    ("STOP-2", "inclusion", 13): (("restaging_within", {"weeks": 12}),),
    ("STOP-2", "inclusion", 14): (("pregnancy_test_within", {"days": 28}),),
}

# Study settings the registry pages imply (see each trial's notes in seed_data.py).
SEED_SETTINGS: dict[str, dict[str, Any]] = {
    # RECIST 1.1 section 4.6: responses are confirmed in non-randomised trials.
    "STORM-01": {"subject_prefix": "STORM01", "response_confirmation_required": True},
    "STORM-01-R": {"subject_prefix": "STORM01R"},
    "STEREOSARC": {"subject_prefix": "STEREOSARC"},
    # Part I size is not on the registry page: 6 is a placeholder the sponsor sets in the admin.
    "ATRA-SBRT": {"subject_prefix": "ATRA", "run_in_size": 6, "run_in_arm_code": "SBRT_ATRA"},
    "STOP-2": {"subject_prefix": "STOP2"},
}

# Arms that report iRECIST beside RECIST 1.1 (immunotherapy): STEREOSARC's atezolizumab arm.
SEED_IRECIST_ARMS: set[tuple[str, str]] = {("STEREOSARC", "A")}

# SBRT protocol rules from the registry pages (treatments/constraints.py cites the wording).
SEED_SBRT_RULES: dict[str, dict[str, Any]] = {
    "STORM-01": {"all_progressing_lesions_treated": True},
    "STEREOSARC": {
        "allowed_fractions": "3,5",
        "max_overall_days": 21,
        "max_cumulated_diameter_mm": 60,
    },
    "ATRA-SBRT": {"weekdays_only": True, "max_overall_days": 14, "min_treated_diameter_mm": 15},
    "STOP-2": {"all_progressing_lesions_treated": True},
}
# Prescriptions fixed by an arm: STOP-2's control arm, "8 Gy in 1 fraction".
SEED_ARM_PRESCRIPTIONS: dict[tuple[str, str], tuple[int, int]] = {("STOP-2", "CONTROL"): (8, 1)}

# The controlled list of systemic agents (issue #5 and the seed trials' conditions), by class.
SEED_AGENTS: dict[str, str] = {
    # Renal cell carcinoma (StORM-01, STOP-2)
    "sunitinib": "tki",
    "pazopanib": "tki",
    "cabozantinib": "tki",
    "axitinib": "tki",
    "lenvatinib": "tki",
    "tivozanib": "tki",
    "sorafenib": "tki",
    "regorafenib": "tki",
    "everolimus": "mtor",
    "temsirolimus": "mtor",
    "nivolumab": "anti_pd1",
    "pembrolizumab": "anti_pd1",
    "atezolizumab": "anti_pdl1",
    "avelumab": "anti_pdl1",
    "durvalumab": "anti_pdl1",
    "ipilimumab": "anti_ctla4",
    "tremelimumab": "anti_ctla4",
    # Sarcoma (STEREOSARC)
    "doxorubicin": "chemotherapy",
    "ifosfamide": "chemotherapy",
    "trabectedin": "chemotherapy",
    "eribulin": "chemotherapy",
    "gemcitabine": "chemotherapy",
    "docetaxel": "chemotherapy",
    "dacarbazine": "chemotherapy",
    "paclitaxel": "chemotherapy",
    "carboplatin": "chemotherapy",
    "cisplatin": "chemotherapy",
    # ATRA trial
    "all-trans retinoic acid (ATRA)": "retinoid",
    "other (specify in details)": "other",
}

# Study drug regimens.  ATRA trial (seed 003): "ATRA 150 mg/m^2/day for 3 days every 3 weeks for
# a maximum of 4 cycles (about 3 months), starting on the first day of radiation therapy"; the
# registry page names no BSA formula or rounding (Mosteller, nearest 10 mg: our defaults, sponsor-
# editable).  STEREOSARC (seed 002, arm A): "Atezolizumab: 1200mg IV every 3 weeks for 4 months",
# i.e. 6 cycles (issue #5); the first from the first SBRT fraction (our assumption, editable).
SEED_DRUG_REGIMENS: dict[tuple[str, str], dict[str, Any]] = {
    ("ATRA-SBRT", "SBRT_ATRA"): {
        "agent": "all-trans retinoic acid (ATRA)",
        "dose": 150,
        "dose_basis": "per_m2",
        "route": "oral",
        "days_per_cycle": 3,
        "cycle_length_days": 21,
        "max_cycles": 4,
        "start_offset_days": 0,
        "bsa_formula": "mosteller",
        "rounding_mg": 10,
    },
    ("STEREOSARC", "A"): {
        "agent": "atezolizumab",
        "dose": 1200,
        "dose_basis": "flat",
        "route": "iv",
        "days_per_cycle": 1,
        "cycle_length_days": 21,
        "max_cycles": 6,
        "start_offset_days": 0,
        "bsa_formula": "mosteller",
        "rounding_mg": 10,
    },
}

# Safety settings.  Every study: late toxicity after 90 days from the end of SBRT (issue #6
# default) and a placeholder pharmacovigilance mailbox the sponsor replaces in the admin.  ATRA
# trial (seed 003): primary endpoint "lymphopenia of grade 2 or higher ... at 6 weeks
# post-radiotherapy" (day 42, +/- 7 days: our window); part I is a safety run-in whose DLT window
# and stopping rule the registry page does not give: 42 days from the first fraction and a stop
# at 2 patients with a DLT are placeholders, editable in the admin.
SEED_SAFETY: dict[str, dict[str, Any]] = {
    "STORM-01": {},
    "STORM-01-R": {},
    "STEREOSARC": {},
    "ATRA-SBRT": {"dlt_window_days": 42, "dlt_stop_count": 2},
    "STOP-2": {},
}

# Visit schedules.  Where a registry page states a timing it is cited in ``source``; elsewhere the
# schedule is our documented default (imaging every 8-12 weeks until progression, the usual
# practice of SBRT trials), which the sponsor edits in the admin.  Keys: code -> fields.
_PROGRESSION_IMAGING = {
    "name": "Imaging after progression",
    "kind": "imaging",
    "anchor": "progression",
    "offset_days": 84,
    "window_before_days": 14,
    "window_after_days": 14,
    "repeat_every_days": 84,
    "repeat_until_days": 730,
    "source": "Default: imaging every 12 weeks after progression, for 2 years.",
}
_STORM_VISITS: dict[str, dict[str, Any]] = {
    "ct": {
        "name": "CT scan",
        "kind": "imaging",
        "anchor": "sbrt_end",
        "offset_days": 61,
        "window_before_days": 7,
        "window_after_days": 7,
        "repeat_every_days": 61,
        "repeat_until_days": 730,
        "until_progression": True,
        "source": "Seed 000: CT scans 2 months apart; default: for 2 years or until progression.",
    },
    "clinic": {
        "name": "Clinical visit after SBRT",
        "kind": "clinical",
        "anchor": "sbrt_end",
        "offset_days": 30,
        "window_before_days": 7,
        "window_after_days": 7,
        "source": "Default: toxicity review one month after SBRT.",
    },
    "ct-post-pd": _PROGRESSION_IMAGING,
}
SEED_VISITS: dict[str, dict[str, dict[str, Any]]] = {
    "STORM-01": _STORM_VISITS,
    "STORM-01-R": _STORM_VISITS,
    "STEREOSARC": {
        "imaging": {
            "name": "Imaging",
            "kind": "imaging",
            "anchor": "randomisation",
            "offset_days": 56,
            "window_before_days": 7,
            "window_after_days": 7,
            "repeat_every_days": 56,
            "repeat_until_days": 365,
            "until_progression": True,
            "source": "Default: every 8 weeks for a year or until progression.",
        },
        "pfs6": {
            "name": "6-month PFS assessment",
            "kind": "imaging",
            "anchor": "randomisation",
            "offset_days": 182,
            "window_before_days": 14,
            "window_after_days": 14,
            "source": "Seed 002: primary endpoint, PFS rate at 6 months.",
        },
    },
    "ATRA-SBRT": {
        "labs-baseline": {
            "name": "Baseline blood count",
            "kind": "labs",
            "anchor": "sbrt_start",
            "offset_days": 0,
            "window_before_days": 14,
            "window_after_days": 0,
            "source": "Seed 003: lymphopenia endpoint; baseline count before radiotherapy.",
        },
        "labs-weekly": {
            "name": "Weekly blood count during SBRT",
            "kind": "labs",
            "anchor": "sbrt_start",
            "offset_days": 7,
            "window_before_days": 1,
            "window_after_days": 1,
            "repeat_every_days": 7,
            "repeat_until_days": 14,
            "source": "Default: weekly during SBRT (at most 2 weeks, seed 003).",
        },
        "labs-6w": {
            "name": "Lymphocyte count 6 weeks after SBRT",
            "kind": "labs",
            "anchor": "sbrt_end",
            "offset_days": 42,
            "window_before_days": 7,
            "window_after_days": 7,
            "source": "Seed 003: lymphopenia grade >= 2 at 6 weeks post-radiotherapy.",
        },
        "imaging": {
            "name": "Imaging",
            "kind": "imaging",
            "anchor": "sbrt_end",
            "offset_days": 84,
            "window_before_days": 14,
            "window_after_days": 14,
            "repeat_every_days": 84,
            "repeat_until_days": 365,
            "until_progression": True,
            "source": "Default: every 12 weeks for a year or until progression.",
        },
    },
    "STOP-2": {
        "imaging": {
            "name": "Imaging",
            "kind": "imaging",
            "anchor": "randomisation",
            "offset_days": 84,
            "window_before_days": 14,
            "window_after_days": 14,
            "repeat_every_days": 84,
            "repeat_until_days": 730,
            "until_progression": True,
            "source": "Seed 004: imaging 2-3 months apart; default every 12 weeks for 2 years.",
        },
        "imaging-next-line": _PROGRESSION_IMAGING,
    },
}
