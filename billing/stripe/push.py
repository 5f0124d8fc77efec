"""Every call tokentill makes to Stripe, each with an idempotency key made of our own row ids.

**What is pushed.** An invoice is pushed when its status is *finalized*: right after its
period closes (a task sent when the closing commits) and again by beat every 5 minutes
(`stripe_push_pending`) until its push has finished. Invoices with nothing to pay are
closed as paid and never pushed; paid, void and uncollectible ones are not pushed either.
Credit notes whose destination is Stripe follow once their invoice is in Stripe, and so
do open top-up requests (a Stripe invoice for the top-up, whose payment grants it).

**A push**, with the keys that make each step happen once in Stripe:

1. the customer's Stripe customer, created the first time (`tokentill-customer-<pk>`);
2. a draft Stripe invoice (`tokentill-invoice-<pk>`) that takes none of the customer's
   pending items and does not auto-advance (Stripe would otherwise finalize a draft still
   being filled an hour later), with our invoice's id and number in its metadata;
3. one invoice item per line (`tokentill-invoice-<pk>-line-<position>`);
4. finalizing it with auto-advance (`tokentill-invoice-<pk>-finalize`), so Stripe then
   sends or charges it; Stripe's total is compared with ours, to the minor unit.

Each Stripe id is stored as soon as Stripe gives it. A push that fails anywhere (a timeout,
a 500, a 429, a refusal) records the error in `stripe_error` and stops; the next push
starts where it stopped: what has a stored id is skipped, and a request whose answer was
lost is sent again with its key, which Stripe answers with what it did the first time. So
however often a push is cut short, Stripe has one invoice and one item per line. Stripe
keeps keys for 24 hours at least; beat retries every 5 minutes well within that.

**Lines** are sent so that Stripe's line amount is ours exactly: a whole, non-negative
quantity at a non-negative price goes as `quantity` times `unit_amount_decimal` (the unit price
in minor units to 12 places, so sub-cent prices stay exact), which Stripe rounds once per
line half away from zero, as pricing.money does (checked before sending); any other line
(discounts, the allowance, prepaid credits: negative) goes as its rounded `amount` in
minor units, which Stripe documents may be negative.

**Two workers** never push one invoice at once: a push claims its row first with a
conditional UPDATE of `stripe_claimed_until`, and holds no transaction open while Stripe
answers (on SQLite that would hold the only write lock). A worker that dies leaves its
claim to lapse after `CLAIM`; even then the keys keep Stripe's side single.

**Off.** Without STRIPE_API_KEY (the demo, a local quickstart) nothing is pushed: each
function logs that Stripe is off and returns, and invoices keep empty Stripe fields.
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeAlias

import stripe
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from stripe import RequestOptions
from stripe.params import (
    CreditNoteCreateParams,
    CustomerCreateParams,
    InvoiceCreateParams,
    InvoiceItemCreateParams,
)

from contracts.models import Customer
from pricing.cycles import span_text
from pricing.money import plain, to_minor_units, whole_quantity_line
from wallets.models import TopUpRequest

from ..models import CreditNote, Invoice, InvoiceLine, StripeCustomer, TopUpInvoice
from .events import stripe_invoice_status_apply

logger = logging.getLogger(__name__)

#: How long a push's claim keeps other workers off the row: beyond any push's length.
CLAIM = timedelta(minutes=10)
_BATCH = 200
#: What is pushed as a Stripe invoice: both have the same Stripe fields.
_Pushed: TypeAlias = Invoice | TopUpInvoice


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_API_KEY)


def _off(what: str) -> None:
    logger.info("Stripe is off (STRIPE_API_KEY is not set): %s", what)


def _client() -> stripe.StripeClient:
    return _client_for(
        settings.STRIPE_API_KEY,
        settings.STRIPE_API_BASE,
        settings.TOKENTILL_STRIPE_MAX_NETWORK_RETRIES,
        settings.TOKENTILL_STRIPE_TIMEOUT_SECONDS,
    )


@functools.lru_cache(maxsize=4)
def _client_for(api_key: str, api_base: str, retries: int, timeout: float) -> stripe.StripeClient:
    """One client per configuration, so connections are reused (its sessions are kept per
    thread). The library retries timeouts, 500s and 429s by itself, with the same key."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else {},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def _key(*parts: object) -> RequestOptions:
    return {"idempotency_key": "-".join(["tokentill", *map(str, parts)])}


