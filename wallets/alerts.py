"""Thresholds: alerts when usage or credits cross them, their delivery, top-up requests.

Alerts fire as it happens, in the transaction that moved the money: billing calls
`alerts_check_usage` with a period's usage as it rates it, under that period's draw-down
lock; the wallet services call `alerts_check_wallet` under the wallet's lock after every
movement. Each alert is a row unique per customer and `key` (what it fires once for: a
share of a period's budget, a share of a grant, an episode of a low balance), inserted in
a savepoint: a second worker that gets there too meets the constraint and moves on, so it
fires exactly once. Its deliveries (an email, a webhook) are rows written beside it and
sent after the commit; a rolled-back rating sends nothing.

Delivery is at least once, by the policy every delivery of tokentill's follows
(webhooks.attempts: a claim so one worker sends each attempt, retries after 1 min, 5 min,
30 min, 2 h and 12 h, then failed). Webhooks are signed as billing webhooks are
(webhooks.signing), with the customer's webhook secret; receivers tell a resend by the
`Tokentill-Delivery` header. Each alert is also a billing webhook event for the operator's
endpoints (wallets.webhook_events).
"""

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from common.audit import audit_record, snapshot
from common.tasks import DELIVER_ALERT, task_send
from contracts.models import Customer
from pricing.money import money_label
from webhooks.attempts import deliveries_retry, delivery_attempt, delivery_retry_failed
from webhooks.signing import webhook_post

from .models import Alert, AlertDelivery, AlertSettings, CreditGrant, TopUpRequest, Wallet
from .selectors import alert_settings_for
from .webhook_events import alert_data, alert_event_emit

# --- Settings -------------------------------------------------------------------------------


#: What billing ops and the API may change; the webhook secret is tokentill's own.
ALERT_SETTINGS_FIELDS = (
    "budget", "budget_shares", "credit_shares", "balance_below", "emails", "webhook_url",
    "topup_below", "topup_amount",
)  # fmt: skip


def alert_settings_update(*, customer: Customer, **fields: Any) -> AlertSettings:
    """Change the customer's alert settings (created on first use); validated in full."""
    unknown = set(fields) - set(ALERT_SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} cannot be set")
    with transaction.atomic():
        alert_settings, _ = AlertSettings.objects.select_for_update().get_or_create(
            customer=customer
        )
        before = snapshot(alert_settings)
        for name, value in fields.items():
            setattr(alert_settings, name, value)
        alert_settings.full_clean()
        alert_settings.save()
        audit_record(
            "alert_settings.change", alert_settings, before=before, customer=customer.external_id
        )
    return alert_settings


# --- Firing ---------------------------------------------------------------------------------


def alerts_check_usage(
    *, customer: Customer, period_start: datetime, usage: Decimal
) -> list[Alert]:
    """Fire each share of the customer's budget that the period's `usage` (after
    discount, in their currency) has reached and that has not fired this period.

    Billing calls this in the rating transaction, under the period's lock, with the
    period's usage so far. Several shares crossed at once fire one alert each. Usage
    lowered by re-rating fires nothing and takes nothing back; a budget changed mid-period
    does not fire again the shares that fired already.
    """
    alert_settings = alert_settings_for(customer=customer)
    budget = alert_settings.budget
    if budget is None:
        return []
    start = period_start.astimezone(UTC)
    reached = [share for share in alert_settings.budget_shares if usage * 100 >= budget * share]
    candidates = [
        Alert(
            customer=customer,
            kind=Alert.Kind.BUDGET,
            key=f"budget {start:%Y-%m-%dT%H:%M:%SZ} {share}%",
            share=share,
            threshold=budget,
            amount=usage,
            currency=customer.currency,
            period_start=start,
            message=f"{customer.external_id}: {share} % of your "
            f"{money_label(budget, customer.currency)} budget used",
        )
        for share in sorted(reached)
    ]
    return _alerts_fire(candidates, alert_settings)


