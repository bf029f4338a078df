"""The admin site is the registry's data-entry interface for site staff.

Every clinical admin is scoped to the sites of the logged-in user (a registry manager sees all):
the change list, the change/delete/history pages (404 for another site's row), the choices in
foreign-key fields and the autocomplete look-ups all go through ``QuerySet.for_user``.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from pghistory.models import Events

from registry.access import is_registry_manager, may_see_contact
from registry.admin_lists import EstimatedCountPaginator, site_filter, year_filter
from registry.forms import (
    ComplicationForm,
    PatientContactFormSet,
    PatientForm,
    ProcedureForm,
    RegistryModelForm,
    TreatedLevelFormSet,
)
from registry.locale import LocalizedEntryMixin
from registry.locking import is_lock_refusal
from registry.models import (
    Cohort,
    Complication,
    Patient,
    PatientContact,
    Procedure,
    Site,
    TreatedLevel,
    active_lock,
)
from registry.warnings import warning_acknowledge

admin.site.site_header = _("Vertebral augmentation registry")
admin.site.site_title = _("Registry")
admin.site.index_title = _("Data entry")


def scoped(model, user):
    """The rows of ``model`` that ``user`` may see, or None for a model without a site."""
    queryset = model._default_manager.all()
    return queryset.for_user(user) if hasattr(queryset, "for_user") else None


class HistoryMixin:
    """Show the pghistory audit trail (who, when, old → new) on the admin's History page.

    With ``history_includes_related`` the page also lists the events of rows that point to the
    object (a procedure's levels and complications, a patient's contact details and
    procedures), including rows deleted since, limited to the models the user may view.
    """

    history_includes_related = False

    def history_events(self, request, obj) -> list:
        if self.history_includes_related:
            events = Events.objects.references(obj)
        else:
            events = Events.objects.tracks(obj)
        visible = []
        for event in events.order_by("-pgh_created_at", "-pgh_id"):
            tracked = apps.get_model(event.pgh_model).pgh_tracked_model._meta
            if request.user.has_perm(f"{tracked.app_label}.view_{tracked.model_name}"):
                visible.append(event)
        return visible

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        events = self.history_events(request, obj)
        user_ids = {
            (event.pgh_context or {}).get("user")
            for event in events
            if (event.pgh_context or {}).get("user") is not None
        }
        users = {
            user.pk: user.get_username()
            for user in get_user_model().objects.filter(pk__in=user_ids)
        }
        rows = []
        for event in events:
            context = event.pgh_context or {}
            if event.pgh_diff:
                changes = [
                    (field, old, new) for field, (old, new) in sorted(event.pgh_diff.items())
                ]
            else:
                changes = [(field, None, value) for field, value in sorted(event.pgh_data.items())]
            rows.append(
                {
                    "when": event.pgh_created_at,
                    "who": users.get(context.get("user"), _("system (no user)")),
                    "what": event.pgh_label,
                    "model": event.pgh_model.split(".")[-1],
                    "changes": changes,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change history: %s") % obj,
            "subtitle": None,
            "object": obj,
            "opts": self.model._meta,
            "rows": rows,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/registry/object_history.html", context)


class ReadOnlyAdminMixin:
    """A log or record that the admin only shows: written by the application, never here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScopedObjectsMixin:
    """Lists and pages limited to the user's sites; another site's record is not found."""

    def get_queryset(self, request):
        return super().get_queryset(request).for_user(request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Another site's record, or none at all: the same answer for both.
            raise Http404(_("No such record at your sites."))
        return obj


def lock_message(lock) -> str:
    """What staff read on a locked record's page, and when a change to it is refused."""
    if lock is None:
        return str(
            _(
                "This record is locked: nothing was saved. A data manager must unlock it, "
                "with a reason, before it can change."
            )
        )
    return _(
        "This record is locked since %(date)s by %(user)s (%(reason)s): nothing can be "
        "changed. A data manager must unlock it, with a reason, before it can change."
    ) % {
        "date": lock.locked_at.date().isoformat(),
        "user": lock.locked_by.get_username() if lock.locked_by else _("the system"),
        "reason": lock.reason,
    }


class LockedRecordMixin:
    """A locked record's pages are read-only with the lock shown, and a change the database
    refuses because the record is locked (locked while the form was open, a bulk delete, a
    row added to a locked patient) is reported on the page, never as a server error."""

    def _lock_of(self, obj):
        """The active lock over ``obj``'s record, looked up once per object of a request."""
        if obj is None:
            return None
        if not hasattr(obj, "_active_lock"):
            obj._active_lock = active_lock(obj)
        return obj._active_lock

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._lock_of(obj) is None

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._lock_of(obj) is None

    def _refused(self, request, lock=None):
        self.message_user(request, lock_message(lock), messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            lock = self._lock_of(obj)
            if lock is not None:
                if request.method == "POST":
                    return self._refused(request, lock)
                self.message_user(request, lock_message(lock), messages.WARNING)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DatabaseError as error:
            if not is_lock_refusal(error):
                raise
            return self._refused(request)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DatabaseError as error:
            if not is_lock_refusal(error):
                raise
            return self._refused(request)

    def changelist_view(self, request, extra_context=None):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        if request.method == "POST" and selected:
            chosen = self.get_queryset(request).filter(pk__in=selected)
            lock = next(filter(None, (self._lock_of(obj) for obj in chosen)), None)
            if lock is not None:
                return self._refused(request, lock)
        try:
            return super().changelist_view(request, extra_context)
        except DatabaseError as error:
            if not is_lock_refusal(error):
                raise
            return self._refused(request)


class SiteScopedAdmin(
    LockedRecordMixin, ScopedObjectsMixin, HistoryMixin, LocalizedEntryMixin, admin.ModelAdmin
):
    """Base admin for clinical models: every query is limited to the user's sites."""

    # No exact COUNT over a big table: a filtered list shows its own count only (no second
    # count of the whole table), and a long list an estimate (registry.admin_lists).
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    form = RegistryModelForm

    def response_add(self, request, obj, post_url_continue=None):
        return self._back_to_next(request) or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        return self._back_to_next(request) or super().response_change(request, obj)

    def _back_to_next(self, request):
        """After a plain save, back to the page the form was opened from (``?next=``, e.g. the
        patient record), when it is a page of this site."""
        target = request.GET.get("next", "")
        if (
            target
            and not {"_continue", "_addanother", "_saveasnew", "_popup"} & set(request.POST)
            and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
        ):
            return HttpResponseRedirect(target)
        return None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        allowed = scoped(db_field.related_model, request.user)
        if allowed is not None:
            kwargs["queryset"] = allowed
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class PatientContactInline(admin.StackedInline):
    model = PatientContact
    formset = PatientContactFormSet
    can_delete = False
    extra = 1
    max_num = 1
    fields = [
        "name",
        "email",
        "phone",
        "preferred_channel",
        "preferred_language",
        "consent_to_contact",
        "sms_stopped_at",
    ]
    readonly_fields = ["sms_stopped_at"]  # only the patient's STOP reply sets it


@admin.register(Site)
class SiteAdmin(HistoryMixin, admin.ModelAdmin):
    list_display = ["code", "name", "time_zone", "eq5d_version", "eq5d_value_set"]
    search_fields = ["code", "name"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        return Site.objects.for_user(request.user)

    def get_readonly_fields(self, request, obj=None):
        """Only registry managers grant or remove access to a site; site leads see the
        members but cannot change them."""
        fields = list(super().get_readonly_fields(request, obj))
        if not is_registry_manager(request.user):
            fields.append("members")
        return fields

    def history_events(self, request, obj) -> list:
        """The site's own changes and every membership granted or removed."""
        members = Events.objects.references(obj).filter(pgh_model="registry.SiteMemberEvent")
        events = [*super().history_events(request, obj), *members]
        return sorted(events, key=lambda e: (e.pgh_created_at, e.pgh_id), reverse=True)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("No such site."))
        return obj


class CohortListFilter(admin.SimpleListFilter):
    title = _("cohort")
    parameter_name = "cohort"
    cohort_field = "cohort"

    def lookups(self, request, model_admin):
        return Cohort.choices

    def queryset(self, request, queryset):
        if self.value() in Cohort.values:
            return queryset.filter(**{self.cohort_field: self.value()})
        return queryset


class IndexCohortListFilter(CohortListFilter):
    title = _("cohort of index procedure")
    cohort_field = "index_cohort"


@admin.register(Patient)
class PatientAdmin(SiteScopedAdmin):
    list_display = [
        "registry_id",
        "record",
        "site",
        "sex",
        "date_of_birth",
        "index_date",
        "index_cohort",
        "vital_status",
    ]
    list_select_related = ["site"]
    list_filter = [site_filter("site"), IndexCohortListFilter, "sex", "primary_tumour"]
    search_fields = ["registry_id"]
    search_help_text = _(
        "Registry id; if your role sees contact details, also name, phone, email or date of "
        "birth (e.g. 17-05-1950)."
    )
    inlines = [PatientContactInline]
    history_includes_related = True
    fieldsets = [
        (None, {"fields": ["registry_id", "site", "sex", "date_of_birth"]}),
        (_("Consent"), {"fields": ["consent_date", "consent_withdrawn_date"]}),
        (_("Status"), {"fields": ["karnofsky", "asa_class", "date_of_death", "cause_of_death"]}),
        (
            _("Oncologic history"),
            {"fields": Patient.ONCOLOGIC_HISTORY_FIELDS},
        ),
        (
            _("Warnings"),
            {
                "fields": ["save_anyway", "warning_reason"],
                "description": _(
                    "A likely duplicate (a patient at the site with the same date of birth "
                    "and a similar name, or the same phone or email) is saved only with a "
                    "reason."
                ),
            },
        ),
    ]
    form = PatientForm

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        patient = form.instance
        for formset in formsets:
            warnings = getattr(formset, "entry_warnings", None)
            if warnings:
                # Only reached with "save anyway" and a reason (PatientContactFormSet.clean).
                warning_acknowledge(
                    record=patient,
                    site=patient.site,
                    warnings=warnings,
                    reason=form.cleaned_data["warning_reason"],
                    user=request.user,
                )
                messages.warning(
                    request,
                    _("Saved anyway with your reason: %(warnings)s")
                    % {"warnings": " ".join(w.message for w in warnings)},
                )

    def response_add(self, request, obj, post_url_continue=None):
        """After a plain save, the new patient's record, where *Add a procedure* is the next
        step (the list was a detour of three clicks)."""
        if {"_continue", "_addanother", "_popup"} & set(request.POST) or request.GET.get("next"):
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            _("Patient %(id)s saved. Add the procedure next.") % {"id": obj.registry_id},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("staff_record", args=[obj.registry_id]))

    def get_queryset(self, request):
        queryset = super().get_queryset(request).with_index_procedure()
        if may_see_contact(request.user):
            # Fetched for the page's rows only: joined, the planner sorted every match of a
            # common surname with its contact before taking the first page.
            queryset = queryset.prefetch_related("contact")
        return queryset

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if may_see_contact(request.user):
            # Who the patient is, for the roles that call and greet them (never auditors).
            columns.insert(1, "name")
        return columns

    @admin.display(description=_("name"), ordering="contact__name")
    def name(self, obj):
        contact = getattr(obj, "contact", None)
        return (contact.name if contact else "") or "–"

    def get_search_results(self, request, queryset, search_term):
        """Registry id for everyone; name, phone, email and date of birth too for users who
        may see contact details (``PatientQuerySet.search``)."""
        if not search_term.strip():
            return queryset, False
        return queryset.search(search_term, by_contact=may_see_contact(request.user)), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and may_see_contact(request.user):
            contact = getattr(obj, "contact", None)
            if contact is not None and contact.name:
                context["subtitle"] = _("%(id)s – %(name)s, born %(born)s") % {
                    "id": obj.registry_id,
                    "name": contact.name,
                    "born": date_format(obj.date_of_birth, "DATE_FORMAT"),
                }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_fieldsets(self, request, obj=None):
        # Registry ids are generated per site on saving (e.g. AAR-000123), never typed.
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            first_name, first = fieldsets[0]
            first = {**first, "fields": [f for f in first["fields"] if f != "registry_id"]}
            fieldsets = [(first_name, first), *fieldsets[1:]]
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "registry_id"] if obj is not None else readonly

    @admin.display(description=_("record"))
    def record(self, obj):
        # The patient record page (outcomes.staff): everything about the patient on one page.
        return format_html(
            '<a href="{}">{}</a>', reverse("staff_record", args=[obj.registry_id]), _("open record")
        )

    @admin.display(description=_("index procedure"), ordering="index_procedure__date")
    def index_date(self, obj):
        return obj.index_date

    @admin.display(description=_("vital status"))
    def vital_status(self, obj):
        if obj.date_of_death:
            return _("died %(date)s") % {"date": obj.date_of_death.isoformat()}
        return _("alive")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        sites = list(Site.objects.for_user(request.user)[:2])
        if len(sites) == 1:
            initial.setdefault("site", sites[0].pk)
        return initial


