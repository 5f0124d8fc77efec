from django.urls import path

from . import authorization_views, correction_views, invoice_views, period_views, usage_views

urlpatterns = [
    path(
        "customers/<str:external_id>/usage", usage_views.UsageView.as_view(), name="customer-usage"
    ),
    path(
        "customers/<str:external_id>/usage.csv",
        usage_views.UsageCsvView.as_view(),
        name="customer-usage-csv",
    ),
    path(
        "customers/<str:external_id>/usage/rerate",
        usage_views.RerateView.as_view(),
        name="customer-usage-rerate",
    ),
    path(
        "customers/<str:external_id>/invoices",
        invoice_views.InvoiceListView.as_view(),
        name="customer-invoices",
    ),
    path(
        "customers/<str:external_id>/invoices/<str:number>",
        invoice_views.InvoiceDetailView.as_view(),
        name="customer-invoice",
    ),
    path(
        "customers/<str:external_id>/invoices/<str:number>/lines/<int:position>/events",
        invoice_views.LineEventsView.as_view(),
        name="customer-invoice-line-events",
    ),
    path(
        "customers/<str:external_id>/invoices/<str:number>/pdf",
        invoice_views.InvoicePdfView.as_view(),
        name="customer-invoice-pdf",
    ),
    path(
        "customers/<str:external_id>/invoices/<str:number>/credit-notes",
        invoice_views.CreditNotesView.as_view(),
        name="customer-invoice-credit-notes",
    ),
    path(
        "customers/<str:external_id>/invoices/<str:number>/credit-notes/<str:note_number>/pdf",
        invoice_views.CreditNotePdfView.as_view(),
        name="customer-credit-note-pdf",
    ),
    path(
        "customers/<str:external_id>/invoice-preview",
        invoice_views.InvoicePreviewView.as_view(),
        name="customer-invoice-preview",
    ),
    path(
        "customers/<str:external_id>/periods",
        period_views.CustomerPeriodsView.as_view(),
        name="customer-periods",
    ),
    path("periods/close", period_views.ClosePeriodsView.as_view(), name="periods-close"),
    path(
        "authorizations",
        authorization_views.AuthorizationsView.as_view(),
        name="authorizations",
    ),
    path(
        "rate-cards/<str:name>/corrections",
        correction_views.PriceCorrectionsView.as_view(),
        name="rate-card-corrections",
    ),
    path("holds/<uuid:hold_id>", authorization_views.HoldView.as_view(), name="hold-detail"),
    path(
        "holds/<uuid:hold_id>/release",
        authorization_views.HoldReleaseView.as_view(),
        name="hold-release",
    ),
]