def alerts_check_wallet(*, wallet: Wallet) -> list[Alert]:
    """After a movement of `wallet`, under its lock: fire the credit shares its grants
    have reached, the low balance, and request a top-up when one is due.

    - A grant's share used is (amount - remaining) / amount: what usage and negative
      adjustments took (expiry does not count: expired grants are not looked at). Each
      share fires once per grant.
    - The low balance fires once per episode: an episode starts when the balance falls
      under `balance_below` and ends when a movement finds it back at or above (the alert
      gets `cleared_at`); the next fall is a new episode.
    - A top-up is requested when the balance is under `topup_below` and the wallet has no
      open request, so a run of draw-downs asks once; when it is paid (or cancelled), the
      next fall under the threshold asks again.

    The balance and top-up thresholds watch the wallet in the customer's billing currency.
    """
    return alerts_check_wallets(wallets=[wallet])


def alerts_check_wallets(*, wallets: list[Wallet]) -> list[Alert]:
    """`alerts_check_wallet` for many wallets (each with its customer), under their locks:
    their settings, grants, known alerts and balances read once for all of them, so a
    draw-down pass over many customers checks their alerts in a few statements."""
    if not wallets:
        return []
    now = timezone.now()
    settings_of = _settings_of({wallet.customer_id: wallet.customer for wallet in wallets})
    candidates = _credit_alerts(wallets, settings_of, now)
    fired = _alerts_fire_many(candidates, settings_of)
    watched = [
        wallet
        for wallet in wallets
        if wallet.currency == wallet.customer.currency
        and (
            settings_of[wallet.customer_id].balance_below is not None
            or settings_of[wallet.customer_id].topup_below is not None
        )
    ]
    balances = dict(
        Wallet.objects.filter(pk__in=[wallet.pk for wallet in watched]).values_list(
            "pk", "balance"
        )
    ) if watched else {}  # fmt: skip
    for wallet in watched:
        alert_settings, balance = settings_of[wallet.customer_id], balances[wallet.pk]
        if alert_settings.balance_below is not None:
            fired += _balance_alerts(wallet, alert_settings, balance, now)
        below = alert_settings.topup_below
        if below is not None and alert_settings.topup_amount and balance < below:
            _topup_request(wallet, alert_settings.topup_amount, balance, now)
    return fired


def _settings_of(customers: dict[int, Customer]) -> dict[int, AlertSettings]:
    """Each customer's alert settings, or the defaults (unsaved), in one read."""
    found = {
        row.customer_id: row for row in AlertSettings.objects.filter(customer_id__in=customers)
    }
    settings_of = {}
    for pk, customer in customers.items():
        settings_of[pk] = found.get(pk) or AlertSettings(customer=customer)
        settings_of[pk].customer = customer
    return settings_of


def _credit_alerts(
    wallets: list[Wallet], settings_of: dict[int, AlertSettings], now: datetime
) -> list[Alert]:
    # Live grants with something used, but not those that reached the top share already
    # (spent grants pile up over the years; they are done with), nor those granted for
    # later and not credited yet (nothing of them is in the wallet). One read per top
    # share among the customers (one for all who keep the default shares).
    by_top: dict[int, list[Wallet]] = {}
    for wallet in wallets:
        shares = settings_of[wallet.customer_id].credit_shares
        if shares:
            by_top.setdefault(max(shares), []).append(wallet)
    candidates: list[Alert] = []
    for top, group in sorted(by_top.items()):
        of = {wallet.pk: wallet for wallet in group}
        grants = (
            CreditGrant.objects.filter(
                wallet_id__in=list(of), amount__gt=0, remaining__lt=models.F("amount")
            )
            .filter(credited_at__isnull=False)
            .filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))
            .exclude(
                models.Exists(
                    Alert.objects.filter(
                        grant=models.OuterRef("pk"), kind=Alert.Kind.CREDITS, share=top
                    )
                )
            )
            .order_by("wallet_id", "pk")
        )
        for grant in grants:
            wallet = of[grant.wallet_id]
            currency = wallet.currency
            used = grant.amount - grant.remaining
            kind = grant.get_source_display().lower()
            candidates += [
                Alert(
                    customer=wallet.customer,
                    kind=Alert.Kind.CREDITS,
                    key=f"credits grant {grant.pk} {share}%",
                    share=share,
                    threshold=grant.amount,
                    amount=used,
                    currency=currency,
                    wallet=wallet,
                    grant=grant,
                    message=f"{wallet.customer.external_id}: {share} % of your "
                    f"{money_label(grant.amount, currency)} {kind} credits used",
                )
                for share in sorted(settings_of[wallet.customer_id].credit_shares)
                if used * 100 >= grant.amount * share
            ]
    return candidates


