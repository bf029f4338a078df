"""Queries to sites (data resolution), after OpenClinica's discrepancy notes.

A monitor or registry manager raises a query on one field of a record with a question; site
staff answer it (and correct the value on the record itself, which its own history records);
the monitor closes it, or reopens it with a new question. States: open → answered → closed,
with reopen from answered or closed back to open. Every step is a database update tracked by
pghistory with the acting user, so a query's history shows each step.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from outcomes.quality.models import DataQuery
from registry.models import Patient, PatientContact

RAISE_PERMISSION = "outcomes.raise_dataquery"
ANSWER_PERMISSION = "outcomes.answer_dataquery"


def record_site(record):
    """The site a clinical record belongs to (patient, procedure, level, complication,
    questionnaire response, follow-up)."""
    site = _first_attribute(record, ("site", "patient.site", "procedure.patient.site"), _NONE)
    if site is _NONE:
        raise ValueError(f"{record!r} belongs to no site")
    return site


_NONE = object()


def _first_attribute(record, paths, default=None):
    """The value at the first dotted attribute path that ``record`` has, else ``default``."""
    for path in paths:
        obj = record
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return obj
    return default


# The contact details a query on a patient can be about (issue 27: a wrong phone or email
# stops the chase). The query stays on the patient record, so its label, links and digest
# line name the registry id only; the field is named ``contact.<field>``.
CONTACT_QUERY_FIELDS = (
    "name",
    "phone",
    "email",
    "preferred_channel",
    "preferred_language",
    "consent_to_contact",
)
CONTACT_PREFIX = "contact."


def queryable_fields(model) -> list[tuple[str, str]]:
    """(name, label) of the fields of ``model`` a query can be about; for a patient, also
    the fields of its contact details (``contact.phone``, …)."""
    skip = {"id", "created_at", "updated_at"}
    fields = [
        (field.name, str(field.verbose_name))
        for field in model._meta.concrete_fields
        if field.name not in skip
    ]
    if model is Patient:
        fields += [
            (
                f"{CONTACT_PREFIX}{name}",
                str(
                    _("%(field)s (contact details)")
                    % {"field": PatientContact._meta.get_field(name).verbose_name}
                ),
            )
            for name in CONTACT_QUERY_FIELDS
        ]
    return fields


def _locked(query: DataQuery) -> DataQuery:
    return DataQuery.objects.select_for_update().get(pk=query.pk)


def _save(query: DataQuery) -> DataQuery:
    query.full_clean()
    query.save()
    return query


@transaction.atomic
def dataquery_raise(*, user, record, field_name: str, comment: str) -> DataQuery:
    """Open a query on ``field_name`` of ``record``."""
    if not user.has_perm(RAISE_PERMISSION):
        raise PermissionDenied(_("Only monitors and registry managers raise queries."))
    if field_name not in dict(queryable_fields(type(record))):
        raise ValidationError({"field_name": _("Choose a field of this record.")})
    query = DataQuery(
        site=record_site(record),
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        record_label=str(record)[:200],
        field_name=field_name,
        comment=comment.strip(),
        raised_by=user,
    )
    return _save(query)


@transaction.atomic
def dataquery_answer(*, query: DataQuery, user, answer: str) -> DataQuery:
    """Site staff answer an open query (after correcting the value, if it was wrong)."""
    if not user.has_perm(ANSWER_PERMISSION):
        raise PermissionDenied(_("Only site staff answer queries."))
    query = _locked(query)
    if query.state != DataQuery.State.OPEN:
        raise ValidationError(_("Only an open query can be answered."))
    if not answer.strip():
        raise ValidationError({"answer": _("Write the answer (what was checked or corrected).")})
    query.state = DataQuery.State.ANSWERED
    query.answer = answer.strip()
    query.answered_by = user
    query.answered_at = timezone.now()
    return _save(query)


@transaction.atomic
def dataquery_close(*, query: DataQuery, user) -> DataQuery:
    """The monitor accepts the answer (or withdraws an open query)."""
    if not user.has_perm(RAISE_PERMISSION):
        raise PermissionDenied(_("Only monitors and registry managers close queries."))
    query = _locked(query)
    if query.state == DataQuery.State.CLOSED:
        raise ValidationError(_("The query is closed already."))
    query.state = DataQuery.State.CLOSED
    query.closed_by = user
    query.closed_at = timezone.now()
    return _save(query)


@transaction.atomic
def dataquery_reopen(*, query: DataQuery, user, comment: str) -> DataQuery:
    """The monitor is not satisfied: the query is open again with a new question."""
    if not user.has_perm(RAISE_PERMISSION):
        raise PermissionDenied(_("Only monitors and registry managers reopen queries."))
    query = _locked(query)
    if query.state == DataQuery.State.OPEN:
        raise ValidationError(_("The query is open already."))
    if not comment.strip():
        raise ValidationError({"comment": _("Say what is still wrong.")})
    query.state = DataQuery.State.OPEN
    query.comment = comment.strip()
    query.closed_by = None
    query.closed_at = None
    return _save(query)


def open_query_counts(user) -> list[tuple[object, int, int]]:
    """(site, open, answered) for every site of ``user`` with unresolved queries."""
    from django.db.models import Count, Q

    from registry.models import Site

    return [
        (site, site.open_queries, site.answered_queries)
        for site in Site.objects.for_user(user)
        .annotate(
            open_queries=Count("data_queries", filter=Q(data_queries__state="open")),
            answered_queries=Count("data_queries", filter=Q(data_queries__state="answered")),
        )
        .order_by("code")
    ]


def queries_raised_between(*, site, after, until):
    """Queries raised at ``site`` after ``after`` (None: ever) up to ``until``, not closed: the
    daily digest's "new data queries" (each in the digest that follows its raising)."""
    queries = DataQuery.objects.filter(site=site, raised_at__lte=until).exclude(
        state=DataQuery.State.CLOSED
    )
    if after is not None:
        queries = queries.filter(raised_at__gt=after)
    return queries.select_related("content_type").order_by("raised_at", "pk")


