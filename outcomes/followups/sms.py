"""Text messages through Twilio's Messages API with Twilio's own client (design.md §5).

One request per text: ``POST {SMS_API_BASE_URL}/2010-04-01/Accounts/{sid}/Messages.json``
(``SMS_API_BASE_URL`` is Twilio's own unless a fake or a staging proxy is named), each bounded
by ``SMS_TIMEOUT`` for the connection and for the answer, never retried by the client (the
outbox decides what is tried again). What became of it is classified like an email's:

- the connection never opened (refused, connect timeout): ``transient``, nothing left;
- ``429`` (rate limit) and ``503`` (not processed): ``transient``;
- ``401``/``403``/``404`` (our account or sender is wrong): ``transient``, the registry's
  configuration, not the patient's number;
- another ``4xx`` (Twilio's 21211 invalid number, 21610 the patient replied STOP, 21614 not a
  mobile …): ``permanent``, the other channel is tried;
- another ``5xx``, no answer within the timeout, the connection dropped after the request
  went, or an answer that cannot be read: ``unknown`` (Twilio may have taken the text).

Errors are stored and logged as the HTTP status and Twilio's error code, never the number or
Twilio's text, which echoes it. The client's own request and response logging (which holds the
number) is kept below the level the registry logs.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import requests
from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from outcomes.followups.delivery import Delivery
from outcomes.models import ContactAttempt
from registry.models import PatientContact

logger = logging.getLogger(__name__)

# Twilio's client logs every request and response (bodies with the number) at INFO.
_client_logger = logging.getLogger("outcomes.followups.sms.twilio")
_client_logger.setLevel(logging.WARNING)


def sms_configured() -> bool:
    """Whether the SMS channel is on: an account, its token and a sender."""
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.SMS_FROM)


def twilio_client() -> Client:
    """A Twilio client for one send: no connection pooling (a pooled connection the provider
    closed would fail as if the text had gone), no retries, ``SMS_TIMEOUT`` per request, and
    the Messages API at ``SMS_API_BASE_URL`` (the API domain's base URL; Twilio's region and
    edge settings only choose among Twilio's own hosts)."""
    http_client = TwilioHttpClient(
        pool_connections=False, timeout=settings.SMS_TIMEOUT, logger=_client_logger
    )
    client = Client(
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client
    )
    client.api.base_url = settings.SMS_API_BASE_URL
    return client


def status_callback_url(attempt_id: int) -> str:
    """Where Twilio reports the delivery of attempt ``attempt_id``: the attempt is in the path,
    so a receipt arriving before the send was recorded still finds it."""
    return settings.SITE_URL + reverse("sms-status", kwargs={"attempt_id": attempt_id})


def signature_valid(*, url: str, params: dict, signature: str) -> bool:
    """Twilio's ``X-Twilio-Signature`` (HMAC of the URL and the form fields with the auth
    token) checked with Twilio's own validator; ``False`` when SMS is not configured."""
    if not settings.TWILIO_AUTH_TOKEN or not signature:
        return False
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, params, signature)


def sms_send(
    *,
    to: str,
    body: str,
    sender: str,
    callback_url: str,
    before_send: Callable[[], None],
    clock: Callable[[], datetime.datetime],
):
    """Send one text; a ``sending.Delivery`` with Twilio's message sid when it was taken.
    ``before_send()`` is asked right before the request (it raises to stop; nothing left)."""
    client = twilio_client()
    before_send()
    try:
        message = client.messages.create(
            to=to, from_=sender, body=body, status_callback=callback_url
        )
    except requests.exceptions.RequestException as exc:
        return classify_transport(exc)
    except TwilioException as exc:
        status, code = getattr(exc, "status", None), getattr(exc, "code", None)
        if isinstance(status, int):
            return classify_rest(status, code if isinstance(code, int) else None)
        return Delivery("unknown", f"SMS provider answer unreadable ({type(exc).__name__})")
    except ValueError as exc:  # a 2xx whose body is not JSON
        return Delivery("unknown", f"SMS provider answer unreadable ({type(exc).__name__})")
    return Delivery("sent", at=clock(), provider_id=str(message.sid or "")[:64])


def classify_rest(status: int, code: int | None):
    code_text = f" (error {code})" if code and code != status else ""
    if status == 429 or status == 503:
        outcome, what = "transient", "rate limited" if status == 429 else "unavailable"
    elif status in (401, 403, 404):
        outcome, what = "transient", "our account or sender refused"
    elif 400 <= status < 500:
        outcome, what = "permanent", "number or message refused"
    else:
        outcome, what = "unknown", "server error after the request"
    return Delivery(
        outcome,
        f"SMS provider {status} {outcome}: {what}{code_text}",
        code=status,
        provider_code=code if code != status else None,
    )


def classify_transport(exc: requests.exceptions.RequestException):
    """Whether the request may have reached the provider: only a connection that never opened
    is known to have sent nothing."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Delivery("transient", "SMS provider connect timeout")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Delivery("unknown", "no answer from the SMS provider (timeout)")
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    if isinstance(reason, NewConnectionError | ConnectTimeoutError):
        return Delivery("transient", "SMS provider connection refused")
    return Delivery("unknown", f"SMS provider connection lost ({type(exc).__name__})")


# --- what the provider tells us --------------------------------------------------------------

# Twilio's final delivery states (its status callback's MessageStatus); the others (queued,
# sending, sent) say nothing the attempt does not already say.
FINAL_DELIVERY = ("delivered", "undelivered", "failed")
# The receipts that make the step go by the other channel (sending.sms_receipt_apply).
NOT_DELIVERED = ("undelivered", "failed")

# Replies that stop texts (Twilio's standard opt-out keywords, and the Danish "stop" and
# "afmeld"), compared on the reply's first word, case-insensitively.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "AFMELD"}
)


def sms_receipt_record(*, attempt_id: int, message_sid: str, status: str, error_code: str) -> bool:
    """A delivery receipt: the attempt's ``delivery_status`` and the provider's error code
    (never the number). Applies only to the attempt whose text had that message id, or whose
    id is not recorded yet (the receipt overtook the sender's record); a later ``delivered``
    does not undo a failure and vice versa: the first final word stays. Returns whether
    anything changed."""
    if status not in FINAL_DELIVERY:
        return False
    try:
        code = int(error_code) if error_code else None
    except ValueError:
        code = None
    attempts = ContactAttempt.objects.filter(
        pk=attempt_id, channel=ContactAttempt.Channel.SMS, delivery_status=""
    ).filter(Q(provider_id=message_sid) | Q(provider_id=""))
    changed = attempts.update(delivery_status=status, provider_error_code=code)
    if changed and status != "delivered":
        logger.warning("text %s not delivered: %s (provider error %s)", attempt_id, status, code)
    return bool(changed)


def sms_stop_record(*, phone: str, body: str, now: datetime.datetime) -> int:
    """A reply to a text: when its first word is a stop word, every patient with that number
    gets ``sms_stopped_at`` (no more texts: the sweep and the sender's last check ask
    ``patient_textable``). Returns how many contacts were stopped; the number is not kept
    anywhere else."""
    words = (body or "").strip().split()
    if not words or words[0].strip(".!").upper() not in STOP_WORDS:
        return 0
    return PatientContact.objects.filter(phone=phone, sms_stopped_at__isnull=True).update(
        sms_stopped_at=now
    )
