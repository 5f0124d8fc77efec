"""The usage event log: append-only facts, sealed batch by batch into a hash chain.

Ingest stores a batch's events under a seal id of its own and queues the batch
(`UnsealedBatch`); the sealer (`metering.sealing`) chains queued batches in the order it
finds them, so no request waits for another to seal.
"""

from django.db import models

from contracts.models import Customer


class AppendOnlyError(Exception):
    """Raised on any attempt to change or delete a stored fact."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no UPDATE.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only: no DELETE.")


class AppendOnlyModel(models.Model):
    """Rows are inserted once and never changed (on PostgreSQL a trigger enforces it too)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only: no UPDATE.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only: no DELETE.")


class EventSeal(AppendOnlyModel):
    """One accepted batch: a SHA-256 over its events' canonical hashes and the previous seal.

    Its id is the one ingest gave the batch's events. `sequence` orders the chain; the
    unique constraints make a fork impossible even if two sealers raced past the lock.
    """

    id = models.UUIDField(primary_key=True, editable=False)
    sequence = models.BigIntegerField(unique=True)
    previous_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)
    event_count = models.PositiveIntegerField()
    sealed_at = models.DateTimeField()

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"seal #{self.sequence}"


class UsageEvent(AppendOnlyModel):
    """A model call as a service reported it. Never updated; a correction is a new event.

    `content_hash` is the SHA-256 of the event's canonical form (see `metering.canonical`):
    it tells a resend (same hash: duplicate) from a conflict (same `event_id`, other hash),
    and it is what the seal chain covers.
    """

    class Counting(models.TextChoices):
        REPORTED = "reported", "Reported by the caller or provider"
        TOKENIZED = "tokenized", "Counted by tokentill from text"

    # No single-column indexes on the foreign keys: the composite indexes below lead with
    # customer, and seals are read by walking the chain; each index costs every insert.
    # The seal link has no database constraint either (a tenth of the insert's cost, and
    # the seal row comes later, from the sealer): `verify_event_log` names any event whose
    # seal is missing and whose batch awaits none. Null only in the ORM's eyes, so that
    # reads join the seal as an outer join and list events that await their seal.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="usage_events", db_index=False
    )
    event_id = models.CharField(max_length=255)
    timestamp = models.DateTimeField()
    model = models.CharField(max_length=200)
    feature = models.CharField(max_length=200, blank=True)
    metrics = models.JSONField()
    properties = models.JSONField(default=dict, blank=True)
    counting = models.CharField(max_length=16, choices=Counting.choices)
    provider = models.CharField(max_length=16, blank=True)
    # For a tokenized event: the tokenizer that counted it, and whether that count is an
    # estimate (not the model's own tokenizer). Blank and false for reported counts.
    tokenizer = models.CharField(max_length=100, blank=True, db_default="")
    estimated = models.BooleanField(db_default=False)
    received_at = models.DateTimeField()
    content_hash = models.CharField(max_length=64)
    seal = models.ForeignKey(
        EventSeal,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        db_constraint=False,
        null=True,
    )

    # No unique constraint on (customer, event_id): on PostgreSQL the table is partitioned
    # by month of `timestamp`, and a partitioned table's unique keys must hold the
    # partition key. `UsageEventKey` keeps the ids unique across months instead; the
    # database's primary key is (id, timestamp) there (metering 0010).
    class Meta:
        indexes = [models.Index(fields=["customer", "timestamp"], name="usage_event_cust_ts")]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.model})"


class UsageEventKey(AppendOnlyModel):
    """One per stored event, written by the statement that stores it: (customer, event_id)
    is unique here, across every month's partition of the log, so a resend is recognised
    (same content hash: duplicate; another: conflict) from this row alone, even once the
    event's month is archived and dropped. The seal chain of an archived month is still
    verified from these content hashes (`event_log_verify`)."""

    pk = models.CompositePrimaryKey("customer_id", "event_id")
    customer_id = models.BigIntegerField()
    event_id = models.CharField(max_length=255)
    # The event's id and seal: no database constraints (the event's partition may be
    # dropped once archived); `event_log_verify` checks both sides.
    event_pk = models.BigIntegerField()
    seal_id = models.UUIDField()
    timestamp = models.DateTimeField()
    content_hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.event_id} of customer {self.customer_id}"


