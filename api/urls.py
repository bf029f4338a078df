from django.urls import path

from api import views

urlpatterns = [
    path("v1/reports/cohorts", views.CohortReportView.as_view(), name="api_cohort_report"),
]