def _balance_alerts(
    wallet: Wallet, alert_settings: AlertSettings, balance: Decimal, now: datetime
) -> list[Alert]:
    threshold = alert_settings.balance_below
    assert threshold is not None  # the caller checks that one is set
    episodes = Alert.objects.filter(wallet=wallet, kind=Alert.Kind.BALANCE)
    latest = episodes.order_by("-pk").first()
    if balance >= threshold:
        if latest is not None and latest.cleared_at is None:
            episodes.filter(pk=latest.pk).update(cleared_at=now)
        return []
    if latest is not None and latest.cleared_at is None:
        return []  # this episode has fired already
    customer = wallet.customer
    alert = Alert(
        customer=customer,
        kind=Alert.Kind.BALANCE,
        key=f"balance wallet {wallet.pk} #{episodes.count() + 1}",
        threshold=threshold,
        amount=balance,
        currency=wallet.currency,
        wallet=wallet,
        message=f"{customer.external_id}: your credit balance of "
        f"{money_label(balance, wallet.currency)} is below "
        f"{money_label(threshold, wallet.currency)}",
    )
    return _alerts_fire([alert], alert_settings)


def _topup_request(wallet: Wallet, amount: Decimal, balance: Decimal, now: datetime) -> None:
    if TopUpRequest.objects.filter(wallet=wallet, status=TopUpRequest.Status.REQUESTED).exists():
        return
    try:
        with transaction.atomic():
            TopUpRequest.objects.create(
                wallet=wallet, amount=amount, balance=balance, requested_at=now
            )
    except IntegrityError:
        pass  # requested meanwhile by a transaction that did not hold this wallet's lock


def _alerts_fire(candidates: list[Alert], alert_settings: AlertSettings) -> list[Alert]:
    """Insert the alerts not fired before, each with its deliveries; return those."""
    if not candidates:
        return []
    return _alerts_fire_many(candidates, {candidates[0].customer_id: alert_settings})


def _alerts_fire_many(
    candidates: list[Alert], settings_of: dict[int, AlertSettings]
) -> list[Alert]:
    """Insert the alerts not fired before (of any customers: which fired is read once),
    each with its deliveries, by its customer's settings; return those."""
    if not candidates:
        return []
    known = set(
        Alert.objects.filter(
            customer_id__in={alert.customer_id for alert in candidates},
            key__in=[alert.key for alert in candidates],
        ).values_list("customer_id", "key")
    )
    now = timezone.now()
    fired = []
    for alert in candidates:
        if (alert.customer_id, alert.key) in known:
            continue
        alert.fired_at = now
        try:
            with transaction.atomic():
                alert.save(force_insert=True)
        except IntegrityError:
            continue  # fired by another worker meanwhile
        _deliveries_create(alert, settings_of[alert.customer_id], now)
        alert_event_emit(alert=alert)
        fired.append(alert)
    return fired


# --- Delivering -----------------------------------------------------------------------------


