"""Warnings saved anyway: the reason staff gave for keeping an unusual entry, stored with the
warnings' texts in ``WarningAcknowledgement`` (audited by pghistory), so a data manager can
later see who confirmed what, and why.

Which warnings a record raises is decided with the clinical models (``registry.warnings``);
the clinical forms and admin reach this store through the hook ``registry.warnings``
declares, which ``OutcomesConfig.ready`` fills with this module (registry imports nothing
from outcomes).
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from outcomes.quality.models import WarningAcknowledgement


@transaction.atomic
def warning_acknowledge(*, record, site, warnings, reason: str, user) -> WarningAcknowledgement:
    """Store that ``user`` saved ``record`` despite ``warnings``, and why."""
    acknowledgement = WarningAcknowledgement(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        site=site,
        codes=[warning.code for warning in warnings],
        messages=[warning.message for warning in warnings],
        reason=reason.strip(),
        user=user if getattr(user, "is_authenticated", False) else None,
    )
    acknowledgement.full_clean()
    acknowledgement.save()
    return acknowledgement


def acknowledged_messages(record) -> set[str]:
    """The texts of every warning already saved anyway for ``record``."""
    seen: set[str] = set()
    for messages in WarningAcknowledgement.objects.filter(
        content_type=ContentType.objects.get_for_model(record), object_id=record.pk
    ).values_list("messages", flat=True):
        seen.update(messages)
    return seen
