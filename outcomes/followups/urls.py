from django.urls import path

from outcomes.followups import webhooks

urlpatterns = [
    path("sms/status/<int:attempt_id>/", webhooks.sms_status, name="sms-status"),
    path("sms/inbound/", webhooks.sms_inbound, name="sms-inbound"),
]