def _deliveries_create(alert: Alert, alert_settings: AlertSettings, now: datetime) -> None:
    deliveries = []
    recipients = alert_settings.recipients()
    if recipients:
        deliveries.append(
            AlertDelivery(
                channel=AlertDelivery.Channel.EMAIL,
                target=", ".join(recipients),
                payload={"subject": alert.message, "message": _email_text(alert)},
            )
        )
    if alert_settings.webhook_url:
        deliveries.append(
            AlertDelivery(
                channel=AlertDelivery.Channel.WEBHOOK,
                target=alert_settings.webhook_url,
                payload=_webhook_payload(alert),
            )
        )
    for delivery in deliveries:
        delivery.alert, delivery.created_at, delivery.next_attempt_at = alert, now, now
        delivery.save(force_insert=True)
        transaction.on_commit(partial(_deliver_later, delivery.pk), robust=True)


def _deliver_later(delivery_id: int) -> None:
    task_send(DELIVER_ALERT, delivery_id)


def alert_delivery_send(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """One attempt at a delivery that is due; its status after, or None when it was not
    due (delivered, failed, waiting, or being sent by another worker).

    Safe to call twice or from two workers: the claim lets one through.
    """
    return delivery_attempt(
        deliveries=AlertDelivery.objects.select_related("alert__customer"),
        delivery_id=delivery_id,
        now=now or timezone.now(),
        send=_send,
    )


def alert_deliveries_retry(*, now: datetime | None = None) -> int:
    """Attempt every pending delivery that is due (beat: every minute); how many were
    delivered. Finds again those whose worker died mid-send, once their claim lapses."""
    return deliveries_retry(
        model=AlertDelivery,
        attempt=lambda pk, at: alert_delivery_send(delivery_id=pk, now=at),
        now=now or timezone.now(),
    )


def alert_delivery_retry(*, delivery: AlertDelivery) -> bool:
    """Try a failed delivery again, now: one more attempt (its count goes on, so failing
    again fails it again). False when it was not failed."""
    return delivery_retry_failed(
        model=AlertDelivery, delivery_id=delivery.pk, now=timezone.now(), send_later=_deliver_later
    )


def _send(delivery: AlertDelivery) -> int | None:
    if delivery.channel == AlertDelivery.Channel.EMAIL:
        send_mail(
            subject=delivery.payload["subject"],
            message=delivery.payload["message"],
            from_email=None,
            recipient_list=delivery.target.split(", "),
        )
        return None
    secret = AlertSettings.objects.values_list("webhook_secret", flat=True).get(
        customer_id=delivery.alert.customer_id
    )
    return webhook_post(
        url=delivery.target, payload=delivery.payload, secret=secret, delivery_id=delivery.pk
    )


def _webhook_payload(alert: Alert) -> dict[str, Any]:
    """What a webhook says about an alert: money as exact text with 12 places."""
    return {"type": f"alert.{alert.kind}", **alert_data(alert)}


def _email_text(alert: Alert) -> str:
    customer, currency = alert.customer, alert.currency
    if alert.kind == Alert.Kind.BUDGET:
        detail = (
            f"Usage in the billing period from {alert.period_start:%Y-%m-%d} is "
            f"{money_label(alert.amount, currency)}: {alert.share} % of your budget of "
            f"{money_label(alert.threshold, currency)}."
        )
    elif alert.kind == Alert.Kind.CREDITS:
        assert alert.grant is not None  # a credits alert is about a grant
        detail = (
            f"{money_label(alert.amount, currency)} of the "
            f"{money_label(alert.threshold, currency)} "
            f"granted on {alert.grant.effective_at:%Y-%m-%d} are used; "
            f"{money_label(alert.threshold - alert.amount, currency)} are left."
        )
    else:
        detail = (
            f"Your credit balance is {money_label(alert.amount, currency)}, below the "
            f"{money_label(alert.threshold, currency)} you set. Usage beyond your credits is "
            "invoiced."
        )
    return f"{customer.name}: {detail}\n\nEach alert is sent once."