def _error(error: stripe.StripeError) -> str:
    return f"{type(error).__name__}: {error.user_message or error}"[:500]


# --- customers ------------------------------------------------------------------------------


def stripe_customer_ensure(*, customer: Customer) -> str | None:
    """The customer's Stripe id, its Stripe customer created the first time it is needed
    (key `tokentill-customer-<pk>`); None when Stripe is off. Stripe's errors are raised
    for the caller to record."""
    if not stripe_enabled():
        _off(f"no Stripe customer for {customer.external_id}")
        return None
    known = StripeCustomer.objects.filter(customer=customer).first()
    if known is not None:
        return known.stripe_id
    params: CustomerCreateParams = {
        "name": customer.name,
        "metadata": {"tokentill_customer": customer.external_id},
    }
    if customer.email:
        params["email"] = customer.email
    created = _client().v1.customers.create(params=params, options=_key("customer", customer.pk))
    record, _ = StripeCustomer.objects.get_or_create(
        customer=customer, defaults={"stripe_id": created.id, "created_at": timezone.now()}
    )
    return record.stripe_id


# --- invoices -------------------------------------------------------------------------------


@dataclass
class _Item:
    """One invoice item to create, with its key, and where its Stripe id is stored."""

    key: tuple[object, ...]
    params: InvoiceItemCreateParams
    stripe_id: str
    store: Callable[[str], object]


def invoice_push(*, invoice: Invoice) -> Invoice:
    """Push a finalized invoice to Stripe, or finish a push cut short (see the module's
    docstring); the invoice as it is after. Does nothing for an invoice already pushed,
    not finalized, or being pushed by another worker; records Stripe's refusal or absence
    in `stripe_error`, for beat to push it again."""
    if not stripe_enabled():
        _off(f"invoice {invoice} is not pushed")
        return invoice
    _invoice_push(invoice.pk)
    return Invoice.objects.get(pk=invoice.pk)


def _invoice_push(pk: int) -> bool:
    """True when this call finished the invoice's push."""
    if not _claim(Invoice, pk, status=Invoice.Status.FINALIZED):
        return False
    invoice = Invoice.objects.select_related("customer").get(pk=pk)
    assert invoice.number is not None  # finalized: numbered when its period closed
    currency = invoice.currency
    items = [
        _Item(
            ("invoice", invoice.pk, "line", line.position),
            {
                "description": line.description,
                "period": {"start": _unix(line.period_start), "end": _unix(line.period_end)},
                "metadata": {
                    "tokentill_invoice": str(invoice.pk),
                    "tokentill_line": str(line.position),
                },
                **_line_amount(line.quantity, line.unit_price, line.amount, currency),
            },
            line.stripe_id,
            functools.partial(_line_store, line.pk),
        )
        for line in invoice.lines.order_by("position")
    ]
    return _stripe_invoice_push(
        invoice,
        customer=invoice.customer,
        currency=currency,
        key=("invoice", invoice.pk),
        params={
            "description": (
                f"{invoice.number}: {span_text(invoice.period_start, invoice.period_end)}"
            ),
            "metadata": {"tokentill_invoice": str(invoice.pk), "tokentill_number": invoice.number},
            **_collection(days_until_due=_payment_terms_days(invoice)),
        },
        items=items,
        total=to_minor_units(invoice.total, currency),
    )


def _line_store(line_pk: int, stripe_id: str) -> None:
    InvoiceLine.objects.filter(pk=line_pk).update(stripe_id=stripe_id)


