"""Portal users in the admin: staff invite a customer's people (portal_user_invite) and
change their role; the invitation emails a link to set a password."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from common.admin import AuditedAdmin
from contracts.models import Customer

from . import customer_page  # noqa: F401  (the customer page's portal users section)
from .models import PortalUser
from .services import portal_user_invite


class InviteForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.order_by("external_id"))
    email = forms.EmailField()
    role = forms.ChoiceField(choices=PortalUser.Role.choices, initial=PortalUser.Role.VIEWER)


@admin.register(PortalUser)
class PortalUserAdmin(AuditedAdmin):
    list_display = ("user", "customer", "role", "invited_by", "invited_at", "has_password")
    list_filter = ("role",)
    search_fields = ("user__email", "customer__external_id", "customer__name")
    list_select_related = ("user", "customer")
    fields = ("user", "customer", "role", "invited_by", "invited_at")
    readonly_fields = ("user", "customer", "invited_by", "invited_at")

    @admin.display(boolean=True, description="Password set")
    def has_password(self, portal_user: PortalUser) -> bool:
        return portal_user.user.has_usable_password()

    def add_view(self, request, form_url="", extra_context=None):
        """Adding a portal user is inviting one: the service creates the account and emails
        the set-password link."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = InviteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                portal_user = portal_user_invite(
                    **form.cleaned_data,
                    invited_by=request.user.get_username(),
                    base_url=request.build_absolute_uri("/"),
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                self.message_user(
                    request,
                    f"Invited {portal_user.user.email} to {portal_user.customer.name}'s "
                    "portal: they were emailed a link to set their password.",
                    messages.SUCCESS,
                )
                return redirect("admin:portal_portaluser_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Invite a portal user",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/portal/portaluser/invite.html", context)
