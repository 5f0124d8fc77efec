"""Admin helpers shared by the apps' admins: read-only and audited bases, columns that
show money and instants as people read them, a service's result adopted by the admin, a
refusal shown on a form; and the audit trail's admin."""

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from functools import reduce
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString

from pricing.money import exact_label, money_label

from .audit import audit_record, snapshot
from .models import AuditEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Facts are shown, never added, changed or deleted from the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown inside their parent's page, never edited there: a plain table of their
    columns, without the admin's caption above each row or its empty delete column, so a
    page keeps its width for what the rows say."""

    extra = 0
    can_delete = False
    template = "admin/edit_inline/read_only_tabular.html"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Records each add, change and delete made on this admin page in the audit trail
    (`common.audit`), with the object before and after. Pages whose changes go through a
    service that records them itself do not need it."""

    def audit_customer(self, obj: models.Model) -> str:
        """The external_id of the object's customer, when it has one."""
        customer = getattr(obj, "customer", None)
        return getattr(customer, "external_id", "") if customer is not None else ""

    def save_model(self, request, obj, form, change):
        before = None
        if change:
            stored = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = snapshot(stored) if stored is not None else None
        super().save_model(request, obj, form, change)
        action = f"{obj._meta.model_name}.{'change' if change else 'create'}"
        audit_record(action, obj, before=before, customer=self.audit_customer(obj))

    def delete_model(self, request, obj):
        before, customer = snapshot(obj), self.audit_customer(obj)
        pk = obj.pk
        super().delete_model(request, obj)
        obj.pk = pk
        audit_record(
            f"{obj._meta.model_name}.delete", obj, before=before, customer=customer, deleted=True
        )


def adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved `obj` the row a service just saved.

    The admin goes on using the object it passed to `save_model` (change message, log
    entry, redirect), so the service's result is copied into it rather than returned.
    """
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state = saved._state


def form_errors_add(form: forms.Form, error: ValidationError) -> None:
    """A service's refusal shown on the form: each message on its field when the form has
    it, else above the form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def next_url(request: HttpRequest, default: str) -> str:
    """Where an admin action returns once it is done: the `next` it was opened with (a
    page of this site, such as the customer page that linked to it), else `default`.

    A `next` that leaves the site is ignored, so a link cannot send a user elsewhere."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- columns ---------------------------------------------------------------------------------

Display = Callable[[Any, models.Model], SafeString | str]


def money_display(
    field: str,
    currency: str,
    *,
    description: str | None = None,
    exact: bool = False,
    sortable: bool = True,
) -> Display:
    """A list column or read-only field showing the money in `field` as people read it,
    in the currency at the dotted path `currency` ("invoice.currency"): billed money with
    the currency's minor places (`money_label`: 1,234.50 USD), or, with `exact`, a rated
    figure with its 12 places (`exact_label`), only where it explains a line (rated
    usage). Kept on one line; empty shows as the admin's empty value ("-"). A list sorts
    by `field` unless it is not a column (`sortable=False`).

    Used as a ModelAdmin's attribute: `balance_shown = money_display("balance", "currency")`.
    """

    def show(model_admin, obj: models.Model) -> SafeString:
        value = getattr(obj, field)
        if value is None:
            return model_admin.get_empty_value_display()
        code: Any = reduce(getattr, currency.split("."), obj)
        text = (exact_label if exact else money_label)(Decimal(value), code)
        return format_html('<span style="white-space: nowrap">{}</span>', text)

    label = description or field.replace("_", " ")
    return admin.display(description=label, ordering=field if sortable else None)(show)


def instant_display(field: str, *, description: str | None = None, day: bool = False) -> Display:
    """A list column or read-only field showing the instant in `field` in UTC, short and
    on one line: 2026-12-05 20:56 (with `day`, where a list needs no more, 2026-12-05),
    never "Dec. 5, 2026, 8:56 p.m."."""

    def show(model_admin, obj: models.Model) -> SafeString:
        value = getattr(obj, field)
        if value is None:
            return model_admin.get_empty_value_display()
        text = f"{value.astimezone(UTC):{'%Y-%m-%d' if day else '%Y-%m-%d %H:%M'}}"
        return format_html('<span style="white-space: nowrap">{}</span>', text)

    label = description or field.replace("_", " ")
    return admin.display(description=label, ordering=field)(show)


def customer_display(path: str = "customer") -> Display:
    """A list column naming the customer at the dotted `path` by its external id, short
    (acme), where "Acme Corp (acme)" would take the width of a figure."""

    def show(model_admin, obj: models.Model) -> str:
        customer: Any = reduce(getattr, path.split("."), obj)
        return customer.external_id

    ordering = f"{path.replace('.', '__')}__external_id"
    return admin.display(description="customer", ordering=ordering)(show)


def count_text(value: int | Decimal) -> str:
    """A count or quantity with thousands separators and the digits it has: 1,346 and
    1,200.5, never 1.000000000000."""
    return f"{Decimal(value).normalize():,f}"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail (common.audit): every change made by ops, never edited."""

    list_display = ("at_shown", "actor", "action", "object_shown", "customer", "reason")
    list_filter = ("action", "object_type")
    search_fields = ("customer", "object_id", "actor", "object_repr")
    date_hierarchy = "at"
    at_shown = instant_display("at", description="at (UTC)")

    @admin.display(description="object", ordering="object_repr")
    def object_shown(self, entry: AuditEntry) -> str:
        return entry.object_repr
