"""Admin helpers shared by the apps' admins."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

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
    """Rows shown inside their parent's page, never edited there."""

    extra = 0
    can_delete = False

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


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit trail (common.audit): every change made by ops, never edited."""

    list_display = ("at", "actor", "action", "object_repr", "customer", "reason")
    list_filter = ("action", "object_type")
    search_fields = ("customer", "object_id", "actor", "object_repr")
    date_hierarchy = "at"


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
