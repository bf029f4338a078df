"""Project plumbing: settings, Celery app, URLs, WSGI, launcher and the embedded database."""