def _line_amount(
    quantity: Decimal, unit_price: Decimal, amount: Decimal, currency: str
) -> InvoiceItemCreateParams:
    """The item's money as Stripe takes it, so that Stripe's line amount is `amount`
    (rounded, ours) exactly: quantity and unit price where both can be sent and Stripe's
    rounding of their product gives it, else the amount itself (negative lines)."""
    whole = whole_quantity_line(quantity, unit_price, amount, currency)
    if whole is not None:
        # Text, not the Decimal the stub asks for: Stripe takes a decimal string, and text
        # never turns into an exponent (1E-7) on the way.
        return {"quantity": whole[0], "unit_amount_decimal": whole[1]}  # type: ignore[typeddict-item]
    return {"amount": to_minor_units(amount, currency)}


def _stripe_invoice_push(
    row: _Pushed,
    *,
    customer: Customer,
    currency: str,
    key: tuple[object, ...],
    params: InvoiceCreateParams,
    items: list[_Item],
    total: int,
) -> bool:
    """Steps 1 to 4 of a push for a claimed `row` (an Invoice or a TopUpInvoice: both have
    the same Stripe fields), storing each id as soon as Stripe gives it; the claim is let
    go at the end, whatever happened. True when the push finished."""
    model = type(row)
    try:
        client = _client()
        customer_id = stripe_customer_ensure(customer=customer)
        assert customer_id is not None  # None only when Stripe is off: callers check first
        if not row.stripe_id:
            draft = client.v1.invoices.create(
                params={
                    "customer": customer_id,
                    "currency": currency.lower(),
                    "pending_invoice_items_behavior": "exclude",
                    "auto_advance": False,
                    **_collection(),
                    **params,
                },
                options=_key(*key),
            )
            row.stripe_id = draft.id
            model.objects.filter(pk=row.pk).update(stripe_id=draft.id, stripe_status=draft.status)
        for item in items:
            if not item.stripe_id:
                created = client.v1.invoice_items.create(
                    params={"customer": customer_id, "invoice": row.stripe_id, **item.params},
                    options=_key(*item.key),
                )
                item.store(created.id)
        final = client.v1.invoices.finalize_invoice(
            row.stripe_id, params={"auto_advance": True}, options=_key(*key, "finalize")
        ).to_dict()
    except stripe.StripeError as error:
        logger.warning("Stripe push of %s %s failed: %s", model.__name__, row.pk, error)
        model.objects.filter(pk=row.pk).update(
            stripe_claimed_until=None, stripe_error=_error(error)
        )
        return False
    except BaseException:
        model.objects.filter(pk=row.pk).update(stripe_claimed_until=None)
        raise
    mismatch = ""
    if final["total"] != total:
        mismatch = f"Stripe's total is {final['total']}, ours {total} (minor units)."
        logger.error(
            "Stripe invoice %s of %s %s: %s", final["id"], model.__name__, row.pk, mismatch
        )
    pushed: dict[str, Any] = {"stripe_pushed_at": timezone.now(), "stripe_error": mismatch}
    if model is Invoice:  # the page where the customer pays it, printed on its PDF
        pushed["stripe_hosted_url"] = final.get("hosted_invoice_url") or ""
    model.objects.filter(pk=row.pk).update(stripe_claimed_until=None, **pushed)
    stripe_invoice_status_apply(
        stripe_invoice=final, status=final["status"], at=_status_changed_at(final)
    )
    return True


def _collection(days_until_due: int | None = None) -> InvoiceCreateParams:
    """How Stripe collects: with `send_invoice`, due `days_until_due` days after Stripe
    finalizes it (default TOKENTILL_STRIPE_DAYS_UNTIL_DUE, as for top-ups)."""
    method = settings.TOKENTILL_STRIPE_COLLECTION_METHOD
    if method == "send_invoice":
        days = (
            settings.TOKENTILL_STRIPE_DAYS_UNTIL_DUE if days_until_due is None else days_until_due
        )
        return {"collection_method": method, "days_until_due": days}
    return {"collection_method": method}


