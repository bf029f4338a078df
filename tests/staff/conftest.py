# The questionnaire-link fixtures (a follow-up invited by the real sweep, its token).
from tests.outcomes.conftest import clock, followup, patient, token  # noqa: F401
