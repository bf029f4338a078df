"""Every export downloads with a staff session whose once-a-minute renewal is due.

The attack (any staff member, five clicks): a streamed CSV export holds its connection in
``COPY … TO STDOUT`` from the view's return; the session renewal, saved after the view, then
waited on that same connection for ever and gunicorn killed the worker after 120 s. Each
download runs in a thread of its own (its own connection) so a deadlock fails the test
instead of hanging it."""

from __future__ import annotations

import threading

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client
from django.urls import reverse

from api import exports, statexports
from registry.project.middleware import RenewSessionMiddleware


def export_urls() -> list[str]:
    urls = []
    for name in exports.EXPORTS:
        stem = name.removesuffix(".csv")
        urls.append(reverse(f"api_export_{stem}"))
        urls += [reverse(f"api_export_{stem}_{suffix}") for suffix in statexports.FORMATS]
    return [
        *urls,
        reverse("api_dictionary"),
        *(f"{reverse('cohort_report')}?format={fmt}" for fmt in ("csv", "tidy", "md", "docx")),
        f"{reverse('data_quality')}?format=csv",
    ]


def download(client: Client, url: str, timeout: float = 60) -> tuple[int, bytes]:
    result: dict = {}

    def run() -> None:
        try:
            response = client.get(url)
            content = (
                b"".join(response.streaming_content) if response.streaming else response.content
            )
            result["answer"] = (response.status_code, content)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"{url} hung: the worker deadlocked on its own connection"
    return result["answer"]


@pytest.mark.django_db(transaction=True)  # the downloads run on connections of their own
def test_every_export_downloads_with_a_session_due_for_renewal(registry, manager):
    client = Client()
    client.force_login(manager)
    urls = export_urls()
    assert len(urls) >= 10
    for url in urls:
        session = client.session
        session[RenewSessionMiddleware.KEY] = 0  # due: last renewed long ago
        session.save()

        status, content = download(client, url)

        assert status == 200, (url, content[:300])
        assert len(content) > 50, url
        renewed = SessionStore(session.session_key).get(RenewSessionMiddleware.KEY)
        assert renewed > 0, f"{url}: the session was not renewed"
