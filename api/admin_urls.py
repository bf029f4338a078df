"""Admin-site pages of the api app, mounted under /admin/import/ by the project's urls."""

from django.urls import path

from api.import_admin import import_cases_page, import_template

urlpatterns = [
    path("", import_cases_page, name="import_cases"),
    path("template.xlsx", import_template, name="import_template"),
]
