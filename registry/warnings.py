"""Warnings that need a reason: entries that are possible but unusual enough that staff must
tick "save anyway" and say why before they are saved (docs/validation.md, "Warnings").

Which warnings a record raises is decided here, with the clinical models. The reason is
stored by the data-quality package (``outcomes.quality.saved_anyway``, model
``WarningAcknowledgement``), reached through the hook below.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from django.core.exceptions import ImproperlyConfigured
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


# Where warnings saved anyway are stored: the data-quality package (outcomes.quality) registers
# itself here when its app is ready. registry imports nothing from outcomes, so it asks through
# this hook; without one, saving anyway fails loudly instead of dropping the reason.
class AcknowledgementStore(Protocol):
    def warning_acknowledge(self, *, record, site, warnings, reason: str, user): ...

    def acknowledged_messages(self, record) -> set[str]: ...


_store: AcknowledgementStore | None = None


def set_acknowledgement_store(store: AcknowledgementStore) -> None:
    global _store  # noqa: PLW0603 (one hook, set once at start-up)
    _store = store


def acknowledgement_store() -> AcknowledgementStore:
    if _store is None:
        raise ImproperlyConfigured(
            "No store for warnings saved anyway: the outcomes app registers it when ready."
        )
    return _store


def warning_acknowledge(*, record, site, warnings: list[EntryWarning], reason: str, user):
    """Store that ``user`` saved ``record`` despite ``warnings``, and why."""
    return acknowledgement_store().warning_acknowledge(
        record=record, site=site, warnings=warnings, reason=reason, user=user
    )


def warnings_not_yet_acknowledged(record, warnings: list[EntryWarning]) -> list[EntryWarning]:
    """``warnings`` minus those already saved anyway for ``record`` with the same text, so a
    later edit of an acknowledged record does not ask for the same reason again."""
    if record is None or record.pk is None or not warnings:
        return warnings
    seen = acknowledgement_store().acknowledged_messages(record)
    return [warning for warning in warnings if warning.message not in seen]
