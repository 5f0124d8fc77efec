"""Stripe's webhook endpoint: POST /stripe/webhook, verified by Stripe's signature.

Not behind the API key (Stripe has none of ours) and exempt from CSRF (Stripe has no form
token): the signature is the authentication. A delivery that fails it, or is older than 5
minutes, is refused with 400 and nothing stored. A verified event is stored once and
applied (billing.stripe.events); a redelivery is answered 200 and changes nothing. An
event that could not be applied is still answered 200: it is kept with its error for the
admin to reprocess, and Stripe need not send it again.
"""

import json

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .events import StripeObject, stripe_event_apply, stripe_event_receive

#: Seconds a webhook's signature stays valid: older deliveries are refused as replays.
WEBHOOK_TOLERANCE = 300


class WebhookRefused(Exception):
    """A webhook delivery that is not Stripe's, or too old to be trusted."""


def stripe_event_verify(*, payload: bytes, signature: str) -> StripeObject:
    """The event a webhook delivers, once its `Stripe-Signature` is verified with
    STRIPE_WEBHOOK_SECRET and its timestamp is within WEBHOOK_TOLERANCE of our clock (a
    captured delivery cannot be replayed later). Raises WebhookRefused otherwise, and
    when no secret is set (webhooks are off: an empty secret would verify anything)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused("Stripe webhooks are off: STRIPE_WEBHOOK_SECRET is not set.")
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE)
        event: StripeObject = json.loads(payload)
        return event
    except (ValueError, stripe.SignatureVerificationError) as error:
        raise WebhookRefused(str(error)) from None


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        stored, new = stripe_event_receive(event=event)
    except (WebhookRefused, ValueError) as refused:
        return HttpResponseBadRequest(str(refused), content_type="text/plain")
    applied = stripe_event_apply(event=stored) if new else None
    return JsonResponse({"id": stored.stripe_id, "duplicate": not new, "applied": applied})
