"""Questionnaire instruments and scoring, follow-up schedule, links, chasing and reports.

May import ``registry``; never imports ``api``.
"""
