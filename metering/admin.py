"""The event log in the admin: read-only, filterable, searchable by event id; and the
tokenizer table, which ops extend."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from common.admin import ReadOnlyAdmin, adopt, form_errors_add, instant_display

from .models import EventArchive, EventSeal, TokenizerRule, UsageEvent
from .tokenizer_rules import (
    RULE_FIELDS,
    tokenizer_rule_check,
    tokenizer_rule_create,
    tokenizer_rule_delete,
    tokenizer_rule_update,
)
from .tokenizers import PACKAGED


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = [
        "event_id", "customer", "timestamp", "model", "feature", "counting", "tokenizer"
    ]  # fmt: skip
    list_filter = ["customer", "model", "feature", "counting", "estimated", "timestamp"]
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


class TokenizerRuleForm(forms.ModelForm):
    file = forms.FileField(
        required=False,
        help_text="For an uploaded tokenizer: the model's Hugging Face tokenizer.json, loaded "
        "before anything is saved. Leave empty to keep the file a rule has.",
    )

    class Meta:
        model = TokenizerRule
        fields = RULE_FIELDS
        help_texts = {
            "pattern": "A model name or glob (* any characters, ? one). The most specific "
            "matching rule wins: an exact name, then the glob with more literal characters.",
            "name": "tiktoken: an encoding (o200k_base, cl100k_base). Packaged: one of "
            f"{', '.join(PACKAGED)}. Uploaded: a name of your choosing.",
        }

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        self.file_data = upload.read() if upload else None
        if not self.errors:
            rule = self.instance
            for name in RULE_FIELDS:
                setattr(rule, name, cleaned.get(name))
            try:
                tokenizer_rule_check(rule=rule, file=self.file_data)
            except ValidationError as error:
                form_errors_add(self, error)
        return cleaned


@admin.register(TokenizerRule)
class TokenizerRuleAdmin(admin.ModelAdmin):
    """The tokenizer table: saved through metering.tokenizer_rules, which loads what a rule
    names (or the uploaded file) before it stores anything, and audits the change."""

    form = TokenizerRuleForm
    list_display = ["pattern", "kind", "name", "estimated", "chat_format", "note"]
    list_filter = ["kind", "estimated", "chat_format"]
    search_fields = ["pattern", "name"]
    readonly_fields = ["sha256", "updated"]
    updated = instant_display("updated_at", description="updated (UTC)")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("tokenizer_json")

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in RULE_FIELDS}
        file = form.file_data
        saved = (
            tokenizer_rule_update(rule=obj, file=file, **fields)
            if change
            else tokenizer_rule_create(file=file, **fields)
        )
        adopt(obj, saved)

    def delete_model(self, request, obj):
        tokenizer_rule_delete(rule=obj)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            tokenizer_rule_delete(rule=rule)
