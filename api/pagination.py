"""Cursor pagination: stable under concurrent inserts and never counts the table."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Pages in id order (ids never change, so a pull resumes exactly where it stopped);
    ``page_size`` up to 1000."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's cursor, refused (404, as DRF refuses any other bad cursor) when its position
        is not an id: the position goes into ``id > …`` and must be a whole number."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and len(position) <= 18):
                raise NotFound(self.invalid_cursor_message)
        return cursor
