"""Writes of data management: source data verification and investigator signatures.

Locks are written by ``patients/locking.py``; queries by ``patients/query_services.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from patients import casebook
from patients.models_dm import Signature, SourceVerification
from studies.access import scope_for
from studies.audit import reason_for_change
from studies.roles import SDV_ROLES, SIGNER_ROLES


def parse_tokens(tokens: Iterable[str]) -> set[tuple[str, int]]:
    """``["ae:12", "lab:3"]`` -> {("ae", 12), ("lab", 3)}; anything malformed is dropped."""
    keys = set()
    for token in tokens:
        kind, _sep, object_id = str(token).partition(":")
        if object_id.isdigit():
            keys.add((kind, int(object_id)))
    return keys


def _require(user, roles, patient) -> None:
    study_site = patient.study_site
    if not scope_for(user).has_role(roles, study_site.study_id, study_site.pk):
        raise PermissionDenied


@transaction.atomic
def forms_verify(*, patient, keys: set[tuple[str, int]], by) -> int:
    """Mark forms source-data verified as they are now (their current content hash).

    A later change of any value gives the form another hash, so it shows as not verified
    ("changed since verification") until the monitor verifies it again.
    """
    _require(by, SDV_ROLES, patient)
    if not keys:
        raise ValidationError(_("Choose at least one form to verify."))
    hashes = casebook.current_hashes(patient.pk)
    unknown = keys - hashes.keys()
    if unknown:
        raise ValidationError(_("Some of these forms no longer exist; reload the page."))
    now = timezone.now()
    with reason_for_change("source data verification"):
        for kind, object_id in sorted(keys):
            SourceVerification.objects.update_or_create(
                form_kind=kind,
                object_id=object_id,
                defaults={
                    "patient": patient,
                    "content_hash": hashes[(kind, object_id)],
                    "verified_by": by,
                    "verified_at": now,
                },
            )
    return len(keys)


def check_password(request, user, password: str) -> bool:
    """Re-authenticate ``user`` (21 CFR 11.200): a wrong password counts toward the lockout.

    ``authenticate`` goes through django-axes, which records the failure against the user name
    and address exactly as a failed login does.
    """
    if not password:
        return False
    result = authenticate(request, username=user.get_username(), password=password)
    return result is not None and result.pk == user.pk


def casebook_sign(
    *,
    request,
    patient,
    by,
    password: str,
    username: str | None = None,
    keys: set[tuple[str, int]] | None = None,
) -> Signature:
    """Sign the whole casebook (``keys`` None) or the given forms, re-entering both components of
    the signature, user name and password (21 CFR 11.200: every signing, not only the first).

    The signature records the printed name, the UTC time, the meaning, and the hash of every
    signed form (21 CFR 11.50, 11.70); it stays valid only while none of them changes.  The
    password is checked outside the transaction so that a failure stays recorded for the lockout.
    """
    _require(by, SIGNER_ROLES, patient)
    if username is not None and username.strip() != by.get_username():
        raise ValidationError({"username": _("This is not your user name.")})
    if not check_password(request, by, password):
        raise ValidationError({"password": _("Wrong password. The signature was not recorded.")})
    return _signature_record(patient=patient, by=by, keys=keys)


@transaction.atomic
def _signature_record(*, patient, by, keys: set[tuple[str, int]] | None) -> Signature:
    rows = {row.key: row for row in casebook.form_rows([patient.pk])}
    chosen = set(rows) if keys is None else keys
    if not chosen:
        raise ValidationError(_("There is nothing to sign yet."))
    if chosen - rows.keys():
        raise ValidationError(_("Some of these forms no longer exist; reload the page."))
    unfinished = sorted(
        f"{casebook.form_label(k)} {i}" for k, i in chosen if not rows[(k, i)].complete
    )
    if unfinished:
        raise ValidationError(
            _("Forms still in progress cannot be signed: %(forms)s.")
            % {"forms": ", ".join(unfinished)}
        )
    forms = [[kind, object_id, rows[(kind, object_id)].hash] for kind, object_id in sorted(chosen)]
    signature = Signature(
        patient=patient,
        signer=by,
        printed_name=by.get_full_name() or by.get_username(),
        signed_at=timezone.now(),
        meaning=str(Signature.MEANING),
        scope=Signature.Scope.CASEBOOK if keys is None else Signature.Scope.FORMS,
        forms=forms,
        content_hash=casebook.signature_hash(forms),
    )
    signature.full_clean()
    with reason_for_change("investigator signature"):
        signature.save()
    return signature
