from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from metering.checkpoint import CheckpointError, checkpoint_read
from metering.selectors import event_log_verify


class Command(BaseCommand):
    help = (
        "Walk the event log's seal chain and name the first event or seal that no longer "
        "matches; with a checkpoint file, also that the newest seals are still there."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            metavar="FILE",
            default=settings.TOKENTILL_SEAL_CHECKPOINT_FILE,
            help="the sealer's checkpoint file, whose last line is checked "
            "(default: TOKENTILL_SEAL_CHECKPOINT_FILE)",
        )

    def handle(self, *args, **options):
        path = options["checkpoint"]
        try:
            checkpoint = checkpoint_read(path) if path else None
        except CheckpointError as error:
            raise CommandError(f"Event log verification FAILED: {error}") from error
        result = event_log_verify(checkpoint=checkpoint)
        if not result.ok:
            raise CommandError(
                f"Event log verification FAILED after {result.seals} seals and "
                f"{result.events} events: {result.problem}"
            )
        awaiting = f"; {result.awaiting_seal} more await their seal" if result.awaiting_seal else ""
        held = f"; the checkpoint's seal #{checkpoint.sequence} is there" if checkpoint else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Event log intact: {result.seals} seals, "
                f"{result.events} events verified{awaiting}{held}."
            )
        )
