"""`manage.py archive_events --month 2026-01 --to DIR [--drop]` (metering.archive)."""

from contextlib import nullcontext
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.db_roles import owner_connection
from metering.archive import ArchiveRefused, event_month_archive


def _month(text: str) -> date:
    try:
        year, month = text.split("-")
        return date(int(year), int(month), 1)
    except ValueError as error:
        raise CommandError(f"--month is YYYY-MM, not {text!r}") from error


class Command(BaseCommand):
    help = (
        "Write a month of the event log to DIR/usage-events-YYYY-MM.parquet, read it back and "
        "verify every row against the database; with --drop, then detach and drop the month's "
        "partition (PostgreSQL; as DATABASE_OWNER_URL's role when set). Refuses a month "
        "inside the lateness window or the retention, or with events still to rate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", required=True, help="The month, YYYY-MM (UTC).")
        parser.add_argument("--to", required=True, help="The folder the Parquet file goes to.")
        parser.add_argument(
            "--drop", action="store_true", help="Detach and drop the partition once verified."
        )

    def handle(self, *args, **options):
        month = _month(options["month"])
        owner = settings.DATABASE_OWNER
        with owner_connection(owner) if owner else nullcontext():
            try:
                archive = event_month_archive(
                    month=month, directory=Path(options["to"]), drop=options["drop"]
                )
            except ArchiveRefused as error:
                raise CommandError(f"{month:%Y-%m} not archived: {error}") from error
        done = "verified, partition dropped" if archive.dropped else "verified, partition kept"
        self.stdout.write(
            self.style.SUCCESS(
                f"{archive.month:%Y-%m}: {archive.row_count} events to {archive.file_name} "
                f"(sha256 {archive.file_sha256}), {done}."
            )
        )
