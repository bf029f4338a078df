"""Core clinical models of the registry (design.md §2 and §7).

Every invariant is enforced by PostgreSQL (check constraints, unique constraints and, where a
rule spans two tables, a constraint trigger), and mirrored in ``clean()`` with a message a
research nurse understands. Every clinical model keeps its full history through
django-pghistory triggers, so ``QuerySet.update()`` and bulk writes are recorded too.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from decimal import Decimal

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.aggregates import BoolAnd, BoolOr
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import (
    Case,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry import audit, derived, validation
from registry.derived import DerivedColumnsMixin, KeepDerived, recompute_triggers
from registry.fields import MultipleChoiceArrayField
from registry.locking import (
    PATIENT_FK_KEYS,
    PATIENT_KEYS,
    PROCEDURE_FK_KEYS,
    record_guards,
    record_key,
)
from registry.phones import E164_REGEX, phone_display, phone_normalise
from registry.validation import (
    DATE_INPUT_FORMATS,
    no_cpr_check,
    not_in_future_sql,
    validate_no_cpr,
    validate_not_before_1900,
)

# History rows snapshot every field but the timestamps, so a save that changes nothing clinical
# writes no event.
TRACK_EXCLUDE = ["created_at", "updated_at"]


def track_history(
    *derived: str, meta: dict | None = None, update_level: pgtrigger.Level = pgtrigger.Row
):
    """History of every insert, update and delete; ``derived`` names stored copies of derived
    values (``registry.derived``), left out because the rows they derive from have history.
    ``meta`` goes to the event model's Meta (e.g. the ``db_table`` of a model that moved).

    ``update_level=pgtrigger.Statement`` writes the update events of a statement with one
    ``INSERT … SELECT`` from its transition tables (the rows whose tracked columns changed,
    with their new values: the same events as the row trigger writes) instead of one trigger
    call per row, each with two PL/pgSQL exception blocks (``pgtrigger.ignore`` and the
    pghistory context), which cost milliseconds a row inside a long transaction (issue 32)."""
    return audit.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(level=update_level),
        pghistory.DeleteEvent(),
        exclude=[*TRACK_EXCLUDE, *derived],
        meta=meta,
    )


def touch_updated_at(*, switchable: bool = True) -> pgtrigger.Trigger:
    """Keep ``updated_at`` true for ``QuerySet.update()`` too (the API's ``updated_since``).

    ``switchable=False`` compiles it without pgtrigger's look-up of ``pgtrigger.ignore``: that
    look-up is a PL/pgSQL exception block per row (a subtransaction, rolled back whenever the
    setting was never set in the session), which was most of this trigger's cost on the
    chasing sweep's batch UPDATE (issue 32). The trigger then cannot be switched off by
    ``pgtrigger.ignore``, which nothing in the registry does."""
    kind = pgtrigger.Trigger if switchable else audit.StrictTrigger
    return kind(
        name="touch_updated_at",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        condition=pgtrigger.AnyChange(exclude_auto=True),
        func="NEW.updated_at = now(); RETURN NEW;",
    )


def constrain_choices(model):
    """Class decorator: a named database check for every choice column of ``model``.

    Text choices must be one of the declared values (or blank where the field allows it) and a
    multi-choice array may hold only declared values, so rows written outside Django forms
    (imports, raw SQL, bulk updates) are held to the same vocabulary as the admin.
    """
    for field in model._meta.local_concrete_fields:
        base = getattr(field, "base_field", None)
        if isinstance(field, models.CharField) and field.choices:
            condition = Q(**{f"{field.name}__in": [value for value, _label in field.choices]})
            if field.blank:
                condition |= Q(**{field.name: ""})
        elif isinstance(base, models.CharField) and base.choices:
            condition = Q(**{f"{field.name}__contained_by": [v for v, _label in base.choices]})
        else:
            continue
        name = f"{model._meta.model_name}_{field.name}_valid"
        model._meta.constraints.append(models.CheckConstraint(condition=condition, name=name))
    return model


# Karnofsky performance status is recorded in steps of 10.
KARNOFSKY_VALUES = tuple(range(0, 101, 10))


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("“%(value)s” is not a time zone name such as Europe/Copenhagen."),
            params={"value": value},
        )


class Cohort(models.TextChoices):
    """Cohort of a procedure (design.md §7)."""

    PATHOLOGIC = "pathologic", _("Pathologic")
    OSTEOPOROTIC = "osteoporotic", _("Osteoporotic")
    OTHER = "other", _("Other")
    # A level of unknown etiology and none malignant: could be either cohort, so in neither.
    UNKNOWN = "unknown", _("Unknown etiology")


class SiteQuerySet(models.QuerySet):
    def for_user(self, user) -> SiteQuerySet:
        """Sites whose records ``user`` may see: all for a registry manager, else their own."""
        from registry.access import is_registry_manager, site_ids

        if is_registry_manager(user):
            return self.all()
        if not user.is_authenticated:
            return self.none()
        return self.filter(pk__in=sorted(site_ids(user)))


@track_history()
@constrain_choices
class Site(models.Model):
    """A participating centre."""

    class EQ5DVersion(models.TextChoices):
        THREE_LEVEL = "3L", "EQ-5D-3L"
        FIVE_LEVEL = "5L", "EQ-5D-5L"

        @property
        def levels(self) -> int:
            """Answer levels per dimension: 3 (3L) or 5 (5L) (EuroQol user guides)."""
            return {"3L": 3, "5L": 5}[self.value]

    class ValueSet(models.TextChoices):
        UK_3L = "UK-3L", _("United Kingdom, 3L TTO (Dolan 1997)")
        DK_3L = "DK-3L", _("Denmark, 3L TTO (Wittrup-Jensen 2009)")
        EN_5L = "EN-5L", _("England, 5L (Devlin 2018)")
        DK_5L = "DK-5L", _("Denmark, 5L (Jensen 2021)")
        US_5L = "US-5L", _("United States, 5L (Pickard 2019)")
        # Not England's Devlin 2018 set (EN-5L): the UK-wide set of 2026, its own code.
        UK26_5L = "UK26-5L", _("United Kingdom 2026, 5L (Rowen 2026)")

    code = models.CharField(
        _("code"),
        max_length=12,
        unique=True,
        validators=[
            RegexValidator(r"^[A-Z0-9]{2,12}$", _("Use 2–12 capital letters or digits.")),
            validate_no_cpr,
        ],
    )
    name = models.CharField(_("name"), max_length=200, validators=[validate_no_cpr])
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Copenhagen", validators=[validate_time_zone]
    )
    contact_email = models.EmailField(
        _("contact email"), help_text=_("Receives the daily phone follow-up digest.")
    )
    # The country a phone number typed without its country code is read in (registry.phones).
    country = models.CharField(
        _("country"),
        max_length=2,
        default="DK",
        validators=[RegexValidator(r"^[A-Z]{2}$", _("Use the two-letter country code, e.g. DK."))],
        help_text=_("ISO 3166 country code; phone numbers without a country code are read in it."),
    )
    sms_sender = models.CharField(
        _("SMS sender"),
        max_length=15,
        blank=True,
        validators=[
            RegexValidator(
                r"^([A-Za-z0-9 ]{1,11}|\+[1-9][0-9]{6,14})$",
                _("Use up to 11 letters or digits, or a phone number in +45… form."),
            )
        ],
        help_text=_("The sender patients see on texts; empty: the registry's SMS_FROM."),
    )
    eq5d_version = models.CharField(
        _("EQ-5D version"), max_length=2, choices=EQ5DVersion, default=EQ5DVersion.FIVE_LEVEL
    )
    eq5d_value_set = models.CharField(
        _("EQ-5D value set"), max_length=8, choices=ValueSet, default=ValueSet.DK_5L
    )
    reconsent_before_questionnaire = models.BooleanField(
        _("asks for re-consent before a questionnaire"),
        default=False,
        help_text=_(
            "When a new consent version requires re-consent, a patient opening a questionnaire "
            "link is asked to consent to it first."
        ),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="registry_sites",
        help_text=_("Staff, leads and auditors who work with this site's records."),
        verbose_name=_("members"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = SiteQuerySet.as_manager()

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(code__regex=r"^[A-Z0-9]{2,12}$"), name="site_code_format"
            ),
            models.CheckConstraint(
                condition=Q(eq5d_value_set__endswith=models.F("eq5d_version")),
                name="site_value_set_matches_version",
            ),
            no_cpr_check("site", "code", "name"),
            models.CheckConstraint(
                condition=Q(country__regex=r"^[A-Z]{2}$"), name="site_country_code"
            ),
        ]
        triggers = [touch_updated_at()]

    def __str__(self) -> str:
        return f"{self.code} – {self.name}"

    @property
    def eq5d_levels(self) -> int:
        """Answer levels per EQ-5D dimension at this site (3 or 5)."""
        return Site.EQ5DVersion(self.eq5d_version).levels

    def clean(self) -> None:
        if self.eq5d_value_set and not self.eq5d_value_set.endswith(self.eq5d_version):
            raise ValidationError(
                {
                    "eq5d_value_set": _(
                        "The value set %(value_set)s is for a different EQ-5D version than "
                        "%(version)s."
                    )
                    % {"value_set": self.eq5d_value_set, "version": self.eq5d_version}
                }
            )


# Site membership (who may see a site's records) in the audit trail: every grant and removal,
# with the acting user and time from the request's context, whatever wrote it.
audit.track(
    pghistory.InsertEvent("member.add"),
    pghistory.DeleteEvent("member.remove"),
    obj_field=None,
    model_name="SiteMemberEvent",
    app_label="registry",
)(Site.members.through)


class ScopedQuerySet(models.QuerySet):
    """QuerySet of a model that belongs to a site through ``site_path``."""

    site_path: str = "site"

    def for_user(self, user):
        """Rows at the sites ``user`` may see (all of them for a registry manager)."""
        from registry.access import is_registry_manager, site_ids

        if is_registry_manager(user):
            return self.all()
        if not user.is_authenticated:
            return self.none()
        # The user's site ids as a list: no join to the membership table, and the planner
        # sees the sites' real share of the rows.
        return self.filter(**{f"{self.site_path}__in": sorted(site_ids(user))})


class CompletedYears(models.Func):
    """Completed years from the second date to the first: ``CompletedYears(on, born)`` is the
    age on a date, as PostgreSQL's ``age()`` counts it (a birthday counts on its day)."""

    template = "extract(year FROM age(%(expressions)s))::integer"
    output_field = models.IntegerField()


# A phone number's digits only ("+45 20 30-40 50" -> "4520304050"): the name search finds
# numbers however they were typed, through the contact_phone_digits_trgm index.
PHONE_DIGITS = Func(
    F("phone"),
    Value(r"\D"),
    Value(""),
    Value("g"),
    function="REGEXP_REPLACE",
    output_field=models.TextField(),
)


_PHONE_TYPED = re.compile(r"\+?[\d\s()-]+")


def _parse_entry_date(word: str) -> datetime.date | None:
    # The formats of every date field, so a date of birth is searched as it is typed.
    for fmt in DATE_INPUT_FORMATS:
        try:
            return datetime.datetime.strptime(word, fmt).date()
        except ValueError:
            continue
    return None


class PatientQuerySet(ScopedQuerySet):
    site_path = "site"

    def with_index_procedure(self) -> PatientQuerySet:
        """Add ``index_date``, the date of the index procedure (stored as
        ``index_procedure``, with its cohort as ``index_cohort``; see ``index_procedures``)."""
        return self.annotate(index_date=models.F("index_procedure__date"))

    def search(self, text: str, *, by_contact: bool) -> PatientQuerySet:
        """Patients matching every word of ``text``: a word matches a registry id containing
        it, and with ``by_contact`` (a user who may see contact details,
        ``registry.access.may_see_contact``) also a name or email containing it, a phone
        number containing its digits (three or more) or a date of birth equal to it (any of
        the entry formats: 17-05-1950, 17.05.1950, 1950-05-17).

        Two statements whatever the number of words, each through indexes: the patients whose
        registry id or date of birth matches a word (``patient_registry_id_trgm``, the
        date-of-birth index), then the contacts matching every word by name, email or phone
        or whose patient matched the word in the first (``contact_name_trgm``,
        ``contact_email_trgm``, ``contact_phone_digits_trgm``, the contact's patient index),
        one condition per word ANDed, so the planner intersects the words' bitmaps before
        reading a row: "Inger Hansen" reads the contacts of both, not of all Ingers and all
        Hansens. An OR across the patient and contact tables in one statement would scan both.
        """
        words = text.split()
        if len(words) > 1 and _PHONE_TYPED.fullmatch(text.strip()):
            # A phone number typed with spaces ("20 30 40 50") is one number, not four words.
            words = [re.sub(r"\D", "", text)]
        if not words:
            return self
        words = words[:6]
        by_patient = self._search_patients(words, by_contact=by_contact)
        # Patients matching every word by their registry id or date of birth (with or without
        # a contact).
        matched = set.intersection(*by_patient)
        if by_contact:
            conditions = [
                self._contact_condition(word, patients)
                for word, patients in zip(words, by_patient, strict=True)
            ]
            if all(condition is not None for condition in conditions):
                matched |= set(
                    PatientContact.objects.order_by()
                    .annotate(_name=Upper("name"), _email=Upper("email"), _digits=PHONE_DIGITS)
                    .filter(*conditions)
                    .values_list("patient_id", flat=True)
                )
        # One array parameter, not one placeholder per id: a common surname matches thousands
        # of patients, and the list and its count each send the condition. (As a subquery per
        # word in the list's statement, the planner walked the whole registry-id index.)
        return self.filter(
            RawSQL(  # noqa: S611 - the table name is ours, the ids go as one parameter
                f'"{self.model._meta.db_table}"."id" = ANY(%s)',
                [sorted(matched)],
                output_field=models.BooleanField(),
            )
        )

    @staticmethod
    def _search_patients(words: list[str], *, by_contact: bool) -> list[set[int]]:
        """For each word, the patients whose registry id contains it or (``by_contact``) whose
        date of birth it is: one statement for all the words."""
        matches = []
        for word in words:
            match = Q(_rid__contains=word.upper())
            born = _parse_entry_date(word) if by_contact else None
            if born is not None:
                match |= Q(date_of_birth=born)
            matches.append(match)
        flags = {
            f"_w{i}": ExpressionWrapper(m, models.BooleanField()) for i, m in enumerate(matches)
        }
        any_word = matches[0]
        for match in matches[1:]:
            any_word |= match
        rows = (
            Patient.objects.order_by()
            .annotate(_rid=Upper(Cast("registry_id", models.TextField())))
            .filter(any_word)
            .annotate(**flags)
            .values_list("pk", *flags)
        )
        found: list[set[int]] = [set() for _ in words]
        for pk, *hits in rows:
            for patients, hit in zip(found, hits, strict=True):
                if hit:
                    patients.add(pk)
        return found

    @staticmethod
    def _contact_condition(word: str, patients: set[int]) -> Q | None:
        """A contact matches ``word`` by name, email or phone digits, or its patient matched
        it by registry id or date of birth (``patients``); None when nothing can match."""
        condition = Q()
        if _parse_entry_date(word) is None:
            upper = word.upper()
            phone_typed = _PHONE_TYPED.fullmatch(word) is not None
            condition = Q(_email__contains=upper)
            if not phone_typed:
                condition |= Q(_name__contains=upper)
            digits = re.sub(r"\D", "", word)
            if phone_typed and len(digits) >= 3:
                condition |= Q(_digits__contains=digits)
        if patients:
            # As one array: the planner ORs the contact's patient index into the bitmap.
            condition |= Q(patient_id__in=sorted(patients))
        return condition or None


@track_history("index_procedure", "index_cohort")
@constrain_choices
class Patient(DerivedColumnsMixin, models.Model):
    """A registered patient, identified only by a pseudonymous registry id."""

    class Sex(models.TextChoices):
        FEMALE = "female", _("Female")
        MALE = "male", _("Male")

    class CauseOfDeath(models.TextChoices):
        DISEASE_PROGRESSION = "disease_progression", _("Disease progression")
        PROCEDURE_RELATED = "procedure_related", _("Procedure-related")
        OTHER = "other", _("Other")
        UNKNOWN = "unknown", _("Unknown")

    class PrimaryTumour(models.TextChoices):
        BREAST = "breast", _("Breast")
        LUNG = "lung", _("Lung")
        PROSTATE = "prostate", _("Prostate")
        KIDNEY = "kidney", _("Kidney")
        THYROID = "thyroid", _("Thyroid")
        MULTIPLE_MYELOMA = "multiple_myeloma", _("Multiple myeloma")
        LYMPHOMA = "lymphoma", _("Lymphoma")
        CLL = "cll", _("Chronic lymphocytic leukaemia")
        COLON = "colon", _("Colon")
        GASTRIC = "gastric", _("Gastric")
        OVARY = "ovary", _("Ovary")
        UROTHELIAL = "urothelial", _("Urothelial")
        MELANOMA = "melanoma", _("Melanoma")
        UNKNOWN_PRIMARY = "unknown_primary", _("Unknown primary")
        OTHER = "other", _("Other")

    class MalignancyConfirmation(models.TextChoices):
        VERTEBRAL_BIOPSY = "vertebral_biopsy", _("Vertebral biopsy (histology)")
        BONE_MARROW_BIOPSY = "bone_marrow_biopsy", _("Bone-marrow biopsy")
        IMAGING = "imaging", _("Imaging only")
        CLINICAL = "clinical", _("Clinical")

    KARNOFSKY_VALUES = KARNOFSKY_VALUES

    registry_id = models.CharField(
        _("registry id"),
        max_length=32,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z0-9][A-Z0-9-]{2,31}$",
                _("Use capital letters, digits and hyphens (e.g. AAR-0042), never a national id."),
            ),
            validate_no_cpr,
        ],
    )
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, related_name="patients", verbose_name=_("site")
    )
    sex = models.CharField(_("sex"), max_length=6, choices=Sex)
    date_of_birth = models.DateField(_("date of birth"), validators=[validate_not_before_1900])
    consent_date = models.DateField(_("consent date"), validators=[validate_not_before_1900])
    consent_withdrawn_date = models.DateField(
        _("consent withdrawn date"), null=True, blank=True, validators=[validate_not_before_1900]
    )
    date_of_death = models.DateField(
        _("date of death"), null=True, blank=True, validators=[validate_not_before_1900]
    )
    cause_of_death = models.CharField(
        _("cause of death"), max_length=24, choices=CauseOfDeath, blank=True
    )
    karnofsky = models.PositiveSmallIntegerField(
        _("Karnofsky performance status"),
        null=True,
        blank=True,
        choices=[(value, f"{value}") for value in KARNOFSKY_VALUES],
        error_messages={"invalid_choice": validation.KARNOFSKY_MESSAGE},
    )
    asa_class = models.PositiveSmallIntegerField(
        _("ASA class"),
        null=True,
        blank=True,
        validators=[validation.validate_asa_class],
    )
    primary_tumour = models.CharField(
        _("primary tumour"), max_length=20, choices=PrimaryTumour, blank=True
    )
    malignancy_confirmation = models.CharField(
        _("malignancy confirmation"), max_length=20, choices=MalignancyConfirmation, blank=True
    )
    other_bone_metastases = models.BooleanField(_("other bone metastases"), null=True, blank=True)
    visceral_metastases = models.BooleanField(_("visceral metastases"), null=True, blank=True)
    prior_radiotherapy = models.BooleanField(_("prior radiotherapy"), null=True, blank=True)
    prior_chemotherapy = models.BooleanField(_("prior chemotherapy"), null=True, blank=True)
    # Derived, stored and indexed for lists at scale; kept right by triggers (registry.derived)
    # from index_procedures() and procedure_cohort(), never written by Django.
    index_procedure = models.ForeignKey(
        "Procedure",
        verbose_name=_("index procedure"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    index_cohort = models.CharField(
        _("cohort of index procedure"),
        max_length=12,
        choices=Cohort,
        null=True,
        blank=True,
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = PatientQuerySet.as_manager()

    # Written by the database only (registry.derived; docs/architecture.md).
    derived_fields = ("index_procedure", "index_cohort")

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["registry_id"]
        indexes = [
            # The cohort filter of the patient list, in the list's order.
            models.Index(fields=["index_cohort", "registry_id"], name="patient_cohort_regid_idx"),
            # A site's patients in the list's order (a small site's are not a scan away).
            models.Index(fields=["site", "registry_id"], name="patient_site_regid_idx"),
            # The search by date of birth, and the likely-duplicate check at entry (same site,
            # same date of birth: registry.duplicates).
            models.Index(fields=["site", "date_of_birth"], name="patient_site_born_idx"),
            models.Index(fields=["date_of_birth"], name="patient_born_idx"),
            # The admin's registry-id search (UPPER(registry_id::text) LIKE '%…%').
            GinIndex(
                OpClass(Upper(Cast("registry_id", models.TextField())), name="gin_trgm_ops"),
                name="patient_registry_id_trgm",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(registry_id__regex=r"^[A-Z0-9][A-Z0-9-]{2,31}$"),
                name="patient_registry_id_format",
            ),
            no_cpr_check("patient", "registry_id"),
            # The other dates are held after the date of birth by the checks below.
            models.CheckConstraint(
                condition=Q(date_of_birth__gte=validation.EARLIEST_DATE),
                name="patient_born_from_1900",
                violation_error_message=validation.EARLIEST_MESSAGE,
            ),
            models.CheckConstraint(
                condition=Q(karnofsky__isnull=True) | Q(karnofsky__in=KARNOFSKY_VALUES),
                name="patient_karnofsky_0_100_step_10",
            ),
            models.CheckConstraint(
                condition=Q(asa_class__isnull=True) | Q(asa_class__gte=1, asa_class__lte=6),
                name="patient_asa_class_1_6",
            ),
            models.CheckConstraint(
                condition=Q(consent_date__gte=models.F("date_of_birth")),
                name="patient_consent_after_birth",
            ),
            models.CheckConstraint(
                condition=Q(consent_withdrawn_date__isnull=True)
                | Q(consent_withdrawn_date__gte=models.F("consent_date")),
                name="patient_withdrawal_after_consent",
            ),
            models.CheckConstraint(
                condition=Q(date_of_death__isnull=True)
                | Q(date_of_death__gte=models.F("date_of_birth")),
                name="patient_death_after_birth",
            ),
            models.CheckConstraint(
                condition=Q(date_of_death__isnull=False) | Q(cause_of_death=""),
                name="patient_cause_of_death_needs_date",
            ),
        ]
        triggers = [
            touch_updated_at(),
            *record_guards(
                PATIENT_KEYS,
                not_data=("index_procedure_id", "index_cohort", "consent_withdrawn_date"),
                # A withdrawal may be recorded on a locked record, not changed (locking.py).
                also_changed="(o.consent_withdrawn_date IS NOT NULL"
                " AND n.consent_withdrawn_date IS DISTINCT FROM o.consent_withdrawn_date)",
            ),
            # Whatever a statement writes to the index columns, the rule's value is stored.
            KeepDerived(
                name="derived_index_kept",
                columns=("index_procedure_id", "index_cohort"),
                # Defined below, with the other SQL of the rules (the rule needs Procedure).
                set_sql=lambda: patient_index_row_sql(),
            ),
            # A death date may not precede a recorded procedure (design.md §2); the procedure
            # side of the rule is the trigger on Procedure.
            pgtrigger.Trigger(
                name="death_not_before_procedure",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("date_of_death", "date_of_birth"),
                func="""
                IF EXISTS (
                    SELECT 1 FROM registry_procedure p WHERE p.patient_id = NEW.id
                    AND (p.date < NEW.date_of_birth OR p.date > NEW.date_of_death)
                ) THEN
                    RAISE EXCEPTION
                        'patient % has a procedure outside birth and death dates', NEW.registry_id
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'patient_death_not_before_procedure';
                END IF;
                RETURN NEW;
                """,
            ),
            pgtrigger.Trigger(
                name="dates_not_in_future",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                declare=[("today", "date")],
                func=not_in_future_sql(
                    ["date_of_birth", "consent_date", "consent_withdrawn_date", "date_of_death"],
                    "SELECT time_zone FROM registry_site WHERE id = NEW.site_id",
                    "patient_dates_not_in_future",
                ),
            ),
            pgtrigger.Trigger(
                name="death_not_before_complication",
                when=pgtrigger.Before,
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange("date_of_death", "date_of_birth"),
                func="""
                IF EXISTS (
                    SELECT 1 FROM registry_complication c WHERE c.patient_id = NEW.id
                    AND (c.date < NEW.date_of_birth OR c.date > NEW.date_of_death)
                ) THEN
                    RAISE EXCEPTION
                        'patient % has a complication outside birth and death dates',
                        NEW.registry_id
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'patient_death_not_before_complication';
                END IF;
                RETURN NEW;
                """,
            ),
        ]

    # Oncologic history (design.md §2), shown and exported together.
    ONCOLOGIC_HISTORY_FIELDS = [
        "primary_tumour",
        "malignancy_confirmation",
        "other_bone_metastases",
        "visceral_metastases",
        "prior_radiotherapy",
        "prior_chemotherapy",
    ]

    def __str__(self) -> str:
        return self.registry_id

    def save(self, *args, **kwargs):
        if not self.registry_id and self.site_id:
            self.registry_id = next_registry_id(self.site_id)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.date_of_birth and self.consent_date and self.consent_date < self.date_of_birth:
            errors["consent_date"] = _("Consent cannot be dated before the date of birth.")
        if (
            self.consent_withdrawn_date
            and self.consent_date
            and self.consent_withdrawn_date < self.consent_date
        ):
            errors["consent_withdrawn_date"] = _("Consent cannot be withdrawn before it was given.")
        if self.date_of_death:
            if self.date_of_birth and self.date_of_death < self.date_of_birth:
                errors["date_of_death"] = _("The date of death is before the date of birth.")
            elif self.pk:
                last = self.procedures.order_by("-date").values_list("date", flat=True).first()
                if last and self.date_of_death < last:
                    errors["date_of_death"] = _(
                        "The date of death is before this patient's procedure on %(date)s."
                    ) % {"date": last.isoformat()}
        if self.cause_of_death and not self.date_of_death:
            errors["cause_of_death"] = _("Enter the date of death before a cause of death.")
        if self.date_of_death and self.pk and "date_of_death" not in errors:
            latest = self.complications.order_by("-date").values_list("date", flat=True).first()
            if latest and self.date_of_death < latest:
                errors["date_of_death"] = _(
                    "The date of death is before this patient's complication on %(date)s."
                ) % {"date": latest.isoformat()}
        time_zone = self.site.time_zone if self.site_id else settings.TIME_ZONE
        dates = {
            name: getattr(self, name)
            for name in ("date_of_birth", "consent_date", "consent_withdrawn_date", "date_of_death")
        }
        for name, message in validation.future_errors(dates, time_zone).items():
            errors.setdefault(name, message)
        if errors:
            raise ValidationError(errors)


class RegistryIdCounter(models.Model):
    """The last patient number given at a site: registry ids are ``<site code>-<000123>``.

    Kept apart from ``Site`` so that a new patient writes no history event on the site.
    """

    site = models.OneToOneField(Site, on_delete=models.CASCADE, primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.site_id}: {self.last_number}"


REGISTRY_NUMBER_WIDTH = 6  # AAR-000123: one width, so ids sort as numbers within a site


def registry_id_format(code: str, number: int) -> str:
    """The registry id of a site's ``number``-th patient, e.g. ``AAR-000123``: the one format
    of every generated id (the generator, the demo)."""
    return f"{code}-{number:0{REGISTRY_NUMBER_WIDTH}d}"


def registry_id_counter_raise(site_id: int, number: int) -> None:
    """Move a site's counter up to ``number`` (never down), after ids up to it were given out
    in bulk (the demo), so the generator continues after them instead of skipping each."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO registry_registryidcounter (site_id, last_number) VALUES (%s, %s) "
            "ON CONFLICT (site_id) DO UPDATE SET last_number = "
            "greatest(registry_registryidcounter.last_number, EXCLUDED.last_number)",
            [site_id, number],
        )


def next_registry_id(site_id: int) -> str:
    """The next free registry id of a site, e.g. ``AAR-000123``.

    The counter row is updated in place (``INSERT … ON CONFLICT … DO UPDATE … RETURNING``), so
    two patients registered at once at one site get two numbers; an id already taken (typed
    by hand before ids were generated) is skipped.
    """
    from django.db import connection, transaction

    code = Site.objects.values_list("code", flat=True).get(pk=site_id)
    with transaction.atomic(), connection.cursor() as cursor:
        while True:
            cursor.execute(
                "INSERT INTO registry_registryidcounter (site_id, last_number) VALUES (%s, 1) "
                "ON CONFLICT (site_id) DO UPDATE SET last_number = "
                "registry_registryidcounter.last_number + 1 RETURNING last_number",
                [site_id],
            )
            candidate = registry_id_format(code, cursor.fetchone()[0])
            if not Patient.objects.filter(registry_id=candidate).exists():
                return candidate


# Contact details can be erased on request (GDPR art. 17; manage.py erase_contact): their
# history records who changed which of a patient's contact details and when ("email.changed"),
# and the values of the fields that are not personal (language, consent), but never a name,
# an email address or a phone number, which an append-only table could never give up.
CONTACT_VALUES = ["name", "email", "phone"]


@audit.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),  # language, consent
    # one event per personal field changed, labelled with the field and holding no value
    *(
        pghistory.UpdateEvent(f"{field}.changed", condition=pgtrigger.AnyChange(field))
        for field in CONTACT_VALUES
    ),
    pghistory.DeleteEvent(),
    exclude=[*TRACK_EXCLUDE, *CONTACT_VALUES],
)
@constrain_choices
class PatientContact(models.Model):
    """How to reach a patient. Kept apart so that no export ever includes it."""

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        DANISH = "da", "Dansk"

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("Text message (SMS)")
        NONE = "none", _("Neither (phone call)")

    patient = models.OneToOneField(
        Patient, on_delete=models.CASCADE, related_name="contact", verbose_name=_("patient")
    )
    name = models.CharField(_("name"), max_length=200, blank=True, validators=[validate_no_cpr])
    email = models.EmailField(_("email"), blank=True)
    # E.164 only (registry.phones; the check constraint refuses anything else, at every door).
    phone = models.CharField(
        _("phone"),
        max_length=16,
        blank=True,
        help_text=_(
            "A mobile number for texts; typed without +, it is read in the site's country."
        ),
    )
    preferred_channel = models.CharField(
        _("preferred channel"),
        max_length=5,
        choices=Channel,
        default=Channel.EMAIL,
        help_text=_("How questionnaires are sent; the other channel is used when this one fails."),
    )
    # A STOP reply to a text (outcomes.sms): no more texts, whatever the preferred channel.
    sms_stopped_at = models.DateTimeField(_("texts stopped at"), null=True, blank=True)
    preferred_language = models.CharField(
        _("preferred language"), max_length=2, choices=Language, default=Language.DANISH
    )
    consent_to_contact = models.BooleanField(
        _("consent to contact"),
        default=False,
        help_text=_("The patient agreed to receive questionnaire emails and calls."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("patient contact")
        verbose_name_plural = _("patient contacts")
        # Also where @constrain_choices adds the language check.
        indexes = [
            # The patient search by name, email and phone (PatientQuerySet.search):
            # UPPER(name) LIKE '%…%', and the same for email and the phone's digits.
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="contact_name_trgm"),
            GinIndex(OpClass(Upper("email"), name="gin_trgm_ops"), name="contact_email_trgm"),
            GinIndex(OpClass(PHONE_DIGITS, name="gin_trgm_ops"), name="contact_phone_digits_trgm"),
        ]
        constraints = [
            no_cpr_check("patientcontact", "name"),
            models.CheckConstraint(
                condition=Q(phone="") | Q(phone__regex=E164_REGEX),
                name="patientcontact_phone_e164",
                violation_error_message=_("The phone number must be stored in +45… (E.164) form."),
            ),
        ]
        triggers = [touch_updated_at()]

    def __str__(self) -> str:
        return f"Contact details of {self.patient}"

    @property
    def phone_display(self) -> str:
        """The number grouped for reading aloud (``+45 20 12 34 56``); stored as E.164."""
        return phone_display(self.phone)

    def clean(self) -> None:
        super().clean()
        if self.phone:
            site = getattr(getattr(self, "patient", None), "site", None)
            try:
                self.phone = phone_normalise(self.phone, country=site.country if site else "")
            except ValidationError as error:
                raise ValidationError({"phone": error}) from None


# Deferred constraint trigger body shared by Procedure (insert) and TreatedLevel (delete, or a
# level moved to another procedure): the procedure, if it still exists, keeps a level.
PROCEDURE_HAS_LEVEL_SQL = """
IF EXISTS (SELECT 1 FROM registry_procedure p WHERE p.id = {procedure_id})
   AND NOT EXISTS (SELECT 1 FROM registry_treatedlevel l WHERE l.procedure_id = {procedure_id})
THEN
    RAISE EXCEPTION 'procedure % has no treated level', {procedure_id}
        USING ERRCODE = 'check_violation', CONSTRAINT = 'procedure_has_a_level';
END IF;
RETURN NULL;
"""


def procedure_cohort(path: str = "pk") -> Coalesce:
    """The cohort of a procedure (design.md §7): the one definition, used by
    ``Procedure.objects.with_cohort()``, the API and the exports alike.

    pathologic: any treated level's etiology is malignant (metastasis, myeloma,
    lymphoma/leukaemia); unknown: otherwise, any level's etiology is unknown (it could be
    malignant, so the procedure is in neither compared cohort); osteoporotic: every level is
    osteoporotic; otherwise other (including a procedure with no levels recorded yet).
    ``path`` leads from the outer row to the procedure's primary key (``"pk"`` on procedures,
    ``"procedure"`` on levels). One aggregate over the procedure's levels, so the whole rule
    is one subquery.
    """

    def flag(condition: Q) -> ExpressionWrapper:
        return ExpressionWrapper(condition, output_field=models.BooleanField())

    levels = TreatedLevel.objects.filter(procedure=OuterRef(path)).order_by().values("procedure")
    cohort = Case(
        When(
            BoolOr(flag(Q(etiology__in=TreatedLevel.MALIGNANT_ETIOLOGIES))),
            then=Value(Cohort.PATHOLOGIC),
        ),
        When(
            BoolOr(flag(Q(etiology=TreatedLevel.Etiology.UNKNOWN))),
            then=Value(Cohort.UNKNOWN),
        ),
        When(
            BoolAnd(flag(Q(etiology=TreatedLevel.Etiology.OSTEOPOROTIC))),
            then=Value(Cohort.OSTEOPOROTIC),
        ),
        default=Value(Cohort.OTHER),
        output_field=models.CharField(),
    )
    # Over no levels the subquery has no row: "other".
    return Coalesce(Subquery(levels.annotate(cohort=cohort).values("cohort")), Value(Cohort.OTHER))


def index_procedures(path: str = "pk") -> models.QuerySet:
    """A patient's procedures, the index procedure first (design.md §7): the earliest by date,
    the first entered on a tie. ``path`` leads from the outer row to the patient's key.
    Patient-level analyses use the index procedure; ``Patient.index_procedure`` stores it."""
    return Procedure.objects.filter(patient=OuterRef(path)).order_by("date", "pk")


# The UPDATEs that store the two rules above, run by the triggers of registry.derived.


def procedure_cohort_sql(ids: str) -> str:
    """UPDATE the stored cohort of the procedures whose ids the SQL ``ids`` selects."""
    table = Procedure._meta.db_table
    cohort = derived.compile_expression(Procedure, procedure_cohort("pk"))
    return f"""
