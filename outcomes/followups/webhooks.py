"""The SMS provider's webhooks: delivery receipts and replies (sms.py).

Both are refused with 403 unless Twilio's ``X-Twilio-Signature`` matches the URL Twilio was
given (``SITE_URL`` and the path) and the form, so no one else can mark a text delivered or
stop a patient's texts. Nothing of the request (it carries the number) is logged.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from outcomes.followups import sending, sms

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed(request: HttpRequest) -> bool:
    return sms.signature_valid(
        url=settings.SITE_URL + request.get_full_path(),
        params=request.POST.dict(),
        signature=request.headers.get("X-Twilio-Signature", ""),
    )


@csrf_exempt
@require_POST
def sms_status(request: HttpRequest, attempt_id: int) -> HttpResponse:
    if not _signed(request):
        return HttpResponseForbidden("invalid signature")
    # Not delivered: the step goes by email, or to the phone worklist (sending.py).
    sending.sms_receipt_apply(
        attempt_id=attempt_id,
        message_sid=request.POST.get("MessageSid", ""),
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        return HttpResponseForbidden("invalid signature")
    sms.sms_stop_record(
        phone=request.POST.get("From", ""), body=request.POST.get("Body", ""), now=timezone.now()
    )
    # No automatic answer: Twilio's own opt-out confirms a STOP to the patient.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