def query_field_label(query: DataQuery) -> str:
    """The label of the field a query is about (its name when the field is gone)."""
    model = query.content_type.model_class()
    return dict(queryable_fields(model)).get(query.field_name, query.field_name)


def query_patient(query: DataQuery):
    """The patient whose record a query is about (the record page lists its queries)."""
    record = query.record
    if isinstance(record, Patient):
        return record
    return _first_attribute(record, ("patient", "procedure.patient"))


def open_query_count(*, user, patient_ref: str = "pk"):
    """The number of open queries on any of a patient's records (the patient, their
    procedures, treated levels, complications and questionnaire responses), over the user's
    sites only: a subquery to annotate patients with (``patient_ref`` names the patient's id),
    so a page of patients gets its counts in its own query (PostgreSQL evaluates it after the
    page's LIMIT)."""
    from django.db.models import Case, Count, IntegerField, OuterRef, Subquery, Value, When
    from django.db.models.functions import Coalesce

    from outcomes.models import QuestionnaireResponse
    from registry.models import Complication, Procedure, TreatedLevel

    def patient_of(model, path):
        return Subquery(model.objects.filter(pk=OuterRef("object_id")).values(path)[:1])

    of = ContentType.objects.get_for_model
    patient = Case(
        When(content_type=of(Patient), then="object_id"),
        When(content_type=of(Procedure), then=patient_of(Procedure, "patient_id")),
        When(content_type=of(TreatedLevel), then=patient_of(TreatedLevel, "procedure__patient_id")),
        When(content_type=of(Complication), then=patient_of(Complication, "patient_id")),
        When(
            content_type=of(QuestionnaireResponse),
            then=patient_of(QuestionnaireResponse, "procedure__patient_id"),
        ),
        output_field=IntegerField(),
    )
    rows = (
        DataQuery.objects.for_user(user)
        .filter(state=DataQuery.State.OPEN)
        .annotate(patient_id=patient)
        .filter(patient_id=OuterRef(patient_ref))
        .values("patient_id")
        .annotate(n=Count("pk"))
        .order_by()
        .values("n")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))