UPDATE "{table}" AS target SET "cohort" = derived.cohort
FROM (
    SELECT "{table}"."id", {cohort} AS cohort
    FROM "{table}" WHERE "{table}"."id" IN ({ids})
) AS derived
WHERE target."id" = derived."id" AND target."cohort" IS DISTINCT FROM derived.cohort;"""  # noqa: S608


def patient_index_sql(ids: str) -> str:
    """UPDATE the stored index procedure and index cohort of the patients whose ids the SQL
    ``ids`` selects."""
    table = Patient._meta.db_table
    first = index_procedures("pk")
    procedure = derived.compile_expression(Patient, Subquery(first.values("pk")[:1]))
    cohort = derived.compile_expression(Patient, Subquery(first.values("cohort")[:1]))
    return f"""
UPDATE "{table}" AS target
SET "index_procedure_id" = derived.procedure_id, "index_cohort" = derived.cohort
FROM (
    SELECT "{table}"."id", {procedure} AS procedure_id, {cohort} AS cohort
    FROM "{table}" WHERE "{table}"."id" IN ({ids})
) AS derived
WHERE target."id" = derived."id"
  AND (target."index_procedure_id", target."index_cohort")
      IS DISTINCT FROM (derived.procedure_id, derived.cohort);"""  # noqa: S608


def procedure_cohort_row_sql() -> str:
    """Set ``NEW."cohort"`` of a procedure row from ``procedure_cohort`` (a row trigger)."""
    table = Procedure._meta.db_table
    cohort = derived.compile_expression(Procedure, procedure_cohort("pk"))
    # The rule's SQL reads the outer row as "table"."id": a one-row relation of that name
    # carrying NEW's id stands in for it.
    return f'SELECT {cohort} INTO NEW."cohort" FROM (SELECT NEW."id" AS "id") AS "{table}";'  # noqa: S608


def patient_index_row_sql() -> str:
    """Set ``NEW."index_procedure_id"`` and ``NEW."index_cohort"`` of a patient row from
    ``index_procedures`` (a row trigger)."""
    table = Patient._meta.db_table
    first = index_procedures("pk")
    procedure = derived.compile_expression(Patient, Subquery(first.values("pk")[:1]))
    cohort = derived.compile_expression(Patient, Subquery(first.values("cohort")[:1]))
    return (
        f'SELECT {procedure}, {cohort} INTO NEW."index_procedure_id", NEW."index_cohort"'  # noqa: S608
        f' FROM (SELECT NEW."id" AS "id") AS "{table}";'
    )


def recompute_all(cursor) -> None:
    """Recompute every stored copy: after a bulk load that bypassed the triggers
    (``session_replication_role = replica``), and to fill the columns when they were added.
    Our table names and SQL compiled from the ORM: no input reaches it."""
    cursor.execute(procedure_cohort_sql('SELECT "id" FROM "registry_procedure"'))
    cursor.execute(patient_index_sql('SELECT "id" FROM "registry_patient"'))


class ProcedureQuerySet(ScopedQuerySet):
    site_path = "patient__site"

    def pathologic(self) -> ProcedureQuerySet:
        return self.filter(cohort=Cohort.PATHOLOGIC)

    def osteoporotic(self) -> ProcedureQuerySet:
        return self.filter(cohort=Cohort.OSTEOPOROTIC)

    def other(self) -> ProcedureQuerySet:
        return self.filter(cohort=Cohort.OTHER)

    def unknown(self) -> ProcedureQuerySet:
        return self.filter(cohort=Cohort.UNKNOWN)


@track_history("cohort")
@constrain_choices
class Procedure(DerivedColumnsMixin, models.Model):
    """One vertebral augmentation session."""

    class Technique(models.TextChoices):
        VERTEBROPLASTY = "vertebroplasty", _("Vertebroplasty")
        BALLOON_KYPHOPLASTY = "balloon_kyphoplasty", _("Balloon kyphoplasty")
        OTHER_AUGMENTATION = "other_augmentation", _("Other augmentation")

    class Adjunct(models.TextChoices):
        NONE = "none", _("None")
        RADIOFREQUENCY_ABLATION = "rfa", _("Radiofrequency ablation")
        OTHER = "other", _("Other")

    class Anaesthesia(models.TextChoices):
        LOCAL = "local", _("Local")
        SEDATION = "sedation", _("Sedation")
        GENERAL = "general", _("General")

    class ImageGuidance(models.TextChoices):
        FLUOROSCOPY = "fluoroscopy", _("Fluoroscopy")
        CT = "ct", _("CT")
        BOTH = "both", _("Fluoroscopy and CT")

    class Indication(models.TextChoices):
        PAINFUL_FRACTURE = "painful_fracture", _("Painful fracture")
        PAINFUL_LESION = "painful_lesion", _("Painful lesion without fracture")
        PROPHYLACTIC = "prophylactic", _("Prophylactic")

    class BiopsyResult(models.TextChoices):
        MALIGNANT = "malignant", _("Malignant")
        BENIGN = "benign", _("Benign / osteoporotic")
        NON_DIAGNOSTIC = "non_diagnostic", _("Non-diagnostic")
        PENDING = "pending", _("Pending")

    class AbsoluteContraindication(models.TextChoices):
        ASYMPTOMATIC_FRACTURE = "asymptomatic_fracture", _("Asymptomatic fracture")
        CORD_COMPRESSION = "cord_compression", _("Symptomatic cord compression")
        INFECTION = "infection", _("Local or systemic infection")
        COAGULOPATHY = "coagulopathy", _("Uncorrectable coagulopathy")
        ALLERGY = "allergy", _("Allergy to cement or contrast")

    class RelativeContraindication(models.TextChoices):
        POSTERIOR_WALL = "posterior_wall", _("Posterior wall disruption")
        CANAL_COMPROMISE = (
            "canal_compromise",
            _("Retropulsed fragment or intraspinal tumour with > 1/3 canal compromise"),
        )
        BURST_FRACTURE = "burst_fracture", _("Burst fracture")
        PEDICLE_INVOLVEMENT = "pedicle_involvement", _("Pedicle involvement")
        HEIGHT_LOSS = "height_loss", _("More than 2/3 height loss")
        CARDIOPULMONARY = "cardiopulmonary", _("Severe cardiopulmonary disease")
        RADICULAR_PAIN = "radicular_pain", _("Radicular or off-midline pain")

    # Usual practice is to stage more than this many levels; the admin warns above it.
    MAX_LEVELS_WITHOUT_WARNING = 3

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="procedures", verbose_name=_("patient")
    )
    date = models.DateField(_("procedure date"), validators=[validate_not_before_1900])
    technique = models.CharField(_("technique"), max_length=20, choices=Technique)
    adjunct = models.CharField(_("adjunct"), max_length=8, choices=Adjunct, default=Adjunct.NONE)
    anaesthesia = models.CharField(_("anaesthesia"), max_length=10, choices=Anaesthesia)
    image_guidance = models.CharField(_("image guidance"), max_length=12, choices=ImageGuidance)
    operator = models.CharField(
        _("operator"), max_length=100, blank=True, validators=[validate_no_cpr]
    )
    indication = models.CharField(_("indication"), max_length=20, choices=Indication)
    mri_stir_oedema = models.BooleanField(_("MRI STIR oedema"), null=True, blank=True)
    biopsy_taken = models.BooleanField(_("biopsy taken"), default=False)
    biopsy_result = models.CharField(
        _("biopsy result"), max_length=16, choices=BiopsyResult, blank=True
    )
    fluoroscopy_time_s = models.PositiveIntegerField(
        _("fluoroscopy time (s)"), null=True, blank=True
    )
    dose_area_product = models.DecimalField(
        _("dose-area product (Gy·cm²)"),
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[validation.validate_not_negative],
    )
    absolute_contraindications = MultipleChoiceArrayField(
        models.CharField(max_length=24, choices=AbsoluteContraindication),
        verbose_name=_("absolute contraindications present"),
    )
    relative_contraindications = MultipleChoiceArrayField(
        models.CharField(max_length=24, choices=RelativeContraindication),
        verbose_name=_("relative contraindications present"),
    )
    length_of_stay_days = models.PositiveSmallIntegerField(
        _("length of stay (days)"), null=True, blank=True, validators=[MaxValueValidator(365)]
    )
    notes = models.TextField(_("notes"), blank=True, validators=[validate_no_cpr])
    # Derived by procedure_cohort() from the levels, stored and indexed for lists at scale;
    # kept right by triggers on the levels (registry.derived), never written by Django.
    cohort = models.CharField(
        _("cohort"), max_length=12, choices=Cohort, default=Cohort.OTHER, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = ProcedureQuerySet.as_manager()

    # Written by the database only (registry.derived; docs/architecture.md).
    derived_fields = ("cohort",)

    class Meta:
        verbose_name = _("procedure")
        verbose_name_plural = _("procedures")
        ordering = ["-date", "-pk"]
        indexes = [
            # Index-procedure look-ups: the first procedure of each patient by date.
            models.Index(fields=["patient", "date", "id"], name="procedure_patient_date_idx"),
            # The list's order, alone and under the cohort filter.
            models.Index(fields=["date", "id"], name="procedure_date_idx"),
            models.Index(fields=["cohort", "date", "id"], name="procedure_cohort_date_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(biopsy_taken=True) | Q(biopsy_result=""),
                name="procedure_biopsy_result_needs_biopsy",
            ),
            models.CheckConstraint(
                condition=Q(dose_area_product__isnull=True) | Q(dose_area_product__gte=0),
                name="procedure_dap_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(length_of_stay_days__isnull=True) | Q(length_of_stay_days__lte=365),
                name="procedure_length_of_stay_0_365",
            ),
            no_cpr_check("procedure", "operator", "notes"),
        ]
        triggers = [
            *record_guards(PATIENT_FK_KEYS, not_data=("cohort",)),
            touch_updated_at(),
            pgtrigger.Trigger(
                name="date_within_patient_life",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF EXISTS (
                    SELECT 1 FROM registry_patient pt WHERE pt.id = NEW.patient_id
                    AND (NEW.date < pt.date_of_birth OR NEW.date > pt.date_of_death)
                ) THEN
                    RAISE EXCEPTION
                        'procedure date % is outside the patient''s birth and death dates', NEW.date
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'procedure_date_within_patient_life';
                END IF;
                RETURN NEW;
                """,
            ),
            pgtrigger.Trigger(
                name="date_not_in_future",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                declare=[("today", "date")],
                func=not_in_future_sql(
                    ["date"],
                    "SELECT s.time_zone FROM registry_patient pt"
                    " JOIN registry_site s ON s.id = pt.site_id WHERE pt.id = NEW.patient_id",
                    "procedure_date_not_in_future",
                ),
            ),
            # At least one treated level: checked at commit, so the procedure and its levels
            # can be inserted in either order within one transaction. On insert only, so a
            # procedure from before this rule can still be corrected (a data-quality rule
            # lists those).
            pgtrigger.Trigger(
                name="has_a_level",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                func=PROCEDURE_HAS_LEVEL_SQL.format(procedure_id="NEW.id"),
            ),
            # Whatever a statement writes to the cohort, the rule's value is stored.
            KeepDerived(
                name="derived_cohort_kept", columns=("cohort",), set_sql=procedure_cohort_row_sql
            ),
            # The patient's index procedure and cohort (registry.derived).
            *recompute_triggers(
                "patient_index",
                key="patient_id",
                target="registry_patient",
                set_sql=patient_index_sql,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.get_technique_display()} {self.date.isoformat()}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        patient = self.patient if self.patient_id else None
        if patient and self.date:
            if self.date < patient.date_of_birth:
                errors["date"] = _("The procedure date is before the patient's date of birth.")
            elif patient.date_of_death and self.date > patient.date_of_death:
                errors["date"] = _(
                    "The procedure date is after the patient's recorded death (%(date)s)."
                ) % {"date": patient.date_of_death.isoformat()}
        if self.biopsy_result and not self.biopsy_taken:
            errors["biopsy_result"] = _("Tick “biopsy taken” before entering a biopsy result.")
        if patient and "date" not in errors:
            errors.update(validation.future_errors({"date": self.date}, patient.site.time_zone))
        if errors:
            raise ValidationError(errors)