class EventArchive(models.Model):
    """A month of the event log written to Parquet, verified, then dropped from the
    database (`manage.py archive_events`). Its events' keys stay in `UsageEventKey`."""

    month = models.DateField(unique=True, help_text="The first day of the month (UTC).")
    file_name = models.CharField(max_length=500)
    row_count = models.BigIntegerField()
    file_sha256 = models.CharField(max_length=64)
    dropped = models.BooleanField(default=False)
    archived_at = models.DateTimeField()

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"events of {self.month:%Y-%m}"


class UnsealedBatch(models.Model):
    """A stored batch waiting for its seal: the sealer's queue.

    Written in the transaction that stores the batch's events, with what the seal needs
    (their content hashes in id order), and deleted in the transaction that seals it, so
    a batch is sealed exactly once whatever crashes in between. Its age is the seal lag.
    """

    seal_id = models.UUIDField(unique=True)
    received_at = models.DateTimeField()
    # The events' content hashes, 64 hex digits each, in event id order.
    content_hashes = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"batch {self.seal_id} to seal"

    @property
    def hashes(self) -> list[str]:
        return [self.content_hashes[i : i + 64] for i in range(0, len(self.content_hashes), 64)]


class UnratedEvent(models.Model):
    """An event waiting to be rated: the rating queue.

    Written in the transaction that stores the event, and deleted in the transaction that
    rates it, so an event can be neither forgotten nor rated twice, whatever crashes in
    between. Rated events come back here when their terms change or a period is re-rated.
    """

    # No database constraint: the queue must never stop an event log check (which can
    # find an event deleted behind tokentill's back); the rater skips what is gone.
    event = models.OneToOneField(
        UsageEvent,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    # The event's customer, so "how much of this customer's usage is not rated yet" is
    # answered without joining the queue to the log.
    customer_id = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return f"event {self.event_id} to rate"


class TokenizerRule(models.Model):
    """Which tokenizer counts the text of the models `pattern` matches (metering.tokenizers
    says how patterns are matched and which wins). An uploaded tokenizer.json is kept in
    the row itself, so every process reads it from the database it already shares; its
    SHA-256 tells a process that its loaded copy is stale."""

    class Kind(models.TextChoices):
        TIKTOKEN = "tiktoken", "tiktoken"
        PACKAGED = "packaged", "packaged"
        UPLOADED = "uploaded", "uploaded"

    class ChatFormat(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        CHATML = "chatml", "ChatML (Qwen)"
        MISTRAL = "mistral", "Mistral"
        NONE = "none", "none (estimated)"

    pattern = models.CharField(max_length=200, unique=True)
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        help_text="tiktoken: one of its encodings; packaged: a tokenizer whose files an "
        "installed package ships; uploaded: a Hugging Face tokenizer.json sent with the rule.",
    )
    name = models.CharField(
        max_length=100,
        help_text="The tiktoken encoding, the packaged tokenizer, or an uploaded one's name.",
    )
    estimated = models.BooleanField(
        default=False, help_text="Its counts are estimates: not the model's own tokenizer."
    )
    chat_format = models.CharField(
        max_length=16,
        choices=ChatFormat.choices,
        help_text="How chat messages are framed: OpenAI's cookbook rule, Qwen's ChatML, "
        "mistral-common's encoder; with none, messages are counted as their text, estimated.",
    )
    tokenizer_json = models.TextField(blank=True, editable=False)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True, editable=False)
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pattern"]

    def __str__(self) -> str:
        return f"{self.pattern} → {self.name}"