def _payment_terms_days(invoice: Invoice) -> int | None:
    """The payment terms the invoice's due date was set by (its contract's or the
    default), in days, so Stripe's due date is the one its PDF prints."""
    if invoice.due_at is None or invoice.finalized_at is None:
        return None
    return (invoice.due_at - invoice.finalized_at).days


def _claim(model: type[_Pushed], pk: int, **conditions: object) -> bool:
    """Take the row for one push: only when it still needs one and no live claim holds it."""
    now = timezone.now()
    unclaimed = Q(stripe_claimed_until__isnull=True) | Q(stripe_claimed_until__lt=now)
    return bool(
        model.objects.filter(unclaimed, pk=pk, stripe_pushed_at__isnull=True, **conditions).update(
            stripe_claimed_until=now + CLAIM
        )
    )


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _status_changed_at(stripe_invoice: dict[str, Any]) -> datetime:
    """When Stripe last changed the invoice's status, by Stripe's clock."""
    transitions = stripe_invoice.get("status_transitions") or {}
    seconds = max([value for value in transitions.values() if value] or [stripe_invoice["created"]])
    return datetime.fromtimestamp(seconds, UTC)


# --- credit notes and top-ups ---------------------------------------------------------------


def credit_note_push(*, credit_note: CreditNote) -> CreditNote:
    """A credit note for Stripe (destination stripe) as a Stripe credit note against its
    invoice (key `tokentill-credit-note-<pk>`), once the invoice is in Stripe; against a
    paid invoice its amount goes to the customer's Stripe balance (Stripe asks where a
    credit after payment goes). Does nothing for other credit notes or one already sent;
    records Stripe's refusal in `stripe_error`."""
    if not stripe_enabled():
        _off(f"credit note {credit_note} is not pushed")
        return credit_note
    note = CreditNote.objects.select_related("invoice").get(pk=credit_note.pk)
    invoice = note.invoice
    if (
        note.destination != CreditNote.Destination.STRIPE
        or note.stripe_id
        or note.amount <= 0
        or invoice.stripe_pushed_at is None
    ):
        return note
    amount = to_minor_units(note.amount, invoice.currency)
    params: CreditNoteCreateParams = {
        "invoice": invoice.stripe_id,
        "amount": amount,
        "memo": note.memo or note.get_reason_display(),
        "metadata": {"tokentill_credit_note": str(note.pk), "tokentill_number": note.number},
    }
    if invoice.stripe_status == "paid":
        params["credit_amount"] = amount
    try:
        created = _client().v1.credit_notes.create(
            params=params, options=_key("credit-note", note.pk)
        )
    except stripe.StripeError as error:
        logger.warning("Stripe credit note for %s failed: %s", note, error)
        CreditNote.objects.filter(pk=note.pk, stripe_id="").update(stripe_error=_error(error))
    else:
        CreditNote.objects.filter(pk=note.pk).update(stripe_id=created.id, stripe_error="")
    return CreditNote.objects.get(pk=note.pk)


def topup_invoice_push(*, request: TopUpRequest) -> TopUpInvoice | None:
    """Charge an open top-up request by a Stripe invoice for its amount (keys
    `tokentill-topup-<pk>`, `...-item`, `...-finalize`, pushed as an invoice is), whose
    payment grants the credits (billing.stripe.events); None when Stripe is off."""
    if not stripe_enabled():
        _off(f"top-up {request.pk} is not charged through Stripe")
        return None
    _topup_push(request.pk)
    return TopUpInvoice.objects.filter(request_id=request.pk).first()


