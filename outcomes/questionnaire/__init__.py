"""The patient questionnaire behind a personal link: views, steps, items, answers, rate limit."""
