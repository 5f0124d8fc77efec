"""What every app's writes share: idempotency keys of API requests, and the audit trail of
changes made by ops."""

from django.db import models


class IdempotencyKey(models.Model):
    """A POST made with an `Idempotency-Key` header, and the answer it got
    (`common.idempotency`): the same key and body from the same caller get this answer
    again, and the work is not done twice. Kept TOKENTILL_IDEMPOTENCY_HOURS at least."""

    owner = models.CharField(max_length=80, help_text="The caller: an API key or a user.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status = models.PositiveSmallIntegerField()
    body = models.TextField(help_text="The answer's JSON, as it was sent.")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_once")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_age")]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"


class AuditEntry(models.Model):
    """One change made by ops, in the admin, over the API or with a command
    (`common.audit`): who, when, what (the object before and after) and why."""

    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, help_text="user:<username>, key:<name> (<prefix>)…")
    action = models.CharField(max_length=80, help_text="What was done, e.g. credit_grant.create.")
    object_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80)
    object_repr = models.CharField(max_length=200)
    customer = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="The customer's external_id."
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "audit trail"
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_repr}"