def _topup_push(request_pk: int) -> bool:
    """True when this call finished the top-up's push."""
    request = TopUpRequest.objects.select_related("wallet__customer").get(pk=request_pk)
    if request.status != TopUpRequest.Status.REQUESTED:
        return False
    row, _ = TopUpInvoice.objects.get_or_create(request=request)
    if not _claim(TopUpInvoice, row.pk):
        return False
    row = TopUpInvoice.objects.get(pk=row.pk)
    wallet = request.wallet
    minor = to_minor_units(request.amount, wallet.currency)
    metadata = {"tokentill_topup": str(request.pk)}
    item = _Item(
        ("topup", request.pk, "item"),
        {
            "amount": minor,
            "description": f"Prepaid credits: {plain(request.amount)} {wallet.currency}",
            "metadata": metadata,
        },
        row.stripe_item_id,
        lambda stripe_id: TopUpInvoice.objects.filter(pk=row.pk).update(stripe_item_id=stripe_id),
    )
    return _stripe_invoice_push(
        row,
        customer=wallet.customer,
        currency=wallet.currency,
        key=("topup", request.pk),
        params={"description": "Prepaid credits top-up", "metadata": metadata},
        items=[item],
        total=minor,
    )


# --- beat: push what is not in Stripe yet, reconcile what is -------------------------------


def stripe_push_pending() -> int:
    """Push what is not in Stripe yet (beat: every 5 minutes): finalized invoices whose
    push never ran, failed or was cut short; then credit notes for Stripe whose invoice
    is there; then open top-up requests. How many were pushed. Safe in two workers at
    once: each invoice and top-up is claimed before it is pushed."""
    if not stripe_enabled():
        _off("nothing is pushed")
        return 0
    pushed = 0
    invoices = Invoice.objects.filter(
        status=Invoice.Status.FINALIZED, stripe_pushed_at__isnull=True
    ).order_by("pk")
    for pk in invoices.values_list("pk", flat=True)[:_BATCH]:
        pushed += _invoice_push(pk)
    notes = CreditNote.objects.filter(
        destination=CreditNote.Destination.STRIPE,
        stripe_id="",
        amount__gt=0,
        invoice__stripe_pushed_at__isnull=False,
    ).order_by("pk")
    for note in notes[:_BATCH]:
        pushed += bool(credit_note_push(credit_note=note).stripe_id)
    topups = (
        TopUpRequest.objects.filter(status=TopUpRequest.Status.REQUESTED)
        .filter(Q(stripe_invoice__isnull=True) | Q(stripe_invoice__stripe_pushed_at__isnull=True))
        .order_by("pk")
    )
    for pk in topups.values_list("pk", flat=True)[:_BATCH]:
        pushed += _topup_push(pk)
    return pushed


def stripe_reconcile() -> int:
    """Read from Stripe the status of every invoice (and top-up) still open here and apply
    it as its webhook would have (beat: hourly), so a webhook lost or refused is made good;
    how many changed. Safe to run twice or at once: the status precedence ignores what is
    already known."""
    if not stripe_enabled():
        _off("nothing is reconciled")
        return 0
    rows: list[_Pushed] = [
        *Invoice.objects.filter(
            status__in=[Invoice.Status.FINALIZED, Invoice.Status.UNCOLLECTIBLE],
            stripe_pushed_at__isnull=False,
        ).order_by("pk"),
        *TopUpInvoice.objects.filter(
            request__status=TopUpRequest.Status.REQUESTED, stripe_pushed_at__isnull=False
        ).order_by("pk"),
    ]
    changed = 0
    for row in rows:
        try:
            found = _client().v1.invoices.retrieve(row.stripe_id).to_dict()
            changed += stripe_invoice_status_apply(
                stripe_invoice=found, status=found["status"], at=_status_changed_at(found)
            )
        except stripe.StripeError as error:
            logger.warning("Stripe invoice %s could not be read: %s", row.stripe_id, error)
        except Exception:  # one row's trouble (a cancelled top-up paid) stops no other
            logger.exception("Stripe invoice %s could not be reconciled", row.stripe_id)
    return changed
