"""The admin page that imports historical series: upload, preview, then import.

The first step checks the uploaded files with a dry run (``api.imports.cases_import``) and
shows what would be created or changed and every row's problem. The files are kept in the
user's session (the database: any web process can take the second step) until the user
confirms; the import then runs again in full and keeps everything or nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from api.imports import ImportFileError, cases_import
from registry.access import is_registry_manager
from registry.models import Site

SESSION_KEY = "case_import"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # larger series: the import_cases command
SHOWN_PROBLEMS = 500
IMPORT_PERMISSIONS = [
    "registry.add_patient",
    "registry.change_patient",
    "registry.add_procedure",
    "registry.change_procedure",
    "registry.add_treatedlevel",
    "registry.change_treatedlevel",
    "registry.add_complication",
    "registry.change_complication",
]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(item, initial) for item in files]


class UploadForm(forms.Form):
    files = MultipleFileField(
        label=_("Files"),
        help_text=_(
            "CSV files (patients.csv, procedures.csv, levels.csv, responses.csv, "
            "complications.csv) or one Excel workbook with a sheet per table."
        ),
    )
    site = forms.ChoiceField(label=_("Site"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [("", _("the site column of the patients table"))] + [
            (site.code, f"{site.code} – {site.name}") for site in Site.objects.for_user(user)
        ]

    def clean_files(self):
        files = self.cleaned_data["files"]
        if sum(f.size for f in files) > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("Over 20 MB: use the import_cases command for a series this large.")
            )
        return files


def _may_import(user) -> bool:
    return is_registry_manager(user) or user.has_perms(IMPORT_PERMISSIONS)


@staff_member_required
def import_cases_page(request: HttpRequest) -> HttpResponse:
    if not _may_import(request.user):
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": _("Import cases")}
    form = UploadForm(user=request.user)
    if request.method == "POST" and request.POST.get("confirm"):
        context |= _confirm(request)
    elif request.method == "POST":
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            files = [(f.name, f.read()) for f in form.cleaned_data["files"]]
            site = form.cleaned_data["site"]
            context |= _preview(request, files, site)
    context["form"] = form
    return render(request, "admin/api/import_cases.html", context)


def _digest(files) -> str:
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def _preview(request, files, site: str) -> dict:
    try:
        result = cases_import(files=files, user=request.user, site_code=site, dry_run=True)
    except ImportFileError as error:
        return {"file_error": str(error)}
    groups = result.grouped_problems()
    context = {"result": result, "problems": groups[:SHOWN_PROBLEMS], "groups": len(groups)}
    if result.ok:
        token = secrets.token_urlsafe(16)
        request.session[SESSION_KEY] = {
            "token": token,
            "site": site,
            "digest": _digest(files),
            "files": [(name, base64.b64encode(content).decode()) for name, content in files],
        }
        context["token"] = token
        context["file_names"] = [name for name, _content in files]
    else:
        request.session.pop(SESSION_KEY, None)
    return context


def _confirm(request) -> dict:
    stored = request.session.get(SESSION_KEY)
    if not stored or not secrets.compare_digest(stored["token"], request.POST["confirm"]):
        return {"file_error": _("This preview has expired: upload the files again.")}
    files = [(name, base64.b64decode(content)) for name, content in stored["files"]]
    if _digest(files) != stored["digest"]:
        return {"file_error": _("The stored files changed: upload them again.")}
    result = cases_import(files=files, user=request.user, site_code=stored["site"])
    if result.ok:
        request.session.pop(SESSION_KEY, None)
    groups = result.grouped_problems()
    return {
        "result": result,
        "problems": groups[:SHOWN_PROBLEMS],
        "groups": len(groups),
        "imported": True,
    }


@staff_member_required
def import_template(request: HttpRequest) -> HttpResponse:
    """The import template workbook: the columns, a dictionary sheet, dropdowns for codes."""
    if not _may_import(request.user):
        raise PermissionDenied
    from api.import_template import template_workbook

    response = HttpResponse(
        template_workbook(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = 'attachment; filename="registry-import-template.xlsx"'
    return response
