from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TreatmentsConfig(AppConfig):
    """SBRT courses, systemic lines and study drugs: models arrive with the treatments issue."""

    name = "treatments"
    verbose_name = _("Treatments")
