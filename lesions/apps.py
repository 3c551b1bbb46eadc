from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LesionsConfig(AppConfig):
    """Tumour burden and response (RECIST 1.1 / iRECIST): models arrive with the lesions issue."""

    name = "lesions"
    verbose_name = _("Lesions and response")
