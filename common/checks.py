"""System checks: what `manage.py check --deploy --fail-level WARNING` stops a deploy for."""

from django.conf import settings
from django.core import checks

PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.caches, deploy=True)
def shared_cache_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The rate limits' counters are in a cache every web process shares (common.throttling):
    in each process's own memory, every process would grant a whole budget of its own."""
    if settings.CACHES["default"]["BACKEND"] not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            "The cache is each process's own memory, so every web process counts the rate "
            "limits alone.",
            id="common.W001",
            hint="Set CACHE_URL to a Redis every web process reaches, e.g. "
            "redis://redis.internal:6379/2.",
        )
    ]
