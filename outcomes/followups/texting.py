"""Pure rules of the text-message channel (no database): which channel a message takes, the
quiet hours, and how many SMS segments a text costs.

Sources: 3GPP TS 23.038 §6.2.1 (the GSM 7-bit default alphabet and its extension table, whose
characters take two septets) and TS 23.040 §9.2.3.24.1 (concatenated messages: a 6-octet user
data header leaves 153 septets, or 67 UCS-2 characters, per segment; a single message holds
160 septets or 70 UCS-2 characters).
"""

from __future__ import annotations

import datetime
import zoneinfo

# --- the channel ----------------------------------------------------------------------------

EMAIL = "email"
SMS = "sms"
NONE = "none"


def channel_choose(*, preferred: str, email: bool, sms: bool) -> str | None:
    """The channel of the next message: the patient's preferred one when it is usable, else
    the other; ``None`` when neither is (or the patient chose neither): the phone worklist.
    ``email``/``sms``: the patient may be reached that way now (address or number on file,
    consent, no STOP, not refused for good before, the channel configured)."""
    if preferred == NONE:
        return None
    order = (SMS, EMAIL) if preferred == SMS else (EMAIL, SMS)
    usable = {EMAIL: email, SMS: sms}
    for channel in order:
        if usable[channel]:
            return channel
    return None


# --- quiet hours ----------------------------------------------------------------------------

QUIET_FROM = datetime.time(21, 0)
QUIET_UNTIL = datetime.time(8, 0)


def quiet_until(now: datetime.datetime, time_zone: str) -> datetime.datetime | None:
    """When a text may go, if ``now`` (aware) falls in the quiet hours (21:00–08:00 on the
    site's wall clock): the next 08:00 there, as an aware UTC time. ``None`` outside them.
    The wall clock decides, so the quiet hours stay 21–08 across a daylight-saving change."""
    zone = zoneinfo.ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return None
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + datetime.timedelta(1)
    return datetime.datetime.combine(day, QUIET_UNTIL, tzinfo=zone).astimezone(datetime.UTC)


# --- segments -------------------------------------------------------------------------------

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")

MAX_SEGMENTS = 2


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes: GSM-7 when every character is in the default
    alphabet (extension characters count twice), else UCS-2 (UTF-16 code units)."""
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


# Look-alikes a translation or a clinic's name may bring in, and their GSM-7 spelling: the
# text stays in the 7-bit alphabet (half the segments of UCS-2).
_GSM7_SPELLING = str.maketrans(
    {
        "–": "-",
        "—": "-",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "…": "...",
        "\u00a0": " ",
        "á": "a",
        "í": "i",
        "ó": "o",
        "ú": "u",
        "ê": "e",
        "ë": "e",
    }
)


def gsm7_spelling(text: str) -> str:
    """``text`` with common typographic characters replaced by their GSM-7 equivalents."""
    return text.translate(_GSM7_SPELLING)
