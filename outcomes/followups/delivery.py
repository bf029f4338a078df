"""What became of one message, whatever its channel (sending.py, sms.py)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class Delivery:
    """What became of one message: ``sent``, ``transient`` (not delivered, try again),
    ``permanent`` (refused for good) or ``unknown`` (the server may have it). ``at``: when the
    server accepted it (its 250 reply, or the SMS provider's 201), for ``sent``. ``code``:
    the SMTP or HTTP status; ``provider_code`` and ``provider_id``: the SMS provider's error
    code and message id."""

    outcome: str
    reason: str = ""
    code: int | None = None
    at: datetime.datetime | None = None
    provider_code: int | None = None
    provider_id: str = ""