class TreatedLevelInline(LocalizedEntryMixin, admin.StackedInline):
    model = TreatedLevel
    form = RegistryModelForm
    formset = TreatedLevelFormSet
    extra = 1
    fields = [
        ("level", "etiology"),
        ("fracture", "genant_grade"),
        ("posterior_wall_defect", "pedicle_involvement", "epidural_extension"),
        ("approach", "cement_type", "cement_volume_ml"),
        "cement_leakage",
        "leakage_sites",
        ("leakage_symptomatic", "leakage_detected_by"),
    ]


@admin.register(Procedure)
class ProcedureAdmin(SiteScopedAdmin):
    list_display = ["__str__", "site", "date", "technique", "cohort", "level_count"]
    list_select_related = ["patient__site"]
    list_filter = [
        site_filter("patient__site"),
        CohortListFilter,
        "technique",
        year_filter("date"),
        ("date", admin.DateFieldListFilter),
    ]
    search_fields = ["patient__registry_id"]
    autocomplete_fields = ["patient"]
    form = ProcedureForm
    inlines = [TreatedLevelInline]
    history_includes_related = True
    fieldsets = [
        (None, {"fields": ["patient", "date", "technique", "adjunct", "indication"]}),
        (_("Setting"), {"fields": ["anaesthesia", "image_guidance", "operator"]}),
        (
            _("Work-up"),
            {"fields": ["mri_stir_oedema", "biopsy_taken", "biopsy_result"]},
        ),
        (
            _("Contraindication checklist"),
            {"fields": ["absolute_contraindications", "relative_contraindications"]},
        ),
        (
            _("Radiation and stay"),
            {"fields": ["fluoroscopy_time_s", "dose_area_product", "length_of_stay_days"]},
        ),
        (None, {"fields": ["notes"]}),
        (
            _("Warnings"),
            {
                "fields": ["save_anyway", "warning_reason"],
                "description": _(
                    "Unusual entries (more than three levels, an absolute contraindication, "
                    "a cement volume outside the usual range) are saved only with a reason."
                ),
            },
        ),
    ]

    def get_queryset(self, request):
        # A subquery per listed row (one page), not a GROUP BY over every procedure and level.
        levels = (
            TreatedLevel.objects.filter(procedure=OuterRef("pk"))
            .order_by()
            .values("procedure")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(level_count=Subquery(levels))

    @admin.display(description=_("site"), ordering="patient__site__code")
    def site(self, obj):
        return obj.patient.site.code

    @admin.display(description=_("levels"))
    def level_count(self, obj):
        return obj.level_count

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        procedure = form.instance
        for formset in formsets:
            warnings = getattr(formset, "entry_warnings", None)
            if warnings:
                # Only reached with "save anyway" and a reason (TreatedLevelFormSet.clean).
                warning_acknowledge(
                    record=procedure,
                    site=procedure.patient.site,
                    warnings=warnings,
                    reason=form.cleaned_data["warning_reason"],
                    user=request.user,
                )
                messages.warning(
                    request,
                    _("Saved anyway with your reason: %(warnings)s")
                    % {"warnings": " ".join(w.message for w in warnings)},
                )


@admin.register(TreatedLevel)
class TreatedLevelAdmin(SiteScopedAdmin):
    """Browse treated vertebrae (e.g. every leakage); they are entered on the procedure."""

    list_display = ["__str__", "procedure", "cement_volume_ml", "cement_leakage"]
    list_select_related = ["procedure__patient__site"]
    list_filter = [
        site_filter("procedure__patient__site"),
        "etiology",
        "cement_leakage",
    ]
    search_fields = ["procedure__patient__registry_id"]
    readonly_fields = ["procedure"]

    def has_add_permission(self, request):
        return False


@admin.register(Complication)
class ComplicationAdmin(SiteScopedAdmin):
    list_display = ["patient", "date", "type", "cirse_grade", "relation", "outcome"]
    list_select_related = ["patient__site"]
    list_filter = [
        site_filter("patient__site"),
        "type",
        "cirse_grade",
        ("date", admin.DateFieldListFilter),
    ]
    search_fields = ["patient__registry_id"]
    form = ComplicationForm
    autocomplete_fields = ["patient"]
    fields = ComplicationForm.Meta.fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        user = request.user

        class Form(form_class):
            def __init__(self, *args, **inner):
                super().__init__(*args, user=user, **inner)

        return Form

    class Media:
        # On the add page, choosing the patient reloads it with their procedures and levels.
        js = ["registry/complication.js"]


class RegistryTOTPDeviceAdmin(TOTPDeviceAdmin):
    """django-otp's device admin, whose config and QR-code views look the device up with
    ``objects.get`` and answer 500 for an id that does not exist: here they answer 404."""

    def config_view(self, request, pk):
        get_object_or_404(TOTPDevice, pk=pk)
        return super().config_view(request, pk)

    def qrcode_view(self, request, pk):
        get_object_or_404(TOTPDevice, pk=pk)
        return super().qrcode_view(request, pk)


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, RegistryTOTPDeviceAdmin)
