"""Stripe's webhook endpoint: POST /stripe/webhook, verified by Stripe's signature.

Not behind the API key (Stripe has none of ours) and exempt from CSRF (Stripe has no form
token): the signature is the authentication. A delivery that fails it, or is older than 5
minutes, is refused with 400 and nothing stored. A verified event is stored once and
applied (billing.stripe_events); a redelivery is answered 200 and changes nothing. An
event that could not be applied is still answered 200: it is kept with its error for the
admin to reprocess, and Stripe need not send it again.
"""

from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .stripe_events import stripe_event_apply, stripe_event_receive
from .stripe_sync import WebhookRefused, stripe_event_verify


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event = stripe_event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
        stored, new = stripe_event_receive(event=event)
    except (WebhookRefused, ValueError) as refused:
        return HttpResponseBadRequest(str(refused), content_type="text/plain")
    applied = stripe_event_apply(event=stored) if new else None
    return JsonResponse({"id": stored.stripe_id, "duplicate": not new, "applied": applied})
