"""The Celery app: configured from Django settings (`CELERY_*`), tasks found in each app.

A worker keeps its database connection from one task to the next, as a web process keeps
its own between requests. Celery's Django fix-up would close it after every task, so
every task (the rater's and the sealer's many a second) would open a new one: a server
process forked, authentication, and no statement still prepared. CELERY_DB_REUSE_MAX
(settings) leaves the connection to `connections_checked`, which gives it Django's
request rule: closed when past CONN_MAX_AGE, after an error that left it unusable, or
in the middle of a transaction.
"""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tokentill")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def connections_checked(sender=None, **kwargs) -> None:
    """Before and after each task in a worker, what Django does around each request. A
    task run eagerly is inside its caller's request or transaction: left alone."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
