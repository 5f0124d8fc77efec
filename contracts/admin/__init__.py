"""The contracts app's admin, one module a subject.

Django's admin autodiscover imports `contracts.admin`; importing these modules registers
their ModelAdmins with the admin site.
"""

from . import contracts, customers, rate_cards  # noqa: F401
