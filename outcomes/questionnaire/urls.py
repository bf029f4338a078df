from django.urls import path, re_path

from outcomes.questionnaire import views

# The token is the credential: 43 characters of base64url (outcomes.followups.links).
urlpatterns = [
    path("q/thanks/", views.questionnaire_thanks, name="questionnaire_thanks"),
    path("q/<str:token>/", views.questionnaire_start, name="questionnaire"),
    path("q/<str:token>/check/", views.questionnaire_review, name="questionnaire_review"),
    path(
        "q/<str:token>/consent/",
        views.questionnaire_consent_first,
        name="questionnaire_consent_first",
    ),
    path("q/<str:token>/<slug:slug>/", views.questionnaire_step, name="questionnaire_step"),
    # Anything else under q/ (e.g. a token with an encoded slash): the same neutral page.
    re_path(r"^q/", views.questionnaire_unknown),
]
