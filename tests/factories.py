"""factory_boy factories for the protocol and patient tables."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from patients.models import Patient
from studies.models import Arm, Membership, Site, Study, StudySite

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    first_name = "Test"
    last_name = factory.LazyAttribute(lambda u: u.username.title())

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save()


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    code = factory.Sequence(lambda n: f"STUDY-{n}")
    acronym = factory.LazyAttribute(lambda s: s.code)
    title = factory.LazyAttribute(lambda s: f"Trial {s.code}")
    phase = Study.Phase.PHASE2
    design = Study.Design.RANDOMISED
    blinding = Study.Blinding.OPEN
    target_enrolment = 100
    sponsor = "Test sponsor"


class ArmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Arm

    study = factory.SubFactory(StudyFactory)
    code = factory.Sequence(lambda n: f"ARM{n}")
    name = factory.LazyAttribute(lambda a: f"Arm {a.code}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    institution = factory.Sequence(lambda n: f"Institute {n}")
    city = "Caen"
    country = "France"


class StudySiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StudySite

    study = factory.SubFactory(StudyFactory)
    site = factory.SubFactory(SiteFactory)
    number = factory.Sequence(lambda n: f"{n % 9000 + 100:04d}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    study = factory.LazyAttribute(lambda m: m.study_site.study if m.study_site else None)
    study_site = None
    role = "investigator"
    blinded = False


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    study_site = factory.SubFactory(StudySiteFactory)
    subject_id = factory.Sequence(lambda n: f"SUBJ-{n:05d}")
    status = Patient.Status.ENROLLED
    enrolled_on = factory.Faker("date_between", start_date="-1y", end_date="today")
