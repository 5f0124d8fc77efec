"""The WSGI application: the API under /api/v1/ through a lean middleware stack, every
other path (the portal, the admin, the schema pages, Stripe's webhook) through all of it.

The API authenticates every call with a key (no cookie, no session, no CSRF, no HTML), so
the session, CSRF, authentication, messages, common and clickjacking middleware have
nothing to do there, yet they are a seventh of a single-event ingest's CPU. Its stack is
API_MIDDLEWARE: RequestMetricsMiddleware (every request timed, as everywhere),
SecurityMiddleware (HTTPS redirect, HSTS, nosniff and the other security headers, as on
every answer) and AuditActorMiddleware (each request starts with no actor left from the
one before). Both handlers share the settings, URLs and connections; Django's
request signals (connections closed or kept) fire for both.
"""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

API_PREFIX = "/api/v1/"
API_MIDDLEWARE = [
    "common.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "common.audit.AuditActorMiddleware",
]


class ApiHandler(WSGIHandler):
    """Django's WSGI handler with API_MIDDLEWARE only (a subset of MIDDLEWARE, in its order)."""

    def load_middleware(self, is_async=False):
        full = settings.MIDDLEWARE
        try:
            settings.MIDDLEWARE = [name for name in full if name in API_MIDDLEWARE]
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Application:
    """Sends /api/v1/ to the lean handler and everything else to the full one."""

    def __init__(self):
        self.site = get_wsgi_application()  # django.setup() and the full stack
        self.api = ApiHandler()

    def __call__(self, environ, start_response):
        handler = self.api if environ.get("PATH_INFO", "").startswith(API_PREFIX) else self.site
        return handler(environ, start_response)


application = Application()
