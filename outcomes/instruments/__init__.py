"""Questionnaire instruments: pure scoring functions and item wording, no database."""
