from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views
from .forms import PortalAuthenticationForm, PortalPasswordResetForm

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/fragment", views.dashboard_fragment, name="dashboard_fragment"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<str:number>.pdf", views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<str:number>/", views.invoice_detail, name="invoice"),
    path(
        "invoices/<str:number>/credit-notes/<str:note_number>.pdf",
        views.credit_note_pdf,
        name="credit_note_pdf",
    ),
    path(
        "invoices/<str:number>/credit-notes/<str:note_number>/",
        views.credit_note_detail,
        name="credit_note",
    ),
    path("usage.csv", views.usage_csv, name="usage_csv"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("api-keys/<str:prefix>/revoke/", views.api_key_revoke, name="api_key_revoke"),
    path("wallet/", views.wallet, name="wallet"),
    path("alerts/", views.alerts, name="alerts"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="portal/registration/login.html",
            authentication_form=PortalAuthenticationForm,
            next_page=reverse_lazy("portal:dashboard"),
            redirect_authenticated_user=False,
        ),
        name="login",
    ),
    path(
        "logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("portal:login")),
        name="logout",
    ),
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="portal/registration/password_reset_form.html",
            email_template_name="portal/email/password_reset.txt",
            subject_template_name="portal/email/password_reset_subject.txt",
            form_class=PortalPasswordResetForm,
            success_url=reverse_lazy("portal:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="portal/registration/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="portal/registration/password_set.html",
            success_url=reverse_lazy("portal:password_reset_complete"),
        ),
        name="password_reset_confirm",
    ),
    path(
        "set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="portal/registration/password_set_done.html"
        ),
        name="password_reset_complete",
    ),
]
