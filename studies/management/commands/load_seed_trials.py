"""Create or update the seed trials from studies/seed_data.py; running it twice changes nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pghistory
from django.core.management.base import BaseCommand
from django.db import models, transaction

from studies.models import (
    Arm,
    CriterionRule,
    EligibilityCriterion,
    Site,
    Study,
    StudySite,
    VisitDefinition,
)
from studies.seed_data import SEED_TRIALS, SeedTrial
from studies.seed_rules import (
    SEED_AGENTS,
    SEED_ARM_PRESCRIPTIONS,
    SEED_DRUG_REGIMENS,
    SEED_IRECIST_ARMS,
    SEED_RULES,
    SEED_SAFETY,
    SEED_SBRT_RULES,
    SEED_SETTINGS,
    SEED_VISITS,
)
from treatments.models import Agent, ArmPrescription, DrugRegimen, SbrtConstraint

# Our own wording where a registry page gives no title or acronym (see the trial's notes).
_FALLBACK_NAMES = {
    "STORM-01-R": ("StORM-01 randomised", None),
    "ATRA-SBRT": (
        "SBRT ± ATRA",
        "Pan-metastases SBRT with or without all-trans retinoic acid (ATRA) against "
        "radiation-induced lymphopenia in oligometastatic cancer: phase I/II (safety run-in, "
        "then 1:1 randomisation)",
    ),
}


def upsert(
    model: type[models.Model], lookup: dict[str, Any], values: dict[str, Any]
) -> tuple[models.Model, bool]:
    """Create the row, or update only the fields that differ (no write, no audit row, if none)."""
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model(**lookup, **values)
        obj.full_clean()
        obj.save()
        return obj, True
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.full_clean()
        obj.save(update_fields=changed)
    return obj, bool(changed)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _find_site(institution: str, city: str, country: str) -> Site:
    site = Site.objects.filter(
        institution__iexact=institution, city__iexact=city, country__iexact=country
    ).first()
    if site is None:
        site = Site(institution=institution, city=city, country=country)
        site.full_clean()
        site.save()
    return site


def load_trial(trial: SeedTrial) -> Study:
    acronym, title = _FALLBACK_NAMES.get(trial.code, (None, None))
    study, _ = upsert(
        Study,
        {"code": trial.code},
        {
            "acronym": trial.acronym or acronym or trial.code,
            "title": trial.title or title or trial.condition,
            "registry_id": trial.registry_id,
            "other_ids": ", ".join(trial.other_ids),
            "phase": trial.phase,
            "design": trial.design,
            "blinding": trial.blinding,
            "target_enrolment": trial.target_enrolment,
            "status": trial.status,
            "start_date": _date(trial.start_date),
            "completion_date": _date(trial.completion_date),
            "sponsor": trial.sponsor,
            "collaborators": ", ".join(trial.collaborators),
            "condition": trial.condition,
            "primary_endpoint": trial.primary_endpoint,
            **SEED_SETTINGS.get(trial.code, {}),
        },
    )
    for arm in trial.arms:
        upsert(
            Arm,
            {"study": study, "code": arm.code},
            {
                "name": arm.name,
                "description": arm.description,
                "allocation_weight": arm.allocation_weight,
                "uses_irecist": (trial.code, arm.code) in SEED_IRECIST_ARMS,
            },
        )
    for number, seed_site in enumerate(trial.sites, start=1):
        site = _find_site(seed_site.institution, seed_site.city, seed_site.country)
        upsert(
            StudySite,
            {"study": study, "site": site},
            {
                "number": f"{number:02d}",
                "recruitment_status": seed_site.recruitment_status,
            },
        )
    load_criteria(study, trial)
    load_sbrt_rules(study, trial)
    load_drug_regimens(study, trial)
    load_safety_rules(study, trial)
    for code, values in SEED_VISITS.get(trial.code, {}).items():
        upsert(VisitDefinition, {"study": study, "code": code}, values)
    return study


def load_sbrt_rules(study: Study, trial: SeedTrial) -> None:
    if trial.code in SEED_SBRT_RULES:
        upsert(SbrtConstraint, {"study": study}, SEED_SBRT_RULES[trial.code])
    for arm in study.arms.all():
        fixed = SEED_ARM_PRESCRIPTIONS.get((trial.code, arm.code))
        if fixed:
            upsert(
                ArmPrescription,
                {"arm": arm},
                {"total_dose_gy": Decimal(fixed[0]), "fractions": fixed[1]},
            )


def load_agents() -> None:
    for name, drug_class in SEED_AGENTS.items():
        upsert(Agent, {"name": name}, {"drug_class": drug_class})


def load_drug_regimens(study: Study, trial: SeedTrial) -> None:
    for arm in study.arms.all():
        seed = SEED_DRUG_REGIMENS.get((trial.code, arm.code))
        if seed:
            values = {k: v for k, v in seed.items() if k != "agent"}
            values = {
                k: Decimal(v) if k in ("dose", "rounding_mg") else v for k, v in values.items()
            }
            agent = Agent.objects.get(name=seed["agent"])
            upsert(DrugRegimen, {"study": study, "agent": agent}, {"arm": arm, **values})


def load_safety_rules(study: Study, trial: SeedTrial) -> None:
    from patients.models import SafetyRules

    values = {
        "pharmacovigilance_emails": f"pharmacovigilance+{trial.code.lower()}@sponsor.example",
        **SEED_SAFETY.get(trial.code, {}),
    }
    upsert(SafetyRules, {"study": study}, values)


def load_criteria(study: Study, trial: SeedTrial) -> None:
    for seed in trial.criteria:
        criterion, _ = upsert(
            EligibilityCriterion,
            {"study": study, "kind": seed.kind, "number": seed.number},
            {"text": seed.text},
        )
        wanted = [
            (key, params)
            for key, params in SEED_RULES.get((trial.code, seed.kind, seed.number), ())
        ]
        existing = [(r.rule_key, r.params) for r in criterion.rules.order_by("pk")]
        wanted = [(key, params) for key, params in wanted]
        if existing != wanted:
            criterion.rules.all().delete()
            for key, params in wanted:
                rule = CriterionRule(criterion=criterion, rule_key=key, params=params)
                rule.full_clean()
                rule.save()


class Command(BaseCommand):
    help = "Create or update the seed trials (studies, arms, sites) from the registry pages."

    def handle(self, *args, **options) -> None:
        with (
            transaction.atomic(),
            pghistory.context(
                command="load_seed_trials", reason="Seed trials from their registry pages"
            ),
        ):
            load_agents()
            for trial in SEED_TRIALS:
                study = load_trial(trial)
                self.stdout.write(
                    f"{study.code}: {study.arms.count()} arms, {study.study_sites.count()} sites"
                )