def cement_volume_within_region_maximum() -> Q:
    """The per-region cement maximum of ``registry.validation`` as a CHECK condition."""
    bounds = validation.CEMENT_VOLUME_ML
    # Level values (TreatedLevel.Level, not yet defined while its Meta is built): C2-C7 are
    # 2-7, T1-T12 8-19, L1-L5 20-24, S1 25; region_of_level() is the same split.
    return (
        (Q(level__gt=7) | Q(cement_volume_ml__lte=bounds["cervical"].maximum))
        & (Q(level__lt=8) | Q(level__gt=19) | Q(cement_volume_ml__lte=bounds["thoracic"].maximum))
        & (Q(level__lt=20) | Q(level__gt=24) | Q(cement_volume_ml__lte=bounds["lumbar"].maximum))
        & (Q(level__lt=25) | Q(cement_volume_ml__lte=bounds["sacral"].maximum))
    )


class TreatedLevelQuerySet(ScopedQuerySet):
    site_path = "procedure__patient__site"


@track_history()
@constrain_choices
class TreatedLevel(models.Model):
    """One vertebra treated in a procedure."""

    class Level(models.IntegerChoices):
        # Values are the anatomical order, so ordering by level is cranial to caudal.
        C2 = 2, "C2"
        C3 = 3, "C3"
        C4 = 4, "C4"
        C5 = 5, "C5"
        C6 = 6, "C6"
        C7 = 7, "C7"
        T1 = 8, "T1"
        T2 = 9, "T2"
        T3 = 10, "T3"
        T4 = 11, "T4"
        T5 = 12, "T5"
        T6 = 13, "T6"
        T7 = 14, "T7"
        T8 = 15, "T8"
        T9 = 16, "T9"
        T10 = 17, "T10"
        T11 = 18, "T11"
        T12 = 19, "T12"
        L1 = 20, "L1"
        L2 = 21, "L2"
        L3 = 22, "L3"
        L4 = 23, "L4"
        L5 = 24, "L5"
        S1 = 25, "S1"

    class Etiology(models.TextChoices):
        OSTEOPOROTIC = "osteoporotic", _("Osteoporotic")
        METASTASIS = "metastasis", _("Metastasis")
        MULTIPLE_MYELOMA = "multiple_myeloma", _("Multiple myeloma")
        LYMPHOMA_LEUKAEMIA = "lymphoma_leukaemia", _("Lymphoma / leukaemia")
        HAEMANGIOMA = "haemangioma", _("Haemangioma")
        TRAUMATIC = "traumatic", _("Traumatic")
        OTHER = "other", _("Other")
        # Not known at entry (a hospital file often says so): the procedure's cohort is
        # "unknown" unless another level is malignant (design.md §7).
        UNKNOWN = "unknown", _("Unknown")

    class Approach(models.TextChoices):
        UNIPEDICULAR = "unipedicular", _("Unipedicular")
        BIPEDICULAR = "bipedicular", _("Bipedicular")
        EXTRAPEDICULAR = "extrapedicular", _("Extrapedicular")

    class CementType(models.TextChoices):
        PMMA = "pmma", _("PMMA")
        PMMA_HIGH_VISCOSITY = "pmma_high_viscosity", _("High-viscosity PMMA")
        CALCIUM_PHOSPHATE = "calcium_phosphate", _("Calcium phosphate")
        OTHER = "other", _("Other")

    class LeakageSite(models.TextChoices):
        SEGMENTAL_VEIN = "segmental_vein", _("Segmental vein")
        EPIDURAL = "epidural", _("Epidural / spinal canal")
        FORAMINAL = "foraminal", _("Foraminal")
        INTRADISCAL = "intradiscal", _("Intradiscal")
        PARAVERTEBRAL = "paravertebral", _("Paravertebral soft tissue")
        PULMONARY_EMBOLISM = "pulmonary_embolism", _("Pulmonary embolism")

    class LeakageDetection(models.TextChoices):
        FLUOROSCOPY = "fluoroscopy", _("Intra-operative fluoroscopy")
        RADIOGRAPH_3M = "radiograph_3m", _("3-month radiograph")
        CT = "ct", _("CT")

    class Region(models.TextChoices):
        CERVICAL = "cervical", _("Cervical")
        THORACIC = "thoracic", _("Thoracic")
        LUMBAR = "lumbar", _("Lumbar")
        SACRAL = "sacral", _("Sacral")

    MALIGNANT_ETIOLOGIES = (
        Etiology.METASTASIS,
        Etiology.MULTIPLE_MYELOMA,
        Etiology.LYMPHOMA_LEUKAEMIA,
    )
    MAX_CEMENT_VOLUME_ML = Decimal("20.0")

    procedure = models.ForeignKey(
        Procedure, on_delete=models.CASCADE, related_name="levels", verbose_name=_("procedure")
    )
    level = models.PositiveSmallIntegerField(_("level"), choices=Level)
    etiology = models.CharField(_("etiology"), max_length=20, choices=Etiology)
    fracture = models.BooleanField(_("fracture present"), default=True)
    genant_grade = models.PositiveSmallIntegerField(
        _("Genant grade"),
        null=True,
        blank=True,
        choices=[(0, "0"), (1, _("1 (mild)")), (2, _("2 (moderate)")), (3, _("3 (severe)"))],
        error_messages={"invalid_choice": validation.GENANT_MESSAGE},
    )
    posterior_wall_defect = models.BooleanField(_("posterior wall defect"), default=False)
    pedicle_involvement = models.BooleanField(_("pedicle involvement"), default=False)
    epidural_extension = models.BooleanField(_("epidural extension"), default=False)
    approach = models.CharField(_("approach"), max_length=16, choices=Approach)
    cement_type = models.CharField(
        _("cement type"), max_length=20, choices=CementType, default=CementType.PMMA
    )
    cement_volume_ml = models.DecimalField(
        _("cement volume (mL)"),
        max_digits=4,
        decimal_places=1,
        # The most a vertebra holds depends on its region: clean() and the check below.
        validators=[validation.cement_volume_positive],
    )
    cement_leakage = models.BooleanField(_("cement leakage"), default=False)
    leakage_sites = MultipleChoiceArrayField(
        models.CharField(max_length=20, choices=LeakageSite), verbose_name=_("leakage sites")
    )
    leakage_symptomatic = models.BooleanField(_("leakage symptomatic"), default=False)
    leakage_detected_by = models.CharField(
        _("leakage detected by"), max_length=16, choices=LeakageDetection, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = TreatedLevelQuerySet.as_manager()

    class Meta:
        verbose_name = _("treated level")
        verbose_name_plural = _("treated levels")
        ordering = ["procedure", "level"]
        constraints = [
            models.UniqueConstraint(
                fields=["procedure", "level"],
                name="treatedlevel_one_row_per_level",
                violation_error_message=_(
                    "This vertebra is entered twice: record each vertebra once per procedure."
                ),
            ),
            models.CheckConstraint(
                condition=Q(level__gte=2, level__lte=25), name="treatedlevel_level_c2_s1"
            ),
            models.CheckConstraint(
                condition=Q(genant_grade__isnull=True)
                | Q(genant_grade__gte=0, genant_grade__lte=3),
                name="treatedlevel_genant_0_3",
            ),
            models.CheckConstraint(
                condition=Q(cement_volume_ml__gt=0, cement_volume_ml__lte=20),
                name="treatedlevel_cement_volume_0_20",
                violation_error_message=validation.CEMENT_POSITIVE_MESSAGE,
            ),
            models.CheckConstraint(
                condition=cement_volume_within_region_maximum(),
                name="treatedlevel_cement_volume_plausible_for_region",
                violation_error_message=_(
                    "The cement volume is more than a vertebra of this region can hold."
                ),
            ),
            # No leakage: no sites, not symptomatic, no detection. Leakage: at least one site
            # and how it was found, so per-site leakage rates add up.
            models.CheckConstraint(
                condition=Q(
                    cement_leakage=False,
                    leakage_sites__len=0,
                    leakage_symptomatic=False,
                    leakage_detected_by="",
                )
                | (Q(cement_leakage=True, leakage_sites__len__gte=1) & ~Q(leakage_detected_by="")),
                name="treatedlevel_leakage_details_consistent",
            ),
        ]
        triggers = [
            *record_guards(PROCEDURE_FK_KEYS),
            # The procedure keeps at least one level (see Procedure.Meta.triggers).
            pgtrigger.Trigger(
                name="procedure_keeps_a_level",
                when=pgtrigger.After,
                operation=pgtrigger.Delete | pgtrigger.UpdateOf("procedure_id"),
                timing=pgtrigger.Deferred,
                func=PROCEDURE_HAS_LEVEL_SQL.format(procedure_id="OLD.procedure_id"),
            ),
            # The procedure's cohort (registry.derived).
            *recompute_triggers(
                "procedure_cohort",
                key="procedure_id",
                target="registry_procedure",
                set_sql=procedure_cohort_sql,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} ({self.get_etiology_display()})"

    @property
    def region(self) -> str:
        return region_of_level(self.level)

    @property
    def leakage_site_labels(self) -> list[str]:
        """The leakage sites as their labels (never the stored codes), in the user's language."""
        return [
            str(self.LeakageSite(site).label) if site in self.LeakageSite.values else site
            for site in self.leakage_sites or []
        ]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.cement_leakage:
            if not self.leakage_sites:
                errors["leakage_sites"] = _("Tick where the cement leaked.")
            if not self.leakage_detected_by:
                errors["leakage_detected_by"] = _("Say how the leakage was detected.")
        else:
            if self.leakage_sites:
                errors["leakage_sites"] = _(
                    "Leakage sites are ticked but “cement leakage” is not: tick it or clear them."
                )
            if self.leakage_symptomatic:
                errors["leakage_symptomatic"] = _(
                    "A leakage cannot be symptomatic when “cement leakage” is not ticked."
                )
            if self.leakage_detected_by:
                errors["leakage_detected_by"] = _("Clear “detected by”, or tick “cement leakage”.")
        if not self.fracture and self.genant_grade not in (None, 0):
            errors["genant_grade"] = _("A Genant grade above 0 needs “fracture present”.")
        if self.level and self.cement_volume_ml is not None and self.level in self.Level.values:
            region = self.region
            maximum = validation.CEMENT_VOLUME_ML[region].maximum
            if self.cement_volume_ml > maximum:
                errors["cement_volume_ml"] = validation.CEMENT_MAX_MESSAGE % {
                    "volume": self.cement_volume_ml,
                    "region": self.Region(region).label.lower(),
                    "max": maximum,
                }
        if errors:
            raise ValidationError(errors)


# First and last level of each spinal region, cranial to caudal: the one definition of region
# behind ``region_of_level`` (Python) and ``levels_in_region`` (SQL).
REGION_LEVELS = {
    TreatedLevel.Region.CERVICAL: (TreatedLevel.Level.C2, TreatedLevel.Level.C7),
    TreatedLevel.Region.THORACIC: (TreatedLevel.Level.T1, TreatedLevel.Level.T12),
    TreatedLevel.Region.LUMBAR: (TreatedLevel.Level.L1, TreatedLevel.Level.L5),
    TreatedLevel.Region.SACRAL: (TreatedLevel.Level.S1, TreatedLevel.Level.S1),
}


def region_of_level(level: int) -> str:
    """Spinal region of a level value from ``TreatedLevel.Level``."""
    for region, (first, last) in REGION_LEVELS.items():
        if first <= level <= last:
            return region
    raise ValueError(f"no spinal region for level {level}")


def levels_in_region(region: str, field: str = "level") -> Q:
    """A filter on treated levels (``field`` is the level column's path) in ``region``."""
    first, last = REGION_LEVELS[region]
    return Q(**{f"{field}__range": (first, last)})


class ComplicationQuerySet(ScopedQuerySet):
    site_path = "patient__site"

    def related_to_procedure(self) -> ComplicationQuerySet:
        """Complications not judged unrelated to the procedure (definite, probable, possible):
        the ones the report and the exports count."""
        return self.filter(relation__in=Complication.RELATED_TO_PROCEDURE)


@track_history()
@constrain_choices
class Complication(models.Model):
    """An adverse event after vertebral augmentation, graded on the CIRSE scale."""

    class Type(models.TextChoices):
        SYMPTOMATIC_LEAKAGE = "symptomatic_leakage", _("Symptomatic cement leakage")
        PULMONARY_EMBOLISM = "pulmonary_embolism", _("Pulmonary cement embolism")
        ADJACENT_FRACTURE = "adjacent_fracture", _("New adjacent fracture")
        NON_ADJACENT_FRACTURE = "non_adjacent_fracture", _("New non-adjacent fracture")
        RADICULOPATHY = "radiculopathy", _("Radiculopathy")
        CORD_COMPRESSION = "cord_compression", _("Cord compression")
        INFECTION = "infection", _("Infection")
        HAEMATOMA = "haematoma", _("Haematoma or bleeding")
        RIB_FRACTURE = "rib_fracture", _("Rib fracture")
        ALLERGIC_REACTION = "allergic_reaction", _("Allergic reaction")
        DEATH = "death", _("Death")
        OTHER = "other", _("Other")

    class CirseGrade(models.IntegerChoices):
        GRADE_1 = 1, _("1 – during the procedure, solved within it")
        GRADE_2 = 2, _("2 – overnight admission for observation")
        GRADE_3 = 3, _("3 – additional therapy or prolonged stay (> 48 h)")
        GRADE_4 = 4, _("4 – mild permanent sequelae")
        GRADE_5 = 5, _("5 – severe permanent sequelae")
        GRADE_6 = 6, _("6 – death")

    class Relation(models.TextChoices):
        DEFINITE = "definite", _("Definite")
        PROBABLE = "probable", _("Probable")
        POSSIBLE = "possible", _("Possible")
        UNRELATED = "unrelated", _("Unrelated")

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", _("Resolved")
        RESOLVED_WITH_SEQUELAE = "resolved_sequelae", _("Resolved with sequelae")
        ONGOING = "ongoing", _("Ongoing")
        FATAL = "fatal", _("Fatal")

    # What is recorded about a complication, in entry order (admin form, API, exports, import).
    CLINICAL_FIELDS = ["date", "type", "symptomatic", "cirse_grade", "relation", "outcome"]
    RELATED_TO_PROCEDURE = (Relation.DEFINITE, Relation.PROBABLE, Relation.POSSIBLE)
    # Complications that are a cement leakage (a pulmonary cement embolism is one too).
    CEMENT_LEAKAGE_TYPES = (Type.SYMPTOMATIC_LEAKAGE, Type.PULMONARY_EMBOLISM)

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="complications", verbose_name=_("patient")
    )
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="complications",
        verbose_name=_("procedure"),
    )
    treated_level = models.ForeignKey(
        TreatedLevel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="complications",
        verbose_name=_("treated level"),
    )
    date = models.DateField(_("date"), validators=[validate_not_before_1900])
    type = models.CharField(_("type"), max_length=24, choices=Type)
    cirse_grade = models.PositiveSmallIntegerField(_("CIRSE grade"), choices=CirseGrade)
    relation = models.CharField(_("relation to the procedure"), max_length=10, choices=Relation)
    # Unknown (null) until staff record it: the report shows unknowns apart, never as "no".
    symptomatic = models.BooleanField(
        _("symptomatic"), null=True, blank=True, help_text=_("Leave empty while unknown.")
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome)
    description = models.TextField(_("description"), blank=True, validators=[validate_no_cpr])
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # API: updated_since
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    objects = ComplicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("complication")
        verbose_name_plural = _("complications")
        ordering = ["-date", "-pk"]
        # The admin list's order.
        indexes = [models.Index(fields=["date", "id"], name="complication_date_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(cirse_grade__gte=1, cirse_grade__lte=6),
                name="complication_cirse_grade_1_6",
            ),
            # CIRSE grade 6 is death: the grade and a fatal outcome go together.
            models.CheckConstraint(
                condition=Q(cirse_grade=6, outcome="fatal")
                | (~Q(cirse_grade=6) & ~Q(outcome="fatal")),
                name="complication_grade_6_iff_fatal",
            ),
            models.CheckConstraint(
                condition=~Q(type="death") | Q(cirse_grade=6),
                name="complication_death_is_grade_6",
            ),
            models.CheckConstraint(
                condition=Q(treated_level__isnull=True) | Q(procedure__isnull=False),
                name="complication_level_needs_procedure",
            ),
            no_cpr_check("complication", "description"),
        ]
        triggers = [
            *record_guards(PATIENT_FK_KEYS),
            touch_updated_at(),
            pgtrigger.Trigger(
                name="links_consistent",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF NEW.procedure_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM registry_procedure p
                    WHERE p.id = NEW.procedure_id AND p.patient_id = NEW.patient_id
                    AND p.date <= NEW.date
                ) THEN
                    RAISE EXCEPTION 'complication must follow a procedure of the same patient'
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'complication_procedure_of_patient';
                END IF;
                IF NEW.treated_level_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM registry_treatedlevel l
                    WHERE l.id = NEW.treated_level_id AND l.procedure_id = NEW.procedure_id
                ) THEN
                    RAISE EXCEPTION 'treated level must belong to the complication''s procedure'
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'complication_level_of_procedure';
                END IF;
                RETURN NEW;
                """,
            ),
            pgtrigger.Trigger(
                name="within_patient_life",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func="""
                IF EXISTS (
                    SELECT 1 FROM registry_patient pt WHERE pt.id = NEW.patient_id
                    AND (NEW.date < pt.date_of_birth OR NEW.date > pt.date_of_death)
                ) THEN
                    RAISE EXCEPTION
                        'complication date % is outside the patient''s birth and death dates',
                        NEW.date
                        USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'complication_date_within_patient_life';
                END IF;
                RETURN NEW;
                """,
            ),
            pgtrigger.Trigger(
                name="date_not_in_future",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                declare=[("today", "date")],
                func=not_in_future_sql(
                    ["date"],
                    "SELECT s.time_zone FROM registry_patient pt"
                    " JOIN registry_site s ON s.id = pt.site_id WHERE pt.id = NEW.patient_id",
                    "complication_date_not_in_future",
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} (CIRSE {self.cirse_grade}) – {self.patient}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.procedure_id and self.patient_id and self.procedure.patient_id != self.patient_id:
            errors["procedure"] = _("This procedure belongs to another patient.")
        elif self.procedure_id and self.date and self.date < self.procedure.date:
            errors["date"] = _("The complication is dated before its procedure (%(date)s).") % {
                "date": self.procedure.date.isoformat()
            }
        if self.treated_level_id:
            if not self.procedure_id:
                errors["treated_level"] = _("Choose the procedure before the treated level.")
            elif self.treated_level.procedure_id != self.procedure_id:
                errors["treated_level"] = _("This level was not treated in the chosen procedure.")
        if self.cirse_grade == 6 and self.outcome != self.Outcome.FATAL:
            errors["outcome"] = _("CIRSE grade 6 means death: the outcome must be fatal.")
        elif self.outcome == self.Outcome.FATAL and self.cirse_grade != 6:
            errors["cirse_grade"] = _("A fatal outcome is CIRSE grade 6.")
        if self.type == self.Type.DEATH and self.cirse_grade != 6:
            errors["cirse_grade"] = _("A death is CIRSE grade 6.")
        patient = self.patient if self.patient_id else None
        if patient and self.date and "date" not in errors:
            if self.date < patient.date_of_birth:
                errors["date"] = _("The complication is dated before the date of birth.")
            elif patient.date_of_death and self.date > patient.date_of_death:
                errors["date"] = _(
                    "The complication is dated after the patient's recorded death (%(date)s)."
                ) % {"date": patient.date_of_death.isoformat()}
            else:
                errors.update(validation.future_errors({"date": self.date}, patient.site.time_zone))
        if errors:
            raise ValidationError(errors)


# Locks on records and signatures over them (design.md §9b): a lock or a signature covers a
# whole patient's record, or one follow-up's data (a procedure and a timepoint of the follow-up
# plan). Both rows are append-only but for their one allowed change (a lock is unlocked with
# a reason, a signature is voided) and keep their full history, with the acting user;
# registry.locking enforces them on the clinical tables.
BLANK = r"^\s*$"


class PatientScopedQuerySet(ScopedQuerySet):
    site_path = "patient__site"


class RecordLockQuerySet(PatientScopedQuerySet):
    def active(self) -> RecordLockQuerySet:
        return self.filter(unlocked_at__isnull=True)

    def covering(
        self, *, patient_id: int, procedure_id: int | None = None, timepoint: str = ""
    ) -> RecordLockQuerySet:
        """The active locks that cover the patient's record, or the follow-up's data (the
        same rule as ``registry.locking.COVERS``)."""
        follow_up = Q(procedure__isnull=True)
        if procedure_id is not None:
            follow_up |= Q(procedure_id=procedure_id, timepoint=timepoint)
        return self.active().filter(follow_up, patient_id=patient_id)


def _only_change(allowed: list[str], *, once: str, message: str) -> pgtrigger.Trigger:
    """Refuse any update but setting ``allowed`` while ``once`` is still empty."""
    columns = "ARRAY[" + ", ".join(f"'{c}'" for c in allowed) + "]::text[]"
    return pgtrigger.Trigger(
        name="only_closed_once",
        when=pgtrigger.Before,
        operation=pgtrigger.Update,
        func=f"""
        IF OLD.{once} IS NOT NULL
           OR (to_jsonb(NEW) - {columns}) IS DISTINCT FROM (to_jsonb(OLD) - {columns}) THEN
            RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
        """,
    )


@track_history()
class RecordLock(models.Model):
    """A data manager's lock on a record: no change until it is unlocked with a reason."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="locks", verbose_name=_("patient")
    )
    # With a timepoint: only that follow-up's data (its questionnaire response) is locked.
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=12, blank=True)
    reason = models.TextField(_("reason for locking"), validators=[validate_no_cpr])
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("locked by"),
    )
    locked_at = models.DateTimeField(_("locked at"), default=timezone.now)
    unlocked_at = models.DateTimeField(_("unlocked at"), null=True, blank=True)
    unlocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("unlocked by"),
    )
    unlock_reason = models.TextField(
        _("reason for unlocking"), blank=True, validators=[validate_no_cpr]
    )

    objects = RecordLockQuerySet.as_manager()

    class Meta:
        verbose_name = _("record lock")
        verbose_name_plural = _("record locks")
        ordering = ["-locked_at", "-pk"]
        permissions = [("lock_record", _("Can lock and unlock records"))]
        indexes = [
            # The guard triggers' first probe (is anything locked at all?) and a patient's
            # active locks (the record page, the admin).
            models.Index(
                fields=["patient"], condition=Q(unlocked_at__isnull=True), name="recordlock_active"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(reason__regex=BLANK), name="recordlock_reason"),
            models.CheckConstraint(
                condition=Q(unlocked_at__isnull=True, unlock_reason="")
                | (Q(unlocked_at__isnull=False) & ~Q(unlock_reason__regex=BLANK)),
                name="recordlock_unlock_reason",
            ),
            models.CheckConstraint(
                condition=Q(procedure__isnull=True, timepoint="")
                | (Q(procedure__isnull=False) & ~Q(timepoint="")),
                name="recordlock_follow_up_has_timepoint",
            ),
            models.UniqueConstraint(
                fields=["patient"],
                condition=Q(unlocked_at__isnull=True, procedure__isnull=True),
                name="recordlock_one_active_per_patient",
            ),
            models.UniqueConstraint(
                fields=["procedure", "timepoint"],
                condition=Q(unlocked_at__isnull=True, procedure__isnull=False),
                name="recordlock_one_active_per_follow_up",
            ),
            no_cpr_check("recordlock", "reason", "unlock_reason"),
        ]
        triggers = [
            _only_change(
                ["unlocked_at", "unlocked_by_id", "unlock_reason"],
                once="unlocked_at",
                message="a record lock is only ever unlocked, once",
            ),
            # Deleting an active lock would unlock without a reason (a patient's delete
            # cascades to its locks first).
            pgtrigger.Trigger(
                name="active_not_deleted",
                when=pgtrigger.Before,
                operation=pgtrigger.Delete,
                func="""
                IF OLD.unlocked_at IS NULL THEN
                    RAISE EXCEPTION 'the record of patient % is locked: a data manager must unlock it, with a reason, before it can change',
                        (SELECT registry_id FROM registry_patient WHERE id = OLD.patient_id)
                        USING ERRCODE = 'check_violation', CONSTRAINT = 'record_locked';
                END IF;
                RETURN OLD;
                """,  # noqa: E501
            ),
        ]

    def __str__(self) -> str:
        what = f" {self.timepoint}" if self.timepoint else ""
        return f"{self.patient}{what}"

    @property
    def is_active(self) -> bool:
        return self.unlocked_at is None


