"""Warnings that need a reason: entries that are possible but unusual enough that staff must
tick "save anyway" and say why before they are saved (docs/validation.md, "Warnings").

The reason is stored with the warnings' texts in ``WarningAcknowledgement`` (audited by
pghistory), so a data manager can later see who confirmed what, and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from registry.validation import CEMENT_VOLUME_ML


@dataclass(frozen=True)
class EntryWarning:
    code: str
    message: str


SAVE_ANYWAY_MESSAGE = _(
    "Please check: %(warnings)s To keep these values, tick “save anyway” and give a reason."
)
REASON_NEEDED_MESSAGE = _("Give a reason for saving anyway (it is kept with the record).")


def procedure_warnings(
    *, level_count: int, absolute_contraindications: list[str], levels: list[tuple[int, Decimal]]
) -> list[EntryWarning]:
    """Warnings for a procedure about to be saved: ``levels`` are (level, cement mL) pairs."""
    from registry.models import Procedure, TreatedLevel, region_of_level

    warnings = []
    if level_count > Procedure.MAX_LEVELS_WITHOUT_WARNING:
        warnings.append(
            EntryWarning(
                "many_levels",
                str(
                    _(
                        "%(count)d levels were treated in one session; usual practice is to "
                        "stage more than %(max)d."
                    )
                    % {"count": level_count, "max": Procedure.MAX_LEVELS_WITHOUT_WARNING}
                ),
            )
        )
    if absolute_contraindications:
        labels = ", ".join(
            str(Procedure.AbsoluteContraindication(value).label)
            for value in absolute_contraindications
            if value in Procedure.AbsoluteContraindication.values
        )
        warnings.append(
            EntryWarning(
                "absolute_contraindication",
                str(_("An absolute contraindication is ticked (%(labels)s).") % {"labels": labels}),
            )
        )
    for level, volume in levels:
        if level not in TreatedLevel.Level.values or volume is None:
            continue
        region = region_of_level(level)
        usual = CEMENT_VOLUME_ML[region]
        if not usual.usual_low <= volume <= usual.usual_high:
            warnings.append(
                EntryWarning(
                    "cement_volume_unusual",
                    str(
                        _(
                            "%(volume)s mL of cement at %(level)s is outside the usual "
                            "%(low)s–%(high)s mL for a %(region)s vertebra."
                        )
                        % {
                            "volume": volume,
                            "level": TreatedLevel.Level(level).label,
                            "low": usual.usual_low,
                            "high": usual.usual_high,
                            "region": TreatedLevel.Region(region).label.lower(),
                        }
                    ),
                )
            )
    return warnings


def warnings_text(warnings: list[EntryWarning]) -> str:
    return " ".join(warning.message for warning in warnings)


@transaction.atomic
def warning_acknowledge(*, record, site, warnings: list[EntryWarning], reason: str, user):
    """Store that ``user`` saved ``record`` despite ``warnings``, and why."""
    from registry.quality_models import WarningAcknowledgement

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


def warnings_not_yet_acknowledged(record, warnings: list[EntryWarning]) -> list[EntryWarning]:
    """``warnings`` minus those already saved anyway for ``record`` with the same text, so a
    later edit of an acknowledged record does not ask for the same reason again."""
    if record is None or record.pk is None or not warnings:
        return warnings
    from registry.quality_models import WarningAcknowledgement

    seen = set()
    for messages in WarningAcknowledgement.objects.filter(
        content_type=ContentType.objects.get_for_model(record), object_id=record.pk
    ).values_list("messages", flat=True):
        seen.update(messages)
    return [warning for warning in warnings if warning.message not in seen]
