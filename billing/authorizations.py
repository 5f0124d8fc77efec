"""Authorizations: a model call priced at its worst case before it is made, and the
customer's credits held for it, so spend can be stopped before it happens.

The rules (docs/guide/credits.md, "Authorizations"):

- **Worst case.** The prompt's tokens all count as uncached input and `max_output_tokens`
  as output (or the caller's own token estimates, as given); a prompt count that is an
  estimate (a tokenizer not the model's own) is first raised by
  TOKENTILL_ESTIMATE_SAFETY_FACTOR, rounded up (pricing.rating.estimated_tokens_bound);
  priced with the price the call would match under the customer's terms in force now
  (their rate overrides included), less the contract's discount. Tiered prices are bounded
  (pricing.rating.worst_case_amount).
- **Allowance first.** What is left of the period's included allowance pays first; the
  hold is for the rest.
- **Block** (the contract's overage policy): allowed only when the available credits
  (balance less active holds) cover the hold; once the period's usage has run past the
  credits, every call is refused until credits cover that shortfall.
- **Arrears**: always allowed; the hold reserves what the credits can cover, and the rest
  (`overage`) would be billed in arrears.
- Nothing to hold (the allowance covers the call, or an arrears customer has no wallet)
  places no hold: the call is allowed with `hold` None.
- The usage event that carries the hold's id (its `hold_id` property) settles it when it
  is rated; a hold that no usage settles expires after TOKENTILL_HOLD_SECONDS.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from contracts.models import ContractTerms, Customer
from pricing.money import rated
from pricing.rating import price_for_event, worst_case_amount
from wallets.models import Hold
from wallets.services import InsufficientCredits, hold_place

from .models import UsageDrawDown
from .periods import period_money, period_rollups
from .terms import terms_now

_ZERO = Decimal(0)


class Refusal:
    """Why an authorization is refused: the codes the API answers with."""

    UNKNOWN_CUSTOMER = "unknown_customer"
    NO_CONTRACT = "no_contract"
    NO_PRICE = "no_price"
    CONTRACT_BLOCKED = "contract_blocked"
    INSUFFICIENT_CREDITS = "insufficient_credits"


@dataclass(frozen=True)
class Authorization:
    """The answer: `allowed` with its `hold`, or refused with `reason` and `message`."""

    allowed: bool
    reason: str = ""
    message: str = ""
    customer: Customer | None = None
    estimate: Decimal | None = None  # the worst case, after discount
    allowance: Decimal = _ZERO  # of it, what the included allowance left covers
    overage: Decimal = _ZERO  # of it, what would be billed in arrears
    hold: Hold | None = None


def authorization_create(
    *,
    customer_id: str,
    model: str,
    metrics: dict[str, int],
    feature: str = "",
    properties: dict[str, str] | None = None,
    reference: str = "",
) -> Authorization:
    """Price the call's worst case (`metrics`: its token counts at most) and hold credits
    for it, or refuse it. Two authorizations racing for the last credits queue on the
    wallet's lock (wallets.services.hold_place): the second sees the first's hold."""
    now = timezone.now()
    found = terms_now(customer_id=customer_id, at=now)
    customer, terms = found.customer, found.terms
    if customer is None:
        return Authorization(False, Refusal.UNKNOWN_CUSTOMER, f"No customer '{customer_id}'.")
    if terms is None:
        message = f"{customer.external_id} has no contract in force."
        return Authorization(False, Refusal.NO_CONTRACT, message, customer)
    price = price_for_event(found.prices, model=model, feature=feature, properties=properties or {})
    if price is None:
        message = f"No price of {terms.rate_card.name} matches '{model}'."
        return Authorization(False, Refusal.NO_PRICE, message, customer)
    estimate = rated(worst_case_amount(price, metrics) * (1 - terms.discount))
    period_start, period_end = terms.contract.period_bounds(now)
    record = UsageDrawDown.objects.filter(customer=customer, period_start=period_start).first()
    allowance = min(estimate, _allowance_left(record, terms, period_start, period_end))
    needed = estimate - allowance
    block = terms.overage_policy == ContractTerms.Overage.BLOCK
    if block and needed and record is not None and record.short > 0:
        message = (
            f"{customer.external_id}'s usage this period has run past its credits; spend is "
            "blocked until credits cover it."
        )
        return Authorization(False, Refusal.CONTRACT_BLOCKED, message, customer, estimate)
    hold = None
    if needed:
        try:
            hold = hold_place(
                customer=customer,
                amount=needed,
                estimate=estimate,
                up_to=not block,
                reference=reference or model,
            )
        except InsufficientCredits as refusal:
            return Authorization(
                False, Refusal.INSUFFICIENT_CREDITS, str(refusal), customer, estimate, allowance
            )
    return Authorization(
        True,
        customer=customer,
        estimate=estimate,
        allowance=allowance,
        overage=needed - (hold.amount if hold else _ZERO),
        hold=hold,
    )


def _allowance_left(
    record: UsageDrawDown | None, terms: ContractTerms, start: datetime, end: datetime
) -> Decimal:
    """The period's included allowance not yet used: as rating last left it on the period's
    draw-down record (which stays as it was while events of the period wait to be rated
    again), or, for a customer rating keeps none for (no credits, no budget), from the
    period's rollups as the usage endpoint shows it (waiting events not counted)."""
    if not terms.included_allowance:
        return _ZERO
    if record is not None:
        return max(record.allowance_left, _ZERO)
    customer = terms.contract.customer
    rollups = period_rollups(customer_id=customer.pk, start=start, end=end)
    charges = period_money(customer=customer, start=start, end=end, rollups=rollups).charges
    return max(sum(charges.allowances, _ZERO) - charges.allowance_used, _ZERO)
