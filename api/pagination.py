"""Cursor pagination: stable under concurrent inserts and never counts the table."""

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Pages in id order (ids never change, so a pull resumes exactly where it stopped);
    ``page_size`` up to 1000."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000
