"""The event log in the admin: read-only, filterable, searchable by event id."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin

from .models import EventArchive, EventSeal, UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "customer", "timestamp", "model", "feature", "counting"]
    list_filter = ["customer", "model", "feature", "counting", "timestamp"]
    list_select_related = ["customer"]
    search_fields = ["=event_id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in UsageEvent._meta.fields]


@admin.register(EventSeal)
class EventSealAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "event_count", "sealed_at", "hash"]
    readonly_fields = [f.name for f in EventSeal._meta.fields]
    show_full_result_count = False


@admin.register(EventArchive)
class EventArchiveAdmin(ReadOnlyAdmin):
    """Months of the log written to Parquet by `manage.py archive_events`."""

    list_display = [
        "month_shown",
        "rows",
        "file_name",
        "sha256",
        "dropped",
        "archived_at",
    ]
    readonly_fields = [f.name for f in EventArchive._meta.fields]

    @admin.display(description="month", ordering="month")
    def month_shown(self, archive: EventArchive) -> str:
        return f"{archive.month:%Y-%m}"

    @admin.display(description="events", ordering="row_count")
    def rows(self, archive: EventArchive) -> str:
        return f"{archive.row_count:,}"

    @admin.display(description="file SHA-256")
    def sha256(self, archive: EventArchive) -> str:
        """Its first 12 digits, enough to tell files apart; the whole on the row's page."""
        return f"{archive.file_sha256[:12]}…"
