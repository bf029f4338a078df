"""Staff pages beside the patient record: lock, unlock and sign (thin: forms and services)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods
from django_otp import devices_for_user

from outcomes.models import Timepoint
from outcomes.records.locking import LOCK_PERMISSION, record_lock, record_unlock
from outcomes.records.signing import SIGN_PERMISSION, record_sign
from registry.models import Patient, Procedure, RecordLock, Signature


class LockForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for locking"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For example: verified against the source records for the 2026 paper."),
    )


class UnlockForm(forms.Form):
    unlock_reason = forms.CharField(
        label=_("Reason for unlocking"), widget=forms.Textarea(attrs={"rows": 3})
    )


class SignForm(forms.Form):
    meaning = forms.ChoiceField(
        label=_("Meaning of your signature"),
        choices=Signature.Meaning.choices,
        widget=forms.RadioSelect,
    )
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
    )
    otp_token = forms.CharField(
        label=_("Code from your authenticator"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _patient(request: HttpRequest, registry_id: str) -> Patient:
    patient = (
        Patient.objects.for_user(request.user)
        .select_related("site")
        .filter(registry_id=registry_id)
        .first()
    )
    if patient is None:
        raise Http404(_("No such record at your sites."))
    return patient


def _follow_up(request: HttpRequest, patient: Patient) -> tuple[Procedure | None, str]:
    """The follow-up named by ``?procedure=…&timepoint=…``, or none (the whole record)."""
    procedure_id = request.GET.get("procedure", "")
    timepoint = request.GET.get("timepoint", "")
    if not procedure_id and not timepoint:
        return None, ""
    procedure = (
        Procedure.objects.filter(pk=procedure_id, patient=patient).first()
        if (procedure_id.isdigit())
        else None
    )
    if procedure is None or timepoint not in Timepoint.values:
        raise Http404(_("No such follow-up in this record."))
    return procedure, timepoint


def _what(patient: Patient, procedure: Procedure | None, timepoint: str) -> str:
    if procedure is None:
        return _("the whole record of %(id)s") % {"id": patient.registry_id}
    return _("the %(timepoint)s data of the procedure on %(date)s (%(id)s)") % {
        "timepoint": Timepoint(timepoint).label,
        "date": procedure.date.isoformat(),
        "id": patient.registry_id,
    }


def _page(request, template: str, context: dict) -> HttpResponse:
    return render(request, template, {**admin.site.each_context(request), **context})


def _fail(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@require_http_methods(["GET", "POST"])
def lock_view(request: HttpRequest, registry_id: str) -> HttpResponse:
    if not request.user.has_perm(LOCK_PERMISSION):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    procedure, timepoint = _follow_up(request, patient)
    form = LockForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            record_lock(
                patient=patient,
                user=request.user,
                reason=form.cleaned_data["reason"],
                procedure=procedure,
                timepoint=timepoint,
            )
        except ValidationError as error:
            _fail(form, error)
        else:
            messages.success(
                request, _("Locked: %(what)s.") % {"what": _what(patient, procedure, timepoint)}
            )
            return redirect("staff_record", registry_id=patient.registry_id)
    return _page(
        request,
        "admin/staff/record_lock.html",
        {
            "title": _("Lock %(what)s") % {"what": _what(patient, procedure, timepoint)},
            "patient": patient,
            "form": form,
            "submit": _("Lock"),
        },
    )


@require_http_methods(["GET", "POST"])
def unlock_view(request: HttpRequest, registry_id: str, lock_id: int) -> HttpResponse:
    if not request.user.has_perm(LOCK_PERMISSION):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    lock = RecordLock.objects.active().filter(pk=lock_id, patient=patient).first()
    if lock is None:
        raise Http404(_("This lock was already lifted."))
    form = UnlockForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            record_unlock(lock=lock, user=request.user, reason=form.cleaned_data["unlock_reason"])
        except ValidationError as error:
            _fail(form, error)
        else:
            messages.success(request, _("Unlocked: changes are accepted again."))
            return redirect("staff_record", registry_id=patient.registry_id)
    return _page(
        request,
        "admin/staff/record_lock.html",
        {
            "title": _("Unlock %(what)s")
            % {"what": _what(patient, lock.procedure, lock.timepoint)},
            "patient": patient,
            "lock": lock,
            "form": form,
            "submit": _("Unlock"),
        },
    )


@require_http_methods(["GET", "POST"])
def sign_view(request: HttpRequest, registry_id: str) -> HttpResponse:
    if not request.user.has_perm(SIGN_PERMISSION):
        raise PermissionDenied
    patient = _patient(request, registry_id)
    procedure, timepoint = _follow_up(request, patient)
    form = SignForm(request.POST or None)
    has_device = any(True for _device in devices_for_user(request.user, confirmed=True))
    if not has_device:
        form.fields.pop("otp_token")
    if request.method == "POST" and form.is_valid():
        try:
            record_sign(
                patient=patient,
                user=request.user,
                password=form.cleaned_data["password"],
                otp_token=form.cleaned_data.get("otp_token", ""),
                meaning=form.cleaned_data["meaning"],
                procedure=procedure,
                timepoint=timepoint,
            )
        except ValidationError as error:
            _fail(form, error)
        else:
            messages.success(
                request, _("Signed: %(what)s.") % {"what": _what(patient, procedure, timepoint)}
            )
            return redirect("staff_record", registry_id=patient.registry_id)
    return _page(
        request,
        "admin/staff/record_sign.html",
        {
            "title": _("Sign %(what)s") % {"what": _what(patient, procedure, timepoint)},
            "patient": patient,
            "form": form,
            "submit": _("Sign"),
        },
    )
