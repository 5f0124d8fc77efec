"""System checks: what `manage.py check --deploy --fail-level WARNING` stops a deploy for."""

from django.core import checks

from .invoicing.pdf.fonts import fonts_missing


@checks.register(checks.Tags.compatibility)
def pdf_fonts_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The fonts invoice and credit-note PDFs embed are installed (Debian's packages)."""
    return [
        checks.Warning(
            message, id="billing.W001", hint="scripts/demo and scripts/test install them."
        )
        for message in fonts_missing()
    ]
