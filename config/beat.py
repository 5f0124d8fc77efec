"""Beat schedules created by migrations: one helper for the periodic tasks every app ships,
so each stays editable (or pausable) by billing ops in the admin's Periodic tasks."""


def interval_schedule(*, name: str, task: str, every: int, period: str, description: str):
    """(forward, backward) functions for migrations.RunPython: run `task` every `every`
    `period` (seconds, minutes, hours, days) under `name`, created once."""

    def forward(apps, schema_editor):
        intervals = apps.get_model("django_celery_beat", "IntervalSchedule").objects
        interval, _ = intervals.get_or_create(every=every, period=period)
        apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "description": description}
        )

    def backward(apps, schema_editor):
        apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()

    return forward, backward