@track_history()
@constrain_choices
class Signature(models.Model):
    """A site investigator's electronic signature over a record, with its meaning and the
    SHA-256 of the data signed. Any later change to those data voids it (``registry.locking``):
    the record page and the exports then show it void and a new signature is needed."""

    class Meaning(models.TextChoices):
        COMPLETE_AND_ACCURATE = (
            "complete_accurate",
            _("I confirm these data are complete and accurate"),
        )
        REVIEWED = "reviewed", _("I have reviewed these data")
        APPROVED = "approved", _("I approve these data for analysis")

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="signatures", verbose_name=_("patient")
    )
    procedure = models.ForeignKey(
        Procedure,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("procedure"),
    )
    timepoint = models.CharField(_("timepoint"), max_length=12, blank=True)
    signer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("signed by"),
    )
    # The signer's printed name as it was when signing (the signature's manifestation).
    signer_name = models.CharField(_("name of signer"), max_length=300)
    meaning = models.CharField(_("meaning"), max_length=20, choices=Meaning)
    signed_at = models.DateTimeField(_("signed at"), default=timezone.now)
    data_hash = models.CharField(_("SHA-256 of the signed data"), max_length=64)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.TextField(_("why void"), blank=True)

    objects = PatientScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("signature")
        verbose_name_plural = _("signatures")
        ordering = ["-signed_at", "-pk"]
        permissions = [("sign_record", _("Can sign records as site investigator"))]
        indexes = [
            # The guard triggers' first probe and a patient's valid signatures.
            models.Index(
                fields=["patient"], condition=Q(voided_at__isnull=True), name="signature_valid"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(data_hash__regex=r"^[0-9a-f]{64}$"), name="signature_hash_sha256"
            ),
            models.CheckConstraint(
                condition=Q(procedure__isnull=True, timepoint="")
                | (Q(procedure__isnull=False) & ~Q(timepoint="")),
                name="signature_follow_up_has_timepoint",
            ),
            models.CheckConstraint(
                condition=Q(voided_at__isnull=True, void_reason="")
                | (Q(voided_at__isnull=False) & ~Q(void_reason__regex=BLANK)),
                name="signature_void_reason",
            ),
        ]
        triggers = [
            _only_change(
                ["voided_at", "void_reason"],
                once="voided_at",
                message="a signature is only ever voided, once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.timepoint}".strip()

    @property
    def is_valid(self) -> bool:
        return self.voided_at is None


def active_lock(obj):
    """The active lock covering the record ``obj`` belongs to (``registry.locking.record_key``),
    or None."""
    key = record_key(obj)
    if key is None:
        return None
    patient_id, procedure_id, timepoint = key
    return (
        RecordLock.objects.covering(
            patient_id=patient_id, procedure_id=procedure_id, timepoint=timepoint
        )
        .select_related("locked_by")
        .first()
    )
