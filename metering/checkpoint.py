"""The chain head, signed and kept outside the database.

The seal chain proves that nothing inside it changed, but not that its newest seals (or
all of them) are still there: removing them leaves a shorter chain that still verifies.
So after each run that seals, the sealer writes a checkpoint: the newest seal's sequence
and hash, signed with an HMAC key the database does not hold. It is appended to
TOKENTILL_SEAL_CHECKPOINT_FILE (a file, or a shared mount, the database's writers cannot
rewrite) and logged on `metering.checkpoint`, for a log store. `verify_event_log` checks
that the chain still holds the checkpoint's seal, with the same hash.
"""

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from django.conf import settings

logger = logging.getLogger(__name__)


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted: unreadable, or its signature does not match."""


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str
    at: str  # when it was written, ISO 8601

    def payload(self) -> bytes:
        return orjson.dumps(
            {"sequence": self.sequence, "hash": self.hash, "at": self.at},
            option=orjson.OPT_SORT_KEYS,
        )

    def signature(self, key: str) -> str:
        return hmac.new(key.encode(), self.payload(), hashlib.sha256).hexdigest()

    def line(self, key: str) -> str:
        return orjson.dumps(
            {
                "sequence": self.sequence,
                "hash": self.hash,
                "at": self.at,
                "signature": self.signature(key),
            },
        ).decode()


def checkpoint_write(*, sequence: int, seal_hash: str, at: datetime) -> Checkpoint:
    """Log the signed checkpoint, and append it to the checkpoint file when one is set."""
    checkpoint = Checkpoint(sequence=sequence, hash=seal_hash, at=at.isoformat())
    line = checkpoint.line(settings.TOKENTILL_SEAL_CHECKPOINT_KEY)
    logger.info("seal checkpoint %s", line)
    path = settings.TOKENTILL_SEAL_CHECKPOINT_FILE
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
    return checkpoint


def checkpoint_read(path: str | Path, *, key: str | None = None) -> Checkpoint | None:
    """The newest checkpoint in the file (its last line), checked against its signature;
    None when the file holds none yet."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint file {path}: {error}") from error
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None
    return checkpoint_parse(lines[-1], key=key)


def checkpoint_parse(line: str, *, key: str | None = None) -> Checkpoint:
    try:
        fields = orjson.loads(line)
        checkpoint = Checkpoint(
            sequence=int(fields["sequence"]), hash=str(fields["hash"]), at=str(fields["at"])
        )
        signature = str(fields["signature"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint {line[:200]!r} is not one: {error}") from error
    expected = checkpoint.signature(key or settings.TOKENTILL_SEAL_CHECKPOINT_KEY)
    if not hmac.compare_digest(signature, expected):
        raise CheckpointError(
            f"the checkpoint of seal #{checkpoint.sequence} written at {checkpoint.at} "
            "does not match its signature: it was not written with this key"
        )
    return checkpoint
