from django.apps import AppConfig


class ConsentConfig(AppConfig):
    """Informed consent: versioned consent forms per drug and route, consents signed on a tablet or as a
    scanned paper form, withdrawal, and the standing the pre-dose gate reads (issue 14, point 1)."""

    name = "ketaclinic.consent"
    label = "consent"
    verbose_name = "Consent"
