from django.core.management.base import BaseCommand, CommandError

from metering.selectors import event_log_verify


class Command(BaseCommand):
    help = (
        "Walk the event log's seal chain and name the first event or seal that no longer matches."
    )

    def handle(self, *args, **options):
        result = event_log_verify()
        if not result.ok:
            raise CommandError(
                f"Event log verification FAILED after {result.seals} seals and "
                f"{result.events} events: {result.problem}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Event log intact: {result.seals} seals, {result.events} events verified."
            )
        )
