from django.urls import path

from outcomes import report_views

urlpatterns = [
    path("cohorts/", report_views.cohort_report_page, name="cohort_report"),
]
